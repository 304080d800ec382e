"""History rows of many models, each with the row before it, in one statement.

A page of the audit browser holds the newest changes of whichever models changed last. Loading them model by
model costs a few statements per model on the page, so the same page costs more when more kinds of record
changed. `load_history_rows` reads every row asked for, its author's name, the row before it for the same
object (for the diff), and the many-to-many membership rows of both, as ONE `UNION ALL`:

- each part selects one table's rows: the rows asked for, the rows before them (found by the same correlated
  subquery `previous_rows` uses: same object, earlier `history_date`, newest first), or the membership rows
  of either;
- parts have different columns, so each column takes a *slot* of its database type and the other parts put a
  typed NULL there: the statement is as wide as the widest model per type, not the sum of every model's columns;
- the values of a row are converted by its own fields' converters (the ones Django's compiler would use) and
  made a model instance with `from_db`, as a queryset would.
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connections

from .history_diff import m2m_names

_CURRENT, _PREVIOUS, _MEMBERS = "current", "previous", "members"


@dataclass
class LoadedHistory:
    """The rows of one history model asked for, with what their diffs need."""

    rows: list = field(default_factory=list)  # in the order the database returned them
    previous: dict = field(default_factory=dict)  # {history_id: the row before it for the same object}
    usernames: dict = field(default_factory=dict)  # {history_id: the author's username, "" if none}


@dataclass
class _Part:
    model: type  # the model whose table this part reads (a history model, or a membership "through" model)
    role: str
    sql: str
    params: list
    owner: type | None = None  # for membership rows: the history model they belong to


def _slot_type(model_field, connection) -> str:
    """The database type a column's slot has: 'varchar(64)' and 'varchar(200)' share the slot type 'varchar'."""
    return re.sub(r"\(.*?\)", "", model_field.db_type(connection) or "text").strip()


def _previous_sql(table: str, object_column: str, outer: str, qn) -> str:
    """The history id of the row before `outer`'s row for the same object (None for its first row)."""
    return (
        f"(SELECT e.{qn('history_id')} FROM {qn(table)} e WHERE e.{qn(object_column)} = {outer}.{qn(object_column)} "
        f"AND e.{qn('history_date')} < {outer}.{qn('history_date')} "
        f"ORDER BY e.{qn('history_date')} DESC, e.{qn('history_id')} DESC LIMIT 1)"
    )


def _parts(wanted: dict[type, list[int]], connection) -> list[_Part]:
    qn = connection.ops.quote_name
    user_model = get_user_model()
    parts = []
    for history_model, ids in wanted.items():
        if not ids:
            continue
        table = history_model._meta.db_table
        object_column = history_model._meta.get_field(history_model.instance_type._meta.pk.attname).column
        marks = ", ".join(["%s"] * len(ids))
        author = history_model._meta.get_field("history_user").column
        user_key = user_model._meta.pk.column
        parts.append(
            _Part(
                history_model,
                _CURRENT,
                f"FROM {qn(table)} h LEFT JOIN {qn(user_model._meta.db_table)} u "
                f"ON u.{qn(user_key)} = h.{qn(author)} WHERE h.{qn('history_id')} IN ({marks})",
                list(ids),
            )
        )
        previous = _previous_sql(table, object_column, "c", qn)  # c: a row asked for
        earlier_ids = f"SELECT {previous} FROM {qn(table)} c WHERE c.{qn('history_id')} IN ({marks})"
        parts.append(
            _Part(
                history_model,
                _PREVIOUS,
                f"FROM {qn(table)} h WHERE h.{qn('history_id')} IN ({earlier_ids})",
                list(ids),
            )
        )
        for name in m2m_names(history_model):
            through = history_model.__dict__[name].model
            link = through._meta.get_field("history").column
            parts.append(
                _Part(
                    through,
                    _MEMBERS,
                    f"FROM {qn(through._meta.db_table)} h WHERE h.{qn(link)} IN ({marks}) "
                    f"OR h.{qn(link)} IN ({earlier_ids})",
                    [*ids, *ids],
                    owner=history_model,
                )
            )
    return parts


def load_history_rows(wanted: dict[type, list[int]], *, using: str = "default") -> dict[type, LoadedHistory]:
    """{history model: its rows with these history ids, the rows before them and their authors}, in one
    statement whatever the number of models."""
    connection = connections[using]
    qn = connection.ops.quote_name
    parts = _parts(wanted, connection)
    loaded = {history_model: LoadedHistory() for history_model in wanted}
    if not parts:
        return loaded
    # Slots: the n-th column of a type in a part goes to the n-th slot of that type.
    slots: list[str] = []
    positions: dict[type, list[int]] = {}
    for part in parts:
        if part.model in positions:
            continue
        used: dict[str, int] = defaultdict(int)
        places = []
        for model_field in part.model._meta.concrete_fields:
            kind = _slot_type(model_field, connection)
            nth = used[kind]
            used[kind] += 1
            matching = [index for index, slot in enumerate(slots) if slot == kind]
            if nth >= len(matching):
                slots.append(kind)
                matching.append(len(slots) - 1)
            places.append(matching[nth])
        positions[part.model] = places
    user_model = get_user_model()
    username_type = _slot_type(user_model._meta.get_field(user_model.USERNAME_FIELD), connection)
    username_column = qn(user_model._meta.get_field(user_model.USERNAME_FIELD).column)
    selects, params = [], []
    for number, part in enumerate(parts):
        columns = [f"CAST(NULL AS {kind})" for kind in slots]
        for model_field, place in zip(part.model._meta.concrete_fields, positions[part.model], strict=True):
            columns[place] = f"h.{qn(model_field.column)}"
        if part.role == _CURRENT:
            table = part.model._meta.db_table
            object_column = part.model._meta.get_field(part.model.instance_type._meta.pk.attname).column
            extra = [_previous_sql(table, object_column, "h", qn), f"u.{username_column}"]
        else:
            extra = ["CAST(NULL AS bigint)", f"CAST(NULL AS {username_type})"]
        selects.append(f"SELECT {number} AS audit_part, {', '.join(extra + columns)} {part.sql}")
        params.extend(part.params)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects), params)
        fetched = cursor.fetchall()
    return _assemble(fetched, parts, positions, loaded, connection, using)


def _reader(model, places, connection, using):
    """A function making an instance of `model` from a fetched row: its slots' values through its fields'
    converters (worked out once per model, as a queryset's compiler does once per query)."""
    fields = model._meta.concrete_fields
    attnames = [model_field.attname for model_field in fields]
    steps = []
    for model_field, place in zip(fields, places, strict=True):
        expression = model_field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(expression) + model_field.get_db_converters(connection)
        steps.append((place, converters, expression))

    def read(values):
        picked = []
        for place, converters, expression in steps:
            value = values[place]
            for converter in converters:
                value = converter(value, expression, connection)
            picked.append(value)
        return model.from_db(using, attnames, picked)

    return read


def _assemble(fetched, parts, positions, loaded, connection, using) -> dict[type, LoadedHistory]:
    by_id: dict[tuple[type, int], object] = {}
    read: list[tuple[type, object]] = []
    readers = {model: _reader(model, places, connection, using) for model, places in positions.items()}
    previous_of: dict[type, dict[int, int]] = defaultdict(dict)
    members: dict[tuple[type, int], list] = defaultdict(list)
    for part_number, previous_id, username, *values in fetched:
        part = parts[part_number]
        instance = readers[part.model](values)
        if part.role == _MEMBERS:
            members[(part.owner, instance.history_id)].append(instance)
            continue
        by_id[(part.model, instance.history_id)] = instance
        read.append((part.model, instance))
        if part.role == _CURRENT:
            loaded[part.model].rows.append(instance)
            loaded[part.model].usernames[instance.history_id] = username or ""
            if previous_id is not None:
                previous_of[part.model][instance.history_id] = previous_id
    for history_model, result in loaded.items():
        for history_id, previous_id in previous_of[history_model].items():
            if (history_model, previous_id) in by_id:
                result.previous[history_id] = by_id[(history_model, previous_id)]
    for history_model, row in read:
        _keep_members(row, history_model, members)
    return loaded


def _keep_members(row, history_model, members) -> None:
    """Put the membership rows read with `row` where `field_changes` reads them (a prefetch of each accessor)."""
    for name in m2m_names(history_model):
        through = history_model.__dict__[name].model
        manager = getattr(row, _accessor(history_model, through))
        queryset = manager.get_queryset()  # lazy: no statement
        queryset._result_cache = [
            member for member in members.get((history_model, row.history_id), []) if isinstance(member, through)
        ]
        queryset._prefetch_done = True  # what prefetch_related leaves behind, so `.all()` reads this list
        cache = getattr(row, "_prefetched_objects_cache", None) or {}
        row._prefetched_objects_cache = {**cache, manager.field.remote_field.cache_name: queryset}


def _accessor(history_model, through) -> str:
    for relation in history_model._meta.related_objects:
        if relation.related_model is through:
            return relation.get_accessor_name()
    raise LookupError(f"{history_model.__name__} records no membership in {through.__name__}")
