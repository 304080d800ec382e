"""The ownership matrix: for each object type and field, which system owns it and who else may write it."""

import datetime
from dataclasses import dataclass

from django.db.models import Count

from apps.core.objects import BusinessObject
from apps.mapping.models import ValueMap
from apps.systems.models import ConnectedSystem, OwnershipRule


@dataclass
class MatrixRow:
    """One ownership rule as a row of the matrix: a cell per connected system."""

    rule: OwnershipRule
    object_label: str
    field_label: str
    cells: list[str]  # per system: "owner", "create, update", "create", "update" or ""
    state: str  # in force, future, ended


def ownership_matrix(on: datetime.date) -> tuple[list[ConnectedSystem], list[MatrixRow]]:
    """The connected systems (columns) and every ownership rule (rows), with what each system may do."""
    systems = list(ConnectedSystem.objects.order_by("kind", "name"))
    rules = OwnershipRule.objects.select_related("owner").prefetch_related("may_create", "may_update")
    rows = []
    for rule in rules.order_by("object_type", "field", "effective_from"):
        creators = {system.pk for system in rule.may_create.all()}
        updaters = {system.pk for system in rule.may_update.all()}
        cells = []
        for system in systems:
            if system.pk == rule.owner_id:
                cells.append("owner")
            else:
                cells.append(", ".join(w for w, s in (("create", creators), ("update", updaters)) if system.pk in s))
        if rule.effective_from > on:
            state = "future"
        elif rule.effective_to is not None and rule.effective_to < on:
            state = "ended"
        else:
            state = "in force"
        rows.append(
            MatrixRow(
                rule=rule,
                object_label=BusinessObject(rule.object_type).label,
                field_label=rule.field or "whole record",
                cells=cells,
                state=state,
            )
        )
    return systems, rows


def value_maps_with_counts():
    """The value maps with how many entries each has, for the steward's list."""
    return (
        ValueMap.objects.select_related("source_system", "target_system")
        .annotate(entry_count=Count("entries"))
        .order_by("name")
    )
