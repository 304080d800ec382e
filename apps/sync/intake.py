"""The ledger picks up what inbound stored: a mapping transaction for each new webhook event, and chunk
transactions of ~1,000 records for a bulk upload.

Inbound stores a delivery and its events in one short database transaction and sends `events_stored`; it
knows nothing of workflows. Once that transaction commits, a worker is asked to pick the delivery up
(`pick_up_delivery`). The sweep picks up any stored event still without its transaction, so once the sender
has its 202 the work cannot be lost: a lost message only delays it. Picking a delivery up twice, or from two
workers at once, starts nothing twice: the delivery row is locked while its transactions are started (SQLite
serialises writers anyway), and the database refuses a second mapping transaction for an event.

Every transaction started here carries the delivery's correlation ID as its root, so the transactions of one
delivery are found with `?correlation_id=<the delivery's>` on the transactions API.
"""

import logging

from django.conf import settings
from django.db import IntegrityError, connection, router, transaction
from django.db.models import CharField, Exists, F, OuterRef, Value
from django.db.models.functions import Cast, Concat

from apps.core.context import system_context
from apps.inbound.models import Delivery, InboundEvent

from .models import Transaction, Workflow
from .queue import enqueue_pickup, pickup_row, send_with_commit
from .services import transaction_start

logger = logging.getLogger(__name__)


def bulk_chunk_size() -> int:
    return getattr(settings, "INBOUND_BULK_CHUNK", 1000)


def bulk_chunk_key(delivery_id: int, chunk: int) -> str:
    """The business key of the transaction that bills one chunk of a bulk upload."""
    return f"bulk:{delivery_id}:{chunk}"


def hand_over_on_commit(sender, delivery: Delivery, **kwargs) -> None:
    """Receiver of `events_stored`: ask a worker to pick the delivery up once it is committed.

    When django-q2's broker is this same database, the message is written in the delivery's own transaction:
    it becomes visible exactly when the delivery does, and the sender's 202 costs one commit, not two. Any
    other broker is sent the message after the commit.
    """
    delivery_id = delivery.pk
    send_with_commit(lambda: enqueue_pickup(delivery_id), using=router.db_for_write(Delivery))


def pick_up_row(sender, system, keys: list[str], using: str, **kwargs) -> dict | None:
    """Receiver of `pick_up_message` (PostgreSQL's one-statement intake): the queue row asking a worker to pick
    the new events up, written by that statement only if one of them is new; None with any other broker (then
    `events_stored` follows the commit, as on the ORM path)."""
    return pickup_row(system.pk, keys, using=using)


def pick_up_events(system_id: int, keys: list[str]) -> list[Transaction]:
    """Start the transactions of the webhook deliveries holding these events (the message of one-statement
    intake names events by key, their delivery's id being unknown when it was written); repeats start nothing."""
    delivery_ids = (
        InboundEvent.objects.filter(system_id=system_id, idempotency_key__in=keys, delivery__kind=Delivery.Kind.WEBHOOK)
        .values_list("delivery_id", flat=True)
        .distinct()
    )
    started = []
    for delivery_id in sorted(set(delivery_ids)):
        started += pick_up_delivery(delivery_id)
    return started


def _mapping_transaction_of(event_ref) -> Exists:
    return Exists(Transaction.objects.filter(inbound_event=event_ref, workflow=Workflow.INBOUND_EVENT))


def _lock(delivery_id: int) -> Delivery | None:
    queryset = Delivery.objects.select_related("system")
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update(of=("self",))
    return queryset.filter(pk=delivery_id, status__in=[Delivery.Status.ACCEPTED, Delivery.Status.DUPLICATE]).first()


def pick_up_delivery(delivery_id: int) -> list[Transaction]:
    """Start the ledger transactions a stored delivery still needs; returns those started (none when done)."""
    with transaction.atomic():
        delivery = _lock(delivery_id)
        if delivery is None:
            return []
        with system_context(f"Ledger picks up delivery {delivery.pk}", correlation_id=delivery.correlation_id):
            if delivery.kind == Delivery.Kind.BULK:
                return _start_bulk_chunks(delivery)
            return _start_event_mappings(delivery)


def _start_event_mappings(delivery: Delivery) -> list[Transaction]:
    system = delivery.system
    waiting = (
        delivery.events.filter(status=InboundEvent.Status.RECEIVED)
        .exclude(_mapping_transaction_of(OuterRef("pk")))
        .order_by("position", "pk")
    )
    started = []
    for event in waiting:
        try:
            with transaction.atomic():
                started.append(
                    transaction_start(
                        workflow=Workflow.INBOUND_EVENT,
                        data={
                            "event_id": event.pk,
                            "system": system.slug,
                            "system_name": system.name,
                            "event_type": event.event_type,
                            "vendor_event_id": event.vendor_event_id,
                            "idempotency_key": event.idempotency_key,
                        },
                        inbound_event=event,
                        root_correlation_id=delivery.correlation_id,
                        reason=f"{system.name} {event.event_type or 'event'} received",
                    )
                )
        except IntegrityError:
            # Another worker started it between our check and our insert (one mapping transaction per event).
            logger.info("Event %s already has its mapping transaction", event.pk)
    return started


def _start_bulk_chunks(delivery: Delivery) -> list[Transaction]:
    if Transaction.objects.filter(workflow=Workflow.TIME_TO_BILL, business_key=bulk_chunk_key(delivery.pk, 0)).exists():
        return []  # all chunks of a delivery are started together, in this one database transaction
    ids = list(delivery.events.order_by("pk").values_list("pk", flat=True))
    size = bulk_chunk_size()
    started = []
    for chunk, start in enumerate(range(0, len(ids), size)):
        started.append(
            transaction_start(
                workflow=Workflow.TIME_TO_BILL,
                data={
                    "source_system": delivery.system.slug,
                    "event_ids": ids[start : start + size],
                    "delivery_id": delivery.pk,
                    "chunk": chunk,
                },
                root_correlation_id=delivery.correlation_id,
                reason=f"Bulk upload {delivery.pk}, chunk {chunk + 1}",
            )
        )
    return started


def deliveries_waiting(*, received_before=None, limit: int = 200) -> list[int]:
    """Deliveries with stored events that have no transaction yet, oldest first."""
    events = InboundEvent.objects.filter(
        status=InboundEvent.Status.RECEIVED, delivery__kind=Delivery.Kind.WEBHOOK
    ).exclude(_mapping_transaction_of(OuterRef("pk")))
    bulk = Delivery.objects.filter(
        kind=Delivery.Kind.BULK, status=Delivery.Status.ACCEPTED, event_count__gt=F("duplicate_count")
    ).exclude(
        Exists(
            Transaction.objects.filter(
                workflow=Workflow.TIME_TO_BILL, business_key=_first_chunk_key(OuterRef("pk")), parent__isnull=True
            )
        )
    )
    if received_before is not None:
        events = events.filter(delivery__received_at__lt=received_before)
        bulk = bulk.filter(received_at__lt=received_before)
    found = set(events.order_by("delivery_id").values_list("delivery_id", flat=True).distinct()[:limit])
    found |= set(bulk.order_by("pk").values_list("pk", flat=True)[:limit])
    return sorted(found)


def _first_chunk_key(delivery_ref):
    return Concat(Value("bulk:"), Cast(delivery_ref, CharField()), Value(":0"), output_field=CharField())


def pick_up_stored_events(*, received_before=None) -> int:
    """Start the transactions of every stored event that has none yet (the sweep's backstop); returns how many."""
    started = 0
    for delivery_id in deliveries_waiting(received_before=received_before):
        started += len(pick_up_delivery(delivery_id))
    return started
