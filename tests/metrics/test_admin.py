"""The admin pages of the metrics app: alert rules editable by finance, figures and the alert log read-only."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.core.context import system_context
from apps.metrics.models import Alert, AlertNotification, AlertRule, MetricValue
from apps.metrics.services import metrics_refresh

from . import builders as b

pytestmark = pytest.mark.django_db


@pytest.fixture
def breached(make_user):
    make_user("fred.finance", "finance_ops", email="fred@example.com")
    uk, _ = b.entities()
    AlertRule.objects.create(name="UK backlog", metric="backlog", threshold=Decimal("1"), owner_role="finance_ops")
    b.project_in(uk, "GBP", contract_fields={"total_value": Decimal("5000"), "status": "active"})
    with system_context("test"):
        metrics_refresh(reason="test")


@pytest.mark.parametrize("model", [MetricValue, AlertRule, Alert, AlertNotification])
def test_the_auditor_reads_every_metrics_page_and_changes_nothing(client, make_user, breached, model):
    auditor = make_user("alex.auditor", "auditor", is_staff=True)
    client.force_login(auditor)
    opts = model._meta
    obj = model.objects.first()

    listing = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    detail = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    history = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk]))

    assert listing.status_code == 200 and detail.status_code == 200 and history.status_code == 200
    assert b'name="_save"' not in detail.content


def test_finance_edits_an_alert_rule_in_the_admin_with_a_reason(client, make_user, breached):
    finance = make_user("fiona.finance", "finance_ops", is_staff=True)
    client.force_login(finance)
    rule = AlertRule.objects.get()
    url = reverse("admin:metrics_alertrule_change", args=[rule.pk])

    response = client.post(
        url,
        {
            "name": rule.name,
            "kind": "metric",
            "metric": "backlog",
            "comparison": "above",
            "threshold": "9000",
            "renotify_step": "0",
            "owner_role": "finance_ops",
            "active": "on",
            "currency": "",
            "description": "",
            "change_reason": "Too noisy at 1",
        },
    )

    assert response.status_code == 302, response.content
    rule.refresh_from_db()
    assert rule.threshold == Decimal("9000")
    assert rule.history.first().history_change_reason == "Too noisy at 1"
    assert client.get(reverse("admin:metrics_metricvalue_add")).status_code == 403
