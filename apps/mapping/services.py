"""Value-map lookups and cross-reference writes; every miss names the map or system, the value and the date."""

import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core import approvals
from apps.core.approvals import approval_request, needs_second_person
from apps.core.context import audit_context, system_context
from apps.core.errors import MappingError
from apps.core.history import bulk_create_tracked
from apps.core.objects import BusinessObject, object_type_of
from apps.systems.models import ConnectedSystem

from .builtin_profiles import builtin_profiles
from .models import CrossReference, SourceProfile, ValueMap, ValueMapEntry
from .profiles.validation import validate_spec


class ValueMapMiss(MappingError):
    code = "value_map_miss"


class CrossReferenceMissing(MappingError):
    code = "cross_reference_missing"


class CrossReferenceConflict(MappingError):
    code = "cross_reference_conflict"


def _get_map(name: str) -> ValueMap:
    try:
        return ValueMap.objects.get(name=name)
    except ValueMap.DoesNotExist:
        raise ValueMapMiss(
            f"There is no value map '{name}'.",
            fix=f"Create value map '{name}' or correct the mapping that refers to it.",
            context={"value_map": name},
        ) from None


def value_map_lookup(map_name: str, value, *, on: datetime.date | None = None) -> str:
    """Translate `value` through the named map as of `on`; a miss raises ValueMapMiss (unless a default is set)."""
    on = on or timezone.localdate()
    value_map = _get_map(map_name)
    text = "" if value is None else str(value).strip()
    entries = ValueMapEntry.objects.in_force(on).filter(value_map=value_map)
    entries = (
        entries.filter(source_value=text) if value_map.case_sensitive else entries.filter(source_value__iexact=text)
    )
    entry = entries.order_by("-effective_from").first()
    if entry is not None:
        return entry.target_value
    if value_map.default_target:
        return value_map.default_target
    raise ValueMapMiss(
        f"value map {value_map.label} has no entry for '{text}' on {on.isoformat()}",
        fix=f"Add an entry for '{text}' to value map '{value_map.name}' covering {on.isoformat()}, "
        f"then re-run the transaction.",
        technical=f"ValueMap(name={value_map.name!r}) lookup of {text!r} on {on.isoformat()} found no entry",
        context={"value_map": value_map.name, "value": text, "on": on.isoformat()},
    )


def external_id_for(*, system: ConnectedSystem, obj) -> str | None:
    """The record's ID in `system`, or None if it has none yet."""
    return (
        CrossReference.objects.filter(system=system, object_type=object_type_of(obj), object_id=obj.pk)
        .values_list("external_id", flat=True)
        .first()
    )


def canonical_id_for(*, system: ConnectedSystem, object_type: str, external_id: str) -> int | None:
    """The canonical record's primary key for an external ID, or None."""
    return (
        CrossReference.objects.filter(system=system, object_type=object_type, external_id=str(external_id))
        .values_list("object_id", flat=True)
        .first()
    )


def require_external_id(*, system: ConnectedSystem, obj) -> str:
    """The record's ID in `system`; raises CrossReferenceMissing if it was never created there."""
    external_id = external_id_for(system=system, obj=obj)
    if external_id is None:
        label = BusinessObject(object_type_of(obj)).label.lower()
        raise CrossReferenceMissing(
            f"{label.capitalize()} {obj} has no ID in {system.name} yet.",
            fix=f"Create the {label} in {system.name} first (re-run its workflow), "
            "or record its ID as a cross-reference.",
            context={"system": system.slug, "object_type": object_type_of(obj), "object_id": obj.pk},
        )
    return external_id


def cross_reference_record(
    *,
    system: ConnectedSystem,
    obj,
    external_id: str,
    origin: str = CrossReference.Origin.WORKFLOW,
    actor=None,
    reason: str = "",
) -> CrossReference:
    """Record that `obj` is `external_id` in `system`; idempotent for the same pair, refused on a conflict."""
    object_type = object_type_of(obj)
    external_id = str(external_id)
    existing = CrossReference.objects.filter(system=system, object_type=object_type, object_id=obj.pk).first()
    if existing is not None:
        if existing.external_id == external_id:
            return existing
        raise CrossReferenceConflict(
            f"{obj} is already linked to {system.name} ID '{existing.external_id}', not '{external_id}'.",
            fix="Check for a duplicate record in the target system; correct the cross-reference if it is wrong.",
            context={"system": system.slug, "object_type": object_type, "existing": existing.external_id},
        )
    taken = CrossReference.objects.filter(system=system, object_type=object_type, external_id=external_id).first()
    if taken is not None:
        raise CrossReferenceConflict(
            f"{system.name} ID '{external_id}' already belongs to another {BusinessObject(object_type).label.lower()} "
            f"(#{taken.object_id}).",
            fix="Merge the duplicate canonical records, or correct the cross-reference that is wrong.",
            context={"system": system.slug, "object_type": object_type, "external_id": external_id},
        )
    with audit_context(actor=actor, reason=reason or f"Linked to {system.slug}:{external_id}"):
        try:
            with transaction.atomic():
                return CrossReference.objects.create(
                    system=system,
                    object_type=object_type,
                    object_id=obj.pk,
                    external_id=external_id,
                    origin=origin,
                    last_synced_at=timezone.now(),
                )
        except IntegrityError:
            # A concurrent writer recorded a link between our checks and the insert: answer as if it were first.
            existing = CrossReference.objects.filter(system=system, object_type=object_type, object_id=obj.pk).first()
            if existing is not None and existing.external_id == external_id:
                return existing
            raise CrossReferenceConflict(
                f"{system.name} ID '{external_id}' for {obj} conflicts with a cross-reference "
                "recorded at the same time.",
                fix="Open the cross-references of this record and keep the right one.",
            ) from None


def cross_references_record(
    *, system: ConnectedSystem, links: list[tuple[object, str]], origin: str = CrossReference.Origin.WORKFLOW
) -> int:
    """`cross_reference_record` for many objects of one type at once (one read, one tracked bulk insert).

    Same answers: a pair already recorded is left as it is, and a conflict (the object linked to another ID,
    or the ID taken by another object) is refused with the first one found. Returns the links created.
    Call it inside the caller's transaction: a concurrent writer's link fails the insert and rolls it back.
    """
    if not links:
        return 0
    object_type = object_type_of(links[0][0])
    wanted = {obj.pk: (obj, str(external_id)) for obj, external_id in links}
    mine = CrossReference.objects.filter(system=system, object_type=object_type)
    existing = dict(mine.filter(object_id__in=list(wanted)).values_list("object_id", "external_id"))
    for object_id, held in existing.items():
        obj, external_id = wanted[object_id]
        if held != external_id:
            cross_reference_record(system=system, obj=obj, external_id=external_id)  # raises its conflict
    new = {object_id: pair for object_id, pair in wanted.items() if object_id not in existing}
    now = timezone.now()
    rows = [
        CrossReference(
            system=system,
            object_type=object_type,
            object_id=object_id,
            external_id=external_id,
            origin=origin,
            last_synced_at=now,
        )
        for object_id, (_, external_id) in new.items()
    ]
    try:
        with transaction.atomic():  # an ID taken by another object fails the unique constraint: find which
            bulk_create_tracked(CrossReference, rows)
    except IntegrityError:
        for obj, external_id in new.values():
            cross_reference_record(system=system, obj=obj, external_id=external_id)  # raises its conflict
    return len(new)


def profiles_for_system(system: ConnectedSystem):
    """The active source profiles a system's events are read with: the ones it names, else every active profile
    for its vendor (the built-ins and any a steward added), so a new profile works without touching the system."""
    active = SourceProfile.objects.filter(status=SourceProfile.Status.ACTIVE)
    if system.source_profiles:
        return active.filter(name__in=system.source_profiles)
    return active.filter(vendor=system.vendor)


def profile_for_event(*, system: ConnectedSystem, event_type: str, schema_version: str = ""):
    """The active profile that reads this event type (and schema version) from this system, or None."""
    candidates = [
        profile
        for profile in profiles_for_system(system).order_by("name")
        if event_type in (profile.event_types or []) or "*" in (profile.event_types or [])
    ]
    exact = [p for p in candidates if p.schema_version and p.schema_version == schema_version]
    generic = [p for p in candidates if not p.schema_version]
    return (exact or generic or [None])[0]


def builtin_profiles_install() -> dict:
    """Load the shipped source profiles: a new or changed built-in becomes the active version of its name.

    Idempotent: an unchanged built-in writes nothing. A steward's own active version of a built-in name
    is left active; the shipped one is then stored as a draft for them to compare and publish.
    """
    report = {"created": 0, "unchanged": 0}
    for shipped in builtin_profiles():
        same = SourceProfile.objects.filter(name=shipped["name"], builtin=True, spec=shipped["spec"]).first()
        if same is not None:
            report["unchanged"] += 1
            continue
        with transaction.atomic():
            versions = SourceProfile.objects.select_for_update().filter(name=shipped["name"])
            number = max([p.version for p in versions] + [shipped["version"] - 1]) + 1
            active = versions.filter(status=SourceProfile.Status.ACTIVE).first()
            customised = active is not None and not active.builtin
            if active is not None and not customised:
                active.status = SourceProfile.Status.RETIRED
                active.save()
            status = SourceProfile.Status.DRAFT if customised else SourceProfile.Status.ACTIVE
            SourceProfile.objects.create(**{**shipped, "version": number, "status": status})
            report["created"] += 1
    return report


def builtin_profiles_after_migrate(sender, **kwargs) -> None:
    """Keep the shipped source profiles loaded after every migrate (idempotent; a post_migrate receiver)."""
    with system_context("Install built-in source profiles"):
        builtin_profiles_install()


def _refuse_invalid(profile) -> None:
    problems = validate_spec(profile.spec)
    if problems:
        raise MappingError(
            f"Profile {profile.name} v{profile.version} cannot be published: {problems[0]}",
            fix="Correct the profile (see the preview), then publish again.",
            context={"problems": problems},
        )


def source_profile_publish(*, profile, actor, reason: str):
    """Publish a profile version, or ask a second person to (four-eyes: returns the pending ChangeRequest)."""
    if not needs_second_person(approvals.SOURCE_PROFILE, actor):
        return source_profile_publish_now(profile=profile, actor=actor, reason=reason)
    _refuse_invalid(profile)
    active = SourceProfile.objects.filter(name=profile.name, status=SourceProfile.Status.ACTIVE).first()
    return approval_request(
        kind=approvals.SOURCE_PROFILE,
        target=profile,
        summary=f"Publish source profile {profile.name} version {profile.version}",
        diff=[
            {"field": "active version", "old": active.version if active else None, "new": profile.version},
            {"field": "status", "old": profile.status, "new": SourceProfile.Status.ACTIVE},
        ],
        actor=actor,
        reason=reason,
    )


def source_profile_apply_approval(change_request, *, actor, reason: str):
    """The four-eyes action: publish the version the request names, as the checker."""
    return source_profile_publish_now(profile=change_request.target, actor=actor, reason=reason)


def source_profile_publish_now(*, profile, actor, reason: str):
    """Make a profile version the active one of its name; the previous active version is retired."""
    _refuse_invalid(profile)
    with audit_context(actor=actor, reason=reason), transaction.atomic():
        for other in (
            SourceProfile.objects.select_for_update()
            .filter(name=profile.name, status=SourceProfile.Status.ACTIVE)
            .exclude(pk=profile.pk)
        ):
            other.status = SourceProfile.Status.RETIRED
            other.save()
        profile.status = SourceProfile.Status.ACTIVE
        profile.save()
    return profile


def source_profile_new_version(*, profile, spec: dict, actor, reason: str, sample_payload=None):
    """Start a draft version of a profile with an edited spec (the published versions stay as they are)."""
    with audit_context(actor=actor, reason=reason), transaction.atomic():
        number = (
            SourceProfile.objects.select_for_update().filter(name=profile.name).order_by("-version").first().version + 1
        )
        draft = SourceProfile.objects.create(
            name=profile.name,
            version=number,
            vendor=profile.vendor,
            event_types=spec.get("event_types", []),
            schema_version=spec.get("schema_version", ""),
            status=SourceProfile.Status.DRAFT,
            builtin=False,
            description=profile.description,
            documentation_url=profile.documentation_url,
            spec=spec,
            sample_payload=sample_payload if sample_payload is not None else profile.sample_payload,
        )
    return draft
