"""`legal_entities`: the firm's legal entities (subsidiaries) that contract, invoice and book revenue."""

from apps.canonical.models import LegalEntity

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


def _default(attr):
    return model_default(LegalEntity, attr)


ENTITY_KEYS = [
    r.Key("code", "code", r.TEXT, required=True),
    r.Key("name", "name", r.TEXT, required=True),
    r.Key("country", "country", r.TEXT, required=True),
    r.Key("currency", "currency", r.CURRENCY, required=True),
    r.Key("tax_region", "tax_region", r.TEXT, default=_default("tax_region")),
    r.Key("tax_id", "tax_id", r.TEXT, default=_default("tax_id")),
    r.Key("active", "active", r.BOOL, default=_default("active")),
]
DOCUMENT_KEYS = {key.attr: key.key for key in ENTITY_KEYS}


class LegalEntitiesSection(Section):
    """Legal entities; identity is the code. A pruned entity still used by customers or contracts is refused."""

    key = "legal_entities"

    def export(self) -> list[dict]:
        return [
            {key.key: r.export_value(key.kind, getattr(entity, key.attr)) for key in ENTITY_KEYS}
            for entity in LegalEntity.objects.order_by("code")
        ]

    def existing(self) -> dict[str, LegalEntity]:
        return {entity.code: entity for entity in LegalEntity.objects.all()}

    def plan(self, raw, ctx: PlanContext) -> SectionPlan:
        plan = SectionPlan(self.key)
        existing = {entity.code: entity for entity in ctx.locked(LegalEntity.objects.all())}
        seen = {}
        for item in top_items(raw, self.key, ctx.problems, keys=DOCUMENT_KEYS.values(), what="legal entities"):
            before = len(ctx.problems)
            values = item.read(ENTITY_KEYS)
            valid = len(ctx.problems) == before
            if isinstance(values["country"], str) and not (len(values["country"]) == 2 and values["country"].isupper()):
                item.fail(
                    item.at("country"),
                    f"expected a two-letter ISO country code such as GB, got {r.show(values['country'])}",
                )
                valid = False
            code = values["code"]
            if code is r.INVALID or not duplicate_check(seen, code, item, f"legal entity {r.show(code)}"):
                continue
            entity, changed, action = update_or_build(
                plan, LegalEntity, existing.get(code), values, DOCUMENT_KEYS, valid=valid
            )
            plan.rows[code] = entity  # listed even when invalid, so references to it are not reported as unknown
            if not valid:
                continue
            if action != UNCHANGED:
                check_model(entity, item, DOCUMENT_KEYS)
            plan.add(
                Change(
                    action,
                    f"legal entity {code}",
                    item.location,
                    entity,
                    fields=changed,
                    save=action != UNCHANGED,
                    keys=DOCUMENT_KEYS,
                )
            )
        for code, entity in sorted(existing.items()):
            if code in plan.rows:
                continue
            if ctx.prune:
                plan.add(Change(DELETED, f"legal entity {code}", self.key, entity, late=True))
            else:
                plan.rows[code] = entity
        return plan
