"""Writes and business rules on canonical records: rate cards and their versions, rate lookups."""

import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import BigIntegerField, Max
from django.db.models.functions import Cast, Substr
from django.utils import timezone

from apps.core import approvals
from apps.core.approvals import approval_request, needs_second_person
from apps.core.context import audit_context
from apps.core.errors import BusinessError, OwnershipConflict
from apps.core.models import ChangeRequest
from apps.core.objects import object_type_of
from apps.systems.services import CREATE, UPDATE, assert_may_write, may_write

from .models import RateCard, RateCardLine, RateCardVersion


class RateNotFound(BusinessError):
    """No approved rate for a role on a date."""

    code = "rate_not_found"


def rate_for(*, card: RateCard | str, role: str, on: datetime.date) -> RateCardLine:
    """The rate card line for `role` in the approved version of `card` in force on `on`."""
    if isinstance(card, str):
        try:
            card = RateCard.objects.get(code=card)
        except RateCard.DoesNotExist:
            raise RateNotFound(
                f"There is no rate card '{card}'.",
                fix="Check the rate card code on the contract or project, or create the rate card.",
            ) from None
    version = (
        RateCardVersion.objects.in_force(on)
        .filter(rate_card=card, status=RateCardVersion.Status.APPROVED)
        .order_by("-effective_from")
        .first()
    )
    if version is None:
        raise RateNotFound(
            f"Rate card {card.code} has no approved version in force on {on.isoformat()}, "
            f"so role '{role}' cannot be priced.",
            fix=f"Approve a version of rate card {card.code} that covers {on.isoformat()}.",
            context={"rate_card": card.code, "role": role, "on": on.isoformat()},
        )
    line = version.lines.filter(role__iexact=role.strip()).first()
    if line is None:
        raise RateNotFound(
            f"Rate card {card.code} version {version.version} ({version.period_label()}) has no rate for role "
            f"'{role}' on {on.isoformat()}.",
            fix=f"Add a line for '{role}' to rate card {card.code} (as a new approved version), "
            f"or correct the role on the time entry or resource.",
            context={"rate_card": card.code, "version": version.version, "role": role, "on": on.isoformat()},
        )
    return line


@transaction.atomic
def rate_card_version_create(
    *,
    rate_card: RateCard,
    effective_from: datetime.date,
    effective_to: datetime.date | None = None,
    lines: list[dict],
    notes: str = "",
    actor,
    reason: str,
) -> RateCardVersion:
    """Create a draft version with its lines (role, bill_rate, cost_rate, currency)."""
    with audit_context(actor=actor, reason=reason):
        RateCard.objects.select_for_update().get(pk=rate_card.pk)
        number = (rate_card.versions.order_by("-version").values_list("version", flat=True).first() or 0) + 1
        version = RateCardVersion(
            rate_card=rate_card, version=number, effective_from=effective_from, effective_to=effective_to, notes=notes
        )
        version.full_clean()
        version.save()
        for spec in lines:
            line = RateCardLine(
                version=version,
                role=spec["role"],
                bill_rate=Decimal(str(spec["bill_rate"])),
                cost_rate=Decimal(str(spec["cost_rate"])) if spec.get("cost_rate") is not None else None,
                currency=spec.get("currency", rate_card.currency),
            )
            line.full_clean()
            line.save()
    return version


def rate_card_version_approve(*, version: RateCardVersion, actor, reason: str) -> RateCardVersion | ChangeRequest:
    """Approve a draft version, or ask a second person to (four-eyes: returns the pending ChangeRequest)."""
    if not needs_second_person(approvals.RATE_CARD_VERSION, actor):
        return rate_card_version_approve_now(version=version, actor=actor, reason=reason)
    version.refresh_from_db()
    if version.status == RateCardVersion.Status.APPROVED:
        return version
    if not version.lines.exists():
        raise ValidationError(
            f"Rate card {version.rate_card.code} version {version.version} has no rates; add lines first."
        )
    return approval_request(
        kind=approvals.RATE_CARD_VERSION,
        target=version,
        summary=f"Approve rate card {version.rate_card.code} version {version.version} ({version.period_label()})",
        diff=[
            {"field": "status", "old": version.status, "new": RateCardVersion.Status.APPROVED},
            *(
                {"field": f"lines[{line.role}].{name}", "old": None, "new": str(getattr(line, name))}
                for line in version.lines.order_by("role")
                for name in ("bill_rate", "cost_rate")
                if getattr(line, name) is not None
            ),
        ],
        actor=actor,
        reason=reason,
    )


def rate_card_version_apply_approval(change_request: ChangeRequest, *, actor, reason: str) -> RateCardVersion:
    """The four-eyes action: approve the version the request names, as the checker."""
    return rate_card_version_approve_now(version=change_request.target, actor=actor, reason=reason)


@transaction.atomic
def rate_card_version_approve_now(*, version: RateCardVersion, actor, reason: str) -> RateCardVersion:
    """Approve a draft version; refused if it overlaps another approved version of the same card."""
    with audit_context(actor=actor, reason=reason):
        # Lock the card so two approvals of overlapping versions cannot both pass the check.
        RateCard.objects.select_for_update().get(pk=version.rate_card_id)
        version.refresh_from_db()
        if version.status == RateCardVersion.Status.APPROVED:
            return version
        if not version.lines.exists():
            raise ValidationError(
                f"Rate card {version.rate_card.code} version {version.version} has no rates; add lines first."
            )
        version.status = RateCardVersion.Status.APPROVED
        version.approved_at = timezone.now()
        version.full_clean()
        version.save()
    return version


def _same(current, incoming) -> bool:
    if isinstance(current, models.Model) or isinstance(incoming, models.Model):
        return getattr(current, "pk", current) == getattr(incoming, "pk", incoming)
    if isinstance(current, Decimal) and incoming is not None:
        try:
            return current == Decimal(str(incoming))
        except ArithmeticError:
            return False
    return current == incoming


def _shown(value) -> str:
    if value in (None, ""):
        return "(empty)"
    return str(value)


def governed_upsert(model, *, system, values: dict, instance=None, on: datetime.date | None = None):
    """Create or update a canonical record on behalf of a source system, as its ownership rules allow.

    A new record needs the system's create right on the object type (it may then set every field).
    An update applies only if the system may update every field whose value it changes; otherwise
    nothing is applied and an OwnershipConflict lists each refused field with both values.
    Returns (instance, created, changed_field_names). Saves only when something changed.
    """
    object_type = object_type_of(model)
    on = on or timezone.localdate()
    if instance is None:
        assert_may_write(system=system, object_type=object_type, operation=CREATE, on=on)
        instance = model(**values)
        instance.full_clean()
        instance.save()
        return instance, True, sorted(values)
    changes = {name: value for name, value in values.items() if not _same(getattr(instance, name), value)}
    if not changes:
        return instance, False, []
    decision = may_write(system=system, object_type=object_type, fields=list(changes), on=on, operation=UPDATE)
    if decision.refused:
        conflicts = [
            {
                "field": name,
                "incoming": _shown(changes[name]),
                "current": _shown(getattr(instance, name)),
                "owner": decision.owners[name],
            }
            for name in decision.refused
        ]
        details = "; ".join(
            f"{c['field']}: {system.name} sent {c['incoming']}, the record has {c['current']} (owned by {c['owner']})"
            for c in conflicts
        )
        raise OwnershipConflict(
            f"{system.name} may not change {', '.join(decision.refused)} of {instance}: {details}.",
            fix="Keep the current value (resolve), make the change in the owning system, or have a mapping steward "
            "change the ownership rule and re-run.",
            technical=f"refused={decision.refused}",
            context={"conflicts": conflicts, "object_type": object_type, "object_id": instance.pk},
        )
    for name, value in changes.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    return instance, False, sorted(changes)


def next_number(model, prefix: str, *, field: str = "number", width: int = 5) -> str:
    """The next free business number like 'P-01042' for a model (max existing suffix + 1).

    Two workers numbering the same model at once would both read the same highest number (found by the
    scale-out run, docs/RELIABILITY.md): on PostgreSQL the second waits on a lock held until the first
    one's transaction ends, then reads its committed number. SQLite's immediate transactions already
    serialise writers.
    """
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"next_number:{model._meta.label}:{field}"])
    # The highest numeric suffix, computed by the database (numbers of other shapes are ignored).
    highest = model.objects.filter(**{f"{field}__regex": rf"^{prefix}-[0-9]+$"}).aggregate(
        highest=Max(Cast(Substr(field, len(prefix) + 2), BigIntegerField()))
    )["highest"]
    return f"{prefix}-{(highest or 0) + 1:0{width}d}"
