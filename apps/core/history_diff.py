"""Field-level changes between history rows, for many rows at once without a query per row.

simple-history's `prev_record` and `diff_against` ask the database once per row (and once per
many-to-many field); lists of history (the API's history endpoint, the console's audit browser) load
the previous rows of a whole page in one query per model here and compare them in memory.
"""

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from .masking import visible_json

HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}
_NOT_COMPARED = {"id", "m2m_history_id", "history"}


@dataclass(frozen=True)
class FieldChange:
    """One field's old and new value; both None and `masked` set when the reader may not see it."""

    field: str
    old: object
    new: object
    masked: bool = False


def m2m_names(history_model) -> list[str]:
    """The many-to-many fields whose membership the history model records (e.g. an ownership rule's grants)."""
    return [field.name for field in getattr(history_model, "_history_m2m_fields", [])]


def m2m_prefetches(history_model) -> list[str]:
    """What to prefetch on history rows so `field_changes` compares many-to-many membership without queries."""
    return [_m2m_accessor(history_model, name) for name in m2m_names(history_model)]


def _m2m_accessor(history_model, name) -> str:
    through = history_model.__dict__[name].model
    for relation in history_model._meta.related_objects:
        if relation.related_model is through:
            return relation.get_accessor_name()
    raise LookupError(f"{history_model.__name__} records no many-to-many field {name}")


def previous_rows(history_model, rows) -> dict[int, object]:
    """{history_id: the row before it for the same object} for rows of one history model, in two queries."""
    rows = list(rows)
    if not rows:
        return {}
    pk_name = history_model.instance_type._meta.pk.attname
    earlier = (
        history_model.objects.filter(**{pk_name: OuterRef(pk_name)}, history_date__lt=OuterRef("history_date"))
        .order_by("-history_date", "-history_id")
        .values("history_id")[:1]
    )
    links = dict(
        history_model.objects.filter(history_id__in=[row.history_id for row in rows])
        .annotate(previous_id=Subquery(earlier))
        .values_list("history_id", "previous_id")
    )
    wanted = {pid for pid in links.values() if pid is not None}
    found = {}
    if wanted:
        found = {
            row.history_id: row
            for row in history_model.objects.filter(history_id__in=wanted).prefetch_related(
                *m2m_prefetches(history_model)
            )
        }
    return {hid: found[pid] for hid, pid in links.items() if pid in found}


def field_changes(row, previous, hidden=frozenset(), *, user) -> list[FieldChange]:
    """What changed from `previous` to `row` (both history rows of one object), sorted by field name, as `user`
    may see it: `hidden` fields masked whole, rates inside JSON values (payloads, calls) masked by key.

    Many-to-many fields compare the prefetched membership rows (prefetch `m2m_prefetches(...)` on both).
    """
    if previous is None:
        return []
    changes = []
    for field in row.tracked_fields:
        if not field.editable:
            continue
        old, new = getattr(previous, field.attname), getattr(row, field.attname)
        if old != new:
            changes.append(_change(field.name, visible_value(old, user), visible_value(new, user), hidden))
    for name in m2m_names(type(row)):
        old, new = m2m_members(previous, name), m2m_members(row, name)
        if old != new:
            changes.append(_change(name, old, new, hidden))
    return sorted(changes, key=lambda change: change.field)


def _change(name, old, new, hidden) -> FieldChange:
    if name in hidden:
        return FieldChange(name, None, None, masked=True)
    return FieldChange(name, old, new)


def m2m_members(row, name) -> list:
    """The ids of the related records in a history row's snapshot of a many-to-many field, sorted."""
    target = type(row).instance_type._meta.get_field(name).related_model
    members = []
    for through in getattr(row, _m2m_accessor(type(row), name)).all():
        for field in through._meta.fields:
            if field.is_relation and field.related_model is target and field.name not in _NOT_COMPARED:
                members.append(getattr(through, field.attname))
    return sorted(members)


def visible_value(value, user):
    """A changed value as `user` may see it: rates inside JSON values (payloads, calls, outputs) masked."""
    return visible_json(value, user) if isinstance(value, dict | list) else value
