"""Fix links computed when shown: what to change to clear an exception, read from today's data.

The hint a step stored when it failed names a thing as it was then (a rate card the project has since left,
a value map entry added since); these links are worked out again from the failure's context each time a page
shows them, and point at the admin page of the object to change, prefilled where the admin allows it.
"""

import datetime
from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse
from django.utils.dateparse import parse_date

from apps.canonical.models import Customer, Project, RateCard, RateCardVersion
from apps.core.objects import BusinessObject, model_for
from apps.mapping.models import CrossReference, SourceProfile, ValueMap, ValueMapEntry
from apps.systems.models import ConnectedSystem


@dataclass(frozen=True)
class FixLink:
    label: str
    url: str
    note: str = ""
    # Whom the object belongs to: the role whose people usually make this change.
    role: str = ""


def _admin(name: str, *args, query: dict | None = None) -> str | None:
    try:
        url = reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None
    clean = {key: value for key, value in (query or {}).items() if value not in (None, "")}
    return f"{url}?{urlencode(clean)}" if clean else url


def _on(ctx: dict) -> datetime.date | None:
    return parse_date(str(ctx.get("on", ""))[:10]) if ctx.get("on") else None


def _value_map_links(ctx: dict) -> list[FixLink]:
    value_map = ValueMap.objects.filter(name=ctx["value_map"]).first()
    if value_map is None:
        url = _admin("mapping_valuemap_add", query={"name": ctx["value_map"]})
        return [FixLink(f"Create value map '{ctx['value_map']}'", url, role="mapping_steward")] if url else []
    value, on = str(ctx.get("value", "")), _on(ctx)
    entry = (
        ValueMapEntry.objects.in_force(on).filter(value_map=value_map, source_value__iexact=value).first()
        if on and "value" in ctx
        else None
    )
    if entry is not None:
        url = _admin("mapping_valuemapentry_change", entry.pk)
        return [
            FixLink(
                f"Value map '{value_map.name}' now maps '{value}' → '{entry.target_value}'",
                url,
                note="The entry exists now: re-run the exceptions.",
                role="mapping_steward",
            )
        ]
    query = {"value_map": value_map.pk, "source_value": value, "effective_from": on.isoformat() if on else ""}
    url = _admin("mapping_valuemapentry_add", query=query)
    label = f"Add '{value}' to value map '{value_map.name}'" + (f" from {on:%d %b %Y}" if on else "")
    return [FixLink(label, url, role="mapping_steward")] if url else []


def _rate_links(ctx: dict) -> list[FixLink]:
    role, on = str(ctx["role"]), _on(ctx)
    project = (
        Project.objects.filter(code=ctx["project"]).select_related("rate_card").first() if ctx.get("project") else None
    )
    links: list[FixLink] = []
    card = project.rate_card if project is not None and project.rate_card_id else None
    if card is None and ctx.get("rate_card"):
        card = RateCard.objects.filter(code=ctx["rate_card"]).first()
    if project is not None:
        url = _admin("canonical_project_change", project.pk)
        if card is None and url:
            return [FixLink(f"Give project {project.code} a rate card", url, role="mapping_steward")]
    if card is None:
        return links
    versions = RateCardVersion.objects.filter(rate_card=card)
    if on is not None:
        versions = versions.in_force(on)
    candidates = list(versions.order_by("-effective_from", "-version")[:10])
    approved = [v for v in candidates if v.status == RateCardVersion.Status.APPROVED]
    version = (approved or candidates or [None])[0]
    when = f" on {on:%d %b %Y}" if on else ""
    if version is None:
        url = _admin("canonical_ratecardversion_add", query={"rate_card": card.pk, "effective_from": on})
        if url:
            links.append(FixLink(f"Add a version of rate card {card.code} covering{when}", url, role="mapping_steward"))
        return links
    has_line = version.lines.filter(role__iexact=role.strip()).exists()
    url = _admin("canonical_ratecardversion_change", version.pk)
    if has_line and version.status == RateCardVersion.Status.APPROVED:
        label = f"Rate card {card.code} v{version.version} now prices '{role}'"
        links.append(FixLink(label, url, note="The rate exists now: re-run the exceptions.", role="mapping_steward"))
    elif has_line:
        links.append(
            FixLink(
                f"Approve rate card {card.code} v{version.version} ({version.get_status_display().lower()})",
                url,
                role="mapping_steward",
            )
        )
    else:
        links.append(
            FixLink(f"Add '{role}' to rate card {card.code} v{version.version}{when}", url, role="mapping_steward")
        )
    return links


def _xref_links(ctx: dict) -> list[FixLink]:
    system = ConnectedSystem.objects.filter(slug=ctx.get("system", "")).first()
    object_type, external_id = ctx["object_type"], str(ctx["external_id"])
    if system is not None:
        known = CrossReference.objects.filter(system=system, object_type=object_type, external_id=external_id).first()
        if known is not None:
            url = _admin("mapping_crossreference_change", known.pk)
            return [FixLink(f"{system.name} '{external_id}' is now linked", url, note="Re-run the exceptions.")]
    query = {"system": system.pk if system else "", "object_type": object_type, "external_id": external_id}
    url = _admin("mapping_crossreference_add", query=query)
    label = BusinessObject(object_type).label.lower() if object_type in BusinessObject.values else object_type
    return [FixLink(f"Link {label} '{external_id}' to its record", url, role="mapping_steward")] if url else []


def _ownership_links(ctx: dict) -> list[FixLink]:
    url = _admin("systems_ownershiprule_changelist", query={"object_type__exact": ctx.get("object_type", "")})
    return (
        [FixLink(f"Ownership rules for {ctx.get('object_type', 'this object')}", url, role="mapping_steward")]
        if url
        else []
    )


def _profile_links(ctx: dict) -> list[FixLink]:
    profile = SourceProfile.objects.filter(name=ctx["profile"]).order_by("-version").first()
    if profile is None:
        return []
    url = _admin("mapping_sourceprofile_change", profile.pk)
    return [FixLink(f"Source profile '{profile.name}' v{profile.version}", url, role="mapping_steward")] if url else []


def _customer_links(ctx: dict, transaction_id) -> list[FixLink]:
    field = str(ctx["customer_field"])
    links: list[FixLink] = []
    customer = Customer.objects.filter(pk=ctx["customer"]).first() if ctx.get("customer") else None
    if customer is None and ctx.get("customer_external_id") and ctx.get("system"):
        xref = CrossReference.objects.filter(
            system__slug=ctx["system"], object_type="customer", external_id=str(ctx["customer_external_id"])
        ).first()
        customer = Customer.objects.filter(pk=xref.object_id).first() if xref else None
    if customer is not None:
        url = _admin("canonical_customer_change", customer.pk)
        if url:
            note = "It is filled in now: re-run the exceptions." if getattr(customer, field, "") else ""
            links.append(FixLink(f"Customer {customer.name}: {field.replace('_', ' ')}", url, note=note))
    if transaction_id:
        url = _admin("sync_transaction_edit_input", transaction_id)
        if url:
            label = f"Or add customer_{field} to the deal's input and re-run"
            links.append(FixLink(label, url, note="when the source system cannot be changed in time"))
    return links


def _subject_link(subject_type: str, subject_id) -> list[FixLink]:
    if subject_type not in BusinessObject.values or not subject_id:
        return []
    model = model_for(subject_type)
    record = model.objects.filter(pk=subject_id).first()
    if record is None:
        return []
    url = _admin(f"{model._meta.app_label}_{model._meta.model_name}_change", record.pk)
    return [FixLink(f"Open {BusinessObject(subject_type).label.lower()} {record}", url)] if url else []


def fix_links(context: dict, *, subject_type: str = "", subject_id=None, transaction_id=None) -> list[FixLink]:
    """Links to the objects whose change clears this failure, from current data (empty when nothing applies)."""
    ctx = context or {}
    if "customer_field" in ctx:
        links = _customer_links(ctx, transaction_id)
    elif "value_map" in ctx:
        links = _value_map_links(ctx)
    elif "role" in ctx:
        links = _rate_links(ctx)
    elif "refused" in ctx:
        links = _ownership_links(ctx)
    elif "external_id" in ctx and "object_type" in ctx:
        links = _xref_links(ctx)
    elif "profile" in ctx:
        links = _profile_links(ctx)
    else:
        links = []
    if subject_type == BusinessObject.CUSTOMER.value or not links:
        links = links + _subject_link(subject_type, subject_id)
    return [link for link in links if link.url]
