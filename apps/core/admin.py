"""The admin base every model admin here uses: history with diffs, a reason for each change, masking."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import ForeignKeyRawIdWidget, RelatedFieldWidgetWrapper
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from . import approvals
from .admin_filters import FilterSetAdminMixin
from .context import audit_context, current_actor
from .errors import BusinessError
from .filters import ChangeRequestFilter
from .limits import ADMIN_PAGE_SIZE
from .masking import MASK, can_see_sensitive, mask_json, masked_fields_for, sensitive_payload_keys
from .models import ChangeRequest
from .paginators import CappedPaginator

MASK_PREFIX = "masked_"


def masked_column(model, name: str):
    """Admins resolve the column 'masked_<field>' to a display that shows MASK (see HistoryAdmin)."""
    if name.startswith(MASK_PREFIX):
        field = model._meta.get_field(name[len(MASK_PREFIX) :])

        def masked(obj):
            return MASK

        masked.short_description = field.verbose_name
        return masked
    raise AttributeError(name)


class ChangeReasonForm(forms.ModelForm):
    """Every admin change carries a reason, recorded on the history row."""

    change_reason = forms.CharField(
        label="Reason for this change",
        max_length=500,
        required=False,
        help_text="Recorded in the history with your name and the request ID "
        "(e.g. 'Correct tax region per ticket FIN-231').",
        widget=forms.TextInput(attrs={"size": 80}),
    )

    def clean_change_reason(self):
        reason = self.cleaned_data.get("change_reason", "").strip()
        if self.instance.pk and self.has_changed() and not reason:
            raise forms.ValidationError("Say why you are changing this record; auditors read it in the history.")
        return reason


def mask_names(names, hidden) -> list:
    """Field names with each hidden one replaced by its masked stand-in, each name once."""
    result = []
    for name in names:
        masked = f"{MASK_PREFIX}{name}" if isinstance(name, str) and name in hidden else name
        if masked not in result:
            result.append(masked)
    return result


def lookup_touches(model, lookup: str, user) -> bool:
    """Whether a filter such as `version__lines__bill_rate__gte` reads a field this user may not see."""
    for part in lookup.split(LOOKUP_SEP):
        if part in masked_fields_for(user, model):
            return True
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if not field.is_relation or field.related_model is None:
            return False
        model = field.related_model
    return False


class MaskedHistoryContextHelper(HistoricalRecordContextHelper):
    """History diffs with sensitive values hidden for users who may not see them."""

    def __init__(self, model, historical_record, *, hidden=frozenset(), mask_payloads=False):
        super().__init__(model, historical_record)
        self.hidden = hidden
        self.mask_payloads = mask_payloads

    def prepare_delta_change_value(self, change, value):
        if change.field in self.hidden:
            return MASK
        if self.mask_payloads and isinstance(value, dict | list):
            value = mask_json(value, sensitive_payload_keys())  # rates inside JSON (payloads, calls, output)
        return super().prepare_delta_change_value(change, value)


class HistoryAdmin(FilterSetAdminMixin, SimpleHistoryAdmin):
    """Model admin with history (diffs, who, why, correlation ID), change reasons and masking."""

    form = ChangeReasonForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # API roots are https; Django 6 default
    history_list_display = ["correlation_id_of_change"]
    list_per_page = ADMIN_PAGE_SIZE
    show_full_result_count = False
    paginator = CappedPaginator  # counts and pages up to LIST_ROW_LIMIT rows: big tables answer as fast as small

    @admin.display(description="Correlation ID")
    def correlation_id_of_change(self, record):
        return record.history_correlation_id

    # --- masking -----------------------------------------------------------------------------
    def __getattr__(self, name):
        return masked_column(self.model, name)

    def _hidden(self, request) -> frozenset[str]:
        return masked_fields_for(request.user, self.model)

    def _mask_names(self, names, hidden):
        return mask_names(names, hidden)

    def lookup_allowed(self, lookup, value, request=None):
        # A filter on a hidden amount (?bill_rate__gte=150) would reveal it one question at a time.
        if request is not None and lookup_touches(self.model, lookup, request.user):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_list_display(self, request):
        return self._mask_names(super().get_list_display(request), self._hidden(request))

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if getattr(request, "_history_as_of", False):
            readonly = mask_names(self._all_fields_read_only(request, obj) + readonly, self._hidden(request))
        return mask_names(readonly + [f"{MASK_PREFIX}{name}" for name in sorted(self._hidden(request))], ())

    def get_fieldsets(self, request, obj=None):
        hidden = self._hidden(request)
        fieldsets = []
        for title, options in super().get_fieldsets(request, obj):
            fields = [name for name in options.get("fields", ()) if name != "change_reason"]
            fieldsets.append((title, {**options, "fields": self._mask_names(fields, hidden)}))
        may_write = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        if may_write and not getattr(request, "_history_as_of", False):
            fieldsets.append(("Why", {"fields": ["change_reason"]}))
        return fieldsets

    def get_historical_record_context_helper(self, request, historical_record):
        return MaskedHistoryContextHelper(
            self.model,
            historical_record,
            hidden=self._hidden(request),
            mask_payloads=not can_see_sensitive(request.user),
        )

    # --- read-only paths stay read-only -------------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        # Actions and list edits are POSTs to the changelist; Django answers a view-only user's POST
        # with "no action selected" (200). Say 403, as every other write path does.
        if request.method == "POST" and not (
            self.has_change_permission(request) or self.has_delete_permission(request)
        ):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # "View as of" a history row: revert is disabled product-wide (SIMPLE_HISTORY_REVERT_DISABLED), but
        # simple-history would still save a POST here, so refuse it; and show every field read-only.
        if request.method != "GET":
            raise PermissionDenied
        request._history_as_of = True
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _all_fields_read_only(self, request, obj) -> list[str]:
        names = [field.name for field in self.model._meta.fields if field.editable and not field.primary_key]
        names += [field.name for field in self.model._meta.many_to_many]
        return names

    # --- reasons -----------------------------------------------------------------------------
    def _reason(self, request, form, change) -> str:
        reason = form.cleaned_data.get("change_reason") if form is not None else ""
        if reason:
            return reason
        verb = "Changed" if change else "Created"
        return f"{verb} in the admin by {request.user.get_username()}"

    def save_model(self, request, obj, form, change):
        if change and not [name for name in form.changed_data if name != "change_reason"]:
            return  # nothing changed: no save, so no empty history row
        obj._change_reason = self._reason(request, form, change)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        with audit_context(reason=self._reason(request, form, change)):
            super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        obj._change_reason = f"Deleted in the admin by {request.user.get_username()}"
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        # One delete() per row so every deletion writes its history row.
        for obj in queryset:
            self.delete_model(request, obj)


class HistoryInline(admin.TabularInline):
    """Inline rows whose sensitive columns are masked like the parent's, sized so a row fits the page."""

    extra = 0
    show_change_link = True

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        widget = getattr(formfield, "widget", None)
        # The admin gives every text input 20em and every relation four icons, which push a row of
        # eight columns off the page; the related record's own page keeps them.
        if isinstance(widget, RelatedFieldWidgetWrapper):
            widget.can_add_related = widget.can_change_related = widget.can_delete_related = False
            widget.can_view_related = False
            widget = widget.widget
            if isinstance(widget, forms.Select):
                widget.attrs["style"] = "width: 10em"
        if isinstance(widget, forms.Textarea):
            widget.attrs.update(rows=2, style="width: 16em")
        elif isinstance(db_field, models.DecimalField) and isinstance(widget, forms.NumberInput):
            widget.attrs["style"] = "width: 6.5em"
        elif isinstance(widget, ForeignKeyRawIdWidget):
            widget.attrs["style"] = "width: 5em"
        elif isinstance(widget, forms.TextInput) and not isinstance(widget, forms.widgets.DateTimeBaseInput):
            widget.attrs["style"] = f"width: {min(max((db_field.max_length or 40) / 4, 5), 10):g}em"
        return formfield

    def __getattr__(self, name):
        return masked_column(self.model, name)

    def get_fields(self, request, obj=None):
        return mask_names(super().get_fields(request, obj), masked_fields_for(request.user, self.model))

    def get_readonly_fields(self, request, obj=None):
        hidden = masked_fields_for(request.user, self.model)
        return mask_names(
            list(super().get_readonly_fields(request, obj)) + [f"{MASK_PREFIX}{name}" for name in sorted(hidden)], ()
        )


def pending_message(labels) -> str:
    """The admin's note after an action that four-eyes control turned into change requests."""
    return (
        f"Waiting for a second person's approval (four-eyes): {', '.join(labels)}. "
        "A colleague who may approve it decides it under Core › Change requests."
    )


class DecisionForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Recorded in the history with your name. Required to reject.",
    )


@admin.register(ChangeRequest)
class ChangeRequestAdmin(HistoryAdmin):
    """Four-eyes change requests: the list shows what you may see; a pending one you may decide has a Decide page."""

    filterset_class = ChangeRequestFilter
    filterset_defaults = {"status": "pending"}
    list_filter = ["status", "kind"]
    list_display = ["summary", "kind", "status", "requested_by", "created_at", "decided_by", "decide_link"]
    list_select_related = ["requested_by", "decided_by"]
    search_fields = ["summary", "request_reason", "decision_reason"]
    readonly_fields = [
        "kind",
        "status",
        "summary",
        "target_link",
        "diff_table",
        "payload_shown",
        "requested_by",
        "request_reason",
        "correlation_id",
        "decided_by",
        "decision_reason",
        "decided_at",
        "created_at",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        return approvals.visible_to(request.user) if not request.user.is_superuser else super().get_queryset(request)

    def _may_see(self, request) -> bool:
        return request.user.is_active and request.user.is_staff and bool(approvals.decidable_kinds(request.user))

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self._may_see(request)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self._may_see(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Record")
    def target_link(self, obj):
        target = obj.target if obj.object_id else None
        if target is None:
            return "(created on approval)"
        opts = type(target)._meta
        try:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[target.pk])
        except NoReverseMatch:
            return str(target)
        return format_html('<a href="{}">{}</a>', url, target)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The displays below mask rates for the viewer; they read who is looking from the audit context,
        # so the page is rendered inside it (a model admin is shared by every request).
        with audit_context(actor=request.user):
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()
        return response

    @admin.display(description="Payload")
    def payload_shown(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(approvals.visible_payload(obj, current_actor()), indent=2))

    @admin.display(description="Change")
    def diff_table(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((d.get("field"), d.get("old"), d.get("new")) for d in approvals.visible_diff(obj, current_actor())),
        )
        return format_html("<table><tr><th>Field</th><th>Now</th><th>After approval</th></tr>{}</table>", rows)

    @admin.display(description="")
    def decide_link(self, obj):
        if obj.status != ChangeRequest.Status.PENDING:
            return ""
        return format_html('<a href="{}">Decide</a>', reverse("admin:core_changerequest_decide", args=[obj.pk]))

    def get_urls(self):
        custom = [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="core_changerequest_decide",
            )
        ]
        return custom + super().get_urls()

    def decide_view(self, request, object_id):
        change_request = self.get_queryset(request).filter(pk=object_id).first()
        if change_request is None:
            raise Http404("There is no such change request, or you may not see it.")
        if change_request.kind not in approvals.decidable_kinds(request.user):
            raise PermissionDenied
        change_url = reverse("admin:core_changerequest_change", args=[change_request.pk])
        form = DecisionForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            try:
                if "_reject" in request.POST:
                    approvals.approval_reject(change_request=change_request, actor=request.user, reason=reason)
                    done = "rejected"
                else:
                    approvals.approval_approve(change_request=change_request, actor=request.user, reason=reason)
                    done = "approved and applied"
            except BusinessError as exc:
                form.add_error(None, exc.message)
            except ValidationError as exc:
                form.add_error(None, " ".join(exc.messages))
            else:
                self.message_user(request, f"{change_request.summary}: {done}.", messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": change_request,
            "title": f"Decide: {change_request.summary}",
            "form": form,
            "own": change_request.requested_by_id == request.user.pk,
            "diff": approvals.visible_diff(change_request, request.user),
        }
        return TemplateResponse(request, "admin/core/changerequest/decide.html", context)
