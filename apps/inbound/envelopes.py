"""Cutting one raw webhook delivery into events, per vendor envelope, each with the idempotency key it is
deduplicated on: `split_delivery(scheme, body, headers=...)`.

The envelope names are also data in apps.mapping.profiles.catalogue.DELIVERY_SCHEMES (a profile's `delivery`);
tests/inbound/test_envelopes.py keeps the two lists equal.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.core.errors import MappingError
from apps.mapping.profiles.values import BadValue, as_datetime, as_number, jsonable


class UnreadableDelivery(MappingError):
    """A delivery whose body cannot be cut into events (not JSON, or not the vendor's envelope)."""

    code = "unreadable_delivery"


@dataclass(frozen=True)
class DeliveredEvent:
    """One event of a delivery: its type, the key it is deduplicated on, and its part of the body."""

    event_type: str
    idempotency_key: str
    payload: Any
    vendor_event_id: str = ""
    schema_version: str = ""
    occurred_at: datetime.datetime | None = None
    position: int = 0


def canonical_hash(value: Any) -> str:
    """SHA-256 of an event in canonical JSON (sorted keys, no spaces, UTF-8), for vendors that send no event ID."""
    text = json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_delivery(scheme: str, body: Any, *, headers: Mapping[str, str] | None = None) -> list[DeliveredEvent]:
    """Cut one delivery into events with their idempotency keys; raises UnreadableDelivery for a body it cannot read.

    `body` is the raw bytes/text or the already-parsed JSON. `scheme` is the vendor's delivery format, one of
    DELIVERY_SCHEMES.
    """
    splitter = SPLITTERS.get(scheme)
    if splitter is None:
        raise ValueError(f"Unknown delivery scheme {scheme!r}; expected one of {', '.join(DELIVERY_SCHEMES)}.")
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UnreadableDelivery(
                "The delivery is not valid JSON, so its events cannot be read.",
                fix="Ask the sender to post JSON (Content-Type: application/json).",
                technical=str(exc),
            ) from None
    lowered = {str(key).lower(): str(value) for key, value in (headers or {}).items()}
    try:
        events = splitter(body, lowered)
    except (AttributeError, KeyError, TypeError, IndexError) as exc:
        raise UnreadableDelivery(
            f"The delivery does not have the shape a {scheme} delivery has, so its events cannot be read.",
            fix="Check that the connected system's delivery scheme matches what the vendor sends.",
            technical=f"{type(exc).__name__}: {exc}",
        ) from None
    keys = [event.idempotency_key for event in events]
    # Two events of one delivery with the same key are one event delivered twice; keep the first.
    unique = [event for index, event in enumerate(events) if event.idempotency_key not in keys[:index]]
    return [dataclasses.replace(event, position=position) for position, event in enumerate(unique)]


def _as_list(body: Any) -> list:
    return body if isinstance(body, list) else [body]


def _epoch(value: Any, *, millis: bool = False) -> datetime.datetime | None:
    number = as_number(value)
    if number is None:
        return None
    try:
        return datetime.datetime.fromtimestamp(float(number / 1000 if millis else number), tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _iso(value: Any) -> datetime.datetime | None:
    try:
        return as_datetime(value, {})
    except BadValue:
        return None


def _split_standard_webhooks(body, headers) -> list[DeliveredEvent]:
    webhook_id = headers.get("webhook-id", "")
    key = f"webhook-id:{webhook_id}" if webhook_id else f"sha256:{canonical_hash(body)}"
    occurred = _epoch(headers.get("webhook-timestamp")) or _iso(body.get("timestamp"))
    return [DeliveredEvent(str(body.get("type", "")), key, body, webhook_id, "", occurred)]


def _split_stripe(body, headers) -> list[DeliveredEvent]:
    return [
        DeliveredEvent(
            body["type"],
            f"stripe:{body['id']}",
            body,
            body["id"],
            str(body.get("api_version") or ""),
            _epoch(body.get("created")),
        )
    ]


def _split_chargebee(body, headers) -> list[DeliveredEvent]:
    return [
        DeliveredEvent(
            body["event_type"],
            f"chargebee:{body['id']}",
            body,
            body["id"],
            str(body.get("api_version") or ""),
            _epoch(body.get("occurred_at")),
        )
    ]


HUBSPOT_KEY_FIELDS = (
    "portalId", "subscriptionType", "objectTypeId", "objectId", "occurredAt", "eventId", "propertyName",
    "propertyValue", "changeFlag", "associationType", "fromObjectId", "toObjectId", "primaryObjectId",
    "mergedObjectIds",
)  # fmt: skip


def _split_hubspot(body, headers) -> list[DeliveredEvent]:
    # HubSpot documents eventId as "not guaranteed to be unique", and a retry repeats the event with a higher
    # attemptNumber, so the key is a hash of what identifies the change itself, never the attempt.
    events = []
    for event in _as_list(body):
        composite = {name: event[name] for name in HUBSPOT_KEY_FIELDS if name in event}
        events.append(
            DeliveredEvent(
                event["subscriptionType"],
                f"hubspot:{canonical_hash(composite)}",
                event,
                str(event.get("eventId", "")),
                "",
                _epoch(event.get("occurredAt"), millis=True),
            )
        )
    return events


def _split_salesforce(body, headers) -> list[DeliveredEvent]:
    if isinstance(body, Mapping) and isinstance(body.get("events"), list):
        return [_salesforce_pubsub_event(body, event) for event in body["events"]]
    return [_salesforce_cometd_event(message) for message in _as_list(body)]


def _salesforce_cometd_event(message: Mapping) -> DeliveredEvent:
    data = message.get("data", message) if "payload" not in message else message
    payload, event = data["payload"], data.get("event", {})
    channel = str(message.get("channel", ""))
    replay_id = str(event.get("replayId", ""))
    header = payload.get("ChangeEventHeader")
    if header is not None:
        event_type = _salesforce_change_event_type(channel, header)
        key, vendor_id = _salesforce_change_key(header, channel, replay_id, message)
        occurred = _epoch(header.get("commitTimestamp"), millis=True)
    else:
        event_type = channel.rsplit("/", 1)[-1] or str(data.get("schema", ""))
        uuid = event.get("EventUuid") or payload.get("EventUuid")
        key, vendor_id = _salesforce_platform_key(uuid, channel, replay_id, message)
        occurred = _iso(payload.get("CreatedDate"))
    return DeliveredEvent(event_type, key, message, vendor_id, "", occurred)


def _salesforce_pubsub_event(response: Mapping, consumer_event: Mapping) -> DeliveredEvent:
    topic = str(response.get("topic_name", ""))
    producer = consumer_event["event"]
    payload = producer["payload"]
    replay_id = str(consumer_event.get("replay_id", ""))
    part = {"topic_name": topic, **consumer_event}
    header = payload.get("ChangeEventHeader")
    if header is not None:
        event_type = _salesforce_change_event_type(topic, header)
        key, vendor_id = _salesforce_change_key(header, topic, replay_id, part)
        occurred = _epoch(header.get("commitTimestamp"), millis=True)
    else:
        event_type = topic.rsplit("/", 1)[-1]
        key, vendor_id = _salesforce_platform_key(producer.get("id"), topic, replay_id, part)
        occurred = _epoch(payload.get("CreatedDate"), millis=True)
    return DeliveredEvent(event_type, key, part, vendor_id, "", occurred)


def _salesforce_change_event_type(channel: str, header: Mapping) -> str:
    name = channel.rsplit("/", 1)[-1]
    if name.endswith("ChangeEvent"):
        return name
    entity = str(header.get("entityName", ""))
    return f"{entity[:-1]}ChangeEvent" if entity.endswith("__c") else f"{entity}ChangeEvent"


def _salesforce_change_key(header: Mapping, channel: str, replay_id: str, part: Any) -> tuple[str, str]:
    transaction, sequence = header.get("transactionKey"), header.get("sequenceNumber")
    if transaction and sequence is not None:
        return f"salesforce:cdc:{transaction}:{sequence}", f"{transaction}:{sequence}"
    if replay_id:
        return f"salesforce:replay:{channel}:{replay_id}", replay_id
    return f"sha256:{canonical_hash(part)}", ""


def _salesforce_platform_key(uuid: Any, channel: str, replay_id: str, part: Any) -> tuple[str, str]:
    if uuid:
        return f"salesforce:event:{uuid}", str(uuid)
    if replay_id:
        return f"salesforce:replay:{channel}:{replay_id}", replay_id
    return f"sha256:{canonical_hash(part)}", ""


def _split_microsoft_graph(body, headers) -> list[DeliveredEvent]:
    events = []
    for notification in body["value"]:
        resource = str(notification.get("resource", ""))
        segments = [segment for segment in resource.split("/") if segment]
        entity_set = segments[-1].split("(", 1)[0] if segments else ""
        version = next((segment for segment in segments if re.fullmatch(r"v\d+(\.\d+)?|beta", segment)), "")
        event_type = f"{entity_set}.{notification.get('changeType', '')}"
        events.append(
            DeliveredEvent(
                event_type,
                f"sha256:{canonical_hash(notification)}",
                notification,
                "",
                version,
                _iso(notification.get("lastModifiedDateTime")),
            )
        )
    return events


def _split_bamboohr(body, headers) -> list[DeliveredEvent]:
    if "employees" in body:
        return [
            DeliveredEvent(
                f"employee_with_fields.{str(employee.get('action', '')).lower()}",
                f"sha256:{canonical_hash(employee)}",
                employee,
                "",
                "",
                _iso(employee.get("timestamp")),
            )
            for employee in body["employees"]
        ]
    return [DeliveredEvent(body["type"], f"sha256:{canonical_hash(body)}", body, "", "", _iso(body.get("timestamp")))]


def _split_kantata(body, headers) -> list[DeliveredEvent]:
    # An API page: 'results' lists [{key, id}] in order, each object lives under body[key][id]. Each event
    # keeps the side-loaded collections so a profile can follow workspace_id, user_id… to them.
    collections = {key: value for key, value in body.items() if key not in ("count", "meta", "results")}
    events = []
    for reference in body["results"]:
        record = body[reference["key"]][str(reference["id"])]
        changed = record.get("updated_at")
        key = (
            f"kantata:{reference['key']}:{reference['id']}:{changed}" if changed else f"sha256:{canonical_hash(record)}"
        )
        events.append(
            DeliveredEvent(
                reference["key"], key, {"record": record, **collections}, str(reference["id"]), "v1", _iso(changed)
            )
        )
    return events


def _split_netsuite(body, headers) -> list[DeliveredEvent]:
    record = body["record"]
    event_type = f"{body['recordType']}.{body['type']}"
    changed = record.get("lastModifiedDate")
    key = f"netsuite:{body['recordType']}:{body['id']}:{changed}" if changed else f"sha256:{canonical_hash(body)}"
    return [DeliveredEvent(event_type, key, body, str(body["id"]), "", _iso(changed))]


def _split_generic(body, headers) -> list[DeliveredEvent]:
    return [
        DeliveredEvent(
            str(event.get("type", "") if isinstance(event, Mapping) else ""), f"sha256:{canonical_hash(event)}", event
        )
        for event in _as_list(body)
    ]


SPLITTERS = {
    "standard-webhooks": _split_standard_webhooks,
    "stripe": _split_stripe,
    "chargebee": _split_chargebee,
    "hubspot": _split_hubspot,
    "salesforce": _split_salesforce,
    "microsoft-graph": _split_microsoft_graph,
    "bamboohr": _split_bamboohr,
    "kantata": _split_kantata,
    "netsuite": _split_netsuite,
    "generic": _split_generic,
}
DELIVERY_SCHEMES = tuple(SPLITTERS)
