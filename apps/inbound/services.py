"""Accepting deliveries: verify, store the raw delivery and its events exactly once, and say so.

Everything a delivery carries is written in one short database transaction, so once the sender has
its 202 the work cannot be lost. Inbound knows nothing of what happens next: it sends `events_stored`
(`apps.inbound.signals`), and the ledger picks the stored events up after the commit (or its sweep
does, if that message is lost). Duplicates are caught by the unique (system, key) constraint, not by
a read-then-write check, so fifty simultaneous copies still make one event.
"""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, router, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.context import get_correlation_id, new_correlation_id, system_context
from apps.mapping.services import profiles_for_system
from apps.systems import secrets as secret_refs
from apps.systems.models import ConnectedSystem, SigningScheme

from . import onestatement, signatures
from .envelopes import DeliveredEvent, UnreadableDelivery, split_delivery
from .models import Delivery, InboundEvent, RejectionTally
from .signals import events_stored

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"
SENSITIVE_HEADERS = {
    "authorization",
    "cookie",
    "proxy-authorization",
    "x-hubspot-signature",
    "x-hubspot-signature-v3",
    "webhook-signature",
    "stripe-signature",
    "x-api-key",
    "x-webhook-secret",
    "x-chargebee-signature",
}

# How each vendor wraps its events (the envelope), whatever scheme signs the request.
VENDOR_DELIVERY = {
    "salesforce": "salesforce",
    "certinia": "salesforce",  # Certinia (FinancialForce) runs on Salesforce: same change-event envelope
    "hubspot": "hubspot",
    "stripe": "stripe",
    "chargebee": "chargebee",
    "business-central": "microsoft-graph",
    "dynamics365": "microsoft-graph",
    "microsoft": "microsoft-graph",
    "bamboohr": "bamboohr",
    "kantata": "kantata",
    "netsuite": "netsuite",
}


def delivery_scheme_for(system: ConnectedSystem) -> str:
    """The envelope format of a system's deliveries (how to cut them into events).

    The system's own source profiles say it (their `delivery`); the vendor table covers systems whose
    profiles disagree or are not loaded yet.
    """
    declared = {profile.spec.get("delivery") for profile in profiles_for_system(system)} - {None, ""}
    if len(declared) == 1:
        return declared.pop()
    if system.vendor in VENDOR_DELIVERY:
        return VENDOR_DELIVERY[system.vendor]
    if system.inbound_scheme == SigningScheme.STANDARD_WEBHOOKS:
        return "standard-webhooks"
    return "generic"


def redact_headers(headers) -> dict:
    return {
        name: (REDACTED if name.lower() in SENSITIVE_HEADERS else value)
        for name, value in headers.items()
        if name.lower() != "content-length"
    }


@dataclass
class Received:
    """What the sender is told: one entry per event, new or a repeat."""

    delivery: Delivery
    events: list[dict] = field(default_factory=list)

    @property
    def all_duplicates(self) -> bool:
        return bool(self.events) and all(item["duplicate"] for item in self.events)


def active_secrets(system: ConnectedSystem) -> list[signatures.Secret]:
    """The system's active secrets, resolved now; unresolvable ones are logged and left out."""
    resolved = []
    for secret in system.active_signing_secrets():
        try:
            resolved.append(signatures.Secret(secret.label, secret_refs.resolve(secret.reference)))
        except secret_refs.SecretUnavailable as exc:
            logger.error("Signing secret '%s' of %s is unavailable: %s", secret.label, system.slug, exc.message)
    return resolved


def rejection_tally(*, system, code: str, request_meta: dict, reason: str) -> int:
    """Count one refusal in its (system, reason, hour) row; the count so far this hour."""
    now = request_meta.get("received_at") or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    code = (code or "refused")[:64]
    with transaction.atomic():
        tally, created = RejectionTally.objects.get_or_create(
            system=system, hour=hour, reason=code, defaults={"first_at": now, "last_at": now}
        )
        RejectionTally.objects.filter(pk=tally.pk).update(
            count=F("count") + 1, last_at=now, last_remote_addr=request_meta.get("remote_addr"), last_detail=reason
        )
        return RejectionTally.objects.values_list("count", flat=True).get(pk=tally.pk)


def record_rejection(
    *,
    system,
    request_meta: dict,
    reason: str,
    body: bytes | None = None,
    kind=Delivery.Kind.WEBHOOK,
    code: str = "refused",
):
    """Keep a trace of a refused delivery (the body only if it was authentic) for the integration admin.

    Every refusal is counted (`RejectionTally`); only the first INBOUND_REJECTED_KEEP_PER_HOUR of a system,
    reason and hour are kept as delivery rows, so a flood of bad requests cannot fill the disk. None beyond that.
    """
    seen = rejection_tally(system=system, code=code, request_meta=request_meta, reason=reason)
    if seen > getattr(settings, "INBOUND_REJECTED_KEEP_PER_HOUR", 50):
        return None
    with system_context(f"Refused delivery from {system.slug}: {reason[:120]}"):
        return Delivery.objects.create(
            system=system,
            kind=kind,
            status=Delivery.Status.REJECTED,
            body=body or b"",
            body_sha256=Delivery.digest(body) if body else "",
            rejection=reason,
            correlation_id=get_correlation_id() or new_correlation_id(),
            **request_meta,
        )


def accepted_delivery(
    *, system, kind, request_meta: dict, verification, body: bytes, correlation_id: str, **counts
) -> Delivery:
    """Store a verified delivery, raw body and all (the first write of every accepted request)."""
    return Delivery.objects.create(
        **counts, **_accepted_values(system, kind, request_meta, verification, body, correlation_id)
    )


def _accepted_values(system, kind, request_meta: dict, verification, body: bytes, correlation_id: str) -> dict:
    return {
        "system": system,
        "kind": kind,
        "status": Delivery.Status.ACCEPTED,
        "body": body,
        "body_sha256": Delivery.digest(body),
        "verified": True,
        "scheme": verification.scheme,
        "secret_label": verification.secret_label,
        "signed_at": verification.signed_at,
        "correlation_id": correlation_id,
        **request_meta,
    }


def receive_webhook(
    *,
    system: ConnectedSystem,
    request_meta: dict,
    verification: signatures.Verification,
    body: bytes,
    headers,
    delivery_scheme: str | None = None,
) -> Received:
    """Split a verified delivery into events and store it all; the new events are announced with `events_stored`.

    On PostgreSQL the delivery, its events, their history rows and the pick-up message are one statement
    (`apps.inbound.onestatement`). Elsewhere it is one INSERT of the delivery and one per event (each with
    its history row) in one commit; the delivery is updated again only when some of its events are repeats.
    """
    try:
        events = split_delivery(delivery_scheme or delivery_scheme_for(system), body, headers=dict(headers))
    except UnreadableDelivery as exc:
        record_rejection(system=system, request_meta=request_meta, reason=exc.message, body=body, code="unreadable")
        raise
    correlation_id = get_correlation_id() or new_correlation_id()
    using = router.db_for_write(Delivery)
    if events and onestatement.available(using):
        with system_context(f"Webhook from {system.name}", correlation_id=correlation_id):
            delivery = Delivery(
                **_accepted_values(system, Delivery.Kind.WEBHOOK, request_meta, verification, body, correlation_id)
            )
            answers = onestatement.store(
                system=system, delivery=delivery, events=events, correlation_id=correlation_id, using=using
            )
        return Received(delivery, answers)
    with system_context(f"Webhook from {system.name}", correlation_id=correlation_id), transaction.atomic():
        delivery = accepted_delivery(
            system=system,
            kind=Delivery.Kind.WEBHOOK,
            request_meta=request_meta,
            verification=verification,
            body=body,
            correlation_id=correlation_id,
            event_count=len(events),
        )
        received = Received(delivery)
        for event in events:
            stored, duplicate = _store_event(delivery, system, event, correlation_id)
            received.events.append(
                {
                    "event_id": stored.pk,
                    "event_type": stored.event_type,
                    "status": stored.status,
                    "duplicate": duplicate,
                }
            )
        duplicates = sum(1 for item in received.events if item["duplicate"])
        if duplicates:
            delivery.duplicate_count = duplicates
            if received.all_duplicates:
                delivery.status = Delivery.Status.DUPLICATE
            delivery.save(update_fields=["duplicate_count", "status", "updated_at"])
        if delivery.event_count > delivery.duplicate_count:
            events_stored.send(sender=Delivery, delivery=delivery)
    return received


def _store_event(delivery, system, event: DeliveredEvent, correlation_id) -> tuple[InboundEvent, bool]:
    """Insert the event, or find the one that already holds its key (also when another request holds it now).

    The unique (system, key) constraint decides, not a read beforehand: new events, the common case, cost
    one INSERT; a repeat costs the failed INSERT, rolled back to its savepoint, and one read.
    """
    key = event.idempotency_key[:255]
    try:
        with transaction.atomic():
            return (
                InboundEvent.objects.create(
                    delivery=delivery,
                    system=system,
                    idempotency_key=key,
                    vendor_event_id=event.vendor_event_id[:255],
                    event_type=event.event_type[:120],
                    schema_version=event.schema_version[:40],
                    position=event.position,
                    occurred_at=event.occurred_at,
                    payload=event.payload,
                    correlation_id=correlation_id,
                ),
                False,
            )
    except IntegrityError:
        # Received before (or a concurrent request inserted it first); ours rolled back to the savepoint.
        return InboundEvent.objects.get(system=system, idempotency_key=key), True
