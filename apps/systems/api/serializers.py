"""Serializers for connected systems (secrets by reference only) and ownership rules."""

from rest_framework import serializers

from apps.core.api import MaskedModelSerializer, change_reason

from .. import secrets
from ..models import ConnectedSystem, OwnershipRule, Route, SigningSecret
from ..selectors import describe_credentials
from ..services import ownership_rule_save, route_save


class SigningSecretSerializer(MaskedModelSerializer):
    """Where a signing secret lives ({"env": ...}); the value is never stored, so it is never shown."""

    system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    reference_description = serializers.SerializerMethodField()

    class Meta:
        model = SigningSecret
        fields = [
            "id",
            "system",
            "label",
            "reference",
            "reference_description",
            "active",
            "not_after",
            "created_at",
            "updated_at",
        ]

    def get_reference_description(self, obj) -> str:
        return secrets.describe(obj.reference)


class ConnectedSystemSerializer(MaskedModelSerializer):
    credentials_description = serializers.SerializerMethodField()
    signing_secrets = SigningSecretSerializer(many=True, read_only=True)
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = ConnectedSystem
        fields = "__all__"

    def get_credentials_description(self, obj) -> str:
        return describe_credentials(obj.outbound_credentials)


class OwnershipRuleSerializer(MaskedModelSerializer):
    """An ownership rule; systems are named by slug. Saved through `ownership_rule_save`."""

    owner = serializers.SlugRelatedField(slug_field="slug", queryset=ConnectedSystem.objects.all())
    may_create = serializers.SlugRelatedField(
        slug_field="slug", queryset=ConnectedSystem.objects.all(), many=True, required=False
    )
    may_update = serializers.SlugRelatedField(
        slug_field="slug", queryset=ConnectedSystem.objects.all(), many=True, required=False
    )
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = OwnershipRule
        fields = [
            "id",
            "object_type",
            "field",
            "owner",
            "may_create",
            "may_update",
            "effective_from",
            "effective_to",
            "rationale",
            "display",
            "created_at",
            "updated_at",
        ]

    def _save(self, rule, may_create, may_update):
        request = self.context["request"]
        return ownership_rule_save(
            rule=rule, may_create=may_create, may_update=may_update, actor=request.user, reason=change_reason(request)
        )

    def create(self, validated_data):
        may_create = validated_data.pop("may_create", [])
        may_update = validated_data.pop("may_update", [])
        return self._save(OwnershipRule(**validated_data), may_create, may_update)

    def update(self, instance, validated_data):
        may_create = validated_data.pop("may_create", None)
        may_update = validated_data.pop("may_update", None)
        changed = [name for name, value in validated_data.items() if getattr(instance, name) != value]
        grants_changed = any(
            new is not None and {s.pk for s in getattr(instance, name).all()} != {s.pk for s in new}
            for name, new in (("may_create", may_create), ("may_update", may_update))
        )
        if not changed and not grants_changed:
            return instance  # every save writes a history row; save only a real change
        for name in changed:
            setattr(instance, name, validated_data[name])
        return self._save(
            instance,
            list(instance.may_create.all()) if may_create is None else may_create,
            list(instance.may_update.all()) if may_update is None else may_update,
        )


class RouteSerializer(MaskedModelSerializer):
    """The system a workflow's steps of one kind write to, optionally per legal entity. Saved by `route_save`."""

    system = serializers.SlugRelatedField(slug_field="slug", queryset=ConnectedSystem.objects.all())
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = Route
        fields = [
            "id",
            "target_kind",
            "workflow",
            "legal_entity",
            "system",
            "effective_from",
            "effective_to",
            "rationale",
            "display",
            "created_at",
            "updated_at",
        ]

    def create(self, validated_data):
        request = self.context["request"]
        return route_save(route=Route(**validated_data), actor=request.user, reason=change_reason(request))

    def update(self, instance, validated_data):
        changed = [name for name, value in validated_data.items() if getattr(instance, name) != value]
        if not changed:
            return instance  # every save writes a history row; save only a real change
        for name in changed:
            setattr(instance, name, validated_data[name])
        request = self.context["request"]
        return route_save(route=instance, actor=request.user, reason=change_reason(request))
