"""Reads for the approvals page: what a person may decide, what waits for someone else, what was decided lately."""

import datetime

from django.contrib.auth.models import Group
from django.utils import timezone

from apps.core import approvals
from apps.core.models import ChangeRequest
from apps.core.roles import ROLES

DECIDED_DAYS = 30


def roles_that_decide(kind: str) -> list[str]:
    """The console roles whose group holds the permission a checker of this kind needs, readable."""
    action = approvals.registered_kinds().get(kind)
    if action is None:
        return []
    app_label, codename = action.permission.split(".", 1)
    names = Group.objects.filter(
        name__in=ROLES, permissions__content_type__app_label=app_label, permissions__codename=codename
    ).values_list("name", flat=True)
    return sorted({name.replace("_", " ") for name in names})


def _row(change_request: ChangeRequest, user) -> dict:
    action = approvals.registered_kinds().get(change_request.kind)
    return {
        "request": change_request,
        "kind": action.label if action else change_request.kind,
        "diff": approvals.visible_diff(change_request, user),
    }


def approvals_page(user) -> dict:
    """The three lists of the approvals page for one person, rates masked as their role requires."""
    related = ("requested_by", "decided_by")
    pending = approvals.pending_for(user).select_related(*related).order_by("created_at", "pk")
    own = ChangeRequest.objects.none()
    decided = ChangeRequest.objects.none()
    if user is not None and user.is_authenticated:
        own = (
            ChangeRequest.objects.filter(requested_by=user, status=ChangeRequest.Status.PENDING)
            .select_related(*related)
            .order_by("created_at", "pk")
        )
        since = timezone.now() - datetime.timedelta(days=DECIDED_DAYS)
        decided = (
            approvals.visible_to(user)
            .exclude(status=ChangeRequest.Status.PENDING)
            .filter(decided_at__gte=since)
            .select_related(*related)
            .order_by("-decided_at", "-pk")
        )
    waiting = []
    for change_request in own:
        row = _row(change_request, user)
        row["deciders"] = roles_that_decide(change_request.kind)
        waiting.append(row)
    return {
        "pending": [_row(change_request, user) for change_request in pending],
        "waiting": waiting,
        "decided": [_row(change_request, user) for change_request in decided],
        "decided_days": DECIDED_DAYS,
    }
