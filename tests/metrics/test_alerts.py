"""Alerts: a breach is emailed to the owning role once, again only when it worsens; a daily digest, once a day."""

import datetime
import smtplib
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.context import system_context
from apps.metrics import services
from apps.metrics.models import Alert, AlertNotification, AlertRule
from apps.metrics.services import alert_digest_send, metrics_refresh

from . import builders as b

pytestmark = pytest.mark.django_db
days = datetime.timedelta


def refresh():
    with system_context("test"):
        return metrics_refresh(reason="test refresh")


@pytest.fixture
def finance_team(make_user):
    return [
        make_user("fiona.finance", "finance_ops", email="fiona@example.com"),
        make_user("fred.finance", "finance_ops", email="fred@example.com"),
        make_user("nora.noemail", "finance_ops"),
        make_user("dan.delivery", "delivery_ops", email="dan@example.com"),
    ]


@pytest.fixture
def wip_rule(db):
    uk, _ = b.entities()
    return AlertRule.objects.create(
        name="UK WIP over 1,000 GBP",
        metric="wip",
        legal_entity=uk,
        currency="GBP",
        threshold=Decimal("1000"),
        renotify_step=Decimal("100"),
        owner_role="finance_ops",
    )


def test_a_breach_emails_the_owning_role_once_and_not_on_unchanged_reruns(finance_team, wip_rule):
    project = b.project_in(wip_rule.legal_entity, "GBP")
    b.time_entry(project, hours=10, rate=150, work_date=timezone.localdate())  # 1500 GBP of WIP

    first = refresh()
    second = refresh()
    third = refresh()

    assert first["notified"] == 1 and second["notified"] == 0 and third["notified"] == 0
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert sorted(email.to) == ["fiona@example.com", "fred@example.com"]  # the role's members with an email
    assert "UK WIP over 1,000 GBP" in email.subject and "1,500.00 GBP" in email.subject
    assert "Approved billable work not yet invoiced" in email.body  # the metric's definition
    alert = Alert.objects.get()
    assert alert.notification_count == 1 and alert.status == Alert.Status.OPEN
    assert AlertNotification.objects.filter(alert=alert).count() == 1  # provably notified once


def test_it_notifies_again_only_when_the_figure_worsens_beyond_the_step(finance_team, wip_rule):
    project = b.project_in(wip_rule.legal_entity, "GBP")
    today = timezone.localdate()
    b.time_entry(project, hours=10, rate=150, work_date=today)  # 1500
    refresh()
    b.time_entry(project, hours=1, rate=50, work_date=today)  # 1550: worse, but by less than the 100 step
    refresh()
    assert len(mail.outbox) == 1

    b.time_entry(project, hours=2, rate=100, work_date=today)  # 1750: worse than the 1500 notified by 250
    refresh()
    refresh()

    assert len(mail.outbox) == 2
    assert "Worse" in mail.outbox[1].subject and "1,750.00 GBP" in mail.outbox[1].subject
    assert "Last notified" in mail.outbox[1].body and "1,500.00 GBP" in mail.outbox[1].body
    alert = Alert.objects.get()
    assert alert.notification_count == 2 and alert.notified_value == Decimal("1750")
    assert list(alert.notifications.values_list("kind", flat=True)) == ["worsened", "breach"]


def test_a_breach_that_ends_clears_the_alert_without_an_email(finance_team, wip_rule):
    project = b.project_in(wip_rule.legal_entity, "GBP")
    entry = b.time_entry(project, hours=10, rate=150, work_date=timezone.localdate())
    refresh()
    b.billed(entry, b.invoice(project, issued=timezone.localdate(), subtotal=1500))

    result = refresh()

    assert result["cleared"] == 1
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.CLEARED and alert.cleared_at is not None
    assert len(mail.outbox) == 1
    assert alert.history.count() >= 2  # opened, then cleared: the alert log keeps both


def test_a_rule_for_another_entity_or_currency_is_not_breached(finance_team, wip_rule):
    _, us = b.entities()
    b.time_entry(b.project_in(us, "USD"), hours=100, rate=150, work_date=timezone.localdate())
    b.time_entry(
        b.project_in(wip_rule.legal_entity, "GBP"), hours=10, rate=150, currency="EUR", work_date=timezone.localdate()
    )

    refresh()

    assert mail.outbox == [] and not Alert.objects.exists()


def test_a_new_high_value_discrepancy_notifies_once_and_again_only_when_it_grows(finance_team):
    uk, _ = b.entities()
    AlertRule.objects.create(
        name="High-value discrepancy",
        kind=AlertRule.Kind.DISCREPANCY,
        threshold=Decimal("5000"),
        owner_role="finance_ops",
    )
    period = b.last_month()
    big = b.discrepancy(entity=uk, period=period, value_at_risk="12000", key="INV-9001")
    b.discrepancy(entity=uk, period=period, value_at_risk="40", key="INV-9002")  # below the threshold

    refresh()
    refresh()
    assert len(mail.outbox) == 1
    assert "INV-9001" in mail.outbox[0].subject and "12,000.00 USD" in mail.outbox[0].subject

    big.value_at_risk = Decimal("15000")
    big.save()
    refresh()
    assert len(mail.outbox) == 2

    big.status = "closed"
    big.save()
    refresh()
    assert Alert.objects.get().status == Alert.Status.CLEARED
    assert len(mail.outbox) == 2


def test_the_daily_digest_goes_to_each_role_with_rules_once_a_day(finance_team, wip_rule):
    project = b.project_in(wip_rule.legal_entity, "GBP")
    b.time_entry(project, hours=10, rate=150, work_date=timezone.localdate())
    refresh()
    mail.outbox.clear()

    with system_context("test"):
        sent = alert_digest_send(reason="test digest")
        again = alert_digest_send(reason="test digest")

    assert [n.role for n in sent] == ["finance_ops"] and again == []
    assert len(mail.outbox) == 1
    digest = mail.outbox[0]
    assert sorted(digest.to) == ["fiona@example.com", "fred@example.com"]
    assert "1 open alert(s)" in digest.subject
    assert "Work in progress (WIP) for NW-UK" in digest.body and "1,500.00 GBP" in digest.body
    assert AlertNotification.objects.filter(kind="digest").count() == 1

    with system_context("test"):
        tomorrow = alert_digest_send(day=timezone.localdate() + days(1), reason="test digest")
    assert len(tomorrow) == 1 and len(mail.outbox) == 2


def test_an_alert_rule_explains_what_is_wrong_with_it():
    rule = AlertRule(name="No metric", kind="metric", threshold=Decimal("1"), owner_role="finance_ops")
    with pytest.raises(ValidationError, match="needs the metric it watches"):
        rule.full_clean()
    rule = AlertRule(
        name="Low discrepancies", kind="discrepancy", comparison="below", threshold=Decimal("1"), owner_role="auditor"
    )
    with pytest.raises(ValidationError, match="above a threshold"):
        rule.full_clean()


def test_a_below_rule_breaches_when_the_figure_drops(finance_team):
    uk, _ = b.entities()
    AlertRule.objects.create(
        name="UK backlog too thin",
        metric="backlog",
        legal_entity=uk,
        comparison=AlertRule.Comparison.BELOW,
        threshold=Decimal("5000"),
        owner_role="finance_ops",
    )
    b.project_in(uk, "GBP", contract_fields={"total_value": Decimal("3000"), "status": "active"})

    refresh()

    assert len(mail.outbox) == 1 and "3,000.00 GBP" in mail.outbox[0].subject


def test_when_the_mail_server_fails_nothing_is_recorded_and_the_next_run_sends_it(finance_team, wip_rule, monkeypatch):
    b.time_entry(b.project_in(wip_rule.legal_entity, "GBP"), hours=10, rate=150, work_date=timezone.localdate())
    real_send = services.send_mail

    def refuse(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(services, "send_mail", refuse)
    failed = refresh()
    monkeypatch.setattr(services, "send_mail", real_send)
    retried = refresh()

    assert failed["failed"] == 1 and failed["notified"] == 0
    assert retried["notified"] == 1 and len(mail.outbox) == 1
    assert AlertNotification.objects.count() == 1 and Alert.objects.get().notification_count == 1


def test_a_firm_wide_rule_watches_only_the_firm_wide_figure(finance_team):
    uk, _ = b.entities()
    project = b.project_in(uk, "GBP")
    AlertRule.objects.create(
        name="Failure rate",
        metric="sync_failure_rate",
        firm_wide=True,
        threshold=Decimal("10"),
        owner_role="finance_ops",
    )
    b.ledger_transaction(status="exception", exception_at=timezone.now(), subject_type="project", subject_id=project.pk)
    b.ledger_transaction(status="completed")

    refresh()

    assert [alert.subject_key for alert in Alert.objects.all()] == [
        f"sync_failure_rate:firm:{timezone.localdate():%Y-%m}:-"
    ]
    assert len(mail.outbox) == 1 and "50.00 %" in mail.outbox[0].subject


def test_a_firm_wide_rule_needs_a_metric_with_a_firm_wide_figure():
    uk, _ = b.entities()
    with pytest.raises(ValidationError, match="has no firm-wide figure"):
        AlertRule(name="x", metric="wip", firm_wide=True, threshold=1, owner_role="finance_ops").full_clean()
    with pytest.raises(ValidationError, match="not both"):
        AlertRule(
            name="y", metric="sync_failure_rate", firm_wide=True, legal_entity=uk, threshold=1, owner_role="auditor"
        ).full_clean()
