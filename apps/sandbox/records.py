"""Reads and writes of sandbox records shared by the four simulators (called inside their transactions)."""

import datetime
import secrets
import string
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db.models import BigIntegerField, Max
from django.db.models.functions import Cast

from apps.core.history import bulk_create_tracked

from .models import SandboxRecord

ALPHANUMERIC = string.ascii_letters + string.digits
CENT = Decimal("0.01")


def find(kind: str, object_type: str, internal_id: str) -> SandboxRecord | None:
    """The record with this sandbox id, or None."""
    return SandboxRecord.objects.filter(kind=kind, object_type=object_type, internal_id=str(internal_id)).first()


def find_external(kind: str, object_type: str, external_id: str) -> SandboxRecord | None:
    """The record with this caller-given id, or None."""
    if not external_id:
        return None
    return SandboxRecord.objects.filter(kind=kind, object_type=object_type, external_id=str(external_id)).first()


def find_external_many(kind: str, object_type: str, external_ids) -> dict[str, SandboxRecord]:
    """The records with these caller-given ids, by id (one query)."""
    wanted = {str(external_id) for external_id in external_ids if external_id}
    if not wanted:
        return {}
    found = SandboxRecord.objects.filter(kind=kind, object_type=object_type, external_id__in=wanted)
    return {record.external_id: record for record in found}


def create_many(kind: str, object_type: str, rows: list[tuple[dict, str, str]]) -> list[SandboxRecord]:
    """New records from (data, internal id, external id) rows, written set-based with their history rows."""
    return bulk_create_tracked(
        SandboxRecord,
        [
            SandboxRecord(
                kind=kind,
                object_type=object_type,
                internal_id=str(internal_id),
                external_id=external_id or "",
                data=data,
            )
            for data, internal_id, external_id in rows
        ],
    )


def create(kind: str, object_type: str, data: dict, *, internal_id: str, external_id: str | None = None):
    """A new record (its history row says which sandbox call made it)."""
    return SandboxRecord.objects.create(
        kind=kind, object_type=object_type, internal_id=str(internal_id), external_id=external_id or "", data=data
    )


def update(record: SandboxRecord, data: dict, *, external_id: str | None = None) -> bool:
    """Store new data on a record (and a new external id, "" for none); saves only when something changed."""
    external_id = record.external_id if external_id is None else external_id
    if record.data == data and record.external_id == external_id:
        return False
    record.data = data
    record.external_id = external_id
    record.save()
    return True


def next_number(kind: str, object_type: str, *, start: int) -> str:
    """The next numeric id for an object type (callers hold the sandbox's write lock, so no two get the same)."""
    highest = (
        SandboxRecord.objects.filter(kind=kind, object_type=object_type)
        .aggregate(highest=Max(Cast("internal_id", BigIntegerField())))
        .get("highest")
    )
    return str(max(start, (highest or 0) + 1))


def random_id(prefix: str, length: int) -> str:
    """A vendor-looking random id such as 001AbC... or li_9f...."""
    return prefix + "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def page(queryset, *, offset: int, limit: int) -> tuple[list[SandboxRecord], int]:
    """One page of records in creation order, and the total count."""
    total = queryset.count()
    return list(queryset.order_by("id")[offset : offset + limit]), total


def decimal_or_none(value) -> Decimal | None:
    """A JSON number or numeric string as a Decimal (None if it is not one); never goes through float maths."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def json_number(value: Decimal) -> int | float:
    """A Decimal amount as a JSON number, the way the vendors write amounts (1234.5, 1000)."""
    value = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return int(value) if value == value.to_integral_value() else float(value)


def iso_date_or_none(value) -> datetime.date | None:
    """A YYYY-MM-DD string as a date, or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None
