"""The exception queue (the transaction list), the transaction trace (its page) and the actions people take on them.

The admin reads the ledger and acts through the services only (re-run, resolve, ignore, assign): no row is
edited here. Steps and attempts are listed read-only so auditors can search them.
"""

import difflib
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from apps.core.admin import HistoryAdmin, MaskedHistoryContextHelper
from apps.core.errors import BusinessError
from apps.core.masking import can_see_sensitive
from apps.core.money import MINOR_UNITS
from apps.core.objects import BusinessObject, model_for

from . import selectors
from .filters import (
    DEFAULT_QUEUE,
    OWNER_ME,
    OWNER_NONE,
    PROBLEM_STATUSES,
    QUEUES,
    ROLE_CHOICES,
    SEARCH_FIELDS,
    in_queue,
    owned_by,
    role_label,
)
from .fixlinks import fix_links
from .models import Step, StepAttempt, Transaction
from .routing import may_act, routing_for
from .services import transaction_assign, transaction_replay, transaction_resolve, transactions_replay

BULK_LIMIT = 1000
RAW_BODY_LIMIT = 256 * 1024  # larger deliveries (month-end bulk uploads) are not shown inline
REASON_REQUIRED = "Say why; auditors read it in the history with your name."
JSON_FIELDS = ("input", "input_override", "state")
PROBLEM_QUEUES = ("problems", "exception", "retrying")
PAST = {"re-run": "re-run", "resolve": "resolved", "ignore": "ignored"}


# --- presentation helpers ------------------------------------------------------------------------


def short_age(moment, now=None) -> str:
    """'12 min', '3 h', '2 d' since a moment."""
    if moment is None:
        return "—"
    seconds = max(int(((now or timezone.now()) - moment).total_seconds()), 0)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def money(amount, currency: str) -> str:
    """'USD 12,500.00' (no currency: the bare amount)."""
    if amount is None:
        return "—"
    places = MINOR_UNITS.get(currency, 2)
    return f"{currency} {amount:,.{places}f}".strip()


def pretty(value) -> str:
    """JSON (or a JSON text) laid out for reading; other text as it is."""
    if value is None or value == "" or value == {} or value == []:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


STATUS_BADGES = {
    Transaction.Status.PENDING: ("pending", "Pending"),
    Transaction.Status.RUNNING: ("running", "Running"),
    Transaction.Status.WAITING_RETRY: ("retrying", "Retrying"),
    Transaction.Status.COMPLETED: ("completed", "Completed"),
    Transaction.Status.EXCEPTION: ("exception", "Exception"),
    Transaction.Status.RESOLVED: ("resolved", "Resolved by hand"),
    Transaction.Status.IGNORED: ("ignored", "Ignored"),
    Step.Status.SUCCEEDED: ("completed", "Succeeded"),
    Step.Status.FAILED: ("exception", "Failed"),
    Step.Status.SKIPPED: ("ignored", "Skipped"),
    StepAttempt.Outcome.SUCCEEDED: ("completed", "Succeeded"),
    StepAttempt.Outcome.ABANDONED: ("retrying", "Abandoned"),
    StepAttempt.Outcome.SUPERSEDED: ("ignored", "Superseded"),
}


def input_diff(before: list[str], after: list[str]) -> list[tuple[str, str]]:
    """(kind, line) pairs of a unified diff of two JSON renderings: kind is 'add', 'remove', 'context' or 'hunk'."""
    lines = []
    for line in difflib.unified_diff(before, after, "received", "edited", n=2, lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "remove", "@": "hunk"}.get(line[:1], "context")
        lines.append((kind, line))
    return lines


def badge(status: str, label: str | None = None):
    css, text = STATUS_BADGES.get(status, ("pending", status))
    return format_html('<span class="sync-badge sync-badge-{}">{}</span>', css, label or text)


def admin_url(model, pk) -> str | None:
    """The admin page of a record, or None when its model has no admin page."""
    opts = model._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
    except NoReverseMatch:
        return None


def api_url(txn) -> str | None:
    try:
        return reverse("transaction-detail", args=[txn.pk])
    except NoReverseMatch:
        return None


def call_view(call: dict) -> dict:
    """One captured HTTP call, laid out for the trace."""
    return {
        "method": call.get("method") or "",
        "url": call.get("url") or "",
        "status": call.get("status"),
        "duration_ms": call.get("duration_ms"),
        "error": call.get("error") or "",
        "idempotency_key": call.get("idempotency_key") or "",
        "started_at": call.get("started_at") or "",
        "request_headers": pretty(call.get("request_headers")),
        "request_body": pretty(call.get("request_body")),
        "response_headers": pretty(call.get("response_headers")),
        "response_body": pretty(call.get("response_body")),
        "failed": bool(call.get("error")) or (call.get("status") or 0) >= 400,
    }


def json_display(attribute: str, description: str, *, masked: bool, kind: str = "json"):
    """A read-only admin field showing a JSON attribute; the masked variant hides sensitive amounts.

    Two variants instead of one that looks at the user: an admin instance serves every request at once.
    """

    def display(self, obj):
        value = getattr(obj, attribute)
        if kind == "call":
            values = [selectors.visible_call(value or {}, None) if masked else value]
        elif kind == "calls":
            values = [selectors.visible_call(call, None) if masked else call for call in value or []]
        else:
            values = [selectors.visible_json(value, None) if masked else value]
        texts = [pretty(item) for item in values if pretty(item)]
        if not texts:
            return "—"
        return format_html_join("", '<pre class="sync-json">{}</pre>', ((text,) for text in texts))

    display.short_description = description
    return display


def json_names(names, user) -> list:
    """Field names with each JSON display swapped for its masked variant when the user may not see amounts."""
    if can_see_sensitive(user):
        return list(names)
    return [f"{name}_masked" if isinstance(name, str) and name.endswith("_json") else name for name in names]


# --- forms ---------------------------------------------------------------------------------------


class ReasonForm(forms.Form):
    """Every action on a transaction says why."""

    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80, "placeholder": "e.g. Rate card fixed per FIN-231"}),
        help_text="Recorded in the history with your name.",
        error_messages={"required": REASON_REQUIRED},
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(REASON_REQUIRED)
        return reason


def step_choices(txn: Transaction) -> list[tuple[str, str]]:
    return [
        (str(step.sequence), f"{step.sequence}. {step.title or step.name} ({step.get_status_display().lower()})")
        for step in txn.steps.all()
    ]


class RerunForm(ReasonForm):
    from_sequence = forms.TypedChoiceField(
        label="Re-run from", coerce=int, required=False, empty_value=None, choices=[("", "The failed step")]
    )

    def __init__(self, *args, txn: Transaction, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_sequence"].choices = [("", "The failed step"), *step_choices(txn)]


class EditInputForm(RerunForm):
    SCOPES = [
        ("transaction", "The transaction's input (every step from the restart point reads it)"),
        ("step", "Only the input of the step it restarts from"),
    ]

    scope = forms.ChoiceField(label="What you are editing", choices=SCOPES, widget=forms.RadioSelect)
    data = forms.CharField(
        label="Input (JSON)",
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "class": "sync-json", "spellcheck": "false"}),
        help_text="The original input is kept unchanged; this edited copy is stored beside it.",
    )
    field_order = ["scope", "data", "from_sequence", "reason"]

    def clean_data(self):
        text = self.cleaned_data["data"]
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
                "Check for a missing comma or quote, or a trailing comma before a closing bracket."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The input must be a JSON object: it starts with { and ends with }.")
        return value


class ResolveForm(ReasonForm):
    OUTCOMES = [("resolve", "Resolved: it was fixed elsewhere"), ("ignore", "Ignore: nothing needs to happen")]

    outcome = forms.ChoiceField(label="Close as", choices=OUTCOMES, widget=forms.RadioSelect, initial="resolve")
    field_order = ["outcome", "reason"]


# --- list filters --------------------------------------------------------------------------------


class QueueFilter(admin.SimpleListFilter):
    """Status, grouped the way people work the queue; open problems unless asked otherwise."""

    title = "status"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in QUEUES.items()]

    def choices(self, changelist):
        current = self.value() or DEFAULT_QUEUE
        for key, label in self.lookup_choices:
            yield {
                "selected": current == key,
                "query_string": changelist.get_query_string({self.parameter_name: key}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or DEFAULT_QUEUE
        return in_queue(queryset, value if value in QUEUES else DEFAULT_QUEUE)


class OwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        owners = get_user_model().objects.filter(owned_transactions__isnull=False).distinct().order_by("username")
        return [
            (OWNER_ME, "Assigned to me"),
            (OWNER_NONE, "Unassigned"),
            *[(user.get_username(), user.get_full_name() or user.get_username()) for user in owners],
        ]

    def queryset(self, request, queryset):
        return owned_by(queryset, self.value(), request.user) if self.value() else queryset


class OwnerRoleFilter(admin.SimpleListFilter):
    title = "owner role"
    parameter_name = "owner_role"

    def lookups(self, request, model_admin):
        present = set(Transaction.objects.exclude(owner_role="").values_list("owner_role", flat=True).distinct())
        return [(role, label) for role, label in ROLE_CHOICES if role in present]

    def queryset(self, request, queryset):
        return queryset.filter(owner_role=self.value()) if self.value() else queryset


# --- the queue and the trace ---------------------------------------------------------------------


class TransactionHistoryHelper(MaskedHistoryContextHelper):
    """History diffs with sensitive amounts inside the JSON input hidden too."""

    def __init__(self, model, historical_record, *, hidden=frozenset(), user=None):
        super().__init__(model, historical_record, hidden=hidden)
        self.user = user

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        if change.field in JSON_FIELDS:
            return selectors.visible_json(value, self.user)
        return value


@admin.register(Transaction)
class TransactionAdmin(HistoryAdmin):
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
    list_filter = [QueueFilter, "workflow", "error_class", OwnerRoleFilter, OwnerFilter]
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

    def has_change_permission(self, request, obj=None):
        # The team an exception is routed to may act on it even without the general permission.
        if super().has_change_permission(request, obj):
            return True
        return obj is not None and may_act(request.user, obj.owner_role)

    # --- the queue ---------------------------------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        queue = request.GET.get(QueueFilter.parameter_name, DEFAULT_QUEUE)
        queue = queue if queue in QUEUES else DEFAULT_QUEUE
        title = "Exception queue" if queue in PROBLEM_QUEUES else f"Transactions: {QUEUES[queue][0]}"
        response = super().changelist_view(request, {"title": title, **(extra_context or {})})
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            summary = selectors.queue_summary(context["cl"].queryset)
            context["queue_summary"] = {
                "total": summary["total"],
                "statuses": [
                    (badge(status), count)
                    for status, count in sorted(summary["by_status"].items(), key=lambda item: -item[1])
                ],
                "at_risk": [money(total, currency) for currency, total in summary["value_at_risk"]],
            }
        return response

    # --- the trace ---------------------------------------------------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method not in ("GET", "HEAD"):
            if not self.has_change_permission(request):
                raise PermissionDenied
            return HttpResponseNotAllowed(["GET"], "Transactions are not edited here; use the actions on the page.")
        txn = selectors.transaction_trace(self._pk(object_id))
        if txn is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, txn):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **self._trace_context(request, txn),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/sync/transaction/trace.html", context)

    def _pk(self, object_id):
        try:
            return int(unquote(object_id))
        except (TypeError, ValueError):
            raise Http404(f"There is no transaction with id {object_id}.") from None

    def _trace_context(self, request, txn: Transaction) -> dict:
        user = request.user
        steps = list(txn.steps.all())
        restart = next((s for s in steps if s.status not in (Step.Status.SUCCEEDED, Step.Status.SKIPPED)), None)
        can_act = self.has_change_permission(request, txn)
        return {
            "title": txn.subject or txn.correlation_id,
            "subtitle": f"{txn.get_workflow_display()} · {txn.correlation_id}",
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": txn,
            "txn": txn,
            "status_badge": badge(txn.status),
            "is_problem": txn.status in PROBLEM_STATUSES,
            "age": short_age(txn.exception_at) if txn.exception_at else "",
            "owner_role": role_label(txn.owner_role),
            "value_at_risk": money(txn.value_at_risk, txn.currency) if txn.value_at_risk is not None else "",
            "input": pretty(selectors.visible_json(txn.input, user)),
            "input_override": pretty(selectors.visible_json(txn.input_override, user)),
            "state": pretty(selectors.visible_json(txn.state, user)),
            "steps": [self._step_view(step, user, restart) for step in steps],
            "restart": restart,
            "related": self._related(txn, user),
            "history": selectors.transaction_history(txn, limit=20),
            "history_url": reverse("admin:sync_transaction_history", args=[txn.pk]),
            "api_url": api_url(txn),
            "can_act": can_act,
            "routing": routing_for(user, txn.owner_role),
            "fix_links": fix_links(
                self._failure_context(txn),
                subject_type=txn.subject_type,
                subject_id=txn.subject_id,
                transaction_id=txn.pk,
            )
            if txn.status in PROBLEM_STATUSES
            else [],
            "can_rerun": can_act and txn.status in PROBLEM_STATUSES,
            "can_close": can_act and txn.status not in Transaction.CLOSED_STATUSES,
            "owned_by_me": txn.owner_id == user.pk,
            "rerun_form": RerunForm(txn=txn),
            "resolve_form": ResolveForm(),
            "urls": self._action_urls(txn),
            "changelist_url": reverse("admin:sync_transaction_changelist"),
        }

    def _failure_context(self, txn: Transaction) -> dict:
        membership = getattr(txn, "exception_membership", None) if txn.status == Transaction.Status.EXCEPTION else None
        return membership.context if membership is not None else {}

    def _step_view(self, step: Step, user, restart) -> dict:
        last_call = {**(step.request or {}), **(step.response or {})}
        return {
            "step": step,
            "status_badge": badge(step.status, "Retrying" if step.status == Step.Status.WAITING_RETRY else None),
            "is_restart": restart is not None and restart.pk == step.pk,
            "input_override": pretty(selectors.visible_json(step.input_override, user)),
            "output": pretty(selectors.visible_json(step.output, user)),
            "last_call": call_view(selectors.visible_call(last_call, user)) if last_call else None,
            "attempts": [
                {
                    "attempt": attempt,
                    "outcome_badge": badge(attempt.outcome),
                    "calls": [call_view(selectors.visible_call(call, user)) for call in attempt.http_calls or []],
                }
                for attempt in step.attempt_log.all()
            ],
        }

    def _related(self, txn: Transaction, user) -> dict:
        def link(other):
            url = reverse("admin:sync_transaction_change", args=[other.pk])
            return {"url": url, "label": other.subject or other.correlation_id, "badge": badge(other.status)}

        related = {
            "parent": link(txn.parent) if txn.parent_id else None,
            "replay_of": link(txn.replay_of) if txn.replay_of_id else None,
            "children": [link(child) for child in txn.children.all()],
            "replays": [link(replay) for replay in txn.replays.all()],
            "event": None,
            "subject": None,
        }
        event = txn.inbound_event
        if event is not None:
            delivery = event.delivery
            if delivery.body_size <= RAW_BODY_LIMIT:
                raw = bytes(delivery.body or b"").decode("utf-8", "replace")
                raw = pretty(selectors.visible_call({"request_body": raw}, user)["request_body"])
            else:
                raw = ""
            related["event"] = {
                "event": event,
                "delivery": delivery,
                "url": admin_url(type(event), event.pk),
                "delivery_url": admin_url(type(delivery), delivery.pk),
                "payload": pretty(selectors.visible_json(event.payload, user)),
                "raw_body": raw,
                "raw_too_large": delivery.body_size > RAW_BODY_LIMIT,
                "error": event.error or {},
            }
        if txn.subject_type in BusinessObject.values and txn.subject_id:
            model = model_for(txn.subject_type)
            record = model.objects.filter(pk=txn.subject_id).first()
            related["subject"] = {
                "type": BusinessObject(txn.subject_type).label,
                "label": str(record) if record is not None else f"#{txn.subject_id} (no longer exists)",
                "url": admin_url(model, txn.subject_id) if record is not None else None,
            }
        return related

    def _action_urls(self, txn) -> dict:
        return {
            name: reverse(f"admin:sync_transaction_{name}", args=[txn.pk])
            for name in ("rerun", "edit_input", "resolve", "assign")
        }

    # --- actions on one transaction ----------------------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/rerun/", wrap(self.rerun_view), name="sync_transaction_rerun"),
            path("<path:object_id>/edit-input/", wrap(self.edit_input_view), name="sync_transaction_edit_input"),
            path("<path:object_id>/resolve/", wrap(self.resolve_view), name="sync_transaction_resolve"),
            path("<path:object_id>/assign/", wrap(self.assign_view), name="sync_transaction_assign"),
            *super().get_urls(),
        ]

    def _acting_on(self, request, object_id) -> Transaction:
        txn = selectors.transaction_detail().filter(pk=self._pk(object_id)).first()
        if txn is None:
            raise Http404(f"There is no transaction with id {object_id}.")
        if not self.has_change_permission(request, txn):
            raise PermissionDenied
        return txn

    def _trace_redirect(self, txn):
        return HttpResponseRedirect(reverse("admin:sync_transaction_change", args=[txn.pk]))

    def _action_page(self, request, txn, *, title: str, form, intro: str, button: str, **extra):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": txn.subject or txn.correlation_id,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": txn,
            "txn": txn,
            "status_badge": badge(txn.status),
            "form": form,
            "intro": intro,
            "button": button,
            "trace_url": reverse("admin:sync_transaction_change", args=[txn.pk]),
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/sync/transaction/action_form.html", context)

    def rerun_view(self, request, object_id):
        txn = self._acting_on(request, object_id)
        form = RerunForm(request.POST or None, txn=txn)
        if request.method == "POST" and form.is_valid():
            try:
                transaction_replay(
                    txn=txn,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    from_sequence=form.cleaned_data["from_sequence"],
                )
            except BusinessError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, self._queued_message(txn), messages.SUCCESS)
                return self._trace_redirect(txn)
        return self._action_page(
            request,
            txn,
            title="Re-run as it is",
            form=form,
            intro="The failed step runs again with the same input and the same idempotency key, so a target "
            "that already did the work answers with its stored result instead of doing it twice.",
            button="Re-run",
        )

    def edit_input_view(self, request, object_id):
        txn = self._acting_on(request, object_id)
        steps = list(txn.steps.all())
        restart = next((s for s in steps if s.status not in (Step.Status.SUCCEEDED, Step.Status.SKIPPED)), None)
        step_has_own = restart is not None and restart.input_override is not None
        current = restart.input_override if step_has_own else txn.effective_input
        page = {
            "title": "Edit the input and re-run",
            "intro": "Correct the data below and re-run from the failed step. The original input stays as it "
            "was received; your edited copy is stored beside it, and the history records who edited it and why. "
            "Edited requests get new idempotency keys, so the target treats them as new.",
            "button": "Save the edit and re-run",
            "show_preview": True,
            "original_input": pretty(selectors.visible_json(txn.input, request.user)),
        }
        if not can_see_sensitive(request.user) and (
            selectors.holds_sensitive(txn.effective_input) or selectors.holds_sensitive(current)
        ):
            if request.method == "POST":
                raise PermissionDenied
            page["blocked"] = (
                "This input holds bill or cost rates, which your role may not see, so you cannot edit it here. "
                "Ask finance ops or a mapping steward to edit it; you can still re-run it as it is."
            )
            return self._action_page(request, txn, form=None, **page)
        initial = {
            "scope": "step" if step_has_own else "transaction",
            "data": json.dumps(current, indent=2, ensure_ascii=False),
        }
        form = EditInputForm(request.POST or None, txn=txn, initial=initial)
        lines = (request.POST.get("data") or initial["data"]).count("\n") + 3
        form.fields["data"].widget.attrs["rows"] = min(max(lines, 8), 36)
        if request.method == "POST" and form.is_valid() and request.POST.get("preview"):
            # "Show what changes": the diff against what would run now; nothing is saved or re-run yet.
            edited = pretty(selectors.visible_json(form.cleaned_data["data"], request.user)).splitlines()
            before = pretty(selectors.visible_json(current, request.user)).splitlines()
            page["diff"] = input_diff(before, edited)
            page["intro"] = "Check what your edit changes, then save it; nothing has run yet."
            return self._action_page(request, txn, form=form, confirm=True, **page)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            whole = data["scope"] == "transaction"
            try:
                transaction_replay(
                    txn=txn,
                    actor=request.user,
                    reason=data["reason"],
                    from_sequence=data["from_sequence"],
                    input_override=data["data"] if whole else None,
                    step_input_override=None if whole else data["data"],
                )
            except BusinessError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Your edit was saved. {self._queued_message(txn)}", messages.SUCCESS)
                return self._trace_redirect(txn)
        return self._action_page(request, txn, form=form, **page)

    def resolve_view(self, request, object_id):
        txn = self._acting_on(request, object_id)
        form = ResolveForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            ignore = form.cleaned_data["outcome"] == "ignore"
            try:
                transaction_resolve(txn=txn, actor=request.user, reason=form.cleaned_data["reason"], ignore=ignore)
            except BusinessError as exc:
                form.add_error(None, exc.message)
            else:
                verb = "ignored" if ignore else "resolved"
                self.message_user(request, f"{txn.subject or txn.correlation_id} is {verb}.", messages.SUCCESS)
                return self._trace_redirect(txn)
        return self._action_page(
            request,
            txn,
            title="Close this exception",
            form=form,
            intro="Resolve it when the problem was fixed outside the console (for example, the invoice was "
            "posted by hand); ignore it when nothing needs to happen. Either way it leaves the queue and no "
            "step runs again.",
            button="Close",
        )

    def assign_view(self, request, object_id):
        txn = self._acting_on(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        take = request.POST.get("owner") == OWNER_ME
        transaction_assign(txn=txn, owner=request.user if take else None, actor=request.user)
        label = txn.subject or txn.correlation_id
        self.message_user(request, f"{label} is {'yours' if take else 'unassigned'} now.", messages.SUCCESS)
        return self._trace_redirect(txn)

    def _queued_message(self, txn) -> str:
        return (
            f"Re-run of {txn.subject or txn.correlation_id} is queued; its steps run in the background "
            "(reload this page to follow them)."
        )

    # --- bulk actions from the queue --------------------------------------------------------
    @admin.action(description="Re-run from the failed step…", permissions=["change"])
    def replay_selected(self, request, queryset):
        def act(selected, reason):
            report = transactions_replay(transactions=selected, actor=request.user, reason=reason)
            return report["replayed"], [(item["transaction"], item["reason"]) for item in report["refused"]]

        accepted, refused = selectors.replay_candidates(queryset)
        return self._bulk(
            request,
            queryset,
            act,
            title="Re-run the selected transactions",
            verb="re-run",
            done="Re-run queued for",
            accepted=accepted,
            refused=[(txn, "only exceptions and retrying transactions can be re-run") for txn in refused],
        )

    @admin.action(description="Resolve with a reason…", permissions=["change"])
    def resolve_selected(self, request, queryset):
        return self._bulk_close(request, queryset, ignore=False)

    @admin.action(description="Ignore with a reason…", permissions=["change"])
    def ignore_selected(self, request, queryset):
        return self._bulk_close(request, queryset, ignore=True)

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_selected_to_me(self, request, queryset):
        count = 0
        for txn in queryset.order_by("pk"):
            if txn.owner_id != request.user.pk:
                transaction_assign(txn=txn, owner=request.user, actor=request.user)
                count += 1
        self.message_user(request, f"{count} transaction(s) assigned to you.", messages.SUCCESS)

    def _bulk_close(self, request, queryset, *, ignore: bool):
        def act(selected, reason):
            closed, refusals = 0, []
            for txn in selected:
                try:
                    transaction_resolve(txn=txn, actor=request.user, reason=reason, ignore=ignore)
                    closed += 1
                except BusinessError as exc:
                    refusals.append((txn.correlation_id, exc.message))
            return closed, refusals

        accepted, refused = [], []
        for txn in queryset.order_by("pk"):
            if txn.status in Transaction.CLOSED_STATUSES:
                refused.append((txn, f"it is already {txn.get_status_display().lower()}"))
            else:
                accepted.append(txn)
        verb = "ignore" if ignore else "resolve"
        return self._bulk(
            request,
            queryset,
            act,
            title=f"{verb.capitalize()} the selected transactions",
            verb=verb,
            done="Ignored" if ignore else "Resolved",
            accepted=accepted,
            refused=refused,
        )

    def _bulk(self, request, queryset, act, *, title, verb, done, accepted, refused):
        """An intermediate page that asks for the reason and says what will happen; then the action itself."""
        selected = len(accepted) + len(refused)
        if selected > BULK_LIMIT:
            self.message_user(
                request,
                f"You selected {selected:,} transactions; act on at most {BULK_LIMIT:,} at a time (narrow the filter).",
                messages.ERROR,
            )
            return None
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            done_count, refusals = act(accepted + [txn for txn, _ in refused], form.cleaned_data["reason"])
            if done_count:
                self.message_user(request, f"{done} {done_count} transaction(s).", messages.SUCCESS)
            if refusals:
                shown = "; ".join(f"{corr}: {why}" for corr, why in refusals[:10])
                more = f" (and {len(refusals) - 10} more)" if len(refusals) > 10 else ""
                self.message_user(
                    request,
                    f"{len(refusals)} transaction(s) could not be {PAST[verb]}: {shown}{more}",
                    messages.WARNING,
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "form": form,
            "verb": verb,
            "accepted": accepted,
            "refused": [{"txn": txn, "why": why, "badge": badge(txn.status)} for txn, why in refused],
            "selected_ids": [txn.pk for txn in accepted] + [txn.pk for txn, _ in refused],
            "action": request.POST.get("action", ""),
            "changelist_url": request.get_full_path(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/sync/transaction/bulk_confirm.html", context)


# --- steps and attempts: read-only, for search ---------------------------------------------------


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
    list_filter = ["status", "target_system", "error_class", "name"]
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
