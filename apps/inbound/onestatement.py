"""PostgreSQL: a verified webhook delivery stored in one SQL statement, its own transaction.

The ORM path (`services.receive_webhook` on SQLite) costs a round trip per row: the delivery, its history row,
a savepoint, each event and its history row, the release, the pick-up message and the commit. On PostgreSQL
the same rows are written by one statement of data-modifying CTEs, so the 202 costs one round trip:

    new_delivery  SELECT nextval(<the delivery id sequence>)
    stamp         the history stamp: when, why, '+', who, correlation ID
    ev            INSERT INTO events VALUES (…), (…) ON CONFLICT (system, key) DO NOTHING RETURNING …
    d             INSERT INTO deliveries … (duplicate_count and status from how many rows `ev` inserted) RETURNING …
    ev_history    INSERT INTO historical events SELECT <tracked columns>, stamp FROM ev
    d_history     INSERT INTO historical deliveries SELECT … FROM d
    message_N     INSERT INTO <queue> SELECT … WHERE EXISTS (SELECT 1 FROM ev)   (`pick_up_message` receivers)
    SELECT        each event's new row, or the row that already held its key (one index probe per event)

Its text depends only on the number of events (it is built once per shape and kept); every request only
makes its parameters. It is a server-side prepared statement (`apps/core/prepared.py`): PostgreSQL parses and plans the
~6 kB text once per connection and shape, not on every request, and the parameters travel apart from the text
instead of being quoted into it. The rows are exactly those of the ORM path: every column goes through the model
field's `pre_save` and `get_db_prep_save`, and each history row carries the user, reason and correlation
ID simple-history would give it (`tests/inbound/test_one_statement.py` compares both paths row by row).
Duplicates are still decided by the unique (system, key) constraint. All sub-statements see one snapshot,
so an event that a concurrent request committed while this statement waited on its key is read afterwards,
by key.
"""

import functools

from django.conf import settings
from django.db import connections
from django.db.models import Model
from django.utils import timezone
from simple_history.models import HistoricalRecords

from apps.core.context import current_reason
from apps.core.history import HISTORY_STAMP, default_reason, history_copy_columns, history_user_for
from apps.core.history import history_stamp as core_history_stamp
from apps.core.prepared import prepared_cursor, statement_for

from .envelopes import DeliveredEvent
from .models import Delivery, InboundEvent
from .signals import events_stored, pick_up_message


def available(using: str) -> bool:
    return connections[using].vendor == "postgresql"


def history_stamp(now) -> list:
    """history_date, change reason, type, user id and correlation ID of a created row, as simple-history and
    `apps.core.history.stamp_history_row` fill them for a save in the current audit context."""
    request = getattr(HistoricalRecords.context, "request", None)
    user = getattr(request, "user", None)
    authenticated = request if user is not None and user.is_authenticated else None
    actor = history_user_for(request=authenticated)
    return core_history_stamp("+", user=actor, reason=current_reason() or default_reason(request), when=now)


def _values(model: type[Model], obj: Model, connection, skip: frozenset) -> list:
    """The parameters of an INSERT of `obj`, one per column `_columns` lists, as Django's INSERT prepares them."""
    return [
        field.get_db_prep_save(field.pre_save(obj, True), connection)
        for field in model._meta.concrete_fields
        if not field.primary_key and field.attname not in skip
    ]


@functools.cache
def _columns(model: type[Model], alias: str, skip: frozenset) -> list[str]:
    qn = connections[alias].ops.quote_name
    return [
        qn(field.column) for field in model._meta.concrete_fields if not field.primary_key and field.attname not in skip
    ]


@functools.cache
def _returned(model: type[Model], alias: str, also: tuple[str, ...]) -> str:
    """What a CTE inserting `model` returns: the columns its history copies (not the raw body or payload) and
    those the answer reads."""
    qn = connections[alias].ops.quote_name
    names = [field.attname for field in model.history.model.tracked_fields]
    names += [name for name in also if name not in names]
    return ", ".join(qn(model._meta.get_field(name).column) for name in names)


def _history_columns(model: type[Model]) -> tuple[str, str, str]:
    """The history table, its columns, and the matching select list over a CTE named {source}, the stamp last."""
    table, columns, tracked = history_copy_columns(model)
    selected = ", ".join(["{source}." + column for column in tracked] + [f"stamp.{name}" for name in HISTORY_STAMP])
    return table, columns, selected


NO_PK = frozenset()
NOT_DELIVERY = frozenset({"delivery_id"})
COMPUTED = frozenset({"duplicate_count", "status"})


@functools.cache
def _template(alias: str, events: int, messages: tuple, with_history: bool) -> str:
    """The statement for a delivery of `events` events and these message models (the same text every time, so
    only its parameters are made per request). Untyped parameters (psycopg sends strings untyped; Django's
    client-side cursor, unknown-typed literals) in INSERT … VALUES and INSERT … SELECT take their column's type, so
    only the stamp, which no INSERT reads directly, is cast."""
    connection = connections[alias]
    qn = connection.ops.quote_name
    delivery_table, event_table = qn(Delivery._meta.db_table), qn(InboundEvent._meta.db_table)
    key, position, system_column = qn("idempotency_key"), qn("position"), qn("system_id")
    history_model = Delivery.history.model
    stamp = ", ".join(
        f"CAST(%s AS {history_model._meta.get_field(name).db_type(connection)}) AS {name}" for name in HISTORY_STAMP
    )
    event_columns = _columns(InboundEvent, alias, NOT_DELIVERY)
    event_row = "((SELECT id FROM new_delivery), " + ", ".join(["%s"] * len(event_columns)) + ")"
    delivery_columns = _columns(Delivery, alias, COMPUTED)
    new_count = "(SELECT count(*) FROM ev)"
    ctes = [
        "new_delivery AS (SELECT nextval(pg_get_serial_sequence(%s, %s)) AS id)",
        f"stamp AS (SELECT {stamp})",
        f"ev AS (INSERT INTO {event_table} ({qn('delivery_id')}, {', '.join(event_columns)}) "  # noqa: S608
        f"VALUES {', '.join([event_row] * events)} ON CONFLICT ({system_column}, {key}) DO NOTHING "
        f"RETURNING {_returned(InboundEvent, alias, ('id', 'event_type', 'status', 'idempotency_key', 'position'))})",
        f"d AS (INSERT INTO {delivery_table} ({qn('id')}, {', '.join(delivery_columns)}, "  # noqa: S608
        f"{qn('duplicate_count')}, {qn('status')}) "
        f"SELECT new_delivery.id, {', '.join(['%s'] * len(delivery_columns))}, {events} - {new_count}, "
        f"CASE WHEN {new_count} = 0 THEN %s ELSE %s END FROM new_delivery "
        f"RETURNING {_returned(Delivery, alias, ('id', 'status', 'duplicate_count'))})",
    ]
    if with_history:
        for name, model, source in (("ev_history", InboundEvent, "ev"), ("d_history", Delivery, "d")):
            table, columns, selected = _history_columns(model)
            ctes.append(
                f"{name} AS (INSERT INTO {table} ({columns}) "  # noqa: S608 (quoted model metadata)
                f"SELECT {selected.format(source=source)} FROM {source}, stamp)"
            )
    for number, model in enumerate(messages):
        columns = _columns(model, alias, NO_PK)
        ctes.append(
            f"message_{number} AS (INSERT INTO {qn(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(['%s'] * len(columns))} WHERE EXISTS (SELECT 1 FROM ev))"
        )
    incoming = ", ".join(["(%s, %s)"] * events)
    sql = (
        f"WITH {', '.join(ctes)} "  # noqa: S608 (quoted model metadata)
        f"SELECT incoming.key, ev.id, ev.event_type, ev.status, old.id, old.event_type, old.status, "
        f"d.id, d.status, d.duplicate_count "
        f"FROM (VALUES {incoming}) AS incoming (position, key) CROSS JOIN d "
        f"LEFT JOIN ev ON ev.{key} = incoming.key AND ev.{position} = incoming.position "
        f"LEFT JOIN LATERAL (SELECT held.id, held.event_type, held.status FROM {event_table} held "
        f"WHERE held.{system_column} = %s AND held.{key} = incoming.key LIMIT 1) old ON true "
        f"ORDER BY incoming.position"
    )
    return sql


def store(*, system, delivery: Delivery, events: list[DeliveredEvent], correlation_id: str, using: str) -> list[dict]:
    """Write `delivery` (unsaved; counts filled here), its events, their history and the pick-up message in
    one statement. Returns the answer for each event (see `services.Received`); `delivery` gets its id."""
    connection = connections[using]
    with_history = getattr(settings, "SIMPLE_HISTORY_ENABLED", True)
    params = [Delivery._meta.db_table, Delivery._meta.pk.column, *history_stamp(timezone.now())]
    keys = []
    for event in events:
        obj = InboundEvent(
            system=system,
            idempotency_key=event.idempotency_key[:255],
            vendor_event_id=event.vendor_event_id[:255],
            event_type=event.event_type[:120],
            schema_version=event.schema_version[:40],
            position=event.position,
            occurred_at=event.occurred_at,
            payload=event.payload,
            correlation_id=correlation_id,
        )
        params += _values(InboundEvent, obj, connection, NOT_DELIVERY)
        keys.append(obj.idempotency_key)
    delivery.event_count, delivery.duplicate_count = len(events), 0
    params += _values(Delivery, delivery, connection, COMPUTED)
    params += [Delivery.Status.DUPLICATE.value, Delivery.Status.ACCEPTED.value]
    messages = [row for _, row in pick_up_message.send(sender=Delivery, system=system, keys=keys, using=using) if row]
    for message in messages:
        params += _values(message["model"], message["model"](**message["values"]), connection, NO_PK)
    for event, event_key in zip(events, keys, strict=True):
        params += [event.position, event_key]
    params.append(system.pk)
    sql = _template(using, len(events), tuple(message["model"] for message in messages), with_history)
    with prepared_cursor(connection) as cursor:
        cursor.execute(statement_for(cursor, sql), params)
        found = cursor.fetchall()

    delivery.pk, delivery.status, delivery.duplicate_count = found[0][7], found[0][8], found[0][9]
    delivery._state.adding, delivery._state.db = False, using
    new = {row[0]: row[1:4] for row in found if row[1] is not None}
    answers, waiting = [], []
    for row in found:
        if row[1] is not None:
            answers.append(_answer(*row[1:4], duplicate=False))
        elif row[4] is not None:
            answers.append(_answer(*row[4:7], duplicate=True))
        elif row[0] in new:  # the same key twice in this delivery (only after cutting keys to 255 characters)
            answers.append(_answer(*new[row[0]], duplicate=True))
        else:  # held by a request that committed while this statement waited on the key: outside our snapshot
            answers.append(None)
            waiting.append(row[0])
    if waiting:
        held = {
            item[0]: item[1:]
            for item in InboundEvent.objects.using(using)
            .filter(system=system, idempotency_key__in=waiting)
            .values_list("idempotency_key", "pk", "event_type", "status")
        }
        pending = iter(held[row[0]] for row in found if row[1] is None and row[4] is None and row[0] not in new)
        answers = [answer if answer is not None else _answer(*next(pending), duplicate=True) for answer in answers]
    if delivery.event_count > delivery.duplicate_count and not messages:
        events_stored.send(sender=Delivery, delivery=delivery)
    return answers


def _answer(pk, event_type, status, *, duplicate: bool) -> dict:
    return {"event_id": pk, "event_type": event_type, "status": status, "duplicate": duplicate}
