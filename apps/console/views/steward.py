"""Steward pages: the ownership matrix, and value maps exported and imported as CSV with a preview."""

import base64
import binascii
import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from apps.console.selectors.steward_ownership import ownership_matrix, value_maps_with_counts
from apps.console.services.steward_value_maps import (
    COLUMNS,
    ImportPlan,
    ValueMapFileRefused,
    value_maps_export_csv,
    value_maps_import,
    value_maps_import_plan,
)

IMPORT_PERMISSIONS = ("mapping.add_valuemapentry", "mapping.change_valuemapentry")


def _on(request) -> datetime.date:
    try:
        return datetime.date.fromisoformat(request.GET.get("on", ""))
    except ValueError:
        return timezone.localdate()


@login_required
def steward_home(request):
    if not (request.user.has_perm("systems.view_ownershiprule") or request.user.has_perm("mapping.view_valuemap")):
        raise PermissionDenied("Your role may not read ownership rules or value maps.")
    on = _on(request)
    systems, rows = ownership_matrix(on)
    return render(
        request,
        "console/steward/home.html",
        {
            "active": "steward",
            "on": on,
            "systems": systems,
            "rows": rows,
            "value_maps": value_maps_with_counts(),
            "may_import": request.user.has_perms(IMPORT_PERMISSIONS),
            "may_edit_rules": request.user.has_perm("systems.change_ownershiprule"),
            "columns": ",".join(COLUMNS),
        },
    )


@login_required
@permission_required("mapping.view_valuemapentry", raise_exception=True)
def value_maps_export(request):
    names = [name for name in request.GET.getlist("map") if name]
    response = HttpResponse(value_maps_export_csv(names or None), content_type="text/csv; charset=utf-8")
    suffix = names[0] if len(names) == 1 else "all"
    response["Content-Disposition"] = f'attachment; filename="value-maps-{suffix}-{timezone.localdate()}.csv"'
    return response


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
def value_maps_upload(request):
    """POST a file: the preview. POST the previewed file back with a reason: the import."""
    if request.method != "POST":
        return redirect("console:steward")
    if "data" in request.POST:
        try:
            data = base64.b64decode(request.POST["data"], validate=True)
        except (binascii.Error, ValueError):
            messages.error(request, "The previewed file did not come back intact; upload it again.")
            return redirect("console:steward")
        try:
            plan = value_maps_import(data=data, actor=request.user, reason=request.POST.get("reason", ""))
        except ValueMapFileRefused as exc:
            plan = value_maps_import_plan(data)
            return _preview(request, plan, data, request.POST.get("filename", ""), error=f"{exc.message} {exc.fix}")
        messages.success(
            request,
            f"Imported: {plan.count('add')} entries added, {plan.count('change')} changed, "
            f"{plan.count('unchanged')} unchanged.",
        )
        return redirect("console:steward")
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a CSV file to import.")
        return redirect("console:steward")
    data = upload.read()
    return _preview(request, value_maps_import_plan(data), data, upload.name)


def _preview(request, plan: ImportPlan, data: bytes, filename: str, *, error: str = ""):
    return render(
        request,
        "console/steward/import_preview.html",
        {
            "active": "steward",
            "plan": plan,
            "filename": filename,
            "data": base64.b64encode(data).decode() if plan.ok else "",
            "error": error,
            "counts": {action: plan.count(action) for action in ("add", "change", "unchanged")},
        },
        status=200 if plan.ok else 422,
    )
