"""PostgreSQL stores a webhook delivery in one statement (apps/inbound/onestatement.py): the rows it writes,
history included, and the answer the sender gets are exactly those of the ORM path SQLite takes (except that a
delivery with repeats is written once with its final counts, where the ORM path inserts then updates it)."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from apps.inbound import onestatement
from apps.inbound.models import Delivery, InboundEvent
from apps.sync import intake
from apps.sync.models import Transaction
from apps.systems.models import SigningSecret

from .. import factories
from .conftest import post

TOKEN = "one-statement-token-0123456789"
on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's")

# Whatever differs between two requests by nature: keys, times, the URL and the request's own correlation ID.
VOLATILE = {
    "id",
    "history_id",
    "history_date",
    "created_at",
    "updated_at",
    "received_at",
    "delivery_id",
    "system_id",
    "url",
    "headers",
    "body",
    "correlation_id",
    "history_correlation_id",
    "profile_id",
}


@pytest.fixture
def senders(db, monkeypatch):
    monkeypatch.setenv("IC_SECRET_ONE_STATEMENT", TOKEN)
    systems = {}
    for slug in ("psa-orm", "psa-one"):
        systems[slug] = factories.system(slug, "psa", name="PSA", vendor="generic", inbound_scheme="bearer")
        SigningSecret.objects.create(
            system=systems[slug], label="primary", reference={"env": "IC_SECRET_ONE_STATEMENT"}
        )
    return systems


def deliver(client, slug: str, events: list[dict]):
    return post(client, slug, json.dumps(events).encode(), {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"})


def event(name: str) -> dict:
    return {"id": name, "type": "time.approved", "hours": 7.5}


DELIVERIES = [
    [event("a"), event("b")],  # two new events
    [event("b"), event("c")],  # one repeat, one new
    [event("a")],  # every event a repeat: 200, the delivery kept as a duplicate
]


def normalised(rows, correlation_ids: list[str], delivery_ids: list[int], event_ids: list[int]) -> list[dict]:
    """Rows without what differs by nature; correlation IDs and keys as the index of the delivery/event they name."""
    result = []
    for row in rows:
        clean = {name: value for name, value in row.items() if name not in VOLATILE}
        for name in ("correlation_id", "history_correlation_id"):
            if name in row:
                clean[name] = correlation_ids.index(row[name])
        if "delivery_id" in row:
            clean["delivery"] = delivery_ids.index(row["delivery_id"])
        if "id" in row and "event_count" not in row:
            clean["event"] = event_ids.index(row["id"])
        result.append(clean)
    return result


def run(client, slug: str) -> dict:
    answers = [deliver(client, slug, events) for events in DELIVERIES]
    bodies = [answer.json() for answer in answers]
    deliveries = list(Delivery.objects.filter(system__slug=slug).order_by("pk").values())
    events = list(InboundEvent.objects.filter(system__slug=slug).order_by("pk").values())
    correlation_ids = [row["correlation_id"] for row in deliveries]
    delivery_ids = [row["id"] for row in deliveries]
    event_ids = [row["id"] for row in events]
    delivery_history = list(Delivery.history.filter(id__in=delivery_ids).order_by("history_id").values())
    history_types = [[row["history_type"] for row in delivery_history if row["id"] == pk] for pk in delivery_ids]
    # The state each delivery's history ends on (the ORM path saves a delivery with repeats twice: "+" then "~").
    last = {row["id"]: row for row in delivery_history}
    delivery_history = [{**last[pk], "history_type": None} for pk in delivery_ids]
    event_history = InboundEvent.history.filter(id__in=event_ids).order_by("history_id").values()
    for body in bodies:
        body["delivery_id"] = delivery_ids.index(body["delivery_id"])
        body["correlation_id"] = correlation_ids.index(body["correlation_id"])
        body["event_id"] = event_ids.index(body["event_id"])
        for item in body["events"]:
            item["event_id"] = event_ids.index(item["event_id"])
    return {
        "codes": [answer.status_code for answer in answers],
        "answers": bodies,
        "deliveries": normalised(deliveries, correlation_ids, delivery_ids, event_ids),
        "events": normalised(events, correlation_ids, delivery_ids, event_ids),
        "delivery history": normalised(delivery_history, correlation_ids, delivery_ids, event_ids),
        "delivery history types": history_types,
        "event history": normalised(event_history, correlation_ids, delivery_ids, event_ids),
    }


@on_postgresql
@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "client-side"])
def test_one_statement_writes_exactly_the_rows_and_answers_of_the_orm_path(
    client, senders, monkeypatch, settings, prepared
):
    settings.PREPARED_STATEMENTS = prepared
    one = run(client, "psa-one")
    with monkeypatch.context() as patched:
        patched.setattr(onestatement, "available", lambda using: False)
        orm = run(client, "psa-orm")
    assert orm.pop("delivery history types") == [["+"], ["+", "~"], ["+", "~"]]
    # One statement writes each delivery once, with its final counts: one "+" row, the state the ORM path ends on.
    assert one.pop("delivery history types") == [["+"], ["+"], ["+"]]
    assert one == orm
    assert one["codes"] == [202, 202, 200]
    assert [row["status"] for row in one["deliveries"]] == ["accepted", "accepted", "duplicate"]
    assert [row["duplicate_count"] for row in one["deliveries"]] == [0, 1, 1]
    assert [row["history_change_reason"] for row in one["event history"]] == ["Webhook from PSA"] * 3
    assert len(one["delivery history"]) == 3 and all(row["history_user_id"] for row in one["delivery history"])
    stored = Delivery.objects.filter(system__slug="psa-one").order_by("pk").first()
    assert json.loads(bytes(stored.body)) == DELIVERIES[0]
    assert stored.headers["Authorization"] == "[redacted]"


@on_postgresql
@pytest.mark.django_db(transaction=True)  # the remembered sender configuration is only what was committed
def test_one_statement_is_one_round_trip_and_its_message_picks_the_delivery_up(client, senders):
    assert deliver(client, "psa-one", [event("warm")]).status_code == 202  # reads the sender's configuration
    OrmQ.objects.all().delete()
    with CaptureQueriesContext(connection) as queries:
        answer = deliver(client, "psa-one", [event("x"), event("y")])
    assert answer.status_code == 202
    assert len(queries.captured_queries) == 1, [query["sql"] for query in queries.captured_queries]
    (message,) = OrmQ.objects.all()
    assert message.func() == "apps.sync.tasks.pick_up_events"
    system_id, keys = message.task["args"]
    assert intake.pick_up_events(system_id, keys)  # what the worker runs: one mapping transaction per event
    delivery = Delivery.objects.get(pk=answer.json()["delivery_id"])
    assert Transaction.objects.filter(inbound_event__delivery=delivery).count() == 2
    assert intake.pick_up_events(system_id, keys) == []  # a repeat starts nothing

    OrmQ.objects.all().delete()
    assert deliver(client, "psa-one", [event("x")]).status_code == 200
    assert not OrmQ.objects.exists()  # nothing new, nothing to pick up


def prepared_intake_statements() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["WITH new_delivery AS %"],
        )
        return cursor.fetchall()


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_statement_is_prepared_once_per_connection_and_then_only_executed(client, senders):
    for name in ("p1", "p2", "p3"):
        assert deliver(client, "psa-one", [event(name)]).status_code == 202
    assert deliver(client, "psa-one", [event("p1")]).status_code == 200  # a repeat runs the same statement
    assert prepared_intake_statements() == [(4,)]  # one statement of that shape, planned for and run 4 times
    assert InboundEvent.objects.filter(system__slug="psa-one").count() == 3
    assert OrmQ.objects.count() == 3  # each new delivery's pick-up, none for the repeat


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_without_prepared_statements_nothing_is_left_prepared(client, senders, settings):
    settings.PREPARED_STATEMENTS = False  # e.g. behind a transaction-pooling proxy
    assert deliver(client, "psa-one", [event("c1"), event("c2")]).status_code == 202
    assert prepared_intake_statements() == []
    assert InboundEvent.objects.filter(system__slug="psa-one").count() == 2


def test_a_pick_up_by_event_keys_starts_each_transaction_once(client, senders):
    answer = deliver(client, "psa-one", [event("k1"), event("k2")]).json()
    keys = list(
        InboundEvent.objects.filter(delivery_id=answer["delivery_id"]).values_list("idempotency_key", flat=True)
    )
    started = intake.pick_up_events(senders["psa-one"].pk, keys)
    assert sorted(txn.inbound_event_id for txn in started) == sorted(item["event_id"] for item in answer["events"])
    assert intake.pick_up_events(senders["psa-one"].pk, keys) == []
    assert intake.pick_up_stored_events() == 0
