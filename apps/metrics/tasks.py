"""django-q2 entry points: both idempotent (a rerun adds a snapshot, notifies nothing twice, sends no second digest)."""

from apps.core.context import system_context

from .services import alert_digest_send, metrics_refresh


def refresh_metrics() -> dict:
    """Compute the recent months' metrics and evaluate the alert rules (scheduled hourly)."""
    with system_context("Scheduled metrics computation and alert check"):
        return metrics_refresh(reason="Scheduled metrics computation and alert check")


def send_digest() -> int:
    """Send each role with alert rules its daily digest, once a day (scheduled daily)."""
    with system_context("Daily alert digest"):
        return len(alert_digest_send(reason="Daily alert digest"))
