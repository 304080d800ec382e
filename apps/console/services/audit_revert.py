"""Reverting a configuration object to an earlier version, as a new change with who, why and correlation ID."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.canonical.models import RateCardVersion
from apps.core.context import audit_context
from apps.core.errors import BusinessError
from apps.core.history_diff import m2m_members
from apps.systems.models import ConnectedSystem, OwnershipRule
from apps.systems.services import ownership_rule_save

# Configuration a steward may put back as it was. Approved rate card versions are excluded below: their
# rates were billed, so a change is a new version, never an edit of history.
GRANTS = ("may_create", "may_update")
REVERTIBLE = ("mapping.valuemapentry", "mapping.sourceprofile", "systems.ownershiprule", "canonical.ratecardversion")


class RevertRefused(BusinessError):
    code = "revert_refused"


def is_revertible(label: str) -> bool:
    return label in REVERTIBLE


def revert_refusal(row) -> str:
    """Why this history row cannot be reverted to, or "" if it can (permission aside)."""
    model = row.instance_type
    if model._meta.label_lower not in REVERTIBLE:
        return f"{model._meta.verbose_name.capitalize()} records are not configuration; they cannot be reverted here."
    if row.history_type == "-":
        return "This row records a deletion; there is no version to go back to."
    current = model.objects.filter(pk=_pk(row)).first()
    if current is None:
        return "The record no longer exists; create it again instead."
    if model is RateCardVersion and RateCardVersion.Status.APPROVED in (current.status, row.status):
        return (
            "Approved rate card versions cannot be reverted: their rates may already be billed. "
            "Create a new draft version with the earlier rates and have it approved."
        )
    return ""


def audit_revert(*, row, actor, reason: str):
    """Put a configuration object back to the values of one of its history rows; the revert is itself history."""
    model = row.instance_type
    opts = model._meta
    if not actor.has_perm(f"{opts.app_label}.change_{opts.model_name}"):
        raise PermissionDenied(f"Your role may not change {opts.verbose_name_plural}.")
    if not reason.strip():
        raise RevertRefused("Say why you revert this change; auditors read it in the history.", fix="Fill in a reason.")
    refusal = revert_refusal(row)
    if refusal:
        raise RevertRefused(refusal)
    with transaction.atomic():
        current = model.objects.select_for_update().get(pk=_pk(row))
        changed = []
        for field in row.tracked_fields:
            if not field.editable or field.primary_key:
                continue
            old = getattr(row, field.attname)
            if getattr(current, field.attname) != old:
                setattr(current, field.attname, old)
                changed.append(field.name)
        m2m = {}
        for field in getattr(type(row), "_history_m2m_fields", []):
            wanted = m2m_members(row, field.name)
            if sorted(getattr(current, field.name).values_list("pk", flat=True)) != wanted:
                m2m[field.name] = wanted
        if not changed and not m2m:
            raise RevertRefused(
                f"{opts.verbose_name.capitalize()} {current} already has the values of that version.",
                fix="Pick an older row in its history.",
            )
        with audit_context(
            actor=actor,
            reason=f"Reverted to the version of {row.history_date:%Y-%m-%d %H:%M} "
            f"(history #{row.history_id}): {reason.strip()}",
        ):
            try:
                current.full_clean()
            except ValidationError as exc:
                raise RevertRefused(
                    f"{opts.verbose_name.capitalize()} {current} cannot go back to that version: "
                    f"{'; '.join(exc.messages)}",
                    fix="Change what conflicts with it first, or revert to another version.",
                ) from None
            if isinstance(current, OwnershipRule):
                # Ownership rules change under four-eyes: a revert is a change like any other.
                grants = {
                    name: m2m.get(name, list(getattr(current, name).values_list("pk", flat=True))) for name in GRANTS
                }
                return ownership_rule_save(
                    rule=current,
                    may_create=ConnectedSystem.objects.filter(pk__in=grants["may_create"]),
                    may_update=ConnectedSystem.objects.filter(pk__in=grants["may_update"]),
                    actor=actor,
                    reason=f"Revert to history #{row.history_id}: {reason.strip()}",
                )
            current.save()
            for name, ids in m2m.items():
                getattr(current, name).set(ids)
    return current


def _pk(row):
    return getattr(row, row.instance_type._meta.pk.attname)
