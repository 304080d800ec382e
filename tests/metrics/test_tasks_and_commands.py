"""The schedules, the task entry points and the commands around the metrics."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_q.models import Schedule

from apps.metrics import tasks
from apps.metrics.models import AlertNotification, AlertRule, MetricSnapshot, MetricValue

from . import builders as b

pytestmark = pytest.mark.django_db


def test_install_schedules_adds_the_metrics_and_digest_schedules_idempotently():
    call_command("install_schedules", stdout=io.StringIO())
    out = io.StringIO()
    call_command("install_schedules", stdout=out)

    metrics = Schedule.objects.get(name="business metrics and alerts")
    digest = Schedule.objects.get(name="alert digest")
    assert metrics.func == "apps.metrics.tasks.refresh_metrics" and metrics.schedule_type == Schedule.HOURLY
    assert digest.func == "apps.metrics.tasks.send_digest" and digest.schedule_type == Schedule.DAILY
    assert "schedule 'business metrics and alerts' unchanged" in out.getvalue()


def test_the_scheduled_tasks_compute_notify_and_digest_as_the_system_user(make_user):
    make_user("fiona.finance", "finance_ops", email="fiona@example.com")
    uk, _ = b.entities()
    AlertRule.objects.create(
        name="UK WIP", metric="wip", legal_entity=uk, threshold=Decimal("10"), owner_role="finance_ops"
    )
    b.time_entry(b.project_in(uk, "GBP"), hours=1, rate=100, work_date=timezone.localdate())

    result = tasks.refresh_metrics()
    again = tasks.refresh_metrics()
    digests = tasks.send_digest() + tasks.send_digest()

    assert result["notified"] == 1 and again["notified"] == 0
    assert digests == 1
    assert AlertNotification.objects.filter(kind="breach").count() == 1
    snapshot = MetricSnapshot.history.first()
    assert snapshot.history_user.username == "integration-system"
    assert snapshot.history_change_reason == "Scheduled metrics computation and alert check"


def test_compute_metrics_command_computes_the_months_given(tmp_path):
    uk, _ = b.entities()
    period = b.last_month()
    b.time_entry(b.project_in(uk, "GBP"), hours=2, rate=100, work_date=period.start)
    out = io.StringIO()

    call_command("compute_metrics", "--period", period.label, "--metric", "wip", stdout=out)

    assert f"wip {period.label}: 1 figure(s)" in out.getvalue()
    assert MetricValue.objects.get().value == Decimal("200")


def test_export_metrics_command_writes_one_csv_per_metric(tmp_path):
    period = b.last_month()
    call_command("compute_metrics", "--period", period.label, "--no-alerts", stdout=io.StringIO())

    call_command("export_metrics", "--period", period.label, "--dir", str(tmp_path), stdout=io.StringIO())

    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 9 and f"wip_{period.label}.csv" in names
    assert (tmp_path / f"dso_{period.label}.csv").read_text().startswith("metric,metric_name,unit,period,")


def test_the_commands_explain_a_bad_month():
    with pytest.raises(CommandError, match="is not a month"):
        call_command("compute_metrics", "--period", "Nov", stdout=io.StringIO())
    with pytest.raises(CommandError, match="has not been computed"):
        call_command("export_metrics", "--period", "2019-01", "--dir", "/tmp", stdout=io.StringIO())
