"""Writes and business rules on canonical records: rate cards and their versions, rate lookups."""

import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.context import audit_context
from apps.core.errors import BusinessError

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


@transaction.atomic
def rate_card_version_approve(*, version: RateCardVersion, actor, reason: str) -> RateCardVersion:
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
