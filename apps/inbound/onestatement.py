"""PostgreSQL: a verified webhook delivery stored in one SQL statement, its own transaction.

The ORM path (`services.receive_webhook` on SQLite) costs a round trip per row: the delivery, its history row,
a savepoint, each event and its history row, the release, the pick-up message and the commit. On PostgreSQL
the same rows are written by one statement of data-modifying CTEs, so the 202 costs one round trip:

    new_delivery  SELECT nextval(<the delivery id sequence>)
    incoming      VALUES (one row per event, every column as Django would write it)
    ev            INSERT INTO events SELECT … FROM incoming ON CONFLICT (system, key) DO NOTHING RETURNING *
    ev_history    INSERT INTO historical events SELECT <tracked columns>, when, why, '+', who, correlation FROM ev
    d             INSERT INTO deliveries … (duplicate_count and status from how many rows `ev` inserted) RETURNING *
    d_history     INSERT INTO historical deliveries SELECT … FROM d
    message_N     INSERT INTO <queue> SELECT … WHERE EXISTS (SELECT 1 FROM ev)   (`pick_up_message` receivers)
    SELECT        each event's new row, or the row that already held its key

The rows are exactly those of the ORM path: every column goes through the model field's `pre_save` and
`get_db_prep_save`, and each history row carries the user, reason and correlation ID simple-history would
give it (`tests/inbound/test_one_statement.py` compares both paths row by row). Duplicates are still decided
by the unique (system, key) constraint. All sub-statements see one snapshot, so an event that a concurrent
request committed while this statement waited on its key is read afterwards, by key.
"""

import functools

from django.conf import settings
from django.db import connections
from django.db.models import Model
from django.utils import timezone
from simple_history.models import HistoricalRecords

from apps.core.context import current_reason, get_correlation_id, new_correlation_id
from apps.core.history import history_user_for

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
    reason = current_reason() or (f"{request.method} {request.path}" if request is not None else None)
    actor = history_user_for(request=authenticated)
    return [
        now,
        reason or "Changed without a stated reason",
        "+",
        getattr(actor, "pk", None),
        get_correlation_id() or new_correlation_id(),
    ]


class _Statement:
    def __init__(self, connection):
        self.connection = connection
        self.qn = connection.ops.quote_name
        self.ctes: list[str] = []
        self.params: list = []

    def cte(self, name: str, sql: str, params=()) -> None:
        self.ctes.append(f"{name} AS ({sql})")
        self.params.extend(params)

    def row(self, model: type[Model], obj: Model, overrides: dict, skip=()) -> tuple[list[str], list[str]]:
        """(quoted columns, value expressions) of `obj` as Django's INSERT would write it; params appended.
        `overrides`: {attname: (SQL expression, its params)} for the columns computed in the statement."""
        columns, values = [], []
        for field, column, cast in _insert_fields(model, self.connection.alias):
            if field.attname in skip or (field.primary_key and field.attname not in overrides):
                continue
            columns.append(column)
            if field.attname in overrides:
                expression, params = overrides[field.attname]
                values.append(expression)
                self.params.extend(params)
                continue
            values.append(cast)
            self.params.append(field.get_db_prep_save(field.pre_save(obj, True), self.connection))
        return columns, values

    def history(self, name: str, model: type[Model], source: str, stamp: list) -> None:
        if not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
            return
        table, columns, selected = _history_columns(model, self.connection.alias)
        self.cte(
            name,
            f"INSERT INTO {table} ({columns}) "  # noqa: S608 (quoted model metadata)
            f"SELECT {selected.format(source=source)}, %s, %s, %s, %s, %s FROM {source}",
            stamp,
        )


@functools.cache
def _insert_fields(model: type[Model], alias: str) -> list[tuple]:
    """(field, quoted column, typed placeholder) of each column an INSERT of `model` writes."""
    connection = connections[alias]
    return [
        (field, connection.ops.quote_name(field.column), f"CAST(%s AS {field.db_type(connection)})")
        for field in model._meta.concrete_fields
    ]


@functools.cache
def _history_columns(model: type[Model], alias: str) -> tuple[str, str, str]:
    """The history table, its columns, and the matching select list over a CTE named {source} (as
    `apps.core.history.copy_history_rows` maps them)."""
    qn = connections[alias].ops.quote_name
    history_model = model.history.model
    tracked = [field.attname for field in history_model.tracked_fields]
    extra = ["history_date", "history_change_reason", "history_type", "history_user_id", "history_correlation_id"]
    columns = ", ".join(qn(history_model._meta.get_field(attname).column) for attname in tracked + extra)
    selected = ", ".join("{source}." + qn(model._meta.get_field(attname).column) for attname in tracked)
    return qn(history_model._meta.db_table), columns, selected


def store(*, system, delivery: Delivery, events: list[DeliveredEvent], correlation_id: str, using: str) -> list[dict]:
    """Write `delivery` (unsaved; counts filled here), its events, their history and the pick-up message in
    one statement. Returns the answer for each event (see `services.Received`); `delivery` gets its id."""
    connection = connections[using]
    statement = _Statement(connection)
    qn = statement.qn
    delivery_table, event_table = qn(Delivery._meta.db_table), qn(InboundEvent._meta.db_table)
    now = timezone.now()
    stamp = history_stamp(now)

    statement.cte(
        "new_delivery",
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) AS id",
        [Delivery._meta.db_table, Delivery._meta.pk.column],
    )

    rows, columns = [], []
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
        columns, values = statement.row(InboundEvent, obj, {}, skip=("delivery_id",))
        rows.append(f"({', '.join(values)})")
    incoming = ", ".join(columns)
    statement.ctes.append(f"incoming ({incoming}) AS (VALUES {', '.join(rows)})")
    key, position, system_column = qn("idempotency_key"), qn("position"), qn("system_id")
    selected = ", ".join(f"incoming.{column}" for column in columns)
    statement.cte(
        "ev",
        f"INSERT INTO {event_table} ({qn('delivery_id')}, {incoming}) "  # noqa: S608 (quoted model metadata)
        f"SELECT new_delivery.id, {selected} FROM new_delivery, incoming ORDER BY incoming.{position} "
        f"ON CONFLICT ({system_column}, {key}) DO NOTHING RETURNING *",
    )
    statement.history("ev_history", InboundEvent, "ev", stamp)

    delivery.event_count = len(events)
    delivery.duplicate_count = 0
    new_count = "(SELECT count(*) FROM ev)"
    columns, values = statement.row(
        Delivery,
        delivery,
        {
            "id": ("new_delivery.id", []),
            "duplicate_count": (f"%s - {new_count}", [len(events)]),
            "status": (
                f"CASE WHEN {new_count} = 0 THEN %s ELSE %s END",
                [Delivery.Status.DUPLICATE.value, Delivery.Status.ACCEPTED.value],
            ),
        },
    )
    statement.ctes.append(
        f"d AS (INSERT INTO {delivery_table} ({', '.join(columns)}) "  # noqa: S608 (quoted model metadata)
        f"SELECT {', '.join(values)} FROM new_delivery RETURNING *)"
    )
    statement.history("d_history", Delivery, "d", stamp)

    keys = [event.idempotency_key[:255] for event in events]
    messages = [row for _, row in pick_up_message.send(sender=Delivery, system=system, keys=keys, using=using) if row]
    for number, message in enumerate(messages):
        model = message["model"]
        obj = model(**message["values"])
        columns, values = statement.row(model, obj, {})
        statement.ctes.append(
            f"message_{number} AS (INSERT INTO {qn(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(values)} WHERE EXISTS (SELECT 1 FROM ev))"
        )

    sql = (
        f"WITH {', '.join(statement.ctes)} "  # noqa: S608 (quoted model metadata)
        f"SELECT incoming.{key}, ev.id, ev.event_type, ev.status, old.id, old.event_type, old.status, "
        f"d.id, d.status, d.duplicate_count "
        f"FROM incoming CROSS JOIN d "
        f"LEFT JOIN ev ON ev.{key} = incoming.{key} AND ev.{position} = incoming.{position} "
        f"LEFT JOIN LATERAL (SELECT held.id, held.event_type, held.status FROM {event_table} held "
        f"WHERE held.{system_column} = %s AND held.{key} = incoming.{key} LIMIT 1) old ON true "
        f"ORDER BY incoming.{position}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*statement.params, system.pk])
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
