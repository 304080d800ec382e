"""Serializers for cross-references (created through the service), value maps with their entries, source profiles."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.core.api import MaskedModelSerializer, TrackedModelSerializer, change_reason
from apps.core.objects import BusinessObject, model_for
from apps.systems.models import ConnectedSystem

from ..models import CrossReference, ReferenceValue, SourceProfile, ValueMap, ValueMapEntry
from ..profiles.validation import validate_spec
from ..services import cross_reference_record


class CrossReferenceSerializer(TrackedModelSerializer):
    """A canonical record's ID in one system. New links go through cross_reference_record (idempotent)."""

    system = serializers.SlugRelatedField(slug_field="slug", queryset=ConnectedSystem.objects.all())
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = CrossReference
        fields = "__all__"
        read_only_fields = ["last_synced_at"]
        # Conflicts are the service's to answer (a repeat of the same link is not an error).
        validators = []

    def validate(self, attrs):
        object_type = attrs.get("object_type", getattr(self.instance, "object_type", None))
        object_id = attrs.get("object_id", getattr(self.instance, "object_id", None))
        if object_type and object_id and not model_for(object_type).objects.filter(pk=object_id).exists():
            label = BusinessObject(object_type).label.lower()
            raise serializers.ValidationError({"object_id": f"There is no {label} with id {object_id}."})
        return attrs

    def create(self, validated_data):
        request = self.context["request"]
        record = model_for(validated_data["object_type"]).objects.get(pk=validated_data["object_id"])
        return cross_reference_record(
            system=validated_data["system"],
            obj=record,
            external_id=validated_data["external_id"],
            origin=validated_data.get("origin", CrossReference.Origin.MANUAL),
            actor=request.user,
            reason=change_reason(request),
        )


class ValueMapEntrySerializer(TrackedModelSerializer):
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = ValueMapEntry
        fields = "__all__"


class MapEntrySerializer(MaskedModelSerializer):
    """An entry inside its value map."""

    class Meta:
        model = ValueMapEntry
        fields = ["id", "source_value", "target_value", "effective_from", "effective_to", "note"]


class ValueMapSerializer(TrackedModelSerializer):
    """A value map with its entries; entries may be sent when the map is created, and changed one by one later."""

    source_system = serializers.SlugRelatedField(
        slug_field="slug", queryset=ConnectedSystem.objects.all(), required=False, allow_null=True
    )
    target_system = serializers.SlugRelatedField(
        slug_field="slug", queryset=ConnectedSystem.objects.all(), required=False, allow_null=True
    )
    entries = MapEntrySerializer(many=True, required=False)
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = ValueMap
        fields = "__all__"

    def validate(self, attrs):
        if self.instance is not None and "entries" in attrs:
            raise serializers.ValidationError(
                {"entries": "Change the entries of an existing map through /api/v1/value-map-entries/."}
            )
        return attrs

    def create(self, validated_data):
        entries = validated_data.pop("entries", [])
        value_map = super().create(validated_data)
        for index, spec in enumerate(entries):
            entry = ValueMapEntry(value_map=value_map, **spec)
            try:
                entry.full_clean()
            except DjangoValidationError as exc:
                raise serializers.ValidationError({f"entries[{index}]": exc.messages}) from None
            entry.save()
        return value_map


class ReferenceValueSerializer(MaskedModelSerializer):
    """A code list entry as the system publishes it (subsidiary, tax code, item…); read-only."""

    system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = ReferenceValue
        fields = "__all__"


class SourceProfileSerializer(MaskedModelSerializer):
    """A version of a source profile; read-only here (new versions and publishing have their own endpoints)."""

    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = SourceProfile
        fields = "__all__"
        read_only_fields = [field.name for field in SourceProfile._meta.concrete_fields]


class SourceProfileVersionSerializer(serializers.ModelSerializer):
    """One version of a profile name in its history: status and the last change to it (who, when, why)."""

    last_changed_at = serializers.SerializerMethodField()
    last_changed_by = serializers.SerializerMethodField()
    last_change_reason = serializers.SerializerMethodField()

    class Meta:
        model = SourceProfile
        fields = [
            "id",
            "name",
            "version",
            "status",
            "builtin",
            "created_at",
            "last_changed_at",
            "last_changed_by",
            "last_change_reason",
        ]

    def _last(self, profile):
        return self.context["last_changes"].get(profile.pk)

    def get_last_changed_at(self, profile) -> str | None:
        row = self._last(profile)
        return row.history_date.isoformat() if row else None

    def get_last_changed_by(self, profile) -> str | None:
        row = self._last(profile)
        return str(row.history_user) if row and row.history_user_id else None

    def get_last_change_reason(self, profile) -> str | None:
        row = self._last(profile)
        return row.history_change_reason if row else None


def _spec_problems_or_raise(spec):
    problems = validate_spec(spec)
    if problems:
        raise serializers.ValidationError(problems)
    return spec


class ProfilePreviewRequestSerializer(serializers.Serializer):
    """Run a saved profile on a sample delivery (default: its own sample) and, optionally, a fetched document."""

    payload = serializers.JSONField(
        required=False, allow_null=True, help_text="A whole delivery as the vendor sends it; default: the sample."
    )
    fetched = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='The record a thin notification points at, e.g. {"deal": {…}, "company": {…}}, used for every '
        "fetch request; or {fetch key: document}.",
    )
    on = serializers.DateField(required=False, allow_null=True, help_text="Value maps are read as of this date.")


class SpecPreviewRequestSerializer(ProfilePreviewRequestSerializer):
    """Run an unsaved spec on a sample delivery."""

    spec = serializers.JSONField(help_text="The profile (docs/source-profiles.md).")
    payload = serializers.JSONField(help_text="A whole delivery as the vendor sends it.")

    def validate_spec(self, spec):
        return _spec_problems_or_raise(spec)

    def validate_payload(self, payload):
        if payload is None:
            raise serializers.ValidationError("Give a sample delivery to preview the profile on.")
        return payload


class NewVersionSerializer(serializers.Serializer):
    """Start the next version of a profile as a draft with an edited spec."""

    spec = serializers.JSONField(help_text="The edited profile; its vendor must stay the profile's vendor.")
    sample_payload = serializers.JSONField(
        required=False, allow_null=True, help_text="Default: the sample of the version it starts from."
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Why (default: the X-Change-Reason header)."
    )

    def validate_spec(self, spec):
        _spec_problems_or_raise(spec)
        vendor = self.context["profile"].vendor
        if spec["vendor"].strip().lower() != vendor.lower():
            raise serializers.ValidationError(
                f"This profile reads {vendor} payloads, but the spec says vendor '{spec['vendor']}'. A profile's "
                "vendor never changes: create a new profile for another vendor."
            )
        return spec


class PublishSerializer(serializers.Serializer):
    """Make this version the active one of its name; the previous active version is retired."""

    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="Why this version is published (required here or in the X-Change-Reason header).",
    )

    def validate(self, attrs):
        reason = (attrs.get("reason") or self.context["request"].headers.get("X-Change-Reason") or "").strip()
        if not reason:
            raise serializers.ValidationError(
                {"reason": "Say why you publish this version (in reason or X-Change-Reason); auditors read it."}
            )
        return {"reason": reason[:500]}


class PreviewResultSerializer(serializers.Serializer):
    """What the profile made of the sample: per event the commands, skips, fetch requests and errors."""

    valid_profile = serializers.BooleanField()
    profile_problems = serializers.ListField(child=serializers.CharField())
    on = serializers.DateField()
    delivery = serializers.CharField(help_text="The delivery format the sample was cut into events with.")
    delivery_problem = serializers.DictField(allow_null=True)
    events = serializers.ListField(child=serializers.DictField())
    totals = serializers.DictField(child=serializers.IntegerField())
