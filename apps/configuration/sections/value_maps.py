"""`value_maps`: named translation tables (e.g. CRM region → ERP subsidiary) with effective-dated entries."""

from functools import partial

from apps.mapping.models import ValueMap, ValueMapEntry
from apps.mapping.workflow_maps import REQUIRED as REQUIRED_MAPS
from apps.systems.models import SystemKind

from .. import reading as r
from .base import (
    DELETED,
    UNCHANGED,
    Change,
    Period,
    PlanContext,
    Section,
    SectionPlan,
    check_model,
    check_period,
    duplicate_check,
    find_overlaps,
    model_default,
    period_label,
    top_items,
    update_or_build,
    where_it_is,
)

MAP_KEYS = [
    r.Key("name", "name", r.TEXT, required=True),
    r.Key("source_label", "source_label", r.TEXT, required=True),
    r.Key("target_label", "target_label", r.TEXT, required=True),
    r.Key("description", "description", r.TEXT, default=""),
    r.Key("source_system", "source_system", r.SLUG, default=None),
    r.Key("target_system", "target_system", r.SLUG, default=None),
    r.Key("case_sensitive", "case_sensitive", r.BOOL, default=model_default(ValueMap, "case_sensitive")),
    r.Key("default_target", "default_target", r.TEXT, default=""),
]
ENTRY_KEYS = [
    r.Key("source", "source_value", r.TEXT, required=True),
    r.Key("target", "target_value", r.TEXT, required=True),
    r.Key("effective_from", "effective_from", r.DATE, required=True),
    r.Key("effective_to", "effective_to", r.DATE, default=None),
    r.Key("note", "note", r.TEXT, default=""),
]
MAP_DOCUMENT_KEYS = {key.attr: key.key for key in MAP_KEYS}
ENTRY_DOCUMENT_KEYS = {key.attr: key.key for key in ENTRY_KEYS}
SYSTEM_REFERENCES = ("source_system", "target_system")


def _entry_label(value_map_name: str, source: str, start) -> str:
    return f"value map {value_map_name} entry {source!r} from {start.isoformat()}"


def _value_key(source: str, case_sensitive: bool) -> str:
    """How a map compares source values: exactly, or ignoring case."""
    return source if case_sensitive else source.casefold()


class ValueMapsSection(Section):
    """Value maps; identity is the name, an entry's identity is (source, effective_from) within its map."""

    key = "value_maps"
    depends_on = ("systems",)

    def export(self) -> list[dict]:
        maps = ValueMap.objects.select_related("source_system", "target_system").prefetch_related("entries")
        rows = []
        for value_map in sorted(maps, key=lambda m: m.name):
            document = {}
            for key in MAP_KEYS:
                value = getattr(value_map, key.attr)
                document[key.key] = (value.slug if value else None) if key.kind == r.SLUG else value
            document["entries"] = [
                {key.key: r.export_value(key.kind, getattr(entry, key.attr)) for key in ENTRY_KEYS}
                for entry in sorted(value_map.entries.all(), key=lambda e: (e.source_value, e.effective_from))
            ]
            rows.append(document)
        return rows

    def existing(self) -> dict[str, ValueMap]:
        return {value_map.name: value_map for value_map in ValueMap.objects.all()}

    def plan(self, raw, ctx: PlanContext) -> SectionPlan:
        plan = SectionPlan(self.key)
        existing = {
            value_map.name: value_map
            for value_map in ctx.locked(
                ValueMap.objects.select_related("source_system", "target_system").prefetch_related("entries")
            )
        }
        items = top_items(raw, self.key, ctx.problems, keys=[*MAP_DOCUMENT_KEYS.values(), "entries"], what="value maps")
        seen = {}
        for item in items:
            before = len(ctx.problems)
            values = item.read(MAP_KEYS)
            for reference in SYSTEM_REFERENCES:
                slug = values[reference]
                if slug not in (None, r.INVALID):
                    values[reference] = ctx.resolve("systems", slug, item, item.at(reference), what="system")
            entries = [
                (entry_item, entry_item.read(ENTRY_KEYS))
                for entry_item in item.items("entries", ENTRY_DOCUMENT_KEYS.values(), what="value map entries")
            ]
            for entry_item, entry_values in entries:
                check_period(entry_item, entry_values["effective_from"], entry_values["effective_to"])
            name = values["name"]
            if name is r.INVALID or not duplicate_check(seen, name, item, f"value map {r.show(name)}"):
                continue
            value_map = existing.get(name)
            valid = len(ctx.problems) == before
            value_map, changed, action = update_or_build(
                plan, ValueMap, value_map, values, MAP_DOCUMENT_KEYS, valid=valid, drop_none=True
            )
            plan.rows[name] = value_map
            if not valid:
                continue
            if action != UNCHANGED:
                check_model(value_map, item, MAP_DOCUMENT_KEYS)
            plan.add(
                Change(
                    action,
                    f"value map {name}",
                    item.location,
                    value_map,
                    fields=changed,
                    save=action != UNCHANGED,
                    keys=MAP_DOCUMENT_KEYS,
                )
            )
            self._plan_entries(plan, ctx, value_map, entries, existing_map=name in existing)
        if ctx.prune:
            for name, value_map in sorted(existing.items()):
                if name not in plan.rows:
                    plan.add(Change(DELETED, f"value map {name}", self.key, value_map, late=True))
        else:
            for name, value_map in existing.items():
                plan.rows.setdefault(name, value_map)
        schedule_required_maps_check(ctx)
        return plan

    def _plan_entries(self, plan, ctx, value_map: ValueMap, entries, *, existing_map: bool) -> None:
        case_sensitive = value_map.case_sensitive
        current = {}
        if existing_map:
            for entry in value_map.entries.all():
                current[(_value_key(entry.source_value, case_sensitive), entry.effective_from)] = entry
        seen, listed, changes = {}, [], []
        for item, values in entries:
            if any(value is r.INVALID for value in values.values()):
                continue
            identity = (_value_key(values["source_value"], case_sensitive), values["effective_from"])
            if not duplicate_check(seen, identity, item, f"the entry for {values['source_value']!r} from that date"):
                continue
            entry = current.get(identity)
            entry, changed, action = update_or_build(
                plan, ValueMapEntry, entry, values, ENTRY_DOCUMENT_KEYS, value_map=value_map
            )
            if action != UNCHANGED:
                check_model(entry, item, ENTRY_DOCUMENT_KEYS, run_clean=False)
            listed.append(Period(entry.effective_from, entry.effective_to, entry, item))
            changes.append(
                Change(
                    action,
                    _entry_label(value_map.name, entry.source_value, entry.effective_from),
                    item.location,
                    entry,
                    fields=changed,
                    save=action != UNCHANGED,
                    keys=ENTRY_DOCUMENT_KEYS,
                )
            )
        kept, deletes = [], []
        for identity, entry in sorted(current.items()):
            if identity in seen:
                continue
            if ctx.prune:
                deletes.append(
                    Change(
                        DELETED,
                        _entry_label(value_map.name, entry.source_value, entry.effective_from),
                        self.key,
                        entry,
                    )
                )
            else:
                kept.append(Period(entry.effective_from, entry.effective_to, entry))
        self._check_overlaps(value_map, kept, listed)
        # Pruned entries go first and the rest in date order, so no intermediate state overlaps.
        changes.sort(key=lambda c: (_value_key(c.instance.source_value, case_sensitive), c.instance.effective_from))
        plan.changes.extend(deletes + changes)

    def _check_overlaps(self, value_map: ValueMap, kept: list[Period], listed: list[Period]) -> None:
        case_sensitive = value_map.case_sensitive
        groups = {}
        for period in kept + listed:
            key = _value_key(period.row.source_value, case_sensitive)
            groups.setdefault(key, ([], []))[period.item is not None].append(period)
        for group_kept, group_listed in groups.values():
            for period, other in find_overlaps(group_kept, group_listed):
                period.item.fail(
                    period.item.location,
                    f"value map {value_map.name} already maps {other.row.source_value!r} to "
                    f"{other.row.target_value!r} for {period_label(other.start, other.end)} ({where_it_is(other)}); "
                    f"entries for the same value may not overlap: end one the day before the next starts",
                )


def schedule_required_maps_check(ctx: PlanContext) -> None:
    """Once every section is planned, name each value map the workflows need that will not exist (once per import)."""
    if not any(getattr(check, "func", None) is check_required_maps for check in ctx.checks):
        ctx.check_later(partial(check_required_maps, ctx))


def check_required_maps(ctx: PlanContext) -> None:
    """With an enabled ERP, the workflows translate through the required maps; warn about each one missing."""
    if not any(system.enabled and system.kind == SystemKind.ERP for system in ctx.rows("systems").values()):
        return
    maps = ctx.rows("value_maps")
    location = "value_maps" if "value_maps" in ctx.plans else "systems"
    for name, purpose in REQUIRED_MAPS.items():
        if name not in maps:
            ctx.warn(
                location,
                f"there is no value map '{name}' ({purpose}); the workflows that need it stop with a mapping "
                f"error until it exists: add it under 'value_maps'",
            )
