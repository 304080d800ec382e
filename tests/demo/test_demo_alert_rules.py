"""The demo firm comes with alert rules, and their emails reach the demo logins of the owning role."""

from django.core import mail
from django.utils import timezone

from apps.core.context import system_context
from apps.metrics.models import AlertNotification, AlertRule
from apps.metrics.services import metrics_refresh
from tests.metrics import builders as b


def test_load_demo_creates_the_alert_rules_once_and_leaves_edited_ones_alone(load_demo):
    first = load_demo()
    rule = AlertRule.objects.get(name="High-value discrepancy")
    rule.threshold = 2500
    rule.save()

    second = load_demo()

    assert "Alert rules: High-value discrepancy" in first
    assert "Alert rules: 3 in place." in second
    assert AlertRule.objects.count() == 3
    assert AlertRule.objects.get(name="High-value discrepancy").threshold == 2500


def test_a_high_value_discrepancy_in_the_demo_emails_the_finance_login_once(demo):
    uk = b.entities()[0]
    b.discrepancy(entity=uk, period=b.last_month(), value_at_risk="4200", key="INV-DEMO-1")

    for _ in range(2):
        with system_context("test"):
            metrics_refresh(reason="test")

    sent = AlertNotification.objects.filter(alert__rule__name="High-value discrepancy")
    assert [n.recipients for n in sent] == [["finance@northwind-advisory.example"]]
    assert [m.to for m in mail.outbox if "INV-DEMO-1" in m.subject] == [["finance@northwind-advisory.example"]]
    assert sent.get().sent_at <= timezone.now()
