"""Writes to connected systems and ownership rules, and the one question every write path asks."""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apps.core import approvals
from apps.core.approvals import approval_request, needs_second_person
from apps.core.context import audit_context
from apps.core.errors import OwnershipConflict
from apps.core.models import ChangeRequest
from apps.core.objects import BusinessObject

from .models import ConnectedSystem, OwnershipRule, Route

CREATE = "create"
UPDATE = "update"
WHOLE_OBJECT = ""


@dataclass
class WriteDecision:
    """The answer to "may system S write fields F of object O on date D?"."""

    system: str
    object_type: str
    on: datetime.date
    operation: str
    allowed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # field -> owning system slug
    owners: dict[str, str] = field(default_factory=dict)  # field -> owning system name, for messages

    @property
    def fully_allowed(self) -> bool:
        return not self.refused

    def message(self) -> str:
        """A sentence a steward understands, naming each refused field and its owner."""
        if not self.refused:
            return f"{self.system} may {self.operation} these fields of the {self.object_type}."
        object_label = BusinessObject(self.object_type).label.lower()
        if WHOLE_OBJECT in self.refused:
            owner = self.owners.get(WHOLE_OBJECT, self.refused[WHOLE_OBJECT])
            return (
                f"{self.system} may not {self.operation} a {object_label}: {owner} is the system of record for "
                f"{object_label} records on {self.on.isoformat()}."
            )
        by_owner: dict[str, list[str]] = {}
        for name, owner in self.refused.items():
            by_owner.setdefault(self.owners.get(name, owner), []).append(name or "the record itself")
        parts = [f"{', '.join(sorted(fields))} (owned by {owner})" for owner, fields in sorted(by_owner.items())]
        return (
            f"{self.system} may not {self.operation} {'; '.join(parts)} of the {object_label} on {self.on.isoformat()}."
        )


def _rules_in_force(object_type: str, on: datetime.date) -> dict[str, OwnershipRule]:
    rules = (
        OwnershipRule.objects.in_force(on)
        .filter(object_type=object_type)
        .select_related("owner")
        .prefetch_related("may_create", "may_update")
    )
    return {rule.field: rule for rule in rules}


def _permits(rule: OwnershipRule, system: ConnectedSystem, operation: str) -> bool:
    if rule.owner_id == system.pk:
        return True
    grants = rule.may_create.all() if operation == CREATE else rule.may_update.all()
    return any(grant.pk == system.pk for grant in grants)


def may_write(
    *,
    system: ConnectedSystem | str,
    object_type: str,
    fields: Iterable[str] = (),
    on: datetime.date | None = None,
    operation: str = UPDATE,
) -> WriteDecision:
    """Which of `fields` system may write to an object of `object_type` on `on`, and who owns the rest.

    A field-level rule wins over the object-level rule; an object type with no rule in force is
    ungoverned and any system may write it. With no fields, the object-level rule alone decides
    (use this for "may S create an O at all?").
    """
    if isinstance(system, str):
        system = ConnectedSystem.objects.get(slug=system)
    on = on or timezone.localdate()
    object_type = BusinessObject(object_type).value
    rules = _rules_in_force(object_type, on)
    decision = WriteDecision(system=system.name, object_type=object_type, on=on, operation=operation)
    for name in list(fields) or [WHOLE_OBJECT]:
        rule = rules.get(name) or rules.get(WHOLE_OBJECT)
        if rule is None or _permits(rule, system, operation):
            decision.allowed.append(name)
        else:
            decision.refused[name] = rule.owner.slug
            decision.owners[name] = rule.owner.name
    return decision


def assert_may_write(**kwargs) -> WriteDecision:
    """may_write, raising OwnershipConflict when any field is refused."""
    decision = may_write(**kwargs)
    if not decision.fully_allowed:
        raise OwnershipConflict(
            decision.message(),
            fix="Make the change in the owning system, or have a mapping steward change the ownership rule.",
            technical=f"refused={decision.refused}",
            context={"refused": decision.refused, "object_type": decision.object_type, "on": decision.on.isoformat()},
        )
    return decision


_RULE_FIELDS = ["object_type", "field", "owner", "effective_from", "effective_to", "rationale"]


def _rule_values(rule: OwnershipRule, may_create, may_update) -> dict:
    """A rule and its grants as plain JSON values (systems by slug, dates as ISO text)."""
    values = {name: getattr(rule, name) for name in _RULE_FIELDS}
    values["owner"] = rule.owner.slug if rule.owner_id else None
    for name in ("effective_from", "effective_to"):
        values[name] = values[name].isoformat() if values[name] else None
    values["may_create"] = sorted(system.slug for system in may_create)
    values["may_update"] = sorted(system.slug for system in may_update)
    return values


def ownership_rule_save(
    *,
    rule: OwnershipRule,
    may_create: Iterable[ConnectedSystem] = (),
    may_update: Iterable[ConnectedSystem] = (),
    actor,
    reason: str,
) -> OwnershipRule | ChangeRequest:
    """Save an ownership rule with its grants, or ask a second person to (four-eyes: returns the ChangeRequest)."""
    may_create, may_update = list(may_create), list(may_update)
    if not needs_second_person(approvals.OWNERSHIP_RULE, actor):
        return ownership_rule_save_now(
            rule=rule, may_create=may_create, may_update=may_update, actor=actor, reason=reason
        )
    rule.full_clean()  # a request that could never apply is refused now, with the same message
    wanted = _rule_values(rule, may_create, may_update)
    current = None
    if rule.pk:
        stored = OwnershipRule.objects.get(pk=rule.pk)
        current = _rule_values(stored, stored.may_create.all(), stored.may_update.all())
    diff = [
        {"field": name, "old": current.get(name) if current else None, "new": value}
        for name, value in wanted.items()
        if current is None or current.get(name) != value
    ]
    verb = "Change" if rule.pk else "Create"
    return approval_request(
        kind=approvals.OWNERSHIP_RULE,
        target=rule if rule.pk else None,
        summary=f"{verb} ownership rule: {rule.scope_label} owned by {rule.owner.name}",
        payload=wanted,
        diff=diff,
        actor=actor,
        reason=reason,
    )


def ownership_rule_apply_approval(change_request: ChangeRequest, *, actor, reason: str) -> OwnershipRule:
    """The four-eyes action: create or change the rule as the request describes, as the checker."""
    values = dict(change_request.payload)
    rule = change_request.target or OwnershipRule()
    systems = {system.slug: system for system in ConnectedSystem.objects.all()}
    for name in _RULE_FIELDS:
        value = values.get(name)
        if name == "owner":
            rule.owner = systems[value]
        elif name in ("effective_from", "effective_to"):
            setattr(rule, name, datetime.date.fromisoformat(value) if value else None)
        else:
            setattr(rule, name, value)
    return ownership_rule_save_now(
        rule=rule,
        may_create=[systems[slug] for slug in values.get("may_create", [])],
        may_update=[systems[slug] for slug in values.get("may_update", [])],
        actor=actor,
        reason=reason,
    )


@transaction.atomic
def ownership_rule_save_now(
    *,
    rule: OwnershipRule,
    may_create: Iterable[ConnectedSystem] = (),
    may_update: Iterable[ConnectedSystem] = (),
    actor,
    reason: str,
) -> OwnershipRule:
    """Validate (including overlaps) and save an ownership rule with its grants."""
    with audit_context(actor=actor, reason=reason):
        # Serialise rule edits for one object type so two stewards cannot create overlapping rules at once.
        list(OwnershipRule.objects.select_for_update().filter(object_type=rule.object_type).values_list("pk"))
        rule.full_clean()
        rule.save()
        rule.may_create.set(list(may_create))
        rule.may_update.set(list(may_update))
    return rule


@transaction.atomic
def route_save(*, route: Route, actor, reason: str) -> Route:
    """Validate (including overlaps with routes of the same scope) and save a route."""
    with audit_context(actor=actor, reason=reason):
        # Serialise route edits for one kind so two people cannot save overlapping routes at once.
        list(Route.objects.select_for_update().filter(target_kind=route.target_kind).values_list("pk"))
        route.full_clean()
        route.save()
    return route
