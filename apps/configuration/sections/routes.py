"""`routes`: which system each workflow writes to for a kind of target, optionally per legal entity, over a period.

Each route is checked (workflow, kind, legal entity, system of that kind) and routes of one scope may not
overlap, or the import is refused. When two or more systems of a kind are enabled, every workflow that writes
to that kind needs a route for every active legal entity (a route without an entity covers them all): once
the firm routes that kind, a workflow or entity left open is refused; with no route for the kind yet, the
import warns about each open workflow, and its steps fail with the same message until a route exists.
"""

from functools import partial

from apps.systems.models import Route, SystemKind
from apps.systems.routing import missing_route_message, route_in_force, workflow_targets

from .. import reading as r
from .base import (
    CREATED,
    DELETED,
    UNCHANGED,
    UPDATED,
    Change,
    Period,
    PlanContext,
    Section,
    SectionPlan,
    assign,
    check_model,
    check_period,
    duplicate_check,
    find_overlaps,
    period_label,
    top_items,
    where_it_is,
)

ROUTE_KEYS = [
    r.Key("kind", "target_kind", r.CHOICE, required=True, choices=tuple(SystemKind.values)),
    r.Key("workflow", "workflow", r.TEXT, default=""),
    r.Key("legal_entity", "legal_entity", r.TEXT, default=""),
    r.Key("system", "system", r.SLUG, required=True),
    r.Key("effective_from", "effective_from", r.DATE, required=True),
    r.Key("effective_to", "effective_to", r.DATE, default=None),
    r.Key("rationale", "rationale", r.TEXT, default=""),
]
DOCUMENT_KEYS = {key.attr: key.key for key in ROUTE_KEYS}


def _identity(kind: str, workflow: str, legal_entity: str, start) -> tuple:
    return (kind, workflow, legal_entity, start)


def _scope(kind: str, workflow: str, legal_entity: str) -> str:
    entity = f" for legal entity {legal_entity}" if legal_entity else ""
    return f"the {kind} route of {f'workflow {workflow}' if workflow else 'every workflow'}{entity}"


def _label(kind: str, workflow: str, legal_entity: str, start) -> str:
    return f"route {kind}/{workflow or '*'}/{legal_entity or '*'} from {start.isoformat()}"


def legal_entity_codes(ctx: PlanContext) -> set[str]:
    """Codes of the legal entities there will be after the import (the document's and the database's)."""
    return set(ctx.rows("legal_entities"))


def active_legal_entity_codes(ctx: PlanContext) -> list[str]:
    return sorted(code for code, entity in ctx.rows("legal_entities").items() if entity.active)


class RoutesSection(Section):
    """Routes; identity is (kind, workflow, legal_entity, effective_from); routes of one scope never overlap."""

    key = "routes"
    depends_on = ("systems", "legal_entities")

    def export(self) -> list[dict]:
        rows = []
        for route in sorted(Route.objects.select_related("system"), key=_sort_key):
            rows.append(
                {
                    "kind": route.target_kind,
                    "workflow": route.workflow,
                    "legal_entity": route.legal_entity,
                    "system": route.system.slug,
                    "effective_from": r.export_value(r.DATE, route.effective_from),
                    "effective_to": r.export_value(r.DATE, route.effective_to),
                    "rationale": route.rationale,
                }
            )
        return rows

    def existing(self) -> dict:
        return {_key(route): route for route in Route.objects.select_related("system")}

    def plan(self, raw, ctx: PlanContext) -> SectionPlan:
        plan = SectionPlan(self.key)
        existing = {_key(route): route for route in ctx.locked(Route.objects.select_related("system"))}
        items = top_items(raw, self.key, ctx.problems, keys=DOCUMENT_KEYS.values(), what="routes")
        workflows = workflow_targets()
        entities = legal_entity_codes(ctx)
        seen, listed = {}, []
        for item in items:
            before = len(ctx.problems)
            values = item.read(ROUTE_KEYS)
            kind, workflow, entity = values["target_kind"], values["workflow"], values["legal_entity"]
            if workflow not in ("", r.INVALID):
                if workflow not in workflows:
                    item.fail(
                        item.at("workflow"),
                        f"there is no workflow {r.show(workflow)}; the workflows are {', '.join(sorted(workflows))}",
                    )
                elif kind is not r.INVALID and kind not in workflows[workflow]:
                    writes = ", ".join(sorted(workflows[workflow])) or "no system"
                    item.fail(
                        item.at("kind"), f"the workflow {workflow} writes to {writes} systems only, not to {kind}"
                    )
            if entity not in ("", r.INVALID) and entity not in entities:
                item.fail(
                    item.at("legal_entity"),
                    f"unknown legal entity {r.show(entity)}: there is none in this document or in the database",
                )
            check_period(item, values["effective_from"], values["effective_to"])
            if values["system"] is not r.INVALID:
                system = ctx.resolve("systems", values["system"], item, item.at("system"), what="system")
                values["system"] = system
                if system is not None and kind is not r.INVALID and system.kind != kind:
                    item.fail(
                        item.at("system"),
                        f"{system.slug} is a {system.kind} system; this route chooses among {kind} systems",
                    )
            if len(ctx.problems) != before:
                continue
            identity = _identity(kind, workflow, entity, values["effective_from"])
            if not duplicate_check(seen, identity, item, f"{_scope(kind, workflow, entity)} from that date"):
                continue
            route = existing.get(identity)
            if route is not None:
                plan.listed.add((Route, route.pk))
                changed = assign(route, values, DOCUMENT_KEYS)
                action = UPDATED if changed else UNCHANGED
            else:
                route, changed, action = Route(**values), (), CREATED
            if action != UNCHANGED:
                # clean() compares with the routes as they are now; overlaps are checked below against the final state.
                check_model(route, item, DOCUMENT_KEYS, run_clean=False)
            listed.append(Period(route.effective_from, route.effective_to, route, item))
            plan.add(
                Change(
                    action,
                    _label(kind, workflow, entity, route.effective_from),
                    item.location,
                    route,
                    fields=changed,
                    save=action != UNCHANGED,
                    keys=DOCUMENT_KEYS,
                )
            )
        kept = []
        for identity, route in sorted(existing.items(), key=lambda pair: _sort_key(pair[1])):
            if identity in seen:
                continue
            if ctx.prune:
                plan.changes.insert(0, Change(DELETED, _label(*identity), self.key, route))
            else:
                kept.append(Period(route.effective_from, route.effective_to, route))
        self._check_overlaps(kept, listed)
        plan.changes.sort(key=lambda c: (c.action != DELETED, _sort_key(c.instance)))
        plan.rows = {_key(period.row): period.row for period in kept + listed}
        schedule_coverage_check(ctx)
        return plan

    def _check_overlaps(self, kept: list[Period], listed: list[Period]) -> None:
        scopes = {}
        for period in kept + listed:
            row = period.row
            scopes.setdefault((row.target_kind, row.workflow, row.legal_entity), ([], []))[
                period.item is not None
            ].append(period)
        for scope, (scope_kept, scope_listed) in scopes.items():
            for period, other in find_overlaps(scope_kept, scope_listed):
                period.item.fail(
                    period.item.location,
                    f"{_scope(*scope)} already has a route for {period_label(other.start, other.end)} "
                    f"(to {other.row.system.slug}, {where_it_is(other)}); two routes for one scope would make the "
                    f"choice ambiguous: end one the day before the next starts",
                )


def _key(route: Route) -> tuple:
    return _identity(route.target_kind, route.workflow, route.legal_entity, route.effective_from)


def _sort_key(route: Route) -> tuple:
    return (route.target_kind, route.workflow, route.legal_entity, route.effective_from)


def schedule_coverage_check(ctx: PlanContext) -> None:
    """Once every section is planned, warn about workflows whose target is left open (once per import)."""
    if not any(getattr(check, "func", None) is check_route_coverage for check in ctx.checks):
        ctx.check_later(partial(check_route_coverage, ctx))


def check_route_coverage(ctx: PlanContext) -> None:
    """Where two or more systems of a kind are enabled, every workflow writing to it needs a route for every entity.

    A gap is refused once the firm routes that kind at all (a route it wrote leaves a workflow or an entity
    open); a document with no route for the kind yet is imported with a warning per open workflow.
    """
    enabled: dict[str, list] = {}
    for system in ctx.rows("systems").values():
        if system.enabled:
            enabled.setdefault(system.kind, []).append(system)
    routes = list(ctx.rows("routes").values())
    entities = active_legal_entity_codes(ctx)
    location = "routes" if "routes" in ctx.plans else "systems"
    routed_kinds = {route.target_kind for route in routes}
    for kind, systems in sorted(enabled.items()):
        report = ctx.problems.add if kind in routed_kinds else ctx.warn
        if len(systems) < 2:
            continue
        systems = sorted(systems, key=lambda system: system.slug)
        for workflow, kinds in sorted(workflow_targets().items()):
            if kind not in kinds or route_in_force(workflow=workflow, kind=kind, routes=routes) is not None:
                continue
            uncovered = [
                code
                for code in entities
                if route_in_force(workflow=workflow, kind=kind, legal_entity=code, routes=routes) is None
            ]
            if not entities or uncovered:
                entity = ", ".join(uncovered)
                report(
                    location,
                    missing_route_message(workflow=workflow, kind=kind, legal_entity=entity, systems=systems)
                    + f" Add a route under 'routes' (kind: {kind}, workflow: {workflow} or empty for every workflow, "
                    f"system: one of {', '.join(system.slug for system in systems)}).",
                )
