"""Shared reads of reconciliation, with their related rows joined."""

from .models import Discrepancy, PeriodSignOff, ReconciliationRun


def run_list():
    return ReconciliationRun.objects.select_related("legal_entity", "requested_by")


def discrepancy_list():
    return Discrepancy.objects.select_related(
        "legal_entity", "first_seen_run", "last_seen_run", "closed_by_run", "explained_by"
    )


def sign_off_list():
    return PeriodSignOff.objects.select_related("legal_entity", "run", "prepared_by", "approved_by", "voided_by_run")
