"""`systems`: connected systems with their outbound settings, inbound signing secrets (by reference) and the
source profiles their events are read with."""

from apps.systems.models import ConnectedSystem, OutboundAuth, SigningScheme, SigningSecret, SystemKind

from .. import reading as r
from .base import (
    DELETED,
    UNCHANGED,
    Change,
    PlanContext,
    Section,
    SectionPlan,
    check_model,
    duplicate_check,
    model_default,
    top_items,
    update_or_build,
)
from .routes import schedule_coverage_check
from .value_maps import schedule_required_maps_check


def _default(attr):
    return model_default(ConnectedSystem, attr)


SYSTEM_KEYS = [
    r.Key("slug", "slug", r.TEXT, required=True),
    r.Key("name", "name", r.TEXT, required=True),
    r.Key("kind", "kind", r.CHOICE, required=True, choices=tuple(SystemKind.values)),
    r.Key("vendor", "vendor", r.TEXT, required=True),
    r.Key("base_url", "base_url", r.TEXT, default=_default("base_url")),
    r.Key("enabled", "enabled", r.BOOL, default=_default("enabled")),
    r.Key("notes", "notes", r.TEXT, default=_default("notes")),
    r.Key("match_customers_by", "match_customers_by", r.NAMES, default=_default("match_customers_by")),
]
OUTBOUND_KEYS = [
    r.Key("auth", "outbound_auth", r.CHOICE, default=_default("outbound_auth"), choices=tuple(OutboundAuth.values)),
    r.Key("credentials", "outbound_credentials", r.CREDENTIALS, default=_default("outbound_credentials")),
    r.Key(
        "rate_limit_per_minute", "rate_limit_per_minute", r.INT, default=_default("rate_limit_per_minute"), minimum=0
    ),
    r.Key("rate_limit_burst", "rate_limit_burst", r.INT, default=_default("rate_limit_burst"), minimum=1),
    r.Key("connect_timeout_seconds", "connect_timeout_seconds", r.NUMBER, default=_default("connect_timeout_seconds")),
    r.Key("read_timeout_seconds", "read_timeout_seconds", r.NUMBER, default=_default("read_timeout_seconds")),
]
INBOUND_KEYS = [
    r.Key(
        "scheme", "inbound_scheme", r.CHOICE, default=_default("inbound_scheme"), choices=tuple(SigningScheme.values)
    ),
    r.Key(
        "replay_window_seconds",
        "inbound_replay_window_seconds",
        r.INT,
        default=_default("inbound_replay_window_seconds"),
        minimum=0,
    ),
    r.Key("source_profiles", "source_profiles", r.NAMES, default=_default("source_profiles")),
]
SECRET_KEYS = [
    r.Key("label", "label", r.TEXT, required=True),
    r.Key("ref", "reference", r.REFERENCE, required=True),
    r.Key("active", "active", r.BOOL, default=True),
    r.Key("not_after", "not_after", r.DATETIME, default=None),
]

DOCUMENT_KEYS = {
    **{key.attr: key.key for key in SYSTEM_KEYS},
    **{key.attr: f"outbound.{key.key}" for key in OUTBOUND_KEYS},
    **{key.attr: f"inbound.{key.key}" for key in INBOUND_KEYS},
}
SECRET_DOCUMENT_KEYS = {key.attr: key.key for key in SECRET_KEYS}


def _export_keys(instance, keys) -> dict:
    return {key.key: r.export_value(key.kind, getattr(instance, key.attr)) for key in keys}


class SystemsSection(Section):
    """Connected systems; identity is the slug, a signing secret's identity is its label within the system."""

    key = "systems"

    def export(self) -> list[dict]:
        rows = []
        for system in sorted(ConnectedSystem.objects.prefetch_related("signing_secrets"), key=lambda s: s.slug):
            document = _export_keys(system, SYSTEM_KEYS)
            document["outbound"] = _export_keys(system, OUTBOUND_KEYS)
            document["inbound"] = _export_keys(system, INBOUND_KEYS)
            document["inbound"]["secrets"] = [
                _export_keys(secret, SECRET_KEYS)
                for secret in sorted(system.signing_secrets.all(), key=lambda s: s.label)
            ]
            rows.append(document)
        return rows

    def existing(self) -> dict[str, ConnectedSystem]:
        return {system.slug: system for system in ConnectedSystem.objects.all()}

    def plan(self, raw, ctx: PlanContext) -> SectionPlan:
        plan = SectionPlan(self.key)
        existing = {
            system.slug: system for system in ctx.locked(ConnectedSystem.objects.prefetch_related("signing_secrets"))
        }
        seen = {}
        items = top_items(
            raw,
            self.key,
            ctx.problems,
            keys=[key.key for key in SYSTEM_KEYS] + ["outbound", "inbound"],
            what="systems",
        )
        for item in items:
            before = len(ctx.problems)
            values = item.read(SYSTEM_KEYS)
            values.update(item.block("outbound", [key.key for key in OUTBOUND_KEYS]).read(OUTBOUND_KEYS))
            inbound = item.block("inbound", [key.key for key in INBOUND_KEYS] + ["secrets"])
            values.update(inbound.read(INBOUND_KEYS))
            secrets = [
                (secret_item, secret_item.read(SECRET_KEYS))
                for secret_item in inbound.items("secrets", [key.key for key in SECRET_KEYS], what="signing secrets")
            ]
            valid = len(ctx.problems) == before
            if isinstance(values["source_profiles"], list) and values["source_profiles"]:
                ctx.check_later(self._profiles_exist(ctx, inbound, values["source_profiles"]))
            slug = values["slug"]
            if slug is r.INVALID or not duplicate_check(seen, slug, item, f"system {r.show(slug)}"):
                continue
            system = existing.get(slug)
            system, changed, action = update_or_build(plan, ConnectedSystem, system, values, DOCUMENT_KEYS, valid=valid)
            # Listed even when invalid, so references to it elsewhere are not reported as unknown too.
            plan.rows[slug] = system
            if not valid:
                continue
            if action != UNCHANGED:
                check_model(system, item, DOCUMENT_KEYS)
            plan.add(
                Change(
                    action,
                    f"system {slug}",
                    item.location,
                    system,
                    fields=changed,
                    save=action != UNCHANGED,
                    keys=DOCUMENT_KEYS,
                )
            )
            self._plan_secrets(plan, ctx, system, secrets, existing_system=slug in existing)
        if ctx.prune:
            for slug, system in sorted(existing.items()):
                if slug not in plan.rows:
                    plan.add(Change(DELETED, f"system {slug}", self.key, system, late=True))
        else:
            for slug, system in existing.items():
                plan.rows.setdefault(slug, system)
        schedule_coverage_check(ctx)  # a second system of a kind needs routes saying which one each workflow uses
        schedule_required_maps_check(ctx)
        return plan

    @staticmethod
    def _profiles_exist(ctx: PlanContext, inbound: r.Item, names: list[str]):
        """A check for after planning: every profile a system names exists (in the document or the database)."""

        def check():
            known = {name for name, _version in ctx.rows("source_profiles")}
            for index, name in enumerate(names):
                if name not in known:
                    inbound.fail(
                        f"{inbound.at('source_profiles')}[{index}]",
                        f"there is no source profile {r.show(name)} in this document or in the database; "
                        "name a profile listed under source_profiles, or leave the list empty to read events with "
                        "the vendor's built-in profiles",
                    )

        return check

    def _plan_secrets(self, plan, ctx, system, secrets, *, existing_system: bool):
        current = {secret.label: secret for secret in system.signing_secrets.all()} if existing_system else {}
        seen = {}
        for item, values in secrets:
            label = values["label"]
            if label is r.INVALID or not duplicate_check(seen, label, item, f"signing secret {r.show(label)}"):
                continue
            if any(value is r.INVALID for value in values.values()):
                continue
            secret = current.get(label)
            secret, changed, action = update_or_build(
                plan, SigningSecret, secret, values, SECRET_DOCUMENT_KEYS, system=system
            )
            if action != UNCHANGED:
                check_model(secret, item, SECRET_DOCUMENT_KEYS)
            plan.add(
                Change(
                    action,
                    f"signing secret {system.slug}/{label}",
                    item.location,
                    secret,
                    fields=changed,
                    save=action != UNCHANGED,
                    keys=SECRET_DOCUMENT_KEYS,
                )
            )
        if ctx.prune:
            for label, secret in sorted(current.items()):
                if label not in seen:
                    plan.add(Change(DELETED, f"signing secret {system.slug}/{label}", self.key, secret))
