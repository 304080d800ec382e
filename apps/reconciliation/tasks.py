"""django-q2 entry points: take ids, call one service. Delivery is at-least-once; a run is executed only once."""

import datetime

from django.utils import timezone

from apps.core.context import system_context

from .models import ReconciliationRun
from .services import ReconciliationRefused, reconciliation_run_execute, reconciliation_run_request

PREVIOUS_MONTH_UNTIL_DAY = 10  # early in a month the previous one is still being closed: reconcile it too


def run_reconciliation(run_id) -> str:
    """Execute one queued run (a duplicate message finds it taken and does nothing)."""
    run = reconciliation_run_execute(run_id=int(run_id))
    return f"run {run.pk}: {run.status}"


def reconcile_daily() -> list[int]:
    """The daily schedule: reconcile the current month (and the previous one early in the month), all entities."""
    today = timezone.localdate()
    periods = [f"{today:%Y-%m}"]
    if today.day <= PREVIOUS_MONTH_UNTIL_DAY:
        periods.insert(0, f"{today.replace(day=1) - datetime.timedelta(days=1):%Y-%m}")
    done = []
    for period in periods:
        with system_context(f"Daily reconciliation of {period}"):
            try:
                run = reconciliation_run_request(period=period, trigger=ReconciliationRun.Trigger.SCHEDULE, actor=None)
            except ReconciliationRefused:
                continue  # one is already queued or running for this period
        reconciliation_run_execute(run_id=run.pk)
        done.append(run.pk)
    return done
