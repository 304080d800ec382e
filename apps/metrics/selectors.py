"""Shared reads: the current figures (newest snapshot of each metric and period), their history, alerts."""

from django.db.models import OuterRef, QuerySet, Subquery

from .models import Alert, AlertNotification, AlertRule, MetricSnapshot, MetricValue


def latest_snapshots() -> QuerySet[MetricSnapshot]:
    """The newest snapshot of each metric and period."""
    newest = (
        MetricSnapshot.objects.filter(metric=OuterRef("metric"), period=OuterRef("period"))
        .order_by("-computed_at", "-pk")
        .values("pk")[:1]
    )
    return MetricSnapshot.objects.filter(pk=Subquery(newest))


def metric_value_list(*, current_only: bool = True) -> QuerySet[MetricValue]:
    """Figures with their legal entity; by default only the current ones (newest snapshot of each)."""
    values = MetricValue.objects.select_related("legal_entity")
    if current_only:
        values = values.filter(snapshot__in=latest_snapshots())
    return values


def alert_rule_list() -> QuerySet[AlertRule]:
    return AlertRule.objects.select_related("legal_entity")


def alert_list() -> QuerySet[Alert]:
    return Alert.objects.select_related("rule", "legal_entity")


def alert_notification_list() -> QuerySet[AlertNotification]:
    return AlertNotification.objects.select_related("alert", "alert__rule")
