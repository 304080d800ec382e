"""The webhook endpoint: verify, keep raw, deduplicate, answer fast; every bad input gets a readable 4xx."""

import json
import threading
import time

import pytest
import requests
from django.db import connection
from django_q.models import OrmQ

from apps.inbound.models import Delivery, InboundEvent
from apps.sync.models import Transaction

from .conftest import (
    STRIPE_SECRET,
    hand_over,
    hubspot_v3_headers,
    post,
    sample,
    standard_webhook_headers,
    stripe_headers,
)

pytestmark = pytest.mark.django_db


def queued_pick_ups() -> list[tuple]:
    """The deliveries the queued pick-up messages name: by id, or (PostgreSQL's one-statement intake, which
    writes the message before the delivery has an id) by the keys of the events they hold."""
    asked = []
    for row in OrmQ.objects.all():
        if row.func() == "apps.sync.tasks.pick_up_delivery":
            asked.append(row.task["args"])
        elif row.func() == "apps.sync.tasks.pick_up_events":
            system_id, keys = row.task["args"]
            held = InboundEvent.objects.filter(system_id=system_id, idempotency_key__in=keys)
            asked += [(delivery_id,) for delivery_id in sorted(set(held.values_list("delivery_id", flat=True)))]
    return asked


def test_a_signed_delivery_is_stored_raw_and_answered_202(client, inbound_systems, django_capture_on_commit_callbacks):
    body = sample("salesforce", "Opportunity_Won__e.json")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "salesforce", body, standard_webhook_headers(body, msg_id="msg_001"))
    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["duplicate"] is False
    assert answer["status"] == "received"
    delivery = Delivery.objects.get(pk=answer["delivery_id"])
    assert bytes(delivery.body) == body
    assert delivery.verified and delivery.scheme == "standard-webhooks" and delivery.secret_label == "primary"
    assert delivery.headers["Webhook-Signature"] == "[redacted]"
    assert delivery.correlation_id == answer["correlation_id"] == response["X-Correlation-ID"]
    event = InboundEvent.objects.get(pk=answer["event_id"])
    assert event.event_type == "Opportunity_Won__e"
    assert event.idempotency_key  # the Platform Event's EventUuid, not the delivery
    assert event.payload == json.loads(body)
    # Once the delivery is committed a worker is asked to pick it up; the answer paid only for storing it.
    assert queued_pick_ups() == [(delivery.pk,)]
    assert not Transaction.objects.exists()
    hand_over()
    txn = Transaction.objects.get(inbound_event=event)
    assert txn.workflow == "inbound_event" and txn.status == "pending"
    assert txn.root_correlation_id == delivery.correlation_id


def test_a_repeat_is_answered_with_the_original_and_never_processed_twice(client, inbound_systems):
    body = sample("salesforce", "Opportunity_Won__e.json")
    first = post(client, "salesforce", body, standard_webhook_headers(body, msg_id="msg_a")).json()
    hand_over()
    again = post(client, "salesforce", body, standard_webhook_headers(body, msg_id="msg_b"))
    hand_over()
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["event_id"] == first["event_id"]
    assert again.json()["status"] == "received"
    assert InboundEvent.objects.count() == 1
    assert Transaction.objects.count() == 1
    assert Delivery.objects.filter(status="duplicate").count() == 1  # the repeat itself is kept, for the record


def test_a_hubspot_batch_becomes_one_event_per_change(client, inbound_systems):
    body = sample("hubspot", "deal.propertyChange.json")
    url = "http://testserver/api/v1/inbound/hubspot/"
    response = post(client, "hubspot", body, hubspot_v3_headers(body, url))
    assert response.status_code == 202, response.content
    events = response.json()["events"]
    assert len(events) == len(json.loads(body))
    assert len({event["event_id"] for event in events}) == len(events)
    assert InboundEvent.objects.filter(system__slug="hubspot").count() == len(events)


def test_stripe_style_signatures_verify_over_the_raw_bytes(client, inbound_systems):
    body = sample("stripe", "invoice.paid.json")
    assert post(client, "stripe", body, stripe_headers(body)).status_code == 202
    tampered = body.replace(b"invoice.paid", b"invoice.void", 1)
    response = post(client, "stripe", tampered, stripe_headers(body))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert "does not match" in response.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, "webhook-id"),
        ({"HTTP_WEBHOOK_ID": "m", "HTTP_WEBHOOK_TIMESTAMP": "soon", "HTTP_WEBHOOK_SIGNATURE": "v1,AAAA"}, 400, ""),
    ],
)
def test_missing_or_malformed_signature_headers_are_refused(client, inbound_systems, headers, status, words):
    response = post(client, "salesforce", b"{}", headers)
    assert response.status_code == status
    body = response.json()
    assert body["status"] == status and body["detail"]
    assert words in body["detail"]
    assert Delivery.objects.get().status == "rejected"
    assert bytes(Delivery.objects.get().body) == b""  # an unauthenticated body is not kept


def test_a_stale_delivery_is_refused_as_a_replay(client, inbound_systems):
    body = sample("salesforce", "Opportunity_Won__e.json")
    response = post(client, "salesforce", body, standard_webhook_headers(body, timestamp=time.time() - 3600))
    assert response.status_code == 401
    assert "300" in response.json()["detail"]


def test_either_secret_verifies_during_a_rotation(client, inbound_systems, monkeypatch):
    from apps.systems.models import SigningSecret

    from .conftest import SF_SECRET

    new_secret = "whsec_" + __import__("base64").b64encode(b"rotated-salesforce-signing-key-02").decode()
    monkeypatch.setenv("IC_SECRET_TEST_SF_SECRET_NEW", new_secret)
    SigningSecret.objects.create(
        system=inbound_systems["salesforce"], label="rotation", reference={"env": "IC_SECRET_TEST_SF_SECRET_NEW"}
    )
    body = sample("salesforce", "Opportunity_Won__e.json")
    old = post(client, "salesforce", body, standard_webhook_headers(body, secret=SF_SECRET, msg_id="m1"))
    assert old.status_code == 202
    second = body.replace(b"4711", b"4712").replace(b"b9d0a8e2", b"c9d0a8e2")
    new = post(client, "salesforce", second, standard_webhook_headers(second, secret=new_secret, msg_id="m2"))
    assert new.status_code == 202
    assert Delivery.objects.get(pk=new.json()["delivery_id"]).secret_label == "rotation"


def test_unknown_and_disabled_systems(client, inbound_systems):
    response = post(client, "nosuch", b"{}", {})
    assert response.status_code == 404
    assert "No connected system is called 'nosuch'" in response.json()["detail"]
    inbound_systems["stripe"].enabled = False
    inbound_systems["stripe"].save()
    response = post(client, "stripe", b"{}", stripe_headers(b"{}"))
    assert response.status_code == 403
    assert "disabled" in response.json()["detail"]


def test_a_body_that_is_not_json_is_refused_by_content_type(client, inbound_systems):
    response = post(client, "stripe", b"a=b", stripe_headers(b"a=b"), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_a_signed_but_malformed_json_body_is_refused_and_kept_for_the_record(client, inbound_systems):
    body = b'{"id": "evt_1", "type": '
    response = post(client, "stripe", body, stripe_headers(body))
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    delivery = Delivery.objects.get()
    assert delivery.status == "rejected" and bytes(delivery.body) == body


def test_an_oversized_body_is_refused_before_it_is_read(client, inbound_systems, settings):
    settings.INBOUND_MAX_BODY_BYTES = 1000
    body = json.dumps({"id": "evt_big", "type": "invoice.paid", "pad": "x" * 2000}).encode()
    response = post(client, "stripe", body, stripe_headers(body))
    assert response.status_code == 413
    assert "larger than the 1000 bytes" in response.json()["detail"]
    assert not InboundEvent.objects.exists()


def test_the_openapi_schema_documents_the_inbound_endpoints(client, auditor):
    client.force_login(auditor)  # the schema is for signed-in people only
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/inbound/{system}/" in paths
    assert "/api/v1/inbound/{system}/bulk" in paths
    operation = paths["/api/v1/inbound/{system}/"]["post"]
    assert {"202", "401", "413"} <= set(operation["responses"])


@pytest.mark.django_db(transaction=True)
def test_fifty_simultaneous_copies_make_one_event(live_server, inbound_systems):
    body = sample("stripe", "invoice.paid.json")
    headers = {"Stripe-Signature": stripe_headers(body)["HTTP_STRIPE_SIGNATURE"], "Content-Type": "application/json"}
    url = f"{live_server.url}/api/v1/inbound/stripe/"
    barrier = threading.Barrier(50)
    answers = []

    def send():
        barrier.wait()
        for attempt in range(10):  # like a vendor, retry when the connection is refused under the burst
            try:
                answers.append(requests.post(url, data=body, headers=headers, timeout=60))
                return
            except requests.ConnectionError:
                time.sleep(0.2 * (attempt + 1))

    threads = [threading.Thread(target=send) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(answer.status_code for answer in answers)
    assert codes.count(202) == 1, codes
    assert codes.count(200) == 49, codes
    assert len({answer.json()["event_id"] for answer in answers}) == 1
    assert InboundEvent.objects.count() == 1
    hand_over()
    assert Transaction.objects.filter(workflow="inbound_event").count() == 1
    assert Delivery.objects.filter(status="duplicate").count() == 49
    connection.close()


def test_secret_values_never_reach_the_database(client, inbound_systems):
    body = sample("stripe", "invoice.paid.json")
    post(client, "stripe", body, stripe_headers(body))
    stored = json.dumps(list(Delivery.objects.values("headers", "url", "rejection")), default=str)
    assert STRIPE_SECRET not in stored
