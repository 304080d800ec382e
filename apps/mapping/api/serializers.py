"""Serializers for cross-references (created through the service) and value maps with their entries."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.core.api import MaskedModelSerializer, TrackedModelSerializer, change_reason
from apps.core.objects import BusinessObject, model_for
from apps.systems.models import ConnectedSystem

from ..models import CrossReference, ReferenceValue, ValueMap, ValueMapEntry
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
