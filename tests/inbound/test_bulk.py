"""Month-end bulk upload: every record checked on its own, valid ones stored with bulk writes, none lost."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.inbound import bulk
from apps.inbound.models import Delivery, InboundEvent
from apps.sync.models import Transaction

from .conftest import hand_over, post, stripe_headers

pytestmark = pytest.mark.django_db


def entry(n: int, **overrides) -> dict:
    record = {
        "time_entry_external_id": f"TE-{n}",
        "resource_external_id": "U-7",
        "project_external_id": "W-42",
        "work_date": "2026-10-31",
        "hours": "7.5",
        "role": "Senior Consultant",
        "billable": True,
        "description": "Data migration workshop",
    }
    record.update(overrides)
    return record


def upload(client, records, *, ndjson=False, **query):
    if ndjson:
        body = "\n".join(record if isinstance(record, str) else json.dumps(record) for record in records).encode()
        return post(
            client,
            "stripe",
            body,
            stripe_headers(body),
            path_suffix="bulk",
            content_type="application/x-ndjson",
            **query,
        )
    body = json.dumps(records).encode()
    return post(client, "stripe", body, stripe_headers(body), path_suffix="bulk", **query)


def test_valid_records_are_kept_when_others_are_invalid(client, inbound_systems):
    records = [entry(1), entry(2, hours="25"), entry(3, work_date="31/10/2026"), entry(4), {"hours": 1}]
    response = upload(client, records, record_type="time_entry")
    assert response.status_code == 202, response.content
    answer = response.json()
    assert (answer["received"], answer["accepted"], answer["rejected"]) == (5, 2, 3)
    errors = {item["position"]: item["errors"] for item in answer["errors"]}
    assert errors[1] == ["hours: '25' must be a number above 0 and at most 24"]
    assert errors[2] == ["work_date: '31/10/2026' is not a date (YYYY-MM-DD)"]
    assert "time_entry_external_id: is required" in errors[4]
    stored = InboundEvent.objects.order_by("position")
    assert [event.vendor_event_id for event in stored] == ["TE-1", "TE-4"]
    assert stored[0].status == "mapped"
    assert stored[0].commands == [{"type": "time_entry.approved", "data": entry(1), "source_event_id": "TE-1"}]
    hand_over()
    assert Transaction.objects.get(workflow="time_to_bill").input["event_ids"] == [e.pk for e in stored]


def test_ndjson_with_a_broken_line_reports_the_line_and_keeps_the_rest(client, inbound_systems):
    response = upload(
        client, [entry(1), '{"time_entry_external_id": "TE-2", ', entry(3)], ndjson=True, record_type="time_entry"
    )
    answer = response.json()
    assert answer["accepted"] == 2
    assert answer["errors"][0]["position"] == 1
    assert "line 2 is not JSON" in answer["errors"][0]["errors"][0]


def test_records_sent_again_are_counted_as_duplicates_not_billed_twice(client, inbound_systems):
    upload(client, [entry(1), entry(2)], record_type="time_entry")
    answer = upload(client, [entry(2), entry(3), entry(3)], record_type="time_entry").json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 2)
    assert InboundEvent.objects.count() == 3


def test_expenses_and_time_can_share_an_upload(client, inbound_systems):
    expense = {
        "record_type": "expense",
        "expense_external_id": "EX-1",
        "resource_external_id": "U-7",
        "project_external_id": "W-42",
        "incurred_on": "2026-10-12",
        "category": "Travel",
        "amount": "412.30",
        "currency": "EUR",
    }
    answer = upload(client, [dict(entry(1), record_type="time_entry"), expense]).json()
    assert answer["accepted"] == 2
    assert set(InboundEvent.objects.values_list("event_type", flat=True)) == {"time_entry.approved", "expense.approved"}


def test_an_upload_with_no_valid_record_is_a_422_listing_every_error(client, inbound_systems):
    response = upload(client, [entry(1, hours="x"), entry(2, hours="-1")], record_type="time_entry")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert len(response.json()["errors"]) == 2


def test_a_body_that_is_not_an_array_is_refused(client, inbound_systems):
    body = b'{"time_entry_external_id": "TE-1"}'
    response = post(client, "stripe", body, stripe_headers(body), path_suffix="bulk")
    assert response.status_code == 400
    assert "JSON array" in response.json()["detail"]


def test_fifty_thousand_records_are_stored_with_bulk_writes(client, inbound_systems, settings):
    records = [entry(n) for n in range(50_000)]
    with CaptureQueriesContext(connection) as queries:
        response = upload(client, records, record_type="time_entry")
    assert response.status_code == 202, response.content[:500]
    answer = response.json()
    assert answer["accepted"] == 50_000 and answer["rejected"] == 0
    assert InboundEvent.objects.count() == 50_000
    assert InboundEvent.history.count() == 50_000  # history kept, in bulk
    assert hand_over() == 50  # ~1,000 records per ledger transaction
    chunks = Transaction.objects.filter(root_correlation_id=answer["correlation_id"], workflow="time_to_bill")
    assert chunks.count() == 50
    assert sorted(pk for chunk in chunks for pk in chunk.input["event_ids"]) == sorted(
        InboundEvent.objects.values_list("pk", flat=True)
    )
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "inbound_inboundevent"')]
    assert len(inserts) * 20 < 50_000  # batched inserts (SQLite caps a batch at ~60 rows), never one per record
    assert Delivery.objects.get().event_count == 50_000


def test_a_large_ndjson_upload_is_stored_chunk_by_chunk_with_its_raw_body(
    client, inbound_systems, settings, monkeypatch
):
    """Read line by line and written a few records at a time (COPY on PostgreSQL), the raw body kept whole."""
    monkeypatch.setattr(bulk, "CHUNK", 3)
    settings.INBOUND_BULK_INLINE_BODY_BYTES = 64  # PostgreSQL joins the raw body in the database
    upload(client, [entry(1)], ndjson=True, record_type="time_entry")
    records = [entry(n) for n in range(1, 11)] + [entry(4), entry(12, hours="30"), "not json", entry(11)]
    body = "\n".join(record if isinstance(record, str) else json.dumps(record) for record in records).encode()
    response = upload(client, records, ndjson=True, record_type="time_entry")
    assert response.status_code == 202, response.content
    answer = response.json()
    # TE-1 came before, TE-4 twice in this upload (in another chunk): both duplicates, neither stored twice.
    assert (answer["received"], answer["accepted"], answer["duplicates"], answer["rejected"]) == (14, 10, 2, 2)
    assert {item["position"] for item in answer["errors"]} == {11, 12}
    delivery = Delivery.objects.get(pk=answer["delivery_id"])
    assert bytes(delivery.body) == body and delivery.body_sha256 == Delivery.digest(body)
    assert (delivery.event_count, delivery.duplicate_count, delivery.error_count) == (12, 2, 2)
    events = InboundEvent.objects.filter(delivery=delivery).order_by("position")
    assert [event.vendor_event_id for event in events] == [f"TE-{n}" for n in range(2, 12)]
    assert [event.position for event in events] == [*range(1, 10), 13]
    assert events[0].payload == entry(2) and events[0].commands[0]["data"] == entry(2)
    assert InboundEvent.history.filter(history_correlation_id=answer["correlation_id"]).count() == 10
    assert InboundEvent.objects.values("idempotency_key").distinct().count() == InboundEvent.objects.count() == 11


def test_an_upload_over_the_record_limit_stores_nothing(client, inbound_systems, settings, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 2)
    settings.INBOUND_BULK_MAX_RECORDS = 5
    response = upload(client, [entry(n) for n in range(6)], ndjson=True, record_type="time_entry")
    assert response.status_code == 413
    assert "at most 5" in response.json()["detail"]
    assert not InboundEvent.objects.exists()
    assert not Delivery.objects.filter(status=Delivery.Status.ACCEPTED).exists()
