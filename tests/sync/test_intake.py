"""The ledger picks up what inbound stored: once, whoever asks and however often, and never loses a stored event."""

import datetime
import json
import threading

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from apps.inbound.models import Delivery, InboundEvent
from apps.sync import intake
from apps.sync.engine import sweep
from apps.sync.models import Step, Transaction
from apps.sync.services import transaction_start

from ..inbound.conftest import inbound_systems, post, sample, standard_webhook_headers, stripe_headers

__all__ = ["inbound_systems"]  # the fixture, shared with the inbound tests

pytestmark = pytest.mark.django_db


def deliver_won_deal(client, msg_id="msg_won") -> dict:
    body = sample("salesforce", "Opportunity_Won__e.json")
    response = post(client, "salesforce", body, standard_webhook_headers(body, msg_id=msg_id))
    assert response.status_code == 202, response.content
    return response.json()


def upload_time(client, count: int) -> dict:
    records = [
        {
            "time_entry_external_id": f"TE-{n}",
            "resource_external_id": "U-7",
            "project_external_id": "W-42",
            "work_date": "2026-10-31",
            "hours": "7.5",
        }
        for n in range(count)
    ]
    body = json.dumps(records).encode()
    response = post(client, "stripe", body, stripe_headers(body), path_suffix="bulk", record_type="time_entry")
    assert response.status_code == 202, response.content
    return response.json()


def test_a_stored_event_gets_one_mapping_transaction_however_often_it_is_picked_up(client, inbound_systems):
    answer = deliver_won_deal(client)

    started = intake.pick_up_delivery(answer["delivery_id"])
    assert [txn.workflow for txn in started] == ["inbound_event"]
    assert intake.pick_up_delivery(answer["delivery_id"]) == []
    assert intake.pick_up_stored_events() == 0

    txn = Transaction.objects.get()
    assert txn.inbound_event_id == answer["event_id"] and txn.status == "pending"
    assert txn.subject.startswith("Salesforce event Opportunity_Won__e")
    assert Step.objects.get(transaction=txn).next_attempt_at is not None  # due for a worker


def test_a_repeat_delivery_starts_nothing(client, inbound_systems):
    deliver_won_deal(client, msg_id="first")
    repeat = post(
        client,
        "salesforce",
        sample("salesforce", "Opportunity_Won__e.json"),
        standard_webhook_headers(sample("salesforce", "Opportunity_Won__e.json"), msg_id="again"),
    ).json()
    assert repeat["duplicate"] is True
    assert intake.pick_up_stored_events() == 1
    assert intake.pick_up_delivery(repeat["delivery_id"]) == []
    assert Transaction.objects.count() == 1


def test_the_sweep_picks_up_an_event_whose_message_was_lost(client, inbound_systems):
    answer = deliver_won_deal(client)  # its pick-up message is queued with it; the sweep must not need it
    assert not Transaction.objects.exists()

    sweep()  # right after the answer the message is probably still queued: the sweep leaves the delivery to it
    assert not Transaction.objects.exists()

    sweep(now=timezone.now() + datetime.timedelta(minutes=3))
    txn = Transaction.objects.get(inbound_event_id=answer["event_id"])
    assert txn.status == "pending"
    queued = [row.task["args"] for row in OrmQ.objects.all() if row.func() == "apps.sync.tasks.run_step"]
    assert queued == [(txn.steps.get().pk,)]


def test_a_bulk_upload_is_billed_in_chunks_started_once(client, inbound_systems, settings):
    settings.INBOUND_BULK_CHUNK = 2
    answer = upload_time(client, 5)

    assert intake.pick_up_stored_events() == 3
    assert intake.pick_up_delivery(answer["delivery_id"]) == []
    assert intake.pick_up_stored_events() == 0

    chunks = Transaction.objects.filter(workflow="time_to_bill").order_by("pk")
    events = list(InboundEvent.objects.order_by("pk").values_list("pk", flat=True))
    assert [chunk.input["event_ids"] for chunk in chunks] == [events[0:2], events[2:4], events[4:5]]
    assert [chunk.business_key for chunk in chunks] == [
        intake.bulk_chunk_key(answer["delivery_id"], n) for n in (0, 1, 2)
    ]
    assert {chunk.root_correlation_id for chunk in chunks} == {answer["correlation_id"]}


def test_the_transactions_of_a_delivery_are_found_by_its_correlation_id(
    client, inbound_systems, api_as, finance_user, settings
):
    settings.INBOUND_BULK_CHUNK = 2
    answer = upload_time(client, 3)
    other = deliver_won_deal(client)
    intake.pick_up_stored_events()
    first = Transaction.objects.filter(workflow="time_to_bill").order_by("pk").first()
    child = transaction_start(
        workflow="time_to_bill",
        data={"source_system": "stripe", "entries": [{"type": "time_entry.approved", "data": {}}]},
        parent=first,
        command_index=0,
        reason="split out",
    )

    found = api_as(finance_user).get(
        "/api/v1/transactions/", {"queue": "all", "correlation_id": answer["correlation_id"]}
    )

    assert found.status_code == 200, found.content
    ids = {row["correlation_id"] for row in found.json()["results"]}
    chunk_ids = set(
        Transaction.objects.filter(parent__isnull=True, workflow="time_to_bill").values_list(
            "correlation_id", flat=True
        )
    )
    assert ids == chunk_ids | {child.correlation_id}  # the chunks and what they started, nothing of the other delivery
    assert len(chunk_ids) == 2
    mapping = Transaction.objects.get(workflow="inbound_event")
    assert mapping.root_correlation_id == other["correlation_id"] != answer["correlation_id"]
    own = api_as(finance_user).get("/api/v1/transactions/", {"queue": "all", "correlation_id": mapping.correlation_id})
    assert [row["correlation_id"] for row in own.json()["results"]] == [mapping.correlation_id]


@pytest.mark.django_db(transaction=True)
def test_two_workers_picking_up_at_once_start_each_transaction_once(client, inbound_systems, settings):
    settings.INBOUND_BULK_CHUNK = 2
    webhook = deliver_won_deal(client)
    bulk = upload_time(client, 5)
    assert not Transaction.objects.exists()  # their pick-up messages wait in the queue: no worker runs here
    barrier = threading.Barrier(4)
    errors = []

    def worker(delivery_id):
        try:
            barrier.wait()
            intake.pick_up_delivery(delivery_id)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(pk,)) for pk in [webhook["delivery_id"], bulk["delivery_id"]] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Transaction.objects.filter(workflow="inbound_event").count() == 1
    assert Transaction.objects.filter(workflow="time_to_bill").count() == 3
    assert Delivery.objects.count() == 2
