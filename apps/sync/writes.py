"""The ledger's hot writes: a row update, its history row and the writes that go with it in one statement.

`save_with_history(instance, writes=[...])` is `instance.save()` for a tracked row that already exists (a step, a
transaction), plus the given companion writes (`Update`: a queryset's UPDATE; `Insert`: a new row, e.g. an
attempt). On PostgreSQL everything is one statement, prepared on the server (`apps/core/prepared.py`): the
companion writes and an `UPDATE … RETURNING` as data-modifying CTEs, feeding the `INSERT … SELECT` of the history
row, which carries exactly what django-simple-history writes: every tracked column as stored, when, who
(`history_user_for`), why (the instance's `_change_reason`, else the current reason) and the correlation ID.
Elsewhere (SQLite) each write is its ordinary ORM call and `save()` writes the history row. Either way
`pre_save`/`post_save` are sent, so every other receiver runs (simple-history's own is told to skip: the row is
already written).
"""

from dataclasses import dataclass
from dataclasses import field as dataclass_field

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Model, QuerySet
from django.db.models.signals import post_save, pre_save
from django.db.models.sql import UpdateQuery

from apps.core.context import current_reason
from apps.core.history import history_copy_columns, history_stamp, history_user_for
from apps.core.prepared import prepared_cursor, statement_for


@dataclass
class Update:
    """`queryset.update(**values)`, sent with the save."""

    queryset: QuerySet
    values: dict = dataclass_field(default_factory=dict)


@dataclass
class Insert:
    """`instance.save()` of a new row without history (e.g. an attempt), sent with the save; sets its pk."""

    instance: Model


def fast_path() -> bool:
    return connection.vendor == "postgresql" and getattr(settings, "SIMPLE_HISTORY_ENABLED", True)


@dataclass
class Save:
    """Another existing tracked row saved, with its history row, in the same statement. `reason`, when given, is
    the history row's why (e.g. a finished step saved with the next step's claim keeps the finish's reason)."""

    instance: Model
    update_fields: list[str] | None = None
    reason: str | None = None


def save_with_history(
    instance, *, update_fields: list[str] | None = None, writes: tuple = (), also: tuple = ()
) -> None:
    """Save an existing tracked row (and `also` others), write their history rows and the companion writes: one
    statement on PostgreSQL."""
    saves = [Save(instance, update_fields), *also]
    if not fast_path() or any(save.instance.pk is None for save in saves):
        for write in writes:
            if isinstance(write, Update):
                write.queryset.update(**write.values)
            else:
                write.instance.save()
        for save in saves:
            if save.reason is None:
                save.instance.save(update_fields=save.update_fields)
                continue
            save.instance._change_reason = save.reason  # read by simple-history for this save's history row
            try:
                save.instance.save(update_fields=save.update_fields)
            finally:
                save.instance.__dict__.pop("_change_reason", None)
        return
    for save in saves:
        pre_save.send(
            sender=type(save.instance),
            instance=save.instance,
            raw=False,
            using=connection.alias,
            update_fields=save.update_fields,
        )
    ctes, params, inserted = [], [], []
    for number, write in enumerate(writes):
        sql, write_params = _update_sql(write) if isinstance(write, Update) else _insert_sql(write.instance)
        ctes.append(f"w{number} AS ({sql})")
        params += write_params
        if isinstance(write, Insert):
            inserted.append((number, write.instance))
    for number, save in enumerate(saves):
        sql, save_params = _save_sql(save.instance, save.update_fields)
        history_sql, history_params = _history_sql(save.instance, source=f"c{number}", reason=save.reason)
        ctes += [f"c{number} AS ({sql})", f"h{number} AS ({history_sql} RETURNING 1)"]
        params += save_params + history_params
    counts = [f"(SELECT count(*) FROM h{number})" for number in range(len(saves))]
    new_pks = [f"(SELECT new_pk FROM w{number})" for number, _ in inserted]
    with prepared_cursor(connection) as cursor:
        cursor.execute(statement_for(cursor, f"WITH {', '.join(ctes)} SELECT {', '.join(counts + new_pks)}"), params)
        row = cursor.fetchone()
    for save, count in zip(saves, row[: len(saves)], strict=True):
        if count != 1:  # the statement is rolled back with the caller's transaction
            meta = save.instance._meta
            raise save.instance.DoesNotExist(f"{meta.object_name} {save.instance.pk} was not found to be saved.")
    for (_, new), pk in zip(inserted, row[len(saves) :], strict=True):
        new.pk = pk
        new._state.adding = False
        new._state.db = connection.alias
    for save in saves:
        _saved(save)


def create_with_history(parent, children: list, *, link: str, message=None) -> bool:
    """PostgreSQL: insert a new tracked row, its new tracked children (pointing at it through the foreign key
    `link`), the history row of each ("+": who, why, correlation ID, as save() and bulk_create_tracked write
    them) and, if given, a queue row, in two round trips (the keys, then one statement; atomic by itself).
    `message(children)` returns the queue row ({"model", "values"}, e.g. `queue.step_message_row`) or None;
    returns whether a queue row was written. As `objects.create`, the parent's pre_save/post_save are sent
    (simple-history's own receiver skips); the children's are not, as with bulk_create."""
    model, child_model = type(parent), type(children[0])
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)), "
            "ARRAY(SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s))",
            [
                model._meta.db_table,
                model._meta.pk.column,
                child_model._meta.db_table,
                child_model._meta.pk.column,
                len(children),
            ],
        )
        parent.pk, child_pks = cursor.fetchone()
    for child, pk in zip(children, child_pks, strict=True):
        child.pk = pk
        setattr(child, link, parent)
    pre_save.send(sender=model, instance=parent, raw=False, using=connection.alias, update_fields=None)
    stamp = history_stamp("+", user=history_user_for(instance=parent), reason=current_reason() or _NO_REASON)
    ctes, params = [], []
    for name, rows in (("p", [parent]), ("c", children)):
        sql, row_params = _insert_rows_sql(rows)
        table, columns, tracked = history_copy_columns(type(rows[0]))
        ctes.append(f"{name} AS ({sql})")
        history = f"INSERT INTO {table} ({columns}) SELECT {', '.join(tracked)}, %s, %s, %s, %s, %s FROM {name}"  # noqa: S608
        ctes.append(f"{name}h AS ({history} RETURNING 1)")
        params += row_params + stamp
    row = message(children) if message is not None else None
    if row is not None:
        meta = row["model"]._meta
        columns = list(row["values"])
        names = ", ".join(qn(meta.get_field(column).column) for column in columns)
        ctes.append(f"q AS (INSERT INTO {qn(meta.db_table)} ({names}) VALUES ({', '.join(['%s'] * len(columns))}))")  # noqa: S608
        params += [meta.get_field(column).get_db_prep_save(row["values"][column], connection) for column in columns]
    with prepared_cursor(connection) as cursor:
        sql = f"WITH {', '.join(ctes)} SELECT (SELECT count(*) FROM ph), (SELECT count(*) FROM ch)"
        cursor.execute(statement_for(cursor, sql), params)
        written = cursor.fetchone()
    if tuple(written) != (1, len(children)):
        raise DatabaseError(
            f"{model._meta.object_name} {parent.pk}: {written} history rows written, not 1 and {len(children)}."
        )
    for instance in (parent, *children):
        instance._state.adding = False
        instance._state.db = connection.alias
    parent.skip_history_when_saving = True
    try:
        post_save.send(
            sender=model, instance=parent, created=True, update_fields=None, raw=False, using=connection.alias
        )
    finally:
        del parent.skip_history_when_saving
    return row is not None


_NO_REASON = "Changed without a stated reason"


def _insert_rows_sql(rows: list) -> tuple[str, list]:
    """INSERT of new rows with their keys already drawn, RETURNING their tracked columns (for the history rows)."""
    meta = rows[0]._meta
    qn = connection.ops.quote_name
    fields = meta.concrete_fields
    params = []
    for row in rows:
        params += [field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields]
    values = ", ".join([f"({', '.join(['%s'] * len(fields))})"] * len(rows))
    tracked = history_copy_columns(type(rows[0]))[2]
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(field.column) for field in fields)}) "  # noqa: S608
        f"VALUES {values} RETURNING {', '.join(tracked)}"
    )
    return sql, params


def _saved(save: Save) -> None:
    """post_save for the other receivers; simple-history's own skips (the history row is already written)."""
    instance = save.instance
    instance._state.db = connection.alias
    instance.skip_history_when_saving = True
    try:
        post_save.send(
            sender=type(instance),
            instance=instance,
            created=False,
            update_fields=save.update_fields,
            raw=False,
            using=connection.alias,
        )
    finally:
        del instance.skip_history_when_saving


def _save_sql(instance, update_fields) -> tuple[str, list]:
    meta = instance._meta
    qn = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    if update_fields is not None:
        wanted = set(update_fields)
        fields = [field for field in fields if field.name in wanted or field.attname in wanted]
    assignments, params = [], []
    for field in fields:
        value = field.pre_save(instance, False)  # auto_now fields take the time here, as save() does
        assignments.append(f"{qn(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    tracked = history_copy_columns(type(instance))[2]
    sql = (
        f"UPDATE {qn(meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608 (quoted model metadata)
        f"WHERE {qn(meta.pk.column)} = %s RETURNING {', '.join(tracked)}"
    )
    return sql, [*params, instance.pk]


def _history_sql(instance, *, source: str, reason: str | None = None) -> tuple[str, list]:
    table, columns, tracked = history_copy_columns(type(instance))
    stamp = history_stamp(
        "~",
        user=history_user_for(instance=instance),
        reason=reason or getattr(instance, "_change_reason", None) or current_reason() or _NO_REASON,
        when=getattr(instance, "_history_date", None),
    )
    return f"INSERT INTO {table} ({columns}) SELECT {', '.join(tracked)}, %s, %s, %s, %s, %s FROM {source}", stamp  # noqa: S608


def _update_sql(write: Update) -> tuple[str, list]:
    query = write.queryset.query.chain(UpdateQuery)
    query.add_update_values(write.values)
    sql, params = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def _insert_sql(new) -> tuple[str, list]:
    meta = new._meta
    qn = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    params = [field.get_db_prep_save(field.pre_save(new, True), connection) for field in fields]
    columns = ", ".join(qn(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES ({placeholders}) RETURNING {qn(meta.pk.column)} AS new_pk"  # noqa: S608
    )
    return sql, params
