"""Exception groups: one row per cause, a page per group with its fix links and who can act, re-run of a whole
group, and bulk re-run by filter (a plan first, then a run with progress that can be cancelled)."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, F
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.errors import BusinessError
from apps.core.paginators import CappedPaginator
from apps.core.roles import ROLES
from apps.sync import selectors
from apps.sync.batches import (
    group_open_transactions,
    plan_summary,
    rerun_batch_cancel,
    rerun_batch_plan,
    rerun_batch_progress,
    rerun_batch_start,
)
from apps.sync.filters import ExceptionGroupFilter, TransactionFilter
from apps.sync.fixlinks import fix_links
from apps.sync.groups import (
    exception_group_assign,
    exception_group_comment,
    exception_group_set_status,
    money_by_group,
    open_member_figures,
    with_open_counts,
)
from apps.sync.models import ExceptionGroup, RerunBatch, Transaction
from apps.sync.routing import may_act, routing_for

VIEW_TRANSACTIONS = "sync.view_transaction"
PAGE_SIZE = 50
SORTS = {
    "open": ("Most open first", ["-open_count", "-last_seen"]),
    "recent": ("Last seen first", ["-last_seen"]),
    "oldest": ("First seen first", ["first_seen"]),
    "seen": ("Seen most often", ["-times_seen"]),
}


def _default_statuses(request) -> dict:
    params = request.GET.copy()
    if "status" not in params:
        params.setlist("status", [ExceptionGroup.Status.OPEN, ExceptionGroup.Status.ACKNOWLEDGED])
    return params


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def group_list(request):
    params = _default_statuses(request)
    filterset = ExceptionGroupFilter(params, queryset=ExceptionGroup.objects.all(), request=request)
    sort = request.GET.get("sort", "open")
    sort = sort if sort in SORTS else "open"
    # The filtered groups' open counts and money in one statement, before the page that is sorted by them.
    counts, money = open_member_figures(filterset.qs)
    queryset = with_open_counts(filterset.qs, counts).order_by(*SORTS[sort][1], "-pk")
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    groups = list(page.object_list)
    rows = [{"group": group, "money": money.get(group.pk, [])} for group in groups]
    query = params.copy()
    query.pop("page", None)
    return render(
        request,
        "console/exceptions/list.html",
        {
            "active": "exceptions",
            "filter": filterset,
            "rows": rows,
            "page": page,
            "sort": sort,
            "sorts": [(key, label) for key, (label, _) in SORTS.items()],
            "query": query.urlencode(),
        },
    )


def _group_or_404(pk) -> ExceptionGroup:
    return get_object_or_404(ExceptionGroup.objects.select_related("target_system", "assignee"), pk=pk)


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def group_detail(request, pk):
    group = _group_or_404(pk)
    members = (
        Transaction.objects.filter(exception_membership__group=group)
        .select_related("owner", "exception_membership")
        .order_by(F("exception_at").desc(nulls_last=True), "-pk")
    )
    open_members = group_open_transactions(group)
    by_status = dict(members.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    routing = routing_for(request.user, group.owner_role)
    latest = members.filter(status=Transaction.Status.EXCEPTION).first()
    links = fix_links(
        group.context,
        subject_type=latest.subject_type if latest else "",
        subject_id=latest.subject_id if latest else None,
        transaction_id=latest.pk if latest else None,
    )
    return render(
        request,
        "console/exceptions/detail.html",
        {
            "active": "exceptions",
            "group": group,
            "members": [
                {"txn": txn, "url": reverse("admin:sync_transaction_change", args=[txn.pk])} for txn in members[:200]
            ],
            "member_total": sum(by_status.values()),
            "by_status": sorted(
                ((Transaction.Status(status).label, status, n) for status, n in by_status.items()), key=lambda r: -r[2]
            ),
            "plan": plan_summary(open_members),
            "money": money_by_group([group.pk]).get(group.pk, []),
            "fix_links": links,
            "routing": routing,
            "assignable": selectors.assignable_users() if routing.can_act else [],
            "comments": group.comments.select_related("author"),
            "batches": group.batches.order_by("-created_at")[:5],
            "statuses": ExceptionGroup.Status.choices,
        },
    )


def _acting_on_group(request, pk) -> ExceptionGroup:
    group = _group_or_404(pk)
    if not may_act(request.user, group.owner_role):
        raise PermissionDenied(routing_for(request.user, group.owner_role).why)
    return group


@login_required
@require_POST
def group_rerun(request, pk):
    """Plan a re-run of every open exception of the group; the plan page shows it before it starts."""
    group = _acting_on_group(request, pk)
    reason = request.POST.get("reason", "")
    try:
        batch = rerun_batch_plan(
            queryset=group_open_transactions(group),
            description=f"All of group {group.pk}: {group.missing_label or group.title}",
            actor=request.user,
            reason=reason,
            group=group,
        )
        if request.POST.get("start"):
            rerun_batch_start(batch=batch, actor=request.user)
    except BusinessError as exc:
        messages.error(request, exc.message)
        return redirect("console:exception-group", pk=group.pk)
    return redirect("console:rerun-batch", pk=batch.pk)


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
@require_POST
def group_update(request, pk):
    """Change a group's status, its assignee, or add a comment."""
    group = _group_or_404(pk)
    action = request.POST.get("action")
    try:
        if action == "comment":
            exception_group_comment(group=group, text=request.POST.get("text", ""), actor=request.user)
        else:
            group = _acting_on_group(request, pk)
            if action == "status":
                exception_group_set_status(
                    group=group,
                    status=request.POST.get("status", ""),
                    actor=request.user,
                    reason=request.POST.get("reason", ""),
                )
            elif action == "assign":
                username = request.POST.get("assignee", "")
                assignee = get_user_model().objects.filter(username=username).first() if username else None
                exception_group_assign(group=group, assignee=assignee, actor=request.user)
            else:
                messages.error(request, "Choose what to change.")
    except BusinessError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Saved.")
    return redirect("console:exception-group", pk=group.pk)


# --- bulk re-run by filter -----------------------------------------------------------------------------


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def bulk_rerun(request):
    """Choose transactions with the API's transaction filter; the plan says how many and how much money."""
    params = request.GET.copy() if request.method == "GET" else request.POST.copy()
    if "queue" not in params:
        params["queue"] = "exception"
    filterset = TransactionFilter(params, queryset=selectors.transaction_list(), request=request)
    matched = filterset.qs if filterset.is_valid() else Transaction.objects.none()
    if not request.user.has_perm("sync.change_transaction"):
        matched = matched.filter(owner_role__in=list(_user_roles(request.user)))
    rerunnable = matched.filter(status__in=(Transaction.Status.EXCEPTION, Transaction.Status.WAITING_RETRY))
    if request.method == "POST":
        try:
            batch = rerun_batch_plan(
                queryset=rerunnable,
                description=_describe(filterset),
                actor=request.user,
                reason=request.POST.get("reason", ""),
                filters={key: params.getlist(key) for key in params if key not in ("csrfmiddlewaretoken", "reason")},
            )
        except BusinessError as exc:
            messages.error(request, exc.message)
        else:
            return redirect("console:rerun-batch", pk=batch.pk)
    return render(
        request,
        "console/exceptions/bulk.html",
        {
            "active": "exceptions",
            "filter": filterset,
            "plan": plan_summary(rerunnable),
            "page": CappedPaginator(matched.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(
                request.GET.get("page")
            ),
            "query": _without_page(params),
            "can_act": _user_roles(request.user) or request.user.has_perm("sync.change_transaction"),
        },
    )


def _without_page(params) -> str:
    query = params.copy()
    query.pop("page", None)
    return query.urlencode()


def _user_roles(user) -> set[str]:
    return set(user.groups.filter(name__in=list(ROLES)).values_list("name", flat=True))


def _describe(filterset) -> str:
    data = getattr(filterset, "cleaned_data", None) or {}
    parts = [f"{key}={value}" for key, value in data.items() if value not in (None, "", [], ())]
    return "Filter: " + (", ".join(parts) if parts else "all exceptions")


def _batch_or_404(request, pk) -> RerunBatch:
    batch = get_object_or_404(RerunBatch.objects.select_related("group", "created_by"), pk=pk)
    if not (request.user.has_perm(VIEW_TRANSACTIONS) or batch.created_by_id == request.user.pk):
        raise PermissionDenied
    return batch


@login_required
def rerun_batch(request, pk):
    batch = _batch_or_404(request, pk)
    planned = Transaction.objects.filter(pk__in=batch.transaction_ids)
    owner_ok = batch.created_by_id == request.user.pk or request.user.has_perm("sync.change_transaction")
    return render(
        request,
        "console/exceptions/batch.html",
        {
            "active": "exceptions",
            "batch": batch,
            "plan": plan_summary(planned),
            "sample": planned.order_by("exception_at", "pk")[:50],
            "progress": rerun_batch_progress(batch),
            "can_control": owner_ok,
        },
    )


@login_required
def rerun_batch_progress_json(request, pk):
    return JsonResponse(rerun_batch_progress(_batch_or_404(request, pk)))


@login_required
@require_POST
def rerun_batch_control(request, pk):
    batch = _batch_or_404(request, pk)
    if not (batch.created_by_id == request.user.pk or request.user.has_perm("sync.change_transaction")):
        raise PermissionDenied("Only the person who planned this re-run, or a role that may re-run, controls it.")
    try:
        if request.POST.get("action") == "cancel":
            rerun_batch_cancel(batch=batch, actor=request.user, reason=request.POST.get("reason", ""))
            messages.success(request, f"Re-run #{batch.pk} cancelled; transactions not yet re-run stay as they are.")
        else:
            rerun_batch_start(batch=batch, actor=request.user)
    except BusinessError as exc:
        messages.error(request, exc.message)
    return redirect("console:rerun-batch", pk=batch.pk)
