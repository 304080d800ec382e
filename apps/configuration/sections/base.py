"""What a section of the configuration document is, and the plan an import makes before writing anything.

A section (systems, ownership_rules, ...) is one small unit: `export()` writes its rows as document
data, `plan()` reads its part of a document, reports every problem with its location and returns the
changes it would make; the import service applies all plans in one transaction. Sections know nothing
of each other except through `PlanContext.rows()`, which answers "which rows of section X will exist?".
"""

import datetime
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from ..errors import LocatedError, Problems
from ..reading import INVALID, Item, show

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
DELETED = "deleted"
ACTIONS = (CREATED, UPDATED, UNCHANGED, DELETED)


@dataclass
class Change:
    """One row the import creates, updates, leaves alone or deletes, in the order it is written."""

    action: str
    label: str
    location: str = ""
    instance: models.Model | None = None
    fields: tuple[str, ...] = ()  # document keys whose values change
    save: bool = False
    m2m: dict[str, list] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # model field -> document key, to locate model errors
    late: bool = False  # a delete done after every section has written (rows other sections may still use)

    def describe(self) -> str:
        detail = f" ({', '.join(self.fields)})" if self.fields and self.action == UPDATED else ""
        return f"{self.action} {self.label}{detail}"


@dataclass
class SectionPlan:
    """Everything a section would change, plus its rows as they will be once the import is applied."""

    key: str
    changes: list[Change] = field(default_factory=list)
    rows: dict[str, models.Model] = field(default_factory=dict)  # identity -> row after the import
    listed: set[tuple[type[models.Model], int]] = field(default_factory=set)  # database rows the document lists

    def add(self, change: Change) -> Change:
        self.changes.append(change)
        return change


@dataclass
class PlanContext:
    """Shared state of one import: the problems found so far, --prune, and the plans made so far."""

    problems: Problems
    prune: bool
    sections: dict[str, "Section"]
    lock: bool = False
    plans: dict[str, SectionPlan] = field(default_factory=dict)
    in_database: dict[str, dict] = field(default_factory=dict)
    checks: list[Callable[[], None]] = field(default_factory=list)
    warnings: list[LocatedError] = field(default_factory=list)  # reported, but the import goes ahead

    def warn(self, location: str, message: str) -> None:
        """Something the import does not refuse but people must hear about (e.g. a workflow without a route)."""
        self.warnings.append(LocatedError(location, message))

    def check_later(self, check: Callable[[], None]) -> None:
        """Run a check once every section is planned (e.g. a name that a section planned after this one defines)."""
        self.checks.append(check)

    def locked(self, queryset: models.QuerySet) -> models.QuerySet:
        """Rows an import is about to rewrite, locked as the edit services lock them, so edits cannot interleave."""
        return queryset.select_for_update(of=("self",)) if self.lock else queryset

    def rows(self, section_key: str) -> dict[str, models.Model]:
        """Rows of a section by identity as they will be after the import (the database's if not imported)."""
        if section_key in self.plans:
            return self.plans[section_key].rows
        return self.existing(section_key)

    def existing(self, section_key: str) -> dict[str, models.Model]:
        """Rows of a section by identity as they are now (read once per import)."""
        if section_key not in self.in_database:
            self.in_database[section_key] = self.sections[section_key].existing()
        return self.in_database[section_key]

    def resolve(self, section_key: str, identity, item: Item, location: str, *, what: str):
        """The row a reference names, or a located problem saying why there is none."""
        row = self.rows(section_key).get(identity)
        if row is not None:
            return row
        if section_key in self.plans and self.prune and identity in self.existing(section_key):
            reason = "it is not in this document and --prune removes it"
        else:
            reason = "there is none in this document or in the database"
        item.fail(location, f"unknown {what} {show(identity)}: {reason}")
        return None


class Section(ABC):
    """One top-level key of the document: export, validate-and-plan, and (through its plan) apply."""

    key: str = ""
    depends_on: tuple[str, ...] = ()
    # A section with rows shipped with the product exports them only when asked: export(include_builtin=True).
    has_builtin_rows: bool = False

    @abstractmethod
    def export(self) -> list[dict]:
        """The section's rows as document items, in a stable order."""

    @abstractmethod
    def existing(self) -> dict[str, models.Model]:
        """The section's top-level rows in the database, by identity."""

    @abstractmethod
    def plan(self, raw, ctx: PlanContext) -> SectionPlan:
        """Validate the section's part of the document and plan its writes (nothing is written here)."""


def top_items(raw, key: str, problems: Problems, *, keys, what: str) -> list[Item]:
    """The mappings listed under a top-level section key."""
    if not isinstance(raw, list):
        problems.add(key, f"expected a list of {what} (write [] for none)")
        return []
    found = []
    for index, entry in enumerate(raw):
        item = Item.of(entry, f"{key}[{index}]", problems, keys=keys, what=f"one of the {what}")
        if item is not None:
            found.append(item)
    return found


def model_default(model: type[models.Model], attr: str):
    """The model's own default for a field, so an omitted key means what it means in the admin."""
    return model._meta.get_field(attr).get_default


def assign(instance: models.Model, values: dict, keys: dict[str, str]) -> tuple[str, ...]:
    """Set values on a row; the document keys of those that differ from what it holds."""
    changed = []
    for attr, value in values.items():
        if getattr(instance, attr) != value:
            setattr(instance, attr, value)
            changed.append(keys.get(attr, attr))
    return tuple(changed)


def link_parents(instance: models.Model) -> None:
    """Copy the ids of parents saved earlier in this import onto a child built before they had one."""
    for model_field in instance._meta.concrete_fields:
        if (
            model_field.is_relation
            and model_field.is_cached(instance)
            and getattr(instance, model_field.attname) is None
        ):
            parent = getattr(instance, model_field.name)
            if parent is not None and parent.pk is not None:
                setattr(instance, model_field.attname, parent.pk)


def located_model_errors(exc: ValidationError, location: str, keys: dict[str, str]) -> list[LocatedError]:
    """A model's ValidationError as located problems, field errors at their document key."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
    located = []
    for model_field, messages in errors.items():
        where = f"{location}.{keys[model_field]}" if model_field in keys else location
        located.extend(LocatedError(where, message) for message in messages)
    return located


def update_or_build(
    plan, model, row, values: dict, keys: dict[str, str], *, valid: bool = True, drop_none: bool = False, **parents
):
    """The row a document item describes: the existing one, updated in memory, or a new one.

    Returns (row, changed field names, action). An existing row is marked as listed (so --prune keeps it);
    when the item is invalid nothing is assigned. `parents` are set on a new row (e.g. its value map).
    """
    if row is not None:
        plan.listed.add((model, row.pk))
        changed = assign(row, values, keys) if valid else ()
        return row, changed, UPDATED if changed else UNCHANGED
    fields = {k: v for k, v in values.items() if v is not INVALID and not (drop_none and v is None)}
    return model(**parents, **fields), (), CREATED


def check_model(instance: models.Model, item: Item, keys: dict[str, str], *, run_clean: bool = True) -> None:
    """The model's own field validation (and clean() unless it checks the database), located in the document."""
    link_parents(instance)
    unsaved_parents = [
        f.name
        for f in instance._meta.concrete_fields
        if f.is_relation and f.is_cached(instance) and getattr(instance, f.attname) is None
    ]
    try:
        instance.clean_fields(exclude=unsaved_parents)
        if run_clean:
            instance.clean()
    except ValidationError as exc:
        item.problems.extend(located_model_errors(exc, item.location, keys))


def check_period(item: Item, start, end) -> None:
    """An end date before the start date is refused at the end date."""
    if isinstance(start, datetime.date) and isinstance(end, datetime.date) and end < start:
        item.fail(item.at("effective_to"), f"the end date {end} is before the start date {start}")


def period_label(start: datetime.date, end: datetime.date | None) -> str:
    return f"{start.isoformat()} to {end.isoformat() if end else 'open-ended'}"


@dataclass
class Period:
    """A row's effective period in an overlap check; `item` is None for a row kept in the database."""

    start: datetime.date
    end: datetime.date | None
    row: object
    item: Item | None = None


def overlaps(a: Period, b: Period) -> bool:
    """Both ends inclusive; an open end never ends."""
    return (a.end is None or a.end >= b.start) and (b.end is None or b.end >= a.start)


def find_overlaps(kept: list[Period], listed: list[Period]) -> list[tuple[Period, Period]]:
    """(document row, the row it clashes with) for each overlap, the later document row carrying the blame."""
    clashes = []
    for index, period in enumerate(listed):
        for other in kept + listed[:index]:
            if overlaps(period, other):
                clashes.append((period, other))
                break
    return clashes


def where_it_is(period: Period) -> str:
    """Where the other row of a clash is, for the message."""
    return f"in {period.item.location}" if period.item is not None else "kept in the database, not in this document"


def duplicate_check(seen: dict, identity, item: Item, what: str) -> bool:
    """True the first time an identity is listed; a second listing is a located problem."""
    if identity in seen:
        item.fail(item.location, f"{what} is listed twice (also at {seen[identity].location})")
        return False
    seen[identity] = item
    return True
