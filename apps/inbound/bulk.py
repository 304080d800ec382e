"""Month-end bulk ingestion: thousands of approved time or expense records in one upload.

Each record is checked on its own; valid ones are stored with bulk writes (COPY on PostgreSQL), ~1,000 at a
time as an NDJSON body is read line by line, and announced with
`events_stored` (the ledger bills them in chunks of ~1,000 records per transaction), invalid ones are
reported by position and never block the rest.
"""

import datetime
import hashlib
import io
import json
import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from apps.core.context import get_correlation_id, new_correlation_id, system_context
from apps.core.history import copy_create_new_tracked, copy_create_tracked
from apps.core.money import MINOR_UNITS
from apps.systems.models import ConnectedSystem

from .models import Delivery, InboundEvent
from .signals import events_stored

CHUNK = getattr(settings, "INBOUND_BULK_CHUNK", 1000)
MAX_REPORTED_ERRORS = 1000
BODY_PART = 1 << 20  # how much of a spooled body is read (and its pages given back) at a time
KEPT_REFUSED_BODY_BYTES = 1 << 20  # a refused upload's body is kept for diagnosis up to this size

RECORD_TYPES = {
    "time_entry": {
        "command": "time_entry.approved",
        "key": "time_entry_external_id",
        "required": ("time_entry_external_id", "resource_external_id", "project_external_id", "work_date", "hours"),
    },
    "expense": {
        "command": "expense.approved",
        "key": "expense_external_id",
        "required": (
            "expense_external_id",
            "resource_external_id",
            "project_external_id",
            "incurred_on",
            "category",
            "amount",
            "currency",
        ),
    },
}
TEXT_LIMITS = {"description": 500, "role": 80, "category": 60}


class BulkRefused(Exception):
    """The upload as a whole cannot be read (not the records in it)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class BulkReport:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0
    delivery: Delivery | None = None

    def refuse(self, position: int, problems: list[str]) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"position": position, "errors": problems})

    def as_dict(self) -> dict:
        return {
            "delivery_id": self.delivery.pk if self.delivery else None,
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.error_count,
            "errors": self.errors,
            "errors_truncated": self.error_count > len(self.errors),
        }


NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")


def parse_records(body: bytes, content_type: str) -> list:
    """A JSON array or NDJSON; a malformed NDJSON line becomes an error at its position, not a refusal."""
    text = body.decode("utf-8-sig", errors="strict") if body else ""
    if content_type in NDJSON_TYPES:
        records = []
        for number, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                records.append(_Unparsable(f"line {number + 1} is not JSON: {exc.msg}"))
        return records
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BulkRefused(
            400, f"The body is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
        ) from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list):
        raise BulkRefused(400, "Send a JSON array of records (or an object with a 'records' array), or NDJSON.")
    return data


@dataclass(frozen=True)
class _Unparsable:
    problem: str


def _check(record, record_type: str | None) -> tuple[str, dict, list[str]]:
    """(record type, cleaned record, problems) for one record."""
    if isinstance(record, _Unparsable):
        return "", {}, [record.problem]
    if not isinstance(record, dict):
        return "", {}, ["the record is not a JSON object"]
    kind = str(record.get("record_type") or record_type or "")
    if kind not in RECORD_TYPES:
        return kind, {}, [f"record_type '{kind}' is not one of: {', '.join(RECORD_TYPES)}"]
    spec = RECORD_TYPES[kind]
    problems = [f"{name}: is required" for name in spec["required"] if record.get(name) in (None, "")]
    clean = {key: value for key, value in record.items() if key != "record_type"}
    for name in ("work_date", "incurred_on"):
        if record.get(name) not in (None, ""):
            try:
                datetime.date.fromisoformat(str(record[name]))
            except ValueError:
                problems.append(f"{name}: '{record[name]}' is not a date (YYYY-MM-DD)")
    if record.get("hours") not in (None, ""):
        hours = _decimal(record["hours"])
        if hours is None or not (0 < hours <= 24):
            problems.append(f"hours: '{record['hours']}' must be a number above 0 and at most 24")
    if record.get("amount") not in (None, ""):
        amount = _decimal(record["amount"])
        if amount is None or amount <= 0:
            problems.append(f"amount: '{record['amount']}' must be a positive number")
    if record.get("currency") not in (None, "") and record["currency"] not in MINOR_UNITS:
        problems.append(f"currency: '{record['currency']}' is not an ISO 4217 code the console supports")
    if "billable" in record and not isinstance(record["billable"], bool):
        problems.append("billable: must be true or false")
    for name, limit in TEXT_LIMITS.items():
        if isinstance(record.get(name), str) and len(record[name]) > limit:
            problems.append(f"{name}: longer than {limit} characters")
    for name in ("time_entry_external_id", "expense_external_id", "resource_external_id", "project_external_id"):
        if isinstance(record.get(name), dict | list):
            problems.append(f"{name}: must be text or a number")
    return kind, clean, problems


def _decimal(value) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


class _Release:
    """Give back the pages of a memory-mapped body once read: a file-backed page counts in the worker's RSS
    until the map lets it go, so reading a 230 MB upload through a map would otherwise hold 230 MB."""

    def __init__(self, body):
        self.body = body if isinstance(body, mmap.mmap) else None
        self.done = 0

    def upto(self, offset: int) -> None:
        if self.body is None:
            return
        offset = min(offset, len(self.body))
        end = offset - offset % mmap.PAGESIZE
        if end > self.done:
            self.body.madvise(mmap.MADV_DONTNEED, self.done, end - self.done)
            self.done = end


def _digest(body) -> str:
    """Delivery.digest, read 1 MB at a time from a memory-mapped body (its pages given back as it goes)."""
    if not isinstance(body, mmap.mmap):
        return Delivery.digest(body)
    digest, release = hashlib.sha256(), _Release(body)
    for start in range(0, len(body), BODY_PART):
        digest.update(body[start : start + BODY_PART])
        release.upto(start + BODY_PART)
    release.upto(len(body))
    return digest.hexdigest()


def _lines(body) -> Iterator[bytes]:
    """The lines of an NDJSON body, one at a time (the body may be a memory map of a spooled upload)."""
    if isinstance(body, bytes | bytearray):
        yield from io.BytesIO(body)
        return
    body.seek(0)
    release = _Release(body)
    for number, line in enumerate(iter(body.readline, b"")):
        yield line
        if number % 1000 == 999:
            release.upto(body.tell())
    release.upto(len(body))


def iter_records(body, content_type: str) -> Iterator:
    """The records of an upload one by one: NDJSON is read line by line (constant memory), a JSON array whole."""
    if content_type not in NDJSON_TYPES:
        yield from parse_records(bytes(body), content_type)
        return
    for number, raw in enumerate(_lines(body)):
        if number == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        line = raw.decode("utf-8")  # strict: a body that is not UTF-8 is refused whole, as before
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as exc:
            yield _Unparsable(f"line {number + 1} is not JSON: {exc.msg}")


def receive_bulk(
    *,
    system: ConnectedSystem,
    request_meta: dict,
    verification,
    body,
    content_type: str,
    record_type: str | None,
) -> BulkReport:
    """Check every record, store the valid ones chunk by chunk, and queue them in ledger chunks.

    `body` is bytes or a memory map of the spooled upload; NDJSON is never held whole in memory (the records
    are read, checked and written ~1,000 at a time, in one database transaction, so the 202 still means every
    accepted record and the raw body are committed).
    """
    for attempt in (1, 2):
        try:
            return _store(system, request_meta, verification, body, content_type, record_type)
        except IntegrityError:
            # Another upload stored some of the same records between our check and our insert: check again.
            if attempt == 2:
                raise BulkRefused(
                    409, "Another upload with the same records is being stored right now; retry it."
                ) from None
    raise AssertionError("unreachable")


def _inline_body(body) -> bool:
    """Whether the raw body is written with the delivery row (else it is assembled by the database)."""
    return connection.vendor != "postgresql" or len(body) <= getattr(
        settings, "INBOUND_BULK_INLINE_BODY_BYTES", 1 << 20
    )


def _store(system, request_meta, verification, body, content_type, record_type) -> BulkReport:
    correlation_id = get_correlation_id() or new_correlation_id()
    limit = getattr(settings, "INBOUND_BULK_MAX_RECORDS", 100_000)
    inline = _inline_body(body)
    with system_context(f"Bulk upload from {system.name}", correlation_id=correlation_id), transaction.atomic():
        delivery = Delivery.objects.create(
            system=system,
            kind=Delivery.Kind.BULK,
            status=Delivery.Status.ACCEPTED,
            body=bytes(body) if inline else b"",
            body_sha256=_digest(body),
            verified=True,
            scheme=verification.scheme,
            secret_label=verification.secret_label,
            signed_at=verification.signed_at,
            correlation_id=correlation_id,
            **request_meta,
        )
        report = BulkReport(delivery=delivery)
        pending: list[tuple[int, str, dict]] = []
        for position, record in enumerate(iter_records(body, content_type)):
            if position >= limit:
                raise BulkRefused(
                    413, f"The upload has more than {limit} records; at most {limit} are accepted at once."
                )
            report.received += 1
            kind, clean, problems = _check(record, record_type)
            if problems:
                report.refuse(position, problems)
                continue
            pending.append((position, kind, clean))
            if len(pending) >= CHUNK:
                _write_chunk(system, delivery, correlation_id, pending, report)
                pending = []
        _write_chunk(system, delivery, correlation_id, pending, report)
        delivery.event_count = report.accepted + report.duplicates  # every valid record it carried, as for webhooks
        delivery.duplicate_count = report.duplicates
        delivery.error_count = report.error_count
        if not report.accepted and report.duplicates and not report.error_count:
            delivery.status = Delivery.Status.DUPLICATE
        delivery.save()
        if not inline:
            _store_body(delivery, body)
        if report.accepted:
            events_stored.send(sender=Delivery, delivery=delivery)
    return report


def _write_chunk(system, delivery, correlation_id, pending, report: BulkReport) -> None:
    """Store one chunk's new records; a record already stored (by an earlier upload or chunk) is a duplicate."""
    by_key: dict[str, tuple[int, str, dict]] = {}
    for position, kind, clean in pending:
        key = f"{kind}:{clean[RECORD_TYPES[kind]['key']]}"
        if key in by_key:
            report.duplicates += 1
        else:
            by_key[key] = (position, kind, clean)
    if not by_key:
        return
    if connection.vendor == "postgresql":  # the unique index sorts new from stored, in one statement
        events = copy_create_new_tracked(
            InboundEvent,
            [_event(delivery, system, correlation_id, key, *item) for key, item in by_key.items()],
            unique=("system", "idempotency_key"),
        )
        report.accepted += len(events)
        report.duplicates += len(by_key) - len(events)
        return
    existing = set(
        InboundEvent.objects.filter(system=system, idempotency_key__in=[key[:255] for key in by_key]).values_list(
            "idempotency_key", flat=True
        )
    )
    fresh = [(item, key) for key, item in by_key.items() if key[:255] not in existing]
    report.duplicates += len(by_key) - len(fresh)
    events = copy_create_tracked(
        InboundEvent, [_event(delivery, system, correlation_id, key, *item) for item, key in fresh]
    )
    report.accepted += len(events)


def _event(delivery, system, correlation_id, key, position, kind, clean) -> InboundEvent:
    external_id = str(clean[RECORD_TYPES[kind]["key"]])
    return InboundEvent(
        delivery=delivery,
        system=system,
        idempotency_key=key[:255],
        vendor_event_id=external_id[:255],
        event_type=RECORD_TYPES[kind]["command"],
        position=position,
        payload=clean,
        status=InboundEvent.Status.MAPPED,
        correlation_id=correlation_id,
        commands=[{"type": RECORD_TYPES[kind]["command"], "data": clean, "source_event_id": external_id}],
    )


def _store_body(delivery: Delivery, body) -> None:
    """PostgreSQL: stream the raw body to the server in 1 MB parts and let it join them into the delivery row.

    The body is never one Python object (or one escaped SQL literal) in the web process. The body column is
    not tracked by history (it never changes after it is stored), so this write records none.
    """
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS inbound_bulk_body_part (seq integer, data bytea)")
        cursor.execute("TRUNCATE inbound_bulk_body_part")
        release = _Release(body)
        with cursor.cursor.copy("COPY inbound_bulk_body_part (seq, data) FROM STDIN") as copy:
            for seq, start in enumerate(range(0, len(body), BODY_PART)):
                copy.write_row((seq, bytes(body[start : start + BODY_PART])))
                release.upto(start + BODY_PART)
        release.upto(len(body))
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)} SET body = "  # noqa: S608 (model metadata)
            "(SELECT string_agg(data, ''::bytea ORDER BY seq) FROM inbound_bulk_body_part) WHERE id = %s",
            [delivery.pk],
        )
        cursor.execute("TRUNCATE inbound_bulk_body_part")
