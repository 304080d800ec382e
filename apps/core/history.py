"""History on every model: who, when, why and the correlation ID, also for bulk writes.

Use `history()` instead of `HistoricalRecords()` on each model, and `bulk_create_tracked` /
`bulk_update_tracked` instead of plain `bulk_create`/`bulk_update`, which record nothing.
"""

from django.db import models
from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from .context import current_actor, current_reason, get_correlation_id, new_correlation_id


class HistoryContext(models.Model):
    """Extra columns on every history row: the correlation/request ID of the change."""

    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        abstract = True


def history_user_for(instance=None, request=None, **kwargs):
    """Who made the change: the acting user of the service call, the request's user, or the system user."""
    actor = current_actor()
    if actor is not None:
        return actor
    if request is not None and getattr(request, "user", None) is not None and request.user.is_authenticated:
        return request.user
    from .users import system_user

    return system_user()


def history(**kwargs) -> HistoricalRecords:
    """The HistoricalRecords every model here uses."""
    kwargs.setdefault("bases", [HistoryContext])
    kwargs.setdefault("get_user", history_user_for)
    return HistoricalRecords(**kwargs)


def _default_reason(request) -> str:
    if request is not None:
        return f"{request.method} {request.path}"
    return "Changed without a stated reason"


@receiver(pre_create_historical_record)
def stamp_history_row(sender, instance, history_instance, **kwargs):
    """Fill the reason and correlation ID on a history row the caller did not fill."""
    if not history_instance.correlation_id:
        history_instance.correlation_id = get_correlation_id() or new_correlation_id()
    if not history_instance.history_change_reason:
        request = getattr(HistoricalRecords.context, "request", None)
        history_instance.history_change_reason = current_reason() or _default_reason(request)


def _bulk_history_kwargs() -> dict:
    return {
        "default_user": history_user_for(),
        "default_change_reason": current_reason() or "Bulk write without a stated reason",
        "custom_historical_attrs": {"correlation_id": get_correlation_id() or new_correlation_id()},
    }


def bulk_create_tracked(model, objs, *, batch_size: int = 1000, **kwargs):
    """bulk_create that also writes one history row per object, with who/why/correlation."""
    return bulk_create_with_history(objs, model, batch_size=batch_size, **_bulk_history_kwargs(), **kwargs)


def bulk_update_tracked(model, objs, fields, *, batch_size: int = 1000):
    """bulk_update that also writes one history row per object, with who/why/correlation."""
    return bulk_update_with_history(objs, model, fields, batch_size=batch_size, **_bulk_history_kwargs())


def save_if_changed(instance, **values) -> bool:
    """Set the given fields and save only if one of them changed (every save writes a history row)."""
    changed = [name for name, value in values.items() if getattr(instance, name) != value]
    if not changed and instance.pk is not None:
        return False
    for name in changed:
        setattr(instance, name, values[name])
    instance.full_clean()
    instance.save()
    return True
