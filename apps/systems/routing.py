"""Which system a workflow step writes to: the routes in force, else the one enabled system of the kind.

A route names a system for a target kind, optionally for one workflow and one legal entity. The most
specific route in force wins (workflow and entity, then entity alone, then workflow alone, then neither).
Without a route that applies, the single enabled system of the kind is used; with two or more, the
choice is refused with a message naming them, so adding a second CRM never silently moves writes.
"""

import datetime
from dataclasses import dataclass

from django.utils import timezone

from apps.core.errors import BusinessError

from .models import ConnectedSystem, Route, SystemKind
from .workflow_targets import declare_workflow, workflow_targets  # noqa: F401  (re-exported for the layers above)


class RouteMissing(BusinessError):
    """Two or more enabled systems of a kind and no route saying which one a workflow writes to."""

    code = "route_missing"


@dataclass(frozen=True)
class RouteChoice:
    """The system chosen for a step, and why (the route, or the default of a single system)."""

    system: ConnectedSystem
    route: Route | None = None
    reason: str = ""  # set when the step chose its system by what it updates, not by a route

    @property
    def explanation(self) -> str:
        if self.reason:
            return self.reason
        if self.route is None:
            return f"{self.system.name} is the only enabled {self.system.get_kind_display()} system (no route applies)"
        return f"route #{self.route.pk}: {self.route.scope_label} → {self.system.name} ({self.route.period_label()})"

    def as_output(self) -> dict:
        """What the trace shows for the step: the system and the rule that chose it."""
        return {"system": self.system.slug, "route_id": self.route.pk if self.route else None, "rule": self.explanation}


def _specificity(route: Route, workflow: str, legal_entity: str) -> int | None:
    """Higher is more specific; None when the route does not apply to this workflow and entity."""
    if route.workflow and route.workflow != workflow:
        return None
    if route.legal_entity and route.legal_entity != legal_entity:
        return None
    return (2 if route.legal_entity else 0) + (1 if route.workflow else 0)


def route_in_force(
    *, workflow: str, kind: str, legal_entity: str = "", on: datetime.date | None = None, routes=None
) -> Route | None:
    """The most specific route in force for a workflow, kind and legal entity, or None."""
    on = on or timezone.localdate()
    if routes is None:
        routes = Route.objects.in_force(on).filter(target_kind=kind).select_related("system")
    else:
        routes = [route for route in routes if route.target_kind == kind and route.applies_on(on)]
    best, best_rank = None, -1
    for route in routes:
        rank = _specificity(route, workflow, legal_entity or "")
        if rank is not None and rank > best_rank:
            best, best_rank = route, rank
    return best


def choose_system(
    *, workflow: str, kind: str, legal_entity: str = "", on: datetime.date | None = None
) -> RouteChoice | None:
    """The system a step of `workflow` writing to a `kind` system uses; None when no system of that kind is enabled.

    Raises RouteMissing when several systems of the kind are enabled and no route applies.
    """
    route = route_in_force(workflow=workflow, kind=kind, legal_entity=legal_entity, on=on)
    if route is not None:
        return RouteChoice(route.system, route)
    enabled = list(ConnectedSystem.objects.filter(kind=kind, enabled=True).order_by("slug"))
    if not enabled:
        return None
    if len(enabled) == 1:
        return RouteChoice(enabled[0])
    raise RouteMissing(
        missing_route_message(workflow=workflow, kind=kind, legal_entity=legal_entity, systems=enabled),
        fix="Add a route (Connected systems → Routes, or `routes` in the configuration document) naming the "
        "system this workflow writes to, then re-run the transaction.",
        technical=f"workflow={workflow} kind={kind} legal_entity={legal_entity or '-'} "
        f"enabled={[system.slug for system in enabled]}",
    )


def missing_route_message(*, workflow: str, kind: str, legal_entity: str, systems) -> str:
    """The sentence for "two systems and no route": names every candidate system."""
    label = SystemKind(kind).label if kind in SystemKind.values else kind
    names = [system.name for system in systems]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    entity = f" for legal entity {legal_entity}" if legal_entity else ""
    return (
        f"{len(names)} {label} systems are enabled ({listed}) and no route says which one the workflow "
        f"'{workflow}' writes to{entity}."
    )
