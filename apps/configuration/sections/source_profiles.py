"""`source_profiles`: versioned mappings from a vendor's payloads to canonical commands (docs/source-profiles.md).

Identity is (name, version). Built-in profiles ship with the product and `migrate` installs them, so a
document normally lists only the firm's own versions; `export_config --include-builtin` adds the built-ins
marked `builtin: true`, and an import checks such a row against the installed one and never changes it,
except to retire it when the document makes another version of its name active (as publishing does).
"""

import re

from apps.mapping.models import SourceProfile
from apps.mapping.profiles.validation import validate_spec

from .. import reading as r
from .base import (
    CREATED,
    DELETED,
    UNCHANGED,
    UPDATED,
    Change,
    PlanContext,
    Section,
    SectionPlan,
    assign,
    check_model,
    duplicate_check,
    model_default,
    top_items,
)

ACTIVE = SourceProfile.Status.ACTIVE
PROFILE_KEYS = [
    r.Key("name", "name", r.TEXT, required=True),
    r.Key("version", "version", r.INT, required=True, minimum=1),
    r.Key("vendor", "vendor", r.TEXT, required=True),
    r.Key("event_types", "event_types", r.JSON, default=None),  # default: the spec's
    r.Key("schema_version", "schema_version", r.TEXT, default=None),  # default: the spec's
    r.Key(
        "status",
        "status",
        r.CHOICE,
        default=model_default(SourceProfile, "status"),
        choices=tuple(SourceProfile.Status.values),
    ),
    r.Key("description", "description", r.TEXT, default=""),
    r.Key("documentation_url", "documentation_url", r.TEXT, default=""),
    r.Key("spec", "spec", r.JSON, required=True),
    r.Key("sample_payload", "sample_payload", r.JSON, default=None),
]
BUILTIN = r.Key("builtin", "builtin", r.BOOL, default=False)
DOCUMENT_KEYS = {key.attr: key.key for key in PROFILE_KEYS}
# validate_spec says where a problem is ("commands[0].fields.amount.type: ..."); keep that as the location.
SPEC_LOCATION = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.+)$", re.DOTALL)


def _label(name: str, version: int) -> str:
    return f"source profile {name} v{version}"


class SourceProfilesSection(Section):
    """Source profile versions; identity is (name, version). Only one version of a name may be active."""

    key = "source_profiles"
    has_builtin_rows = True

    def export(self, *, include_builtin: bool = False) -> list[dict]:
        profiles = SourceProfile.objects.all() if include_builtin else SourceProfile.objects.filter(builtin=False)
        rows = []
        for profile in sorted(profiles, key=lambda p: (p.name, p.version)):
            document = {"name": profile.name, "version": profile.version}
            if profile.builtin:
                document["builtin"] = True
            for key in PROFILE_KEYS[2:]:
                document[key.key] = r.export_value(key.kind, getattr(profile, key.attr))
            rows.append(document)
        return rows

    def existing(self) -> dict[tuple[str, int], SourceProfile]:
        return {(profile.name, profile.version): profile for profile in SourceProfile.objects.all()}

    def plan(self, raw, ctx: PlanContext) -> SectionPlan:
        plan = SectionPlan(self.key)
        existing = {(p.name, p.version): p for p in ctx.locked(SourceProfile.objects.all())}
        items = top_items(
            raw, self.key, ctx.problems, keys=[*DOCUMENT_KEYS.values(), BUILTIN.key], what="source profiles"
        )
        seen: dict = {}
        listed: list[tuple[r.Item, Change]] = []
        for item in items:
            before = len(ctx.problems)
            values = item.read(PROFILE_KEYS)
            builtin = item.value(BUILTIN)
            self._check_spec(item, values)
            name, version = values["name"], values["version"]
            if r.INVALID in (name, version):
                continue
            identity = (name, version)
            if not duplicate_check(seen, identity, item, f"version {version} of source profile {r.show(name)}"):
                continue
            valid = len(ctx.problems) == before
            profile = existing.get(identity)
            if profile is not None:
                plan.listed.add((SourceProfile, profile.pk))
            elif builtin is not True:
                profile = SourceProfile(builtin=False, **{k: v for k, v in values.items() if v is not r.INVALID})
            if profile is not None:
                plan.rows[identity] = profile  # even when invalid, so a system naming it is not reported too
            if not valid:
                continue
            if profile is not None and profile.builtin:
                change = self._plan_builtin(item, profile, values, builtin)
            elif builtin is True:
                item.fail(
                    item.at("builtin"),
                    f"there is no built-in {_label(name, version)} in this installation; built-in profiles come "
                    "with the product and are never imported. Remove `builtin: true` to import it as your own",
                )
                change = None
            elif profile.pk is not None:
                changed = assign(profile, values, DOCUMENT_KEYS)
                action = UPDATED if changed else UNCHANGED
                change = Change(
                    action, _label(name, version), item.location, profile, fields=changed, save=bool(changed)
                )
            else:
                change = Change(CREATED, _label(name, version), item.location, profile, save=True)
            if change is None:
                continue
            change.keys = DOCUMENT_KEYS
            if change.action != UNCHANGED and not profile.builtin:
                check_model(profile, item, DOCUMENT_KEYS, run_clean=False)
            listed.append((item, change))
        deletes = self._plan_kept(plan, ctx, existing, seen)
        retirements = self._one_active_per_name(plan, listed, seen)
        # Written so no moment has two active versions of a name: what goes away or stops being active
        # first, then what becomes active.
        leaving = [change for _, change in listed if change.instance.status != ACTIVE]
        arriving = [change for _, change in listed if change.instance.status == ACTIVE]
        plan.changes.extend(deletes + leaving + retirements + arriving)
        return plan

    def _check_spec(self, item: r.Item, values: dict) -> None:
        """Spec problems at their place in the spec; vendor, event types and schema version agree with the spec."""
        spec = values["spec"]
        if spec is r.INVALID:
            return
        problems = validate_spec(spec)
        for problem in problems:
            match = SPEC_LOCATION.match(problem)
            if match:
                item.fail(f"{item.at('spec')}.{match[1]}", match[2])
            else:
                item.fail(item.at("spec"), problem)
        if problems:
            return
        vendor = values["vendor"]
        if isinstance(vendor, str) and vendor.strip().lower() != spec["vendor"].strip().lower():
            item.fail(item.at("vendor"), f"the spec reads vendor {r.show(spec['vendor'])}; vendor must be the same")
        for attr, from_spec in (
            ("event_types", list(spec["event_types"])),
            ("schema_version", spec.get("schema_version", "")),
        ):
            if values[attr] is None:
                values[attr] = from_spec
            elif values[attr] is not r.INVALID and values[attr] != from_spec:
                item.fail(
                    item.at(attr),
                    f"{r.show(values[attr]) if isinstance(values[attr], str) else values[attr]} is not what the "
                    f"spec says ({from_spec!r}); give the spec's value or leave {attr} out",
                )

    def _plan_builtin(self, item: r.Item, profile: SourceProfile, values: dict, builtin) -> Change | None:
        """A built-in row may be listed (unchanged) or retired/activated; its content is the product's."""
        label = _label(profile.name, profile.version)
        if builtin is not True:
            newer = SourceProfile.objects.filter(name=profile.name).order_by("-version").first().version + 1
            item.fail(
                item.location,
                f"{label} is a built-in profile shipped with this installation and cannot be replaced by an import; "
                f"number your own version {newer} or higher (or mark the row `builtin: true` if it is the shipped one)",
            )
            return None
        differs = [
            DOCUMENT_KEYS[attr]
            for attr, value in values.items()
            if attr != "status" and getattr(profile, attr) != value
        ]
        if differs:
            item.fail(
                item.location,
                f"{label} is built in, and the installed one differs in {', '.join(differs)}; built-in profiles "
                "cannot be changed by an import: start your own version with the change instead",
            )
            return None
        changed = assign(profile, {"status": values["status"]}, DOCUMENT_KEYS)
        return Change(
            UPDATED if changed else UNCHANGED,
            f"{label} (built-in)",
            item.location,
            profile,
            fields=changed,
            save=bool(changed),
        )

    def _plan_kept(self, plan: SectionPlan, ctx: PlanContext, existing: dict, seen: dict) -> list[Change]:
        """Rows the document does not list: kept, or with --prune deleted (never a built-in, never one used)."""
        deletes = []
        for identity, profile in sorted(existing.items()):
            if identity in seen:
                continue
            if not ctx.prune or profile.builtin:
                plan.rows.setdefault(identity, profile)
                continue
            used = profile.events.count()
            if used:
                ctx.problems.add(
                    self.key,
                    f"{_label(*identity)} is not in this document, so --prune would delete it, but {used} inbound "
                    f"event{'s were' if used > 1 else ' was'} read with it; keep it in the document (retired) so the "
                    "record of how they were read stays",
                )
            deletes.append(Change(DELETED, _label(*identity), self.key, profile))
        return deletes

    def _one_active_per_name(self, plan: SectionPlan, listed: list, seen: dict) -> list[Change]:
        """Two active versions of a name in the document are refused; an active row it does not list is retired."""
        active_in_document: dict[str, tuple[r.Item, Change]] = {}
        for item, change in listed:
            if change.instance.status != ACTIVE:
                continue
            name = change.instance.name
            if name in active_in_document:
                other = active_in_document[name][1].instance
                item.fail(
                    item.at("status"),
                    f"version {other.version} of {name} is active in this document too (at "
                    f"{active_in_document[name][0].location}); only one version of a profile may be active",
                )
                continue
            active_in_document[name] = (item, change)
        retirements = []
        for identity, profile in sorted(plan.rows.items()):
            name = identity[0]
            if identity in seen or profile.status != ACTIVE or name not in active_in_document:
                continue
            winner = active_in_document[name][1].instance
            profile.status = SourceProfile.Status.RETIRED
            retirements.append(
                Change(
                    UPDATED,
                    f"{_label(*identity)}{' (built-in)' if profile.builtin else ''} retired: version "
                    f"{winner.version} in this document is active",
                    self.key,
                    profile,
                    fields=("status",),
                    save=True,
                    keys=DOCUMENT_KEYS,
                )
            )
        return retirements
