"""The exception queue: the transaction list, filtered by TransactionFilter like the API's list."""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from apps.core.admin import HistoryAdmin

from .. import selectors
from ..filters import DEFAULT_QUEUE, PROBLEM_STATUSES, QUEUES, SEARCH_FIELDS, TransactionFilter, role_label
from ..models import Transaction
from ..presentation import badge, money, short_age
from ..routing import may_act
from .actions import TransactionActionsMixin
from .display import TransactionHistoryHelper, json_display, json_names
from .trace import TraceMixin

PROBLEM_QUEUES = ("problems", "exception", "retrying")


@admin.register(Transaction)
class TransactionAdmin(TransactionActionsMixin, TraceMixin, HistoryAdmin):
    # The workflow sits under the subject: eight columns beside the filter do not fit a laptop screen.
    list_display = [
        "subject_column",
        "status_column",
        "age_column",
        "owner_column",
        "value_column",
        "error_column",
        "error_class_column",
    ]
    filterset_class = TransactionFilter
    filterset_defaults = {"queue": DEFAULT_QUEUE}  # the list opens on the open problems
    list_filter = [("queue", "status"), "workflow", "error_class", ("owner_role", "owner role"), ("owner", "owner")]
    list_select_related = ["owner"]
    search_fields = SEARCH_FIELDS
    search_help_text = "Correlation ID (exact), subject, business key or error message."
    date_hierarchy = "created_at"
    actions = ["replay_selected", "resolve_selected", "ignore_selected", "assign_selected_to_me"]
    # Only the "view as of" page of the history renders these (the trace replaces the change form).
    fieldsets = [
        (None, {"fields": ["workflow", "correlation_id", "status", "subject", "business_key", "owner_role", "owner"]}),
        ("Input", {"fields": ["input_json", "input_override_json"]}),
        ("Problem", {"fields": ["error_class", "error_message", "error_fix", "error_technical", "exception_at"]}),
        ("Closed", {"fields": ["resolved_at", "resolved_by", "resolution_reason", "completed_at"]}),
    ]
    readonly_fields = ["input_json", "input_override_json", "input_json_masked", "input_override_json_masked"]
    input_json = json_display("input", "Input", masked=False)
    input_json_masked = json_display("input", "Input", masked=True)
    input_override_json = json_display("input_override", "Edited input", masked=False)
    input_override_json_masked = json_display("input_override", "Edited input", masked=True)

    # --- permissions: read and act, never edit a row ----------------------------------------
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # The team an exception is routed to may act on it even without the general permission.
        if super().has_change_permission(request, obj):
            return True
        return obj is not None and may_act(request.user, obj.owner_role)

    def get_fieldsets(self, request, obj=None):
        return [
            (title, {**options, "fields": json_names(options["fields"], request.user)})
            for title, options in self.fieldsets
        ]

    def get_queryset(self, request):
        return selectors.transaction_list()

    def get_ordering(self, request):
        return ["-problem_since", "-pk"]

    def get_historical_record_context_helper(self, request, historical_record):
        return TransactionHistoryHelper(self.model, historical_record, hidden=self._hidden(request), user=request.user)

    # --- columns ----------------------------------------------------------------------------
    @admin.display(description="Subject and workflow", ordering="subject")
    def subject_column(self, obj):
        return format_html(
            '{}<div class="sync-quiet">{}</div>', obj.subject or obj.correlation_id, obj.get_workflow_display()
        )

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj):
        return badge(obj.status)

    @admin.display(description="Age", ordering="problem_since")
    def age_column(self, obj):
        if obj.status not in PROBLEM_STATUSES:
            return "—"
        since = timezone.localtime(obj.problem_since)
        what = "Exception since" if obj.status == Transaction.Status.EXCEPTION else "Last failed try"
        return format_html(
            '<span title="{} {}">{}</span>', what, f"{since:%Y-%m-%d %H:%M}", short_age(obj.problem_since)
        )

    @admin.display(description="Owner", ordering="owner__username")
    def owner_column(self, obj):
        name = (obj.owner.get_full_name() or obj.owner.get_username()) if obj.owner else "Unassigned"
        return format_html('{}<div class="sync-quiet">{}</div>', name, role_label(obj.owner_role) or "no team")

    @admin.display(description="Value at risk", ordering="value_at_risk")
    def value_column(self, obj):
        return format_html('<span class="sync-amount">{}</span>', money(obj.value_at_risk, obj.currency))

    @admin.display(description="What went wrong")
    def error_column(self, obj):
        if not obj.error_message:
            return "—"
        return format_html('<span title="{}">{}</span>', obj.error_message, Truncator(obj.error_message).chars(110))

    @admin.display(description="Error class", ordering="error_class")
    def error_class_column(self, obj):
        return obj.get_error_class_display() or "—"

    # --- the queue ---------------------------------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        queue = request.GET.get("queue", DEFAULT_QUEUE)
        queue = queue if queue in QUEUES else DEFAULT_QUEUE
        title = "Exception queue" if queue in PROBLEM_QUEUES else f"Transactions: {QUEUES[queue][0]}"
        response = super().changelist_view(request, {"title": title, **(extra_context or {})})
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            summary = selectors.queue_summary(context["cl"].queryset, statuses=self._statuses(request, queue))
            context["queue_summary"] = {
                "total": summary["total"],
                "total_label": summary["total_label"],
                "statuses": [
                    (badge(status), f"{count:,}+" if status in summary["capped"] else f"{count:,}")
                    for status, count in sorted(summary["by_status"].items(), key=lambda item: -item[1])
                ],
                "at_risk": [money(total, currency) for currency, total in summary["value_at_risk"]],
            }
        return response

    @staticmethod
    def _statuses(request, queue: str) -> set[str]:
        """The statuses the list can hold: its queue view's, narrowed by `?status=`."""
        statuses = set(QUEUES[queue][1] or Transaction.Status.values)
        asked = {value for value in request.GET.getlist("status") if value}
        return statuses & asked if asked else statuses
