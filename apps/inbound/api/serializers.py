"""Read-only serializers of the inbound log: deliveries (headers redacted, raw body by link) and their events."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api import MaskedModelSerializer
from apps.core.masking import visible_body
from apps.sync.selectors import transactions_of_events as ledger_transactions

from ..models import Delivery, InboundEvent

BODY_INLINE_BYTES = 64 * 1024


class LedgerTransactionSerializer(serializers.Serializer):
    """A ledger transaction as the inbound log names it."""

    id = serializers.IntegerField()
    correlation_id = serializers.CharField()
    workflow = serializers.CharField()
    status = serializers.CharField()
    subject = serializers.CharField()


class DeliverySerializer(MaskedModelSerializer):
    """One delivery as received: who sent it, how it was verified, what it carried. The raw body is at `body_url`."""

    system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    body_kept = serializers.SerializerMethodField(
        help_text="False when the body was not stored (a delivery that failed verification)."
    )
    body_url = serializers.SerializerMethodField(help_text="The raw bytes exactly as received.")
    events_url = serializers.SerializerMethodField(help_text="The events this delivery carried.")

    class Meta:
        model = Delivery
        exclude = ["body"]

    def get_body_kept(self, delivery) -> bool:
        return bool(delivery.body_sha256)

    def get_body_url(self, delivery) -> str:
        return reverse("inbound-delivery-body", args=[delivery.pk])

    def get_events_url(self, delivery) -> str:
        return f"{reverse('inbound-event-list')}?delivery={delivery.pk}"


class DeliveryDetailSerializer(DeliverySerializer):
    """A delivery with its body as text when it is UTF-8 and small enough to show inline."""

    body_text = serializers.SerializerMethodField(
        help_text=f"The body as text, when it is UTF-8 and at most {BODY_INLINE_BYTES} bytes; else null."
    )

    def get_body_text(self, delivery) -> str | None:
        if not delivery.body_sha256 or delivery.body_size > BODY_INLINE_BYTES:
            return None
        request = self.context.get("request")
        body = visible_body(bytes(delivery.body), getattr(request, "user", None))  # rates masked by role
        try:
            return body.decode("utf-8") if body is not None else None
        except UnicodeDecodeError:
            return None


class InboundEventSerializer(MaskedModelSerializer):
    """One event of a delivery: its payload as sent, the profile that read it, the commands and any error."""

    system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    received_at = serializers.DateTimeField(read_only=True, help_text="When its delivery was received.")
    profile_name = serializers.CharField(source="profile.name", read_only=True, allow_null=True, default=None)
    profile_version = serializers.IntegerField(source="profile.version", read_only=True, allow_null=True, default=None)
    transactions = serializers.SerializerMethodField(help_text="The ledger transactions that carry this event.")

    class Meta:
        model = InboundEvent
        fields = "__all__"

    @extend_schema_field(LedgerTransactionSerializer(many=True))
    def get_transactions(self, event):
        ledger = self.context.get("ledger")
        transactions = ledger.get(event.pk, []) if ledger is not None else ledger_transactions([event])[event.pk]
        return LedgerTransactionSerializer(transactions, many=True).data
