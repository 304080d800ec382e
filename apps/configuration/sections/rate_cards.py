"""`rate_cards`: price lists with numbered, effective-dated versions and a bill/cost rate per role."""

from django.utils import timezone

from apps.canonical.models import RateCard, RateCardLine, RateCardVersion

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
    model_default,
    overlaps,
    period_label,
    top_items,
    update_or_build,
    where_it_is,
)

APPROVED = RateCardVersion.Status.APPROVED

CARD_KEYS = [
    r.Key("code", "code", r.TEXT, required=True),
    r.Key("name", "name", r.TEXT, required=True),
    r.Key("currency", "currency", r.CURRENCY, required=True),
    r.Key("description", "description", r.TEXT, default=""),
]
VERSION_KEYS = [
    r.Key("version", "version", r.INT, required=True, minimum=1),
    r.Key(
        "status",
        "status",
        r.CHOICE,
        default=model_default(RateCardVersion, "status"),
        choices=tuple(RateCardVersion.Status.values),
    ),
    r.Key("effective_from", "effective_from", r.DATE, required=True),
    r.Key("effective_to", "effective_to", r.DATE, default=None),
    r.Key("notes", "notes", r.TEXT, default=""),
]
LINE_KEYS = [
    r.Key("role", "role", r.TEXT, required=True),
    r.Key("bill_rate", "bill_rate", r.AMOUNT, required=True),
    r.Key("cost_rate", "cost_rate", r.AMOUNT, default=None),
    r.Key("currency", "currency", r.CURRENCY, default=None),  # empty: the card's currency
    r.Key("unit", "unit", r.TEXT, default=model_default(RateCardLine, "unit")),
]
CARD_DOCUMENT_KEYS = {key.attr: key.key for key in CARD_KEYS}
VERSION_DOCUMENT_KEYS = {key.attr: key.key for key in VERSION_KEYS}
LINE_DOCUMENT_KEYS = {key.attr: key.key for key in LINE_KEYS}


def _export(instance, keys) -> dict:
    return {key.key: r.export_value(key.kind, getattr(instance, key.attr)) for key in keys}


def _role_key(role: str) -> str:
    """Roles are looked up ignoring case (see rate_for), so two lines may not differ only in case."""
    return role.strip().casefold()


class RateCardsSection(Section):
    """Rate cards; identity is the code, a version's is its number, a line's is its role within the version."""

    key = "rate_cards"

    def export(self) -> list[dict]:
        rows = []
        for card in sorted(RateCard.objects.prefetch_related("versions__lines"), key=lambda c: c.code):
            document = _export(card, CARD_KEYS)
            document["versions"] = []
            for version in sorted(card.versions.all(), key=lambda v: v.version):
                version_document = _export(version, VERSION_KEYS)
                version_document["lines"] = [
                    _export(line, LINE_KEYS) for line in sorted(version.lines.all(), key=lambda line: line.role)
                ]
                document["versions"].append(version_document)
            rows.append(document)
        return rows

    def existing(self) -> dict[str, RateCard]:
        return {card.code: card for card in RateCard.objects.all()}

    def plan(self, raw, ctx: PlanContext) -> SectionPlan:
        plan = SectionPlan(self.key)
        existing = {card.code: card for card in ctx.locked(RateCard.objects.prefetch_related("versions__lines"))}
        items = top_items(
            raw, self.key, ctx.problems, keys=[*CARD_DOCUMENT_KEYS.values(), "versions"], what="rate cards"
        )
        seen = {}
        for item in items:
            before = len(ctx.problems)
            values = item.read(CARD_KEYS)
            versions = []
            for version_item in item.items("versions", [*VERSION_DOCUMENT_KEYS.values(), "lines"], what="versions"):
                version_values = version_item.read(VERSION_KEYS)
                check_period(version_item, version_values["effective_from"], version_values["effective_to"])
                lines = [
                    (line_item, line_item.read(LINE_KEYS))
                    for line_item in version_item.items("lines", LINE_DOCUMENT_KEYS.values(), what="rate lines")
                ]
                versions.append((version_item, version_values, lines))
            code = values["code"]
            if code is r.INVALID or not duplicate_check(seen, code, item, f"rate card {r.show(code)}"):
                continue
            card = existing.get(code)
            valid = len(ctx.problems) == before
            card, changed, action = update_or_build(plan, RateCard, card, values, CARD_DOCUMENT_KEYS, valid=valid)
            plan.rows[code] = card
            if not valid:
                continue
            if action != UNCHANGED:
                check_model(card, item, CARD_DOCUMENT_KEYS)
            plan.add(
                Change(
                    action,
                    f"rate card {code}",
                    item.location,
                    card,
                    fields=changed,
                    save=action != UNCHANGED,
                    keys=CARD_DOCUMENT_KEYS,
                )
            )
            self._plan_versions(plan, ctx, card, versions, existing_card=code in existing)
        if ctx.prune:
            for code, card in sorted(existing.items()):
                if code not in plan.rows:
                    plan.add(
                        Change(
                            DELETED,
                            f"rate card {code}",
                            self.key,
                            card,
                            late=True,
                        )
                    )
        else:
            for code, card in existing.items():
                plan.rows.setdefault(code, card)
        return plan

    def _plan_versions(self, plan, ctx, card: RateCard, versions, *, existing_card: bool) -> None:
        current = {version.version: version for version in card.versions.all()} if existing_card else {}
        seen, listed, version_changes, line_changes, deletes = {}, [], [], {}, []
        previous = {}
        for item, values, lines in versions:
            number = values["version"]
            if number is r.INVALID or not duplicate_check(seen, number, item, f"version {number}"):
                continue
            if any(value is r.INVALID for value in values.values()):
                continue
            version = current.get(number)
            if version is not None:
                plan.listed.add((RateCardVersion, version.pk))
                was = (version.status, version.effective_from, version.effective_to)
                previous[number] = was
                changed = assign(version, values, VERSION_DOCUMENT_KEYS)
                action = UPDATED if changed else UNCHANGED
                refusal = version.frozen_refusal() if changed else ""
                if refusal:
                    item.fail(item.location, f"{refusal} {FROZEN_FIX}")
                    continue
            else:
                version = RateCardVersion(rate_card=card, **values)
                was, changed, action = None, (), CREATED
            if version.status == APPROVED and (was is None or was[0] != APPROVED):
                version.approved_at = timezone.now()
            if action != UNCHANGED:
                check_model(version, item, VERSION_DOCUMENT_KEYS, run_clean=False)
            label = f"rate card {card.code} version {number}"
            version_changes.append(
                (
                    _write_order(version, was),
                    Change(
                        action,
                        label,
                        item.location,
                        version,
                        fields=changed,
                        save=action != UNCHANGED,
                        keys=VERSION_DOCUMENT_KEYS,
                    ),
                )
            )
            if version.status == APPROVED:
                listed.append(Period(version.effective_from, version.effective_to, version, item))
            changes, pruned, count = self._plan_lines(plan, ctx, card, version, lines, existing_version=was is not None)
            line_changes[number] = changes
            deletes.extend(pruned)
            if version.status == APPROVED and count == 0 and not lines:
                item.fail(
                    item.at("lines"),
                    f"approved version {number} of rate card {card.code} has no rates; add at least one line, "
                    f"or leave the version as a draft",
                )
        kept = []
        for number, version in sorted(current.items()):
            if number in seen:
                continue
            if ctx.prune and version.status in RateCardVersion.FROZEN:
                ctx.problems.add(
                    self.key,
                    f"rate card {card.code} version {number} is {version.status} and cannot be deleted (pruned); "
                    f"list it in the document, retired if it no longer applies",
                )
            elif ctx.prune:
                label = f"rate card {card.code} version {number}"
                deletes.insert(0, Change(DELETED, label, self.key, version))
            elif version.status == APPROVED:
                kept.append(Period(version.effective_from, version.effective_to, version))
        clashes = find_overlaps(kept, listed)
        for period, other in clashes:
            period.item.fail(
                period.item.location,
                f"rate card {card.code} version {period.row.version} ({period_label(period.start, period.end)}) "
                f"overlaps approved version {other.row.version} ({period_label(other.start, other.end)}, "
                f"{where_it_is(other)}); approved versions of one rate card may not overlap: end one the day "
                f"before the next starts",
            )
        ordered = [change for _, change in sorted(version_changes, key=lambda pair: pair[0])]
        if not clashes:
            before = {number: was for number, was in previous.items() if was is not None}
            before.update({p.row.version: (APPROVED, p.start, p.end) for p in kept})
            self._check_write_order(ctx, ordered, before)
        plan.changes.extend(deletes)
        for change in ordered:
            plan.changes.append(change)
            plan.changes.extend(line_changes.get(change.instance.version, []))

    def _check_write_order(self, ctx: PlanContext, ordered: list[Change], state: dict) -> None:
        """Refuse what can only be written by overlapping approved versions in between (e.g. two swap periods)."""
        for change in ordered:
            version = change.instance
            state[version.version] = (version.status, version.effective_from, version.effective_to)
            if version.status != APPROVED:
                continue
            mine = Period(version.effective_from, version.effective_to, version)
            for number, (status, start, end) in sorted(state.items()):
                if number != version.version and status == APPROVED and overlaps(mine, Period(start, end, None)):
                    ctx.problems.add(
                        change.location,
                        f"version {version.version} takes over the period of approved version {number}, which "
                        f"itself moves; one import cannot change both without them overlapping in between: import "
                        f"in two steps (first end or retire version {number}, then the rest)",
                    )
                    return

    def _plan_lines(self, plan, ctx, card, version, lines, *, existing_version: bool):
        """(changes, deletes, number of lines the version will have) for one version's lines."""
        current = {_role_key(line.role): line for line in version.lines.all()} if existing_version else {}
        seen, changes, deletes = {}, [], []
        for item, values in lines:
            if values["role"] is r.INVALID:
                continue
            identity = _role_key(values["role"])
            if not duplicate_check(seen, identity, item, f"the rate for role {values['role']!r}"):
                continue
            if any(value is r.INVALID for value in values.values()):
                continue
            if values["currency"] is None:
                values["currency"] = card.currency
            line = current.get(identity)
            line, changed, action = update_or_build(
                plan, RateCardLine, line, values, LINE_DOCUMENT_KEYS, version=version
            )
            line.created_with_its_version = not existing_version
            refusal = line.frozen_refusal() if action != UNCHANGED and existing_version else ""
            if refusal:
                item.fail(item.location, f"{refusal} {FROZEN_FIX}")
                continue
            if action != UNCHANGED:
                check_model(line, item, LINE_DOCUMENT_KEYS)
            changes.append(
                Change(
                    action,
                    f"rate card {card.code} version {version.version} line {line.role!r}",
                    item.location,
                    line,
                    fields=changed,
                    save=action != UNCHANGED,
                    keys=LINE_DOCUMENT_KEYS,
                )
            )
        count = len(seen)
        for identity, line in sorted(current.items()):
            if identity in seen:
                continue
            if ctx.prune and existing_version and line.frozen_refusal(deleting=True):
                ctx.problems.add(self.key, f"{line.frozen_refusal(deleting=True)} {FROZEN_FIX}")
            elif ctx.prune:
                label = f"rate card {card.code} version {version.version} line {line.role!r}"
                deletes.append(Change(DELETED, label, self.key, line))
            else:
                count += 1
        return changes, deletes, count


FROZEN_FIX = "A price change is a new version: add a version with the new rates instead."


def _write_order(version: RateCardVersion, was: tuple | None) -> tuple:
    """Versions that leave the approved set or shrink go first, the rest by start date, so no step overlaps."""
    if was is not None:
        old_status, old_from, old_to = was
        leaves = old_status == APPROVED and version.status != APPROVED
        inside = version.effective_from >= old_from and (
            old_to is None or (version.effective_to is not None and version.effective_to <= old_to)
        )
        shrinks = old_status == APPROVED and version.status == APPROVED and inside
        if leaves or shrinks:
            return (0, version.effective_from, version.version)
    return (1, version.effective_from, version.version)
