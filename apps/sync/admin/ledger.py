"""Steps and attempts: listed read-only, for search; the engine writes them."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from apps.core.admin import HistoryAdmin

from ..filters import StepAttemptFilter, StepFilter
from ..models import Step, StepAttempt, Transaction
from ..presentation import badge
from .display import json_display, json_names


class ReadOnlyAdmin(HistoryAdmin):
    """Listed and searchable; written only by the engine."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def trace_link(txn: Transaction):
    url = reverse("admin:sync_transaction_change", args=[txn.pk])
    return format_html('<a href="{}">{}</a>', url, txn.subject or txn.correlation_id)


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = [
        "title_column",
        "transaction_link",
        "target_system",
        "status_column",
        "attempts",
        "duration_ms",
        "error_column",
        "updated_at",
    ]
    filterset_class = StepFilter
    # Newest transactions first, read backwards from the (transaction, sequence) unique index: the model's own
    # ordering (by transaction) sorts a million steps by their transaction's creation time through a join.
    ordering = ["-transaction_id", "-sequence"]
    list_filter = ["status", "target_system", "error_class"]
    list_select_related = ["transaction", "target_system"]
    search_fields = ["=transaction__correlation_id", "=idempotency_key", "name", "title", "error_message"]
    search_help_text = "Correlation ID or idempotency key (exact), step name or error message."
    date_hierarchy = "created_at"
    fields = [
        "transaction_link",
        "sequence",
        "name",
        "title",
        "target_system",
        "status",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "started_at",
        "finished_at",
        "duration_ms",
        "idempotency_key",
        "error_class",
        "error_message",
        "error_fix",
        "error_technical",
        "input_override_json",
        "output_json",
        "request_json",
        "response_json",
    ]
    readonly_fields = ["transaction_link"]
    input_override_json = json_display("input_override", "Edited input for this step", masked=False)
    input_override_json_masked = json_display("input_override", "Edited input for this step", masked=True)
    output_json = json_display("output", "Output", masked=False)
    output_json_masked = json_display("output", "Output", masked=True)
    request_json = json_display("request", "Last request", masked=False, kind="call")
    request_json_masked = json_display("request", "Last request", masked=True, kind="call")
    response_json = json_display("response", "Last response", masked=False, kind="call")
    response_json_masked = json_display("response", "Last response", masked=True, kind="call")

    def get_fields(self, request, obj=None):
        return json_names(super().get_fields(request, obj), request.user)

    @admin.display(description="Step", ordering="sequence")
    def title_column(self, obj):
        return f"{obj.sequence}. {obj.title or obj.name}"

    @admin.display(description="Transaction", ordering="transaction__created_at")
    def transaction_link(self, obj):
        return trace_link(obj.transaction)

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj):
        return badge(obj.status, "Retrying" if obj.status == Step.Status.WAITING_RETRY else None)

    @admin.display(description="Error")
    def error_column(self, obj):
        return Truncator(obj.error_message).chars(90) or "—"


@admin.register(StepAttempt)
class StepAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "attempt_column",
        "transaction_link",
        "worker",
        "started_at",
        "duration_ms",
        "outcome_column",
        "error_column",
    ]
    filterset_class = StepAttemptFilter
    ordering = ["-step_id", "-number"]  # newest first, from the (step, number) unique index, no join
    list_filter = ["outcome", "error_class"]
    list_select_related = ["step__transaction"]
    search_fields = ["=step__transaction__correlation_id", "=step__idempotency_key", "worker", "error_message"]
    search_help_text = "Correlation ID or idempotency key (exact), worker or error message."
    date_hierarchy = "started_at"
    fields = [
        "transaction_link",
        "step",
        "number",
        "worker",
        "started_at",
        "finished_at",
        "duration_ms",
        "outcome",
        "retry_at",
        "error_class",
        "error_message",
        "error_technical",
        "calls_json",
    ]
    readonly_fields = ["transaction_link"]
    calls_json = json_display("http_calls", "HTTP calls", masked=False, kind="calls")
    calls_json_masked = json_display("http_calls", "HTTP calls", masked=True, kind="calls")

    def get_fields(self, request, obj=None):
        return json_names(super().get_fields(request, obj), request.user)

    @admin.display(description="Attempt", ordering="number")
    def attempt_column(self, obj):
        return f"{obj.step.sequence}. {obj.step.title or obj.step.name}, try {obj.number}"

    @admin.display(description="Transaction")
    def transaction_link(self, obj):
        return trace_link(obj.step.transaction)

    @admin.display(description="Outcome", ordering="outcome")
    def outcome_column(self, obj):
        return badge(obj.outcome)

    @admin.display(description="Error")
    def error_column(self, obj):
        return Truncator(obj.error_message).chars(90) or "—"
