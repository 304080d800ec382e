"""On PostgreSQL, history tables are append-only: a trigger refuses UPDATE and DELETE of history rows.

History rows are ordinary rows that any `.update()` or `.delete()` could change; for an audit trail that
is not good enough. The trigger is (re)installed after every migrate, so new history tables are covered.
TRUNCATE (used by test database resets) is not affected.
"""

from django.apps import apps
from django.db import connections

FUNCTION = """
CREATE OR REPLACE FUNCTION history_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'History rows are the audit trail and cannot be changed or deleted (table %).', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def history_tables() -> list[str]:
    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if model._meta.model_name.startswith("historical") and hasattr(model, "instance_type")
    )


def protect_history_tables(using: str = "default") -> int:
    """Install the append-only trigger on every history table (PostgreSQL only). Returns how many."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return 0
    tables = set(history_tables()) & set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        cursor.execute(FUNCTION)
        for table in sorted(tables):
            name = connection.ops.quote_name(table)
            cursor.execute(
                f"CREATE OR REPLACE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON {name} "
                "FOR EACH ROW EXECUTE FUNCTION history_is_append_only()"
            )
    return len(tables)


def protect_after_migrate(sender, using="default", **kwargs):
    """post_migrate receiver: run once, after the last app (all history tables exist then)."""
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if with_models and sender.label == with_models[-1].label:
        protect_history_tables(using)
