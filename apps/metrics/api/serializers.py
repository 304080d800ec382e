"""Figures with their definitions, alert rules (read-write), alerts and notifications (read-only)."""

from rest_framework import serializers

from apps.canonical.models import LegalEntity
from apps.core.api import MaskedModelSerializer, TrackedModelSerializer

from ..definitions import DEFINITIONS
from ..models import Alert, AlertNotification, AlertRule, MetricValue


class MetricDefinitionSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField()
    definition = serializers.CharField()
    firm_wide = serializers.BooleanField(help_text="Also one firm-wide figure (no legal entity).")


class MetricValueSerializer(MaskedModelSerializer):
    """One figure, self-describing: what it measures, in which unit, for which entity, period and currency."""

    name = serializers.SerializerMethodField()
    unit = serializers.SerializerMethodField()
    definition = serializers.SerializerMethodField()
    legal_entity = serializers.SlugRelatedField(slug_field="code", read_only=True)
    legal_entity_name = serializers.CharField(source="legal_entity.name", read_only=True, default="")
    period = serializers.DateField(format="%Y-%m")
    period_start = serializers.DateField(source="period")
    as_of = serializers.DateTimeField(source="snapshot.as_of")

    class Meta:
        model = MetricValue
        fields = [
            "id",
            "metric",
            "name",
            "unit",
            "definition",
            "legal_entity",
            "legal_entity_name",
            "period",
            "period_start",
            "currency",
            "value",
            "sample_size",
            "as_of",
            "computed_at",
        ]

    def get_name(self, obj) -> str:
        return DEFINITIONS[obj.metric].name

    def get_unit(self, obj) -> str:
        return DEFINITIONS[obj.metric].unit

    def get_definition(self, obj) -> str:
        return DEFINITIONS[obj.metric].definition


class AlertRuleSerializer(TrackedModelSerializer):
    """A threshold; the legal entity is named by code (empty: every entity)."""

    legal_entity = serializers.SlugRelatedField(
        slug_field="code", queryset=LegalEntity.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "kind",
            "metric",
            "legal_entity",
            "firm_wide",
            "currency",
            "comparison",
            "threshold",
            "renotify_step",
            "owner_role",
            "active",
            "description",
            "created_at",
            "updated_at",
        ]


class AlertSerializer(MaskedModelSerializer):
    rule = serializers.SlugRelatedField(slug_field="name", read_only=True)
    owner_role = serializers.CharField(source="rule.owner_role", read_only=True)
    legal_entity = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "owner_role",
            "subject_key",
            "subject",
            "legal_entity",
            "period",
            "currency",
            "status",
            "current_value",
            "notified_value",
            "notified_at",
            "notification_count",
            "first_breached_at",
            "cleared_at",
        ]


class AlertNotificationSerializer(MaskedModelSerializer):
    class Meta:
        model = AlertNotification
        fields = ["id", "alert", "kind", "role", "digest_date", "recipients", "subject", "body", "value", "sent_at"]
