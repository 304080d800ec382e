"""Admin: alert rules are edited here; figures, alerts and notifications are read-only records."""

from django.contrib import admin

from apps.core.admin import HistoryAdmin

from .definitions import DEFINITIONS
from .filters import AlertFilter, AlertNotificationFilter, AlertRuleFilter, MetricValueFilter
from .models import Alert, AlertNotification, AlertRule, MetricSnapshot, MetricValue


class RecordAdmin(HistoryAdmin):
    """Listed and searchable; written only by the metrics and alert services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MetricValue)
class MetricValueAdmin(RecordAdmin):
    list_display = ["metric", "legal_entity", "period", "currency", "value", "sample_size", "computed_at"]
    filterset_class = MetricValueFilter
    list_filter = ["metric", "firm_wide"]
    list_select_related = ["legal_entity"]
    search_fields = ["legal_entity__code", "metric"]
    readonly_fields = ["definition_text"]
    date_hierarchy = "computed_at"

    @admin.display(description="Definition")
    def definition_text(self, obj):
        return DEFINITIONS[obj.metric].definition


@admin.register(MetricSnapshot)
class MetricSnapshotAdmin(RecordAdmin):
    list_display = ["metric", "period", "computed_at", "as_of", "figure_count"]
    list_filter = ["metric", "period"]
    date_hierarchy = "computed_at"


@admin.register(AlertRule)
class AlertRuleAdmin(HistoryAdmin):
    list_display = ["name", "kind", "metric", "legal_entity", "comparison", "threshold", "currency", "owner_role"]
    filterset_class = AlertRuleFilter
    list_filter = ["kind", "metric", "owner_role", "active"]
    list_select_related = ["legal_entity"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Alert)
class AlertAdmin(RecordAdmin):
    list_display = ["subject", "rule", "status", "current_value", "notified_value", "notification_count", "notified_at"]
    filterset_class = AlertFilter
    list_filter = ["status", "metric"]
    list_select_related = ["rule", "legal_entity"]
    search_fields = ["subject", "subject_key", "rule__name"]


@admin.register(AlertNotification)
class AlertNotificationAdmin(RecordAdmin):
    list_display = ["sent_at", "kind", "role", "subject"]
    filterset_class = AlertNotificationFilter
    list_filter = ["kind", "role"]
    list_select_related = ["alert"]
    search_fields = ["subject", "body"]
    date_hierarchy = "sent_at"
