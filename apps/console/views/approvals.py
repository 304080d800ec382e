"""Four-eyes approvals: the change requests a person may decide, approve or reject them, and their own waiting ones."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.console.selectors.approvals import approvals_page, roles_that_decide
from apps.core import approvals
from apps.core.errors import BusinessError
from apps.core.models import ChangeRequest


@login_required
def approval_list(request):
    return render(request, "console/approvals/list.html", {"active": "approvals", **approvals_page(request.user)})


def _refused(request, change_request: ChangeRequest | None, *, message: str, fix: str):
    """A 403 that says why, and which roles may decide this kind of request."""
    kind = change_request.kind if change_request is not None else ""
    action = approvals.registered_kinds().get(kind)
    context = {
        "active": "approvals",
        "message": message,
        "fix": fix,
        "label": action.label if action else "change",
        "deciders": roles_that_decide(kind) if kind else [],
    }
    return render(request, "console/approvals/refused.html", context, status=403)


def _decide(request, pk: int, verb: str):
    user = request.user
    change_request = approvals.visible_to(user).filter(pk=pk).first()
    if change_request is None:
        return _refused(
            request,
            ChangeRequest.objects.filter(pk=pk).first(),
            message=f"You may not {verb} this change request: your role does not decide changes of its kind.",
            fix="Ask someone whose role may make this change to decide it.",
        )
    reason = request.POST.get("reason", "")
    try:
        if verb == "approve":
            approvals.approval_approve(change_request=change_request, actor=user, reason=reason)
        else:
            approvals.approval_reject(change_request=change_request, actor=user, reason=reason)
    except approvals.ApprovalRefused as exc:
        if change_request.status == ChangeRequest.Status.PENDING and not approvals.may_decide(user, change_request):
            return _refused(request, change_request, message=exc.message, fix=exc.fix)
        messages.error(request, f"{exc.message} {exc.fix}")
        return redirect("console:approvals")
    except (BusinessError, ValidationError) as exc:
        text = exc.message if isinstance(exc, BusinessError) else " ".join(exc.messages)
        fix = f" {exc.fix}" if isinstance(exc, BusinessError) and exc.fix else ""
        messages.error(request, f"Request #{change_request.pk} could not be applied: {text}{fix}")
        return redirect("console:approvals")
    done = "approved and applied" if verb == "approve" else "rejected"
    messages.success(request, f"Request #{change_request.pk} ({change_request.summary}) {done}.")
    return redirect("console:approvals")


@login_required
@require_POST
def approval_approve(request, pk: int):
    return _decide(request, pk, "approve")


@login_required
@require_POST
def approval_reject(request, pk: int):
    return _decide(request, pk, "reject")
