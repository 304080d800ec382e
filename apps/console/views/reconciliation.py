"""Reconciliation in the console: the latest run per period and entity, open discrepancies grouped by check with
their value at risk, and the actions a role allows (run now, explain, re-run, prepare and approve the sign-off).
Every action calls the reconciliation services; the lists filter with the API's FilterSet."""

from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Sum
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_q.tasks import async_task

from apps.canonical.models import LegalEntity
from apps.core.errors import BusinessError
from apps.reconciliation import selectors
from apps.reconciliation.filters import DiscrepancyFilter
from apps.reconciliation.models import ROLLUP_CHECKS, Check, Discrepancy, PeriodSignOff, ReconciliationRun
from apps.reconciliation.services import (
    discrepancy_explain,
    discrepancy_rerun,
    reconciliation_run_request,
    sign_off_approve,
    sign_off_prepare,
)

VIEW = "reconciliation.view_discrepancy"
RUN = "reconciliation.add_reconciliationrun"
ACT = "reconciliation.change_discrepancy"
PREPARE = "reconciliation.add_periodsignoff"
APPROVE = "reconciliation.change_periodsignoff"
PAGE_SIZE = 50
RECENT_RUNS = 300  # the latest run of each scope is found among the most recent runs
SCOPES_SHOWN = 12
SIGN_OFFS_SHOWN = 20


def _enqueue_run(run_id: int) -> None:
    async_task("apps.reconciliation.tasks.run_reconciliation", run_id, task_name=f"reconciliation-{run_id}")


def _latest_runs() -> list[ReconciliationRun]:
    """The latest run of each period and legal entity, newest first."""
    latest, seen = [], set()
    for run in selectors.run_list().order_by("-created_at", "-pk")[:RECENT_RUNS]:
        scope = (run.period, run.legal_entity_id)
        if scope not in seen:
            seen.add(scope)
            latest.append(run)
    return latest[:SCOPES_SHOWN]


def _duration(run: ReconciliationRun) -> str:
    duration = run.duration
    if duration is None:
        return "—"
    seconds = int(duration.total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _vs_close(row: Discrepancy, today) -> str:
    days = (today - row.period_close_date).days
    if days > 0:
        return f"{days} d past close"
    return "closes today" if days == 0 else f"{-days} d before close"


def _with_params(params, **changes) -> str:
    query = params.copy()
    query.pop("page", None)
    for key, value in changes.items():
        query.setlist(key, [value] if value is not None else [])
    return f"{reverse('console:reconciliation')}?{query.urlencode()}"


def _groups(queryset, params) -> tuple[list[dict], list[dict]]:
    """Per check: count and value at risk of the filtered discrepancies; roll-up checks apart."""
    labels = dict(Check.choices)
    per_check = (
        queryset.order_by()
        .values("check_type")
        .annotate(count=Count("pk"), value=Sum("value_at_risk"))
        .order_by("-value", "check_type")
    )
    primary, rollups = [], []
    for row in per_check:
        entry = {
            "check": row["check_type"],
            "label": labels.get(row["check_type"], row["check_type"]),
            "count": row["count"],
            "value": row["value"] or Decimal(0),
            "url": _with_params(params, check_type=row["check_type"]),
        }
        (rollups if row["check_type"] in ROLLUP_CHECKS else primary).append(entry)
    return primary, rollups


def _sign_off_rows(user, sign_offs) -> list[dict]:
    rows = []
    for sign_off in sign_offs:
        why_not = ""
        if sign_off.status == PeriodSignOff.Status.PREPARED:
            if sign_off.prepared_by_id == user.pk:
                why_not = "You prepared this reconciliation; another person must approve it."
            elif not user.has_perm(APPROVE):
                why_not = "Your role may read sign-offs but not approve them; finance ops approves."
        rows.append(
            {
                "sign_off": sign_off,
                "can_approve": sign_off.status == PeriodSignOff.Status.PREPARED and not why_not,
                "why_not": why_not,
            }
        )
    return rows


@login_required
@permission_required(VIEW, raise_exception=True)
def reconciliation_page(request):
    params = request.GET.copy()
    if "status" not in params:
        params.setlist("status", [Discrepancy.Status.OPEN])
    filterset = DiscrepancyFilter(params, queryset=selectors.discrepancy_list(), request=request)
    queryset = filterset.qs
    primary, rollups = _groups(queryset, params)
    total = sum((group["value"] for group in primary), Decimal(0))
    total_query = params.copy()
    total_query.pop("page", None)
    total_query.setlist("check_type", [group["check"] for group in primary])
    page = Paginator(queryset.order_by("-value_at_risk", "check_type", "business_key", "pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    runs = _latest_runs()
    watched = request.GET.get("run")
    watched_run = ReconciliationRun.objects.filter(pk=watched).first() if watched and watched.isdigit() else None
    query = params.copy()
    query.pop("page", None)
    sign_offs = selectors.sign_off_list().order_by("-prepared_at", "-pk")[:SIGN_OFFS_SHOWN]
    today = timezone.localdate()
    return render(
        request,
        "console/reconciliation/page.html",
        {
            "active": "reconciliation",
            "filter": filterset,
            "runs": [{"run": run, "duration": _duration(run)} for run in runs],
            "watched_run": watched_run,
            "groups": primary,
            "rollups": rollups,
            "total": total,
            "total_url": f"{reverse('console:reconciliation')}?{total_query.urlencode()}",
            "reporting_currency": settings.REPORTING_CURRENCY,
            "page": page,
            "rows": [{"d": row, "vs_close": _vs_close(row, today)} for row in page.object_list],
            "query": query.urlencode(),
            "sign_offs": _sign_off_rows(request.user, sign_offs),
            "entities": LegalEntity.objects.order_by("code").values_list("code", "name"),
            "default_period": params.get("period") or (runs[0].period if runs else f"{today:%Y-%m}"),
            "rollup_checks": {str(check) for check in ROLLUP_CHECKS},
            "default_entity": params.get("legal_entity") or "",
            "can_run": request.user.has_perm(RUN),
            "can_act": request.user.has_perm(ACT),
            "can_prepare": request.user.has_perm(PREPARE),
        },
    )


def _back(request) -> str:
    target = request.POST.get("next", "")
    return target if target.startswith("/reconciliation/") else reverse("console:reconciliation")


@login_required
@permission_required(RUN, raise_exception=True)
@require_POST
def run_now(request):
    """Queue a run of one period (and entity); the page then polls its progress."""
    period = request.POST.get("period", "").strip()
    try:
        run = reconciliation_run_request(
            period=period,
            legal_entity_code=request.POST.get("legal_entity") or None,
            trigger=ReconciliationRun.Trigger.API,
            actor=request.user,
            reason=f"Reconciliation of {period} requested in the console",
        )
    except BusinessError as exc:
        messages.error(request, f"{exc.message} {exc.fix}".strip())
        return redirect(_back(request))
    run_id = run.pk
    transaction.on_commit(lambda: _enqueue_run(run_id))
    messages.success(request, f"Reconciliation of {run.period} queued (run #{run.pk}).")
    return redirect(f"{reverse('console:reconciliation')}?{urlencode({'run': run.pk})}#run-progress")


@login_required
@permission_required(VIEW, raise_exception=True)
def run_progress(request, pk):
    run = get_object_or_404(ReconciliationRun, pk=pk)
    return JsonResponse(
        {
            "processed": run.progress,
            "total": 100,
            "status": run.status,
            "status_label": run.get_status_display(),
            "stage": run.stage,
            "duration": _duration(run),
            "finished": run.status not in (ReconciliationRun.Status.QUEUED, ReconciliationRun.Status.RUNNING),
        }
    )


@login_required
@permission_required(ACT, raise_exception=True)
@require_POST
def discrepancy_act(request, pk, action):
    """Explain a discrepancy with a reason, or re-run the failed transaction(s) behind it."""
    if action not in ("explain", "rerun"):
        raise Http404("No such action on a discrepancy.")
    row = get_object_or_404(Discrepancy, pk=pk)
    reason = request.POST.get("reason", "")
    try:
        if action == "explain":
            discrepancy_explain(discrepancy=row, reason=reason, actor=request.user)
            messages.success(request, f"{row.business_key} marked explained.")
        else:
            replayed = discrepancy_rerun(discrepancy=row, actor=request.user, reason=reason)
            messages.success(
                request,
                f"Re-running {len(replayed)} transaction{'s' if len(replayed) != 1 else ''} behind {row.business_key}; "
                "the next reconciliation run closes the discrepancy if that fixed it.",
            )
    except BusinessError as exc:
        messages.error(request, f"{exc.message} {exc.fix}".strip())
    return redirect(_back(request))


@login_required
@permission_required(PREPARE, raise_exception=True)
@require_POST
def sign_off_prepare_view(request):
    try:
        sign_off = sign_off_prepare(
            period=request.POST.get("period", "").strip(),
            legal_entity_code=request.POST.get("legal_entity") or None,
            actor=request.user,
            note=request.POST.get("note", ""),
        )
    except BusinessError as exc:
        messages.error(request, f"{exc.message} {exc.fix}".strip())
    else:
        messages.success(request, f"{sign_off} — another person must approve it.")
    return redirect(f"{_back(request)}#sign-off")


@login_required
@permission_required(APPROVE, raise_exception=True)
@require_POST
def sign_off_approve_view(request, pk):
    sign_off = get_object_or_404(PeriodSignOff, pk=pk)
    try:
        approved = sign_off_approve(sign_off=sign_off, actor=request.user, note=request.POST.get("note", ""))
    except BusinessError as exc:
        messages.error(request, f"{exc.message} {exc.fix}".strip())
    else:
        messages.success(request, f"{approved}.")
    return redirect(f"{_back(request)}#sign-off")
