"""The audit browser: every change of every model, who made it, why, in which request; CSV export; revert."""

import csv

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from apps.console.selectors.audit_log import AuditFilter, audit_entry, audit_page, audit_rows, history_models, snapshot
from apps.console.services.audit_revert import RevertRefused, audit_revert, is_revertible, revert_refusal
from apps.core.masking import MASK
from apps.core.models import ChangeRequest


class AuditFilterForm(forms.Form):
    model = forms.ChoiceField(required=False, label="Model")
    object_id = forms.IntegerField(required=False, min_value=1, label="Object id")
    user = forms.CharField(required=False, label="Changed by")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    correlation_id = forms.CharField(required=False, label="Request / correlation id")

    def __init__(self, *args, models=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "All models")] + [
            (label, str(model._meta.verbose_name).capitalize()) for label, model in (models or {}).items()
        ]

    def audit_filter(self) -> AuditFilter:
        data = self.cleaned_data if self.is_valid() else {}
        return AuditFilter(
            model=data.get("model") or "",
            object_id=data.get("object_id"),
            user=(data.get("user") or "").strip(),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            correlation_id=(data.get("correlation_id") or "").strip(),
        )


def _readable(request) -> dict:
    models = history_models(request.user)
    if not models:
        raise PermissionDenied("Your role may not read the history of any record.")
    return models


@login_required
def audit_list(request):
    models = _readable(request)
    form = AuditFilterForm(request.GET or None, models=models)
    wanted = form.audit_filter()
    if request.GET.get("export") == "csv":
        return _csv(request, wanted)
    try:
        number = int(request.GET.get("page", "1"))
    except ValueError:
        number = 1
    page = audit_page(request.user, wanted, page=number)
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("export", None)
    return render(
        request,
        "console/audit/list.html",
        {
            "active": "audit",
            "form": form,
            "page": page,
            "wanted": wanted,
            "query": query.urlencode(),
            "export_query": urlencode({**query.dict(), "export": "csv"}),
            "mask": MASK,
        },
    )


class _Echo:
    def write(self, value):
        return value


def _csv(request, wanted: AuditFilter):
    writer = csv.writer(_Echo())
    header = ["when", "model", "object id", "object", "action", "changed by", "reason", "correlation id", "changes"]

    def lines():
        yield writer.writerow(header)
        for entry in audit_rows(request.user, wanted):
            changes = "; ".join(
                f"{change.field}: {MASK if change.masked else change.old} -> {MASK if change.masked else change.new}"
                for change in entry.changes
            )
            yield writer.writerow(
                [
                    entry.row.history_date.isoformat(),
                    entry.label,
                    entry.object_id,
                    entry.object_label,
                    entry.action,
                    entry.user,
                    entry.row.history_change_reason or "",
                    entry.row.history_correlation_id,
                    changes,
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response


@login_required
def audit_detail(request, label: str, history_id: int):
    _readable(request)
    entry = audit_entry(request.user, label, history_id)
    if entry is None:
        raise Http404("There is no such history row, or you may not read it.")
    revertible = is_revertible(label)
    refusal = revert_refusal(entry.row) if revertible else ""
    opts = entry.model._meta
    may_change = request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
    if request.method == "POST":
        try:
            result = audit_revert(row=entry.row, actor=request.user, reason=request.POST.get("reason", ""))
        except RevertRefused as exc:
            messages.error(request, f"{exc.message} {exc.fix}".strip())
        else:
            if isinstance(result, ChangeRequest):
                messages.success(
                    request,
                    f"The revert of {entry.object_label} waits for a second person's approval (four-eyes, request "
                    f"#{result.pk}); it applies when they approve it.",
                )
                return redirect(request.path)
            messages.success(
                request, f"{entry.object_label} is back to the version of {entry.row.history_date:%Y-%m-%d %H:%M}."
            )
            filters = urlencode({"model": label, "object_id": entry.object_id})
            return redirect(f"{reverse('console:audit')}?{filters}")
        return redirect(request.path)
    return render(
        request,
        "console/audit/detail.html",
        {
            "active": "audit",
            "entry": entry,
            "snapshot": snapshot(entry, request.user),
            "revertible": revertible,
            "refusal": refusal,
            "may_revert": revertible and may_change and not refusal,
            "may_change": may_change,
            "mask": MASK,
            "object_history": urlencode({"model": label, "object_id": entry.object_id}),
        },
    )
