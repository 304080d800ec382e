"""PostgreSQL server-side prepared statements for the few long statements on the hot paths (the webhook intake's
one statement, the ledger's one-statement saves): PostgreSQL parses and plans such a text once per connection and
shape instead of on every call, and the parameters travel apart from the text instead of being quoted into it.

Django opens psycopg connections with `prepare_threshold=None` (nothing is ever prepared, for the sake of
transaction-pooling proxies) and binds every other statement client-side, so nothing else changes.
`PREPARED_STATEMENTS=0` turns it off behind a proxy that cannot keep prepared statements (pgbouncer < 1.21 in
transaction mode); the statements then go out as Django's own do.
"""

import functools

import psycopg
from django.conf import settings

# Any value but None lets `prepare=True` prepare a statement; this one is too high for psycopg to prepare anything
# else by itself.
ONLY_WHEN_ASKED = 2**62


class PreparedCursor(psycopg.RawCursor):
    """A psycopg cursor on Django's connection that runs its statement as a server-side prepared statement with
    `$n` placeholders. psycopg keeps the prepared statements per connection, by text and parameter types (and
    forgets them after a rollback)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)

    def _send_query_prepared(self, name, pgq, *, binary=None):
        self._query = pgq  # what Django's query log reads (`last_executed_query`); psycopg sets it only unprepared
        super()._send_query_prepared(name, pgq, binary=binary)


def enabled() -> bool:
    return getattr(settings, "PREPARED_STATEMENTS", True)


def prepared_cursor(connection):
    """A cursor for one long statement, wrapped like `connection.cursor()`: the health check, Django's error
    classes, query logging (`CaptureQueriesContext`) and execute wrappers apply, and the transaction is the
    connection's own (autocommit outside `atomic()`). Django's own client-side cursor when prepared statements
    are off. Pass the text through `statement_for(cursor, sql)`."""
    if not enabled():
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = ONLY_WHEN_ASKED
    with connection.wrap_database_errors:
        return connection._prepare_cursor(PreparedCursor(raw))


def statement_for(cursor, sql: str):
    """`sql` (with `%s` placeholders) as the cursor wants it: numbered for a prepared cursor, as is otherwise."""
    return numbered(sql) if isinstance(cursor.cursor, PreparedCursor) else sql


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> bytes:
    """The statement with PostgreSQL's own `$1, $2, …` placeholders for `%s` (no other % in it: quoted metadata
    only), as `PreparedCursor` sends it: psycopg need not scan the long text for placeholders every time."""
    parts = sql.split("%s")
    return "".join(
        part + (f"${number}" if number < len(parts) else "") for number, part in enumerate(parts, 1)
    ).encode()
