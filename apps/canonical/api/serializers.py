"""Serializers for canonical records; sensitive rates are null (with `masked_fields`) for users who may not see them."""

from rest_framework import serializers

from apps.core.api import MaskedModelSerializer, TrackedModelSerializer, change_reason

from ..models import (
    BillingEvent,
    BillingSchedule,
    Contract,
    ContractAmendment,
    ContractLine,
    Customer,
    ExchangeRate,
    Expense,
    Invoice,
    InvoiceLine,
    LegalEntity,
    Milestone,
    Opportunity,
    Payment,
    Project,
    RateCard,
    RateCardLine,
    RateCardVersion,
    Resource,
    RevenueSchedule,
    RevenueScheduleLine,
    Task,
    TimeEntry,
)
from ..services import rate_card_version_create


class CanonicalSerializer(MaskedModelSerializer):
    """Every field of the record plus `display`, the label people see in the console."""

    display = serializers.CharField(source="__str__", read_only=True)


class LegalEntitySerializer(TrackedModelSerializer):
    """A legal entity; created and changed by stewards (validated by the model, saved only when a value changes)."""

    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = LegalEntity
        fields = "__all__"


class CustomerSerializer(CanonicalSerializer):
    class Meta:
        model = Customer
        fields = "__all__"


class ResourceSerializer(CanonicalSerializer):
    class Meta:
        model = Resource
        fields = "__all__"


class OpportunitySerializer(CanonicalSerializer):
    class Meta:
        model = Opportunity
        fields = "__all__"


class ContractSerializer(CanonicalSerializer):
    class Meta:
        model = Contract
        fields = "__all__"


class ContractLineSerializer(CanonicalSerializer):
    class Meta:
        model = ContractLine
        fields = "__all__"


class ContractAmendmentSerializer(CanonicalSerializer):
    class Meta:
        model = ContractAmendment
        fields = "__all__"


class ProjectSerializer(CanonicalSerializer):
    class Meta:
        model = Project
        fields = "__all__"


class TaskSerializer(CanonicalSerializer):
    class Meta:
        model = Task
        fields = "__all__"


class MilestoneSerializer(CanonicalSerializer):
    class Meta:
        model = Milestone
        fields = "__all__"


class TimeEntrySerializer(CanonicalSerializer):
    class Meta:
        model = TimeEntry
        fields = "__all__"


class ExpenseSerializer(CanonicalSerializer):
    class Meta:
        model = Expense
        fields = "__all__"


class BillingScheduleSerializer(CanonicalSerializer):
    class Meta:
        model = BillingSchedule
        fields = "__all__"


class BillingEventSerializer(CanonicalSerializer):
    class Meta:
        model = BillingEvent
        fields = "__all__"


class InvoiceSerializer(CanonicalSerializer):
    class Meta:
        model = Invoice
        fields = "__all__"


class InvoiceLineSerializer(CanonicalSerializer):
    class Meta:
        model = InvoiceLine
        fields = "__all__"


class PaymentSerializer(CanonicalSerializer):
    class Meta:
        model = Payment
        fields = "__all__"


class ExchangeRateSerializer(CanonicalSerializer):
    class Meta:
        model = ExchangeRate
        fields = "__all__"


class RevenueScheduleSerializer(CanonicalSerializer):
    class Meta:
        model = RevenueSchedule
        fields = "__all__"


class RevenueScheduleLineSerializer(CanonicalSerializer):
    class Meta:
        model = RevenueScheduleLine
        fields = "__all__"


# --- rate cards: the steward's tables, read-write ---------------------------------------------


class RateCardSerializer(TrackedModelSerializer):
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = RateCard
        fields = "__all__"


class RateCardLineSerializer(TrackedModelSerializer):
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = RateCardLine
        fields = "__all__"


class VersionLineSerializer(MaskedModelSerializer):
    """A line inside a version: read with the version, or sent with a new version (currency defaults to the card's)."""

    class Meta:
        model = RateCardLine
        fields = ["id", "role", "bill_rate", "cost_rate", "currency", "unit"]
        read_only_fields = ["unit"]
        extra_kwargs = {"currency": {"required": False}}


class RateCardVersionSerializer(TrackedModelSerializer):
    """A version with its lines. New versions are numbered and created as drafts; approve with POST …/approve/."""

    lines = VersionLineSerializer(many=True, required=False)
    display = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = RateCardVersion
        fields = "__all__"
        read_only_fields = ["version", "status", "approved_at"]
        validators = []  # the service numbers versions, so (rate_card, version) cannot clash

    def validate(self, attrs):
        if self.instance is not None:
            if "lines" in attrs:
                raise serializers.ValidationError(
                    {"lines": "Change the rates of an existing version through /api/v1/rate-card-lines/."}
                )
            if "rate_card" in attrs and attrs["rate_card"] != self.instance.rate_card:
                raise serializers.ValidationError(
                    {"rate_card": "A version cannot move to another rate card; create a version on that card."}
                )
        return attrs

    def create(self, validated_data):
        request = self.context["request"]
        return rate_card_version_create(
            rate_card=validated_data["rate_card"],
            effective_from=validated_data["effective_from"],
            effective_to=validated_data.get("effective_to"),
            lines=[dict(line) for line in validated_data.get("lines", [])],
            notes=validated_data.get("notes", ""),
            actor=request.user,
            reason=change_reason(request),
        )
