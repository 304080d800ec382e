"""What stewards need beside the profile engine: spec checks, the preview, version history.

Shared by the admin pages and the API. Samples are whole deliveries: when the spec names its `delivery`
scheme the sample is cut into events with `split_delivery` exactly as the inbound endpoint cuts a real
delivery, and the profile is applied to each event the way the sync layer applies it (with a pasted
fetched document standing in for the source system). A preview never writes: everything runs in a
transaction that is always rolled back.
"""

import datetime
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.errors import BusinessError
from apps.mapping.models import SourceProfile
from apps.mapping.profiles import (
    MAPPING_KEYS,
    OPERATORS,
    SPEC_KEYS,
    DeliveredEvent,
    UnreadableDelivery,
    apply_profile,
    profile_matches,
    split_delivery,
    validate_spec,
)

COUNTS = ("commands", "skipped", "needs_fetch", "errors")
# How a spec reads best: its settings in the documented order, a command's type first, a mapping's path first.
INNER_ORDER = tuple(
    dict.fromkeys(
        ("type", *MAPPING_KEYS, *OPERATORS, "ignore_case", "description", "object", "id", "occurred_at")
        + ("params", "include", "each", "when", "all", "any", "not", "fields")
    )
)


def readable_spec(spec: Any) -> Any:
    """The spec with its keys in reading order, the same whichever database stored it (PostgreSQL reorders them)."""
    return _ordered(spec, SPEC_KEYS)


NAMED_CHILDREN = ("fields", "map", "params")  # their keys are names (canonical fields, vendor values), not settings


def _ordered(value: Any, order: tuple[str, ...]) -> Any:
    if isinstance(value, Mapping):
        rank = {key: index for index, key in enumerate(order)}
        keys = sorted(value, key=lambda key: (rank.get(key, len(rank)), str(key)))
        return {key: _ordered(value[key], () if key in NAMED_CHILDREN else INNER_ORDER) for key in keys}
    if isinstance(value, list):
        return [_ordered(item, INNER_ORDER) for item in value]
    return value


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


def command_rows(data: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    """A command's data as (field, value) rows for a table; list fields become `lines[0].amount` rows."""
    rows = []
    for name, value in data.items():
        label = f"{prefix}{name}"
        if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            for index, item in enumerate(value):
                rows.extend(command_rows(item, f"{label}[{index}]."))
        elif isinstance(value, bool):
            rows.append((label, "true" if value else "false"))
        else:
            rows.append((label, "" if value is None else str(value)))
    return rows


def profile_versions(profile: SourceProfile) -> list[tuple[SourceProfile, object]]:
    """Every version of the profile's name, newest first, each with its last history row (when, who, why)."""
    versions = list(SourceProfile.objects.filter(name=profile.name).order_by("-version"))
    last_change = {}
    rows = SourceProfile.history.filter(id__in=[version.pk for version in versions]).select_related("history_user")
    for row in rows.order_by("-history_date", "-history_id"):
        last_change.setdefault(row.id, row)
    return [(version, last_change.get(version.pk)) for version in versions]
