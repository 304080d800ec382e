"""Reconciliation over HTTP: runs with progress, discrepancies with both values and their age, sign-offs."""

from rest_framework import serializers

from apps.core.api import MaskedModelSerializer

from ..models import Discrepancy, PeriodSignOff, ReconciliationRun


class ReconciliationRunSerializer(MaskedModelSerializer):
    legal_entity = serializers.SlugRelatedField(slug_field="code", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = ReconciliationRun
        fields = [
            "id",
            "period",
            "period_start",
            "period_end",
            "legal_entity",
            "trigger",
            "status",
            "progress",
            "stage",
            "requested_by",
            "correlation_id",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "not_compared",
            "pulled",
            "summary",
            "figures_digest",
            "error",
        ]
        read_only_fields = fields

    def get_duration_seconds(self, run) -> float | None:
        return round(run.duration.total_seconds(), 3) if run.duration is not None else None


class RunRequestSerializer(serializers.Serializer):
    period = serializers.RegexField(r"^\d{4}-\d{2}$", help_text="Accounting month, YYYY-MM.")
    legal_entity = serializers.CharField(required=False, allow_blank=True, help_text="Legal entity code; empty: all.")


class DiscrepancySerializer(MaskedModelSerializer):
    legal_entity = serializers.SlugRelatedField(slug_field="code", read_only=True)
    explained_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    check_label = serializers.CharField(source="get_check_type_display", read_only=True)
    days_open = serializers.IntegerField(read_only=True)
    days_past_close = serializers.IntegerField(read_only=True)

    class Meta:
        model = Discrepancy
        fields = [
            "id",
            "check_type",
            "check_label",
            "business_key",
            "legal_entity",
            "period",
            "period_close_date",
            "currency",
            "left_system",
            "left_amount",
            "right_system",
            "right_amount",
            "difference",
            "reporting_currency",
            "value_at_risk",
            "description",
            "detail",
            "status",
            "first_seen_at",
            "last_seen_at",
            "days_open",
            "days_past_close",
            "first_seen_run",
            "last_seen_run",
            "closed_by_run",
            "closed_at",
            "times_reopened",
            "explanation",
            "explained_by",
            "explained_at",
        ]
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why; auditors read it in the history.")


class RerunResultSerializer(serializers.Serializer):
    discrepancy = DiscrepancySerializer()
    transactions = serializers.ListField(child=serializers.CharField(), help_text="Correlation IDs re-run.")


class PeriodSignOffSerializer(MaskedModelSerializer):
    legal_entity = serializers.SlugRelatedField(slug_field="code", read_only=True)
    prepared_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PeriodSignOff
        fields = [
            "id",
            "period",
            "legal_entity",
            "run",
            "figures_digest",
            "status",
            "prepared_by",
            "prepared_at",
            "approved_by",
            "approved_at",
            "voided_by_run",
            "voided_at",
            "note",
        ]
        read_only_fields = fields


class PrepareSerializer(serializers.Serializer):
    period = serializers.RegexField(r"^\d{4}-\d{2}$")
    legal_entity = serializers.CharField(required=False, allow_blank=True)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ApproveSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")
