"""The preview of a source profile on a sample delivery, for stewards (the mapping admin and API).

Samples are whole deliveries: when the spec names its `delivery` scheme the sample is cut into events with
`split_delivery` exactly as the inbound endpoint cuts a real delivery, and the profile is applied to each event
the way the sync layer applies it (with a pasted fetched document standing in for the source system). A preview
never writes: everything runs in a transaction that is always rolled back.
"""

import datetime
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.errors import BusinessError
from apps.mapping.profiles.engine import apply_profile, profile_matches
from apps.mapping.profiles.validation import validate_spec

from .envelopes import DeliveredEvent, UnreadableDelivery, split_delivery

COUNTS = ("commands", "skipped", "needs_fetch", "errors")


def profile_preview(*, spec: Any, payload: Any, fetched: Any = None, on: datetime.date | None = None) -> dict:
    """The events of a sample delivery and, per event, the commands, skips, fetch requests and errors (JSON-safe).

    `fetched` is a fetched document ({"deal": {...}, "company": {...}}) used for every fetch request, or a
    mapping of fetch keys ("deal:18334623104") to documents.
    """
    on = on or timezone.localdate()
    problems = validate_spec(spec)
    report = {
        "valid_profile": not problems,
        "profile_problems": problems,
        "on": on.isoformat(),
        "delivery": (spec.get("delivery") or "") if isinstance(spec, Mapping) else "",
        "delivery_problem": None,
        "events": [],
        "totals": {"events": 0, **dict.fromkeys(COUNTS, 0)},
    }
    if problems:
        return report
    try:
        events = _events(spec, payload)
    except UnreadableDelivery as exc:
        report["delivery_problem"] = {"message": exc.message, "fix": exc.fix, "technical": exc.technical}
        return report
    with transaction.atomic():
        report["events"] = [_preview_event(spec, event, fetched, on) for event in events]
        transaction.set_rollback(True)  # value-map lookups only read, but a preview must never write
    report["totals"]["events"] = len(report["events"])
    for name in COUNTS:
        report["totals"][name] = sum(len(event[name]) for event in report["events"])
    return report


def _events(spec: Mapping, payload: Any) -> list[DeliveredEvent]:
    if not spec.get("delivery"):
        return [DeliveredEvent(event_type="", idempotency_key="", payload=payload)]
    return split_delivery(spec["delivery"], payload)


def _preview_event(spec: Mapping, event: DeliveredEvent, fetched: Any, on: datetime.date) -> dict:
    entry = {
        "position": event.position,
        "event_type": event.event_type,
        "idempotency_key": event.idempotency_key,
        "vendor_event_id": event.vendor_event_id,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
        "read_by_profile": True,
        "note": "",
        "fetched_keys": [],
        **{name: [] for name in COUNTS},
    }
    if not spec.get("delivery"):
        entry["note"] = "The profile names no delivery format, so the whole sample is read as one event."
    elif not profile_matches(
        spec, vendor=spec["vendor"], event_type=event.event_type, schema_version=event.schema_version
    ):
        entry["read_by_profile"] = False
        version = f" (schema version '{event.schema_version}')" if event.schema_version else ""
        entry["note"] = (
            f"This is a '{event.event_type}' event{version}; the profile reads {', '.join(spec['event_types'])}"
            f"{' at schema version ' + repr(spec['schema_version']) if spec.get('schema_version') else ''}, "
            "so inbound would not read this event with it."
        )
        return entry
    options = {"source_event_id": event.idempotency_key, "occurred_at": event.occurred_at}
    try:
        result = apply_profile(spec, event.payload, None, on, **options)
        if result.needs_fetch and fetched is not None:
            documents = _fetched_for(result.needs_fetch, fetched)
            entry["fetched_keys"] = sorted(documents)
            result = apply_profile(spec, event.payload, documents, on, **options)
    except BusinessError as exc:
        entry["errors"] = [{"message": exc.message, "fix": exc.fix, "field": "", "path": "", "location": ""}]
        return entry
    entry.update(result.as_dict())
    return entry


def _fetched_for(requests, fetched: Any) -> dict:
    """Documents by fetch key: the caller's own keys when it used them, else the one document for every request."""
    keys = [request.key for request in requests]
    if isinstance(fetched, Mapping) and any(key in fetched for key in keys):
        return {key: fetched[key] for key in keys if key in fetched}
    return dict.fromkeys(keys, fetched)
