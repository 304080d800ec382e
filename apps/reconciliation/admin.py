"""Admin for reconciliation: read-mostly lists of runs, discrepancies and sign-offs (actions go through the API)."""

from django.contrib import admin

from apps.core.admin import HistoryAdmin

from .filters import DiscrepancyFilter, PeriodSignOffFilter, ReconciliationRunFilter
from .models import Discrepancy, PeriodSignOff, ReconciliationRun


class ReadOnlyAdmin(HistoryAdmin):
    """Listed, searchable and with history; written only by runs and the services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ["pk", "period", "legal_entity", "status", "progress", "trigger", "started_at", "finished_at"]
    filterset_class = ReconciliationRunFilter
    list_filter = ["status", "trigger"]
    search_fields = ["=correlation_id", "period"]
    list_select_related = ["legal_entity"]
    date_hierarchy = "created_at"


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdmin):
    list_display = [
        "business_key",
        "check_type",
        "legal_entity",
        "period",
        "left_amount",
        "right_amount",
        "difference",
        "currency",
        "value_at_risk",
        "status",
        "first_seen_at",
        "last_seen_at",
    ]
    filterset_class = DiscrepancyFilter
    list_filter = ["status", "check_type"]
    search_fields = ["business_key", "description"]
    list_select_related = ["legal_entity"]


@admin.register(PeriodSignOff)
class PeriodSignOffAdmin(ReadOnlyAdmin):
    list_display = ["period", "legal_entity", "status", "prepared_by", "prepared_at", "approved_by", "approved_at"]
    filterset_class = PeriodSignOffFilter
    list_filter = ["status"]
    list_select_related = ["legal_entity", "prepared_by", "approved_by"]
