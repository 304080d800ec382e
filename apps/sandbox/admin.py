"""Admin for the sandbox systems: faults editable, records, keys, webhooks and the call log read-only."""

from django.contrib import admin

from apps.core.admin import HistoryAdmin
from apps.core.admin_filters import FilterSetAdminMixin

from .filters import SandboxCallFilter, SandboxIdempotencyKeyFilter, SandboxRecordFilter, SandboxWebhookFilter
from .models import SandboxCall, SandboxIdempotencyKey, SandboxRecord, SandboxSystem, SandboxWebhook


class ReadOnlyMixin:
    """Rows written by the simulators only: people may look, not change."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SandboxSystem)
class SandboxSystemAdmin(HistoryAdmin):
    list_display = [
        "kind",
        "latency_ms",
        "error_rate",
        "fail_next",
        "throttle_next",
        "throttled_until",
        "timeout_next",
        "drop_next",
        "duplicate_webhooks",
        "webhook_url",
    ]
    readonly_fields = ["kind", "random_draws"]
    fieldsets = [
        (None, {"fields": ["kind", "required_credential"]}),
        (
            "Faults",
            {
                "fields": [
                    "latency_ms",
                    ("error_rate", "random_seed", "random_draws"),
                    "fail_next",
                    ("throttle_next", "retry_after_seconds", "throttled_until"),
                    ("timeout_next", "timeout_seconds"),
                    ("drop_next", "drop_seconds"),
                    ("reject_next", "reject_with"),
                    "duplicate_webhooks",
                ]
            },
        ),
        ("Outbound webhooks", {"fields": ["webhook_url", "webhook_credentials"]}),
    ]

    def has_add_permission(self, request):
        return False  # one row per kind, made on first use or by sandbox_reset

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SandboxRecord)
class SandboxRecordAdmin(ReadOnlyMixin, HistoryAdmin):
    list_display = ["kind", "object_type", "internal_id", "external_id", "updated_at"]
    filterset_class = SandboxRecordFilter
    list_filter = ["kind"]  # object types are the vendors' names: ?object_type=…
    search_fields = ["internal_id", "external_id"]
    readonly_fields = ["kind", "object_type", "internal_id", "external_id", "data", "created_at", "updated_at"]


@admin.register(SandboxIdempotencyKey)
class SandboxIdempotencyKeyAdmin(ReadOnlyMixin, HistoryAdmin):
    list_display = ["kind", "key", "method", "path", "status", "created_at"]
    filterset_class = SandboxIdempotencyKeyFilter
    list_filter = ["kind", "status"]
    search_fields = ["key", "path"]
    readonly_fields = ["kind", "key", "method", "path", "status", "headers", "body", "created_at"]


@admin.register(SandboxWebhook)
class SandboxWebhookAdmin(ReadOnlyMixin, HistoryAdmin):
    list_display = ["event_id", "kind", "event_type", "status", "copies", "attempts", "delivered", "created_at"]
    filterset_class = SandboxWebhookFilter
    list_filter = ["kind", "status"]  # and ?event_type=…
    search_fields = ["event_id", "target_url"]
    readonly_fields = [
        "kind",
        "event_id",
        "event_type",
        "target_url",
        "body",
        "copies",
        "attempts",
        "delivered",
        "status_codes",
        "status",
        "last_error",
        "created_at",
        "finished_at",
    ]


@admin.register(SandboxCall)
class SandboxCallAdmin(ReadOnlyMixin, FilterSetAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "kind", "method", "path", "response_status", "fault", "replayed", "duration_ms"]
    filterset_class = SandboxCallFilter
    list_filter = ["kind", "method", "response_status", "fault", "replayed"]
    search_fields = ["path", "idempotency_key", "correlation_id"]
    date_hierarchy = "received_at"
    list_per_page = 100
    show_full_result_count = False
    readonly_fields = [field.name for field in SandboxCall._meta.fields]
