"""Set-based filling of a model's table for the list benchmark: one `INSERT … SELECT … FROM generate_series`.

`fill(model, size, overrides)` writes `size` rows numbered `i` = 1..size. Every concrete column gets a value read
from the model itself unless `overrides` gives a SQL expression for it (over `i` and `t`, the row's timestamp,
spread evenly over the last 60 days): nullable columns NULL, columns with a default their default, a column in a
unique constraint `'bench-' || i` (or `i`), dates and times `t`, text ''. Foreign keys without a null must be
given. No ORM, no signals, no history rows (the benchmark fills the history tables the same way, on purpose).
"""

import contextlib
import json

from django.db import connection, models
from django.db.models import NOT_PROVIDED

SPREAD = "interval '60 days'"


def _unique_columns(model) -> set[str]:
    names = set()
    for field in model._meta.concrete_fields:
        if field.unique and not field.primary_key:
            names.add(field.column)
    for together in model._meta.unique_together:
        names |= {model._meta.get_field(name).column for name in together}
    for constraint in model._meta.constraints:
        for name in getattr(constraint, "fields", ()) or ():
            names.add(model._meta.get_field(name).column)
    return names


def _literal(field, value) -> str:
    if value is None:
        return "NULL"
    if isinstance(field, models.JSONField):
        return "'" + json.dumps(value).replace("'", "''") + "'::jsonb"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _expression(field, unique: bool) -> str:
    if field.primary_key:
        return "i"
    if isinstance(field, models.ForeignKey):
        if field.null:
            return "NULL"
        raise ValueError(f"{field.model.__name__}.{field.name}: a foreign key without a null needs an override")
    if isinstance(field, models.DateTimeField):
        return "t"
    if isinstance(field, models.DateField):
        return "t::date"
    if unique:
        if isinstance(field, models.IntegerField):
            return "i"
        return "'bench-' || i"
    if field.null:
        return "NULL"
    if field.default is not NOT_PROVIDED:
        return _literal(field, field.default() if callable(field.default) else field.default)
    if isinstance(field, models.JSONField):
        return "'{}'::jsonb"
    if isinstance(field, models.BooleanField):
        return "false"
    if isinstance(field, models.IntegerField | models.DecimalField | models.FloatField):
        return "0"
    if isinstance(field, models.BinaryField):
        return "''::bytea"
    return "''"


def fill(model, size: int, overrides: dict[str, str] | None = None) -> None:
    """Append `size` generated rows to `model`'s (empty) table; ids 1..size."""
    overrides = overrides or {}
    unique = _unique_columns(model)
    columns, values = [], []
    for field in model._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        values.append(overrides.get(field.column) or _expression(field, field.column in unique))
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM "
            f"(SELECT i, now() - ({size} - i) * ({SPREAD} / {size}) AS t FROM generate_series(1::bigint, {size}) AS i)"
            " AS g (i, t)"
        )
        pk = model._meta.pk.column
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{pk}'), {max(size, 1)})")


@contextlib.contextmanager
def bulk_load(tables: list[str]):
    """Drop the tables' plain indexes (not the ones behind constraints) for the duration, then build them again;
    and skip the foreign-key triggers meanwhile (`session_replication_role`: the generated rows are consistent by
    construction, and the database is a benchmark's own).

    Inserting a million rows into a table with twenty indexes updates every index row by row (minutes); building an
    index over the rows already there sorts once (seconds).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            [list(tables)],
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET session_replication_role")
            for _name, definition in indexes:
                cursor.execute(definition)
