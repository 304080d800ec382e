"""`ownership_rules`: which system owns an object type (or one field of it) over a period, and who else may write."""

from apps.core.objects import BusinessObject, field_names
from apps.systems.models import OwnershipRule

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

RULE_KEYS = [
    r.Key("object_type", "object_type", r.CHOICE, required=True, choices=tuple(BusinessObject.values)),
    r.Key("field", "field", r.TEXT, default=""),
    r.Key("owner", "owner", r.SLUG, required=True),
    r.Key("may_create", "may_create", r.SLUGS, default=list),
    r.Key("may_update", "may_update", r.SLUGS, default=list),
    r.Key("effective_from", "effective_from", r.DATE, required=True),
    r.Key("effective_to", "effective_to", r.DATE, default=None),
    r.Key("rationale", "rationale", r.TEXT, default=""),
]
DOCUMENT_KEYS = {key.attr: key.key for key in RULE_KEYS}
GRANTS = ("may_create", "may_update")


def _identity(object_type: str, field: str, start) -> tuple:
    return (object_type, field, start)


def _label(object_type: str, field: str, start) -> str:
    scope = f"{object_type}.{field}" if field else object_type
    return f"ownership rule {scope} from {start.isoformat()}"


def _scope(object_type: str, field: str) -> str:
    name = object_type.replace("_", " ")
    return f"the {name} field '{field}'" if field else f"the {name} as a whole"


class OwnershipRulesSection(Section):
    """Ownership rules; identity is (object_type, field, effective_from); rules of one scope never overlap."""

    key = "ownership_rules"
    depends_on = ("systems",)

    def export(self) -> list[dict]:
        rules = OwnershipRule.objects.select_related("owner").prefetch_related("may_create", "may_update")
        rows = []
        for rule in sorted(rules, key=lambda rule: _identity(rule.object_type, rule.field, rule.effective_from)):
            rows.append(
                {
                    "object_type": rule.object_type,
                    "field": rule.field,
                    "owner": rule.owner.slug,
                    "may_create": sorted(system.slug for system in rule.may_create.all()),
                    "may_update": sorted(system.slug for system in rule.may_update.all()),
                    "effective_from": r.export_value(r.DATE, rule.effective_from),
                    "effective_to": r.export_value(r.DATE, rule.effective_to),
                    "rationale": rule.rationale,
                }
            )
        return rows

    def existing(self) -> dict:
        return {
            _identity(rule.object_type, rule.field, rule.effective_from): rule for rule in OwnershipRule.objects.all()
        }

    def plan(self, raw, ctx: PlanContext) -> SectionPlan:
        plan = SectionPlan(self.key)
        existing = {
            _identity(rule.object_type, rule.field, rule.effective_from): rule
            for rule in ctx.locked(OwnershipRule.objects.select_related("owner")).prefetch_related(
                "may_create", "may_update"
            )
        }
        items = top_items(raw, self.key, ctx.problems, keys=DOCUMENT_KEYS.values(), what="ownership rules")
        seen, listed = {}, []
        for item in items:
            before = len(ctx.problems)
            values = item.read(RULE_KEYS)
            object_type, field = values["object_type"], values["field"]
            if object_type is not r.INVALID and field not in ("", r.INVALID) and field not in field_names(object_type):
                known = ", ".join(sorted(field_names(object_type)))
                item.fail(item.at("field"), f"a {object_type.replace('_', ' ')} has no field '{field}'; known: {known}")
            check_period(item, values["effective_from"], values["effective_to"])
            owner = values["owner"]
            if owner is not r.INVALID:
                values["owner"] = ctx.resolve("systems", owner, item, item.at("owner"), what="system")
            grants = {}
            for grant in GRANTS:
                slugs = values.pop(grant)
                if slugs is r.INVALID:
                    continue
                rows = [
                    ctx.resolve("systems", slug, item, f"{item.at(grant)}[{index}]", what="system")
                    for index, slug in enumerate(slugs)
                ]
                grants[grant] = {row.slug: row for row in rows if row is not None}
            if len(ctx.problems) != before:
                continue
            identity = _identity(object_type, field, values["effective_from"])
            if not duplicate_check(seen, identity, item, f"the rule for {_scope(object_type, field)} from that date"):
                continue
            rule = existing.get(identity)
            if rule is not None:
                plan.listed.add((OwnershipRule, rule.pk))
                changed = assign(rule, values, DOCUMENT_KEYS)
                m2m = {
                    grant: list(wanted.values())
                    for grant, wanted in grants.items()
                    if set(wanted) != {system.slug for system in getattr(rule, grant).all()}
                }
                changed += tuple(m2m)
                action = UPDATED if changed else UNCHANGED
            else:
                rule = OwnershipRule(**values)
                m2m = {grant: list(wanted.values()) for grant, wanted in grants.items() if wanted}
                changed, action = (), CREATED
            if action != UNCHANGED:
                # clean() would compare with the rules as they are now, not as this import leaves them:
                # overlaps are checked below against the final state instead.
                check_model(rule, item, DOCUMENT_KEYS, run_clean=False)
            listed.append(Period(rule.effective_from, rule.effective_to, rule, item))
            plan.add(
                Change(
                    action,
                    _label(object_type, field, rule.effective_from),
                    item.location,
                    rule,
                    fields=changed,
                    save=action == CREATED or bool(set(changed) - set(GRANTS)),
                    m2m=m2m,
                    keys=DOCUMENT_KEYS,
                )
            )
        kept = []
        for identity, rule in sorted(existing.items()):
            if identity in seen:
                continue
            if ctx.prune:
                plan.changes.insert(0, Change(DELETED, _label(*identity), self.key, rule))
            else:
                kept.append(Period(rule.effective_from, rule.effective_to, rule))
        self._check_overlaps(kept, listed)
        # Written in date order within each scope, so no intermediate state has two overlapping rules.
        plan.changes.sort(key=lambda c: (c.action != DELETED, _sort_key(c.instance)))
        plan.rows = {_identity(p.row.object_type, p.row.field, p.row.effective_from): p.row for p in kept + listed}
        return plan

    def _check_overlaps(self, kept: list[Period], listed: list[Period]) -> None:
        scopes = {}
        for period in kept + listed:
            scopes.setdefault((period.row.object_type, period.row.field), ([], []))[period.item is not None].append(
                period
            )
        for (object_type, field), (scope_kept, scope_listed) in scopes.items():
            for period, other in find_overlaps(scope_kept, scope_listed):
                period.item.fail(
                    period.item.location,
                    f"{_scope(object_type, field)} already has a rule for "
                    f"{period_label(other.start, other.end)} (owner {other.row.owner.name}, {where_it_is(other)}); "
                    f"rules for the same object and field may not overlap: end one the day before the next starts",
                )


def _sort_key(rule: OwnershipRule) -> tuple:
    return (rule.object_type, rule.field, rule.effective_from)
