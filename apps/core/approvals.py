"""Four-eyes control: a change that sets prices or rules waits for a second person before it applies.

An app guards an action by registering it here in its AppConfig.ready (`register`), and by calling
`needs_second_person(kind, actor)` in the service that performs it: when four-eyes is on for that
kind and a person (not the system user) acts, the service stores a `ChangeRequest` with
`approval_request` instead of applying. `approval_approve` applies it (the registered `apply`) as the
checker, who must be a different user with the kind's permission; `approval_reject` closes it with a
reason. Which kinds are guarded is the `FOUR_EYES` setting (`docs/four-eyes.md`).
"""

import re

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .approval_actions import (  # noqa: F401  (re-exported: callers use approvals.<kind>)
    _REGISTRY,
    OWNERSHIP_RULE,
    RATE_CARD_VERSION,
    SOURCE_PROFILE,
    TRANSACTION_REPLAY_AMOUNT,
    ApprovalAction,
    registered_kinds,
)
from .context import audit_context, get_correlation_id
from .errors import BusinessError
from .masking import MASK, can_see_sensitive, sensitive_fields
from .models import ChangeRequest

# On by default for what sets prices and ownership; FOUR_EYES in settings overrides per kind.
DEFAULTS = {RATE_CARD_VERSION: True, OWNERSHIP_RULE: True, SOURCE_PROFILE: False, TRANSACTION_REPLAY_AMOUNT: False}


class ApprovalRefused(BusinessError):
    """A decision on a change request that the four-eyes rule does not allow."""

    code = "approval_refused"


def action_for(kind: str) -> ApprovalAction:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise ApprovalRefused(
            f"No action is registered for change requests of kind '{kind}'.",
            fix="Check that the app that guards this kind is installed.",
        ) from None


def four_eyes_on(kind: str) -> bool:
    """Whether changes of this kind need a second person (the FOUR_EYES setting, else the default)."""
    configured = getattr(settings, "FOUR_EYES", {}) or {}
    return bool(configured.get(kind, DEFAULTS.get(kind, False)))


def is_person(actor) -> bool:
    """A logged-in person, as opposed to no actor or the integration system user (tasks, imports, workflows)."""
    return (
        actor is not None
        and getattr(actor, "pk", None) is not None
        and actor.get_username() != (settings.SYSTEM_USERNAME)
    )


def needs_second_person(kind: str, actor) -> bool:
    """Whether a service must store a change request instead of applying the change `actor` asked for."""
    return is_person(actor) and four_eyes_on(kind)


def may_decide(user, change_request: ChangeRequest) -> bool:
    """Whether `user` may approve or reject this request: the kind's permission, and not their own request."""
    if user is None or not user.is_authenticated or change_request.requested_by_id == user.pk:
        return False
    action = _REGISTRY.get(change_request.kind)
    return action is not None and user.has_perm(action.permission)


def decidable_kinds(user) -> list[str]:
    """The kinds this user holds the approving permission for."""
    if user is None or not user.is_authenticated:
        return []
    return [kind for kind, action in _REGISTRY.items() if user.has_perm(action.permission)]


def visible_to(user):
    """Change requests a user may see: the ones of kinds they may decide, and their own."""
    if user is None or not user.is_authenticated:
        return ChangeRequest.objects.none()
    return ChangeRequest.objects.filter(Q(kind__in=decidable_kinds(user)) | Q(requested_by=user))


def pending_for(user):
    """Pending requests this user may decide (not their own)."""
    if user is None or not user.is_authenticated:
        return ChangeRequest.objects.none()
    return (
        visible_to(user)
        .filter(status=ChangeRequest.Status.PENDING, kind__in=decidable_kinds(user))
        .exclude(requested_by=user)
    )


# --- what a person may see of a request ---------------------------------------------------------------------


def _sensitive_keys() -> frozenset[str]:
    return frozenset(name for model in apps.get_models() for name in sensitive_fields(model))


def _leaf(path: str) -> str:
    return re.sub(r"(\[[^\]]*\])+$", "", str(path)).rsplit(".", 1)[-1]


def _mask_json(value, keys):
    if isinstance(value, dict):
        return {key: MASK if key in keys else _mask_json(item, keys) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_json(item, keys) for item in value]
    return value


def visible_diff(change_request: ChangeRequest, user) -> list[dict]:
    """The request's diff, with bill and cost rates hidden from people who may not see them."""
    if can_see_sensitive(user):
        return change_request.diff
    keys = _sensitive_keys()
    return [
        {**row, "old": MASK, "new": MASK, "masked": True} if _leaf(row.get("field", "")) in keys else row
        for row in change_request.diff
    ]


def visible_payload(change_request: ChangeRequest, user) -> dict:
    """The request's payload, with bill and cost rates hidden from people who may not see them."""
    return change_request.payload if can_see_sensitive(user) else _mask_json(change_request.payload, _sensitive_keys())


def approval_request(
    *, kind: str, target=None, summary: str, payload: dict | None = None, diff: list | None = None, actor, reason: str
) -> ChangeRequest:
    """Store a change for a second person to approve; refused if the same record already waits for one."""
    action_for(kind)
    if not (reason or "").strip():
        raise ApprovalRefused(
            "Say why you are asking for this change; the approver and the auditors read it.",
            fix="Give a reason (in the API: the X-Change-Reason header).",
        )
    content_type = ContentType.objects.get_for_model(type(target)) if target is not None else None
    object_id = str(target.pk) if target is not None else ""
    with audit_context(actor=actor, reason=reason), transaction.atomic():
        if target is not None:
            waiting = (
                ChangeRequest.objects.select_for_update()
                .filter(kind=kind, content_type=content_type, object_id=object_id, status=ChangeRequest.Status.PENDING)
                .first()
            )
            if waiting is not None:
                raise ApprovalRefused(
                    f"{summary} is already waiting for approval (request #{waiting.pk}, asked by "
                    f"{waiting.requested_by.get_username()}).",
                    fix="Ask a second person to approve or reject that request first.",
                    context={"change_request": waiting.pk},
                )
        return ChangeRequest.objects.create(
            kind=kind,
            content_type=content_type,
            object_id=object_id,
            summary=summary[:300],
            payload=payload or {},
            diff=diff or [],
            requested_by=actor,
            request_reason=reason,
            correlation_id=get_correlation_id() or "",
        )


def _locked_pending(change_request: ChangeRequest) -> ChangeRequest:
    locked = ChangeRequest.objects.select_for_update().select_related("requested_by").get(pk=change_request.pk)
    if locked.status != ChangeRequest.Status.PENDING:
        decider = locked.decided_by.get_username() if locked.decided_by_id else "someone"
        raise ApprovalRefused(
            f"Request #{locked.pk} ({locked.summary}) was already {locked.get_status_display().lower()} by {decider}.",
            fix="Nothing to do; open the request to see the decision.",
        )
    return locked


def _check_checker(change_request: ChangeRequest, actor, verb: str) -> None:
    if actor is not None and change_request.requested_by_id == actor.pk:
        raise ApprovalRefused(
            f"You asked for this change yourself, so you cannot {verb} it: four-eyes control needs a second person.",
            fix="Ask a colleague who may approve this kind of change to decide it.",
            context={"change_request": change_request.pk},
        )
    if not may_decide(actor, change_request):
        label = action_for(change_request.kind).label
        raise ApprovalRefused(
            f"You may not {verb} {label.lower()} requests.",
            fix="Ask someone whose role may make this change to decide it.",
            context={"change_request": change_request.pk},
        )


@transaction.atomic
def approval_approve(*, change_request: ChangeRequest, actor, reason: str = ""):
    """Apply a pending change as a second person; the history names both the maker and the checker."""
    change_request = _locked_pending(change_request)
    _check_checker(change_request, actor, "approve")
    maker = change_request.requested_by.get_username()
    note = f" — {reason.strip()}" if (reason or "").strip() else ""
    applied_reason = f"{change_request.request_reason} (requested by {maker}, approved by {actor.get_username()}{note})"
    with audit_context(actor=actor, reason=applied_reason):
        applied = action_for(change_request.kind).apply(change_request, actor=actor, reason=applied_reason)
        change_request.status = ChangeRequest.Status.APPROVED
        change_request.decided_by = actor
        change_request.decided_at = timezone.now()
        change_request.decision_reason = reason.strip() if reason else ""
        if not change_request.object_id and applied is not None and getattr(applied, "pk", None) is not None:
            change_request.content_type = ContentType.objects.get_for_model(type(applied))
            change_request.object_id = str(applied.pk)
        change_request.save()
    return change_request


@transaction.atomic
def approval_reject(*, change_request: ChangeRequest, actor, reason: str) -> ChangeRequest:
    """Turn a pending change down with a reason the requester can read; nothing is applied."""
    if not (reason or "").strip():
        raise ApprovalRefused(
            "Say why you are rejecting this change; the requester and the auditors read it.",
            fix="Give a reason (in the API: `reason` in the body or the X-Change-Reason header).",
        )
    change_request = _locked_pending(change_request)
    _check_checker(change_request, actor, "reject")
    with audit_context(actor=actor, reason=f"Rejected by {actor.get_username()}: {reason.strip()}"):
        change_request.status = ChangeRequest.Status.REJECTED
        change_request.decided_by = actor
        change_request.decided_at = timezone.now()
        change_request.decision_reason = reason.strip()
        change_request.save()
    return change_request
