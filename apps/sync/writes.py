"""The ledger's hot writes: a row update and its history row in one statement on PostgreSQL.

`save_with_history(instance)` is `instance.save()` for a tracked ledger row (a step, an open transaction) that
already exists. On PostgreSQL it sends one statement instead of two, an `UPDATE … RETURNING` feeding the
`INSERT … SELECT` of the history row, which carries exactly what django-simple-history would write: every
tracked column as stored, when, who (`history_user_for`), why (the instance's `_change_reason`, else the
current reason) and the correlation ID. Elsewhere (SQLite) it is `instance.save()`, whose signal writes the
same history row.

Only for models whose one `post_save` receiver is their history: no other receiver runs on the fast path.
"""

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.context import current_reason, get_correlation_id, new_correlation_id
from apps.core.history import history_user_for

HISTORY_COLUMNS = ("history_date", "history_change_reason", "history_type", "history_user_id", "history_correlation_id")


def fast_path() -> bool:
    return connection.vendor == "postgresql" and getattr(settings, "SIMPLE_HISTORY_ENABLED", True)


def save_with_history(instance, *, update_fields: list[str] | None = None) -> None:
    """Save an existing tracked row and write its history row (one statement on PostgreSQL)."""
    if not fast_path() or instance.pk is None:
        instance.save(update_fields=update_fields)
        return
    model = type(instance)
    meta = model._meta
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
    history_model = model.history.model
    tracked = [field.attname for field in history_model.tracked_fields]
    target_columns = [qn(history_model._meta.get_field(name).column) for name in (*tracked, *HISTORY_COLUMNS)]
    source_columns = [qn(meta.get_field(name).column) for name in tracked]
    user = history_user_for(instance=instance)
    reason = getattr(instance, "_change_reason", None) or current_reason() or "Changed without a stated reason"
    params += [
        instance.pk,
        connection.ops.adapt_datetimefield_value(getattr(instance, "_history_date", None) or timezone.now()),
        reason,
        "~",
        getattr(user, "pk", None),
        get_correlation_id() or new_correlation_id(),
    ]
    sql = (
        f"WITH changed AS (UPDATE {qn(meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608 (quoted model metadata)
        f"WHERE {qn(meta.pk.column)} = %s RETURNING {', '.join(source_columns)}) "
        f"INSERT INTO {qn(history_model._meta.db_table)} ({', '.join(target_columns)}) "
        f"SELECT {', '.join(source_columns)}, %s, %s, %s, %s, %s FROM changed"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != 1:
            raise model.DoesNotExist(f"{meta.object_name} {instance.pk} was not found to be saved.")
