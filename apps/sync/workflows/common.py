"""Small helpers shared by the workflows: reading command data, finding records by cross-reference."""

import datetime
from decimal import Decimal

from django.utils.dateparse import parse_date, parse_datetime

from apps.core.errors import BusinessError, MappingError
from apps.core.objects import BusinessObject, model_for
from apps.mapping.services import canonical_id_for
from apps.systems.models import ConnectedSystem


class InvalidCommand(BusinessError):
    code = "invalid_command"


def decimal(value, *, field: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise InvalidCommand(f"{field} '{value}' is not an amount.") from None


def day(value, *, field: str) -> datetime.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime.date):
        return value
    parsed = parse_date(str(value)[:10])
    if parsed is None:
        raise InvalidCommand(f"{field} '{value}' is not a date.")
    return parsed


def moment(value) -> datetime.datetime | None:
    if value in (None, ""):
        return None
    return parse_datetime(str(value))


def require(data: dict, *names: str, what: str) -> None:
    """Refuse a command that lacks fields the workflow cannot do without, naming them all."""
    missing = [name for name in names if data.get(name) in (None, "")]
    if missing:
        raise InvalidCommand(
            f"The {what} is missing {', '.join(missing)}.",
            fix="Correct the source profile (or edit the transaction's input) so these fields are filled, then re-run.",
            context={"missing": missing},
        )


def source_system(txn) -> ConnectedSystem:
    """The system the transaction's command came from (its inbound event's system)."""
    event = txn.inbound_event or (txn.parent.inbound_event if txn.parent_id else None)
    if event is not None:
        return event.system
    slug = txn.input.get("source_system")
    system = ConnectedSystem.objects.filter(slug=slug).first() if slug else None
    if system is None:
        raise InvalidCommand(
            "This transaction does not say which system its data came from.",
            technical="no inbound event and no 'source_system' in the input",
        )
    return system


def by_xref(system: ConnectedSystem, object_type: str, external_id, *, required: bool = True, what: str = ""):
    """The canonical record that `system` calls `external_id`, or None / a mapping error naming what is missing."""
    model = model_for(object_type)
    pk = canonical_id_for(system=system, object_type=object_type, external_id=str(external_id)) if external_id else None
    record = model.objects.filter(pk=pk).first() if pk else None
    if record is None and required:
        label = what or BusinessObject(object_type).label.lower()
        raise MappingError(
            f"{system.name} {label} '{external_id}' is not known to the console.",
            fix=f"Make sure the {label} was created through the console (or add a cross-reference from "
            f"{system.name} ID '{external_id}' to the right record), then re-run.",
            context={"system": system.slug, "object_type": object_type, "external_id": str(external_id)},
        )
    return record
