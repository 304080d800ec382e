"""The webhook path's hot loop: the sender's configuration is remembered between requests, a change to it is
seen at once, and a new delivery is stored with its pick-up message in one short transaction."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from apps.inbound.models import Delivery, InboundEvent
from apps.systems.models import SigningSecret

from .. import factories
from .conftest import as_json, post

pytestmark = pytest.mark.django_db(transaction=True)  # the remembered configuration is only what was committed

TOKEN = "bench-token-for-tests-0123456789"


@pytest.fixture
def sender(monkeypatch):
    monkeypatch.setenv("IC_SECRET_TEST_SENDER_TOKEN", TOKEN)
    system = factories.system("psa-sender", "psa", name="PSA sender", vendor="generic", inbound_scheme="bearer")
    secret = SigningSecret.objects.create(
        system=system, label="primary", reference={"env": "IC_SECRET_TEST_SENDER_TOKEN"}
    )
    return system, secret


def deliver(client, event_id: str):
    return post(
        client,
        "psa-sender",
        as_json({"id": event_id, "type": "time.approved"}),
        {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"},
    )


def test_a_new_delivery_is_stored_with_its_pick_up_in_a_handful_of_statements(client, sender):
    assert deliver(client, "evt-1").status_code == 202  # the first request reads the sender's configuration
    with CaptureQueriesContext(connection) as queries:
        response = deliver(client, "evt-2")
    assert response.status_code == 202
    delivery = Delivery.objects.get(pk=response.json()["delivery_id"])
    assert delivery.event_count == 1 and delivery.duplicate_count == 0
    assert InboundEvent.objects.filter(delivery=delivery).count() == 1
    assert OrmQ.objects.filter(key__isnull=False).count() == 2  # each delivery's pick-up, committed with it
    statements = [query["sql"] for query in queries.captured_queries]
    assert not [sql for sql in statements if sql.startswith("SELECT")], statements
    assert len(statements) <= 9, statements  # delivery + history, event + history, the message, transaction


def test_a_revoked_secret_stops_verifying_as_soon_as_it_is_saved(client, sender):
    _, secret = sender
    assert deliver(client, "evt-1").status_code == 202
    secret.active = False
    secret.save()
    assert deliver(client, "evt-2").status_code == 401


def test_a_disabled_system_is_refused_as_soon_as_it_is_saved(client, sender):
    system, _ = sender
    assert deliver(client, "evt-1").status_code == 202
    system.enabled = False
    system.save()
    assert deliver(client, "evt-2").status_code == 403


def test_a_repeat_is_still_answered_with_the_original_event(client, sender):
    first = deliver(client, "evt-1").json()
    again = deliver(client, "evt-1")
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["event_id"] == first["event_id"]
    assert Delivery.objects.get(pk=again.json()["delivery_id"]).status == Delivery.Status.DUPLICATE
