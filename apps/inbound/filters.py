"""FilterSets for the inbound log (deliveries and their events), shared by the admin and the read API."""

import django_filters

from .models import Delivery, InboundEvent


class DeliveryFilter(django_filters.FilterSet):
    system = django_filters.CharFilter(field_name="system__slug", label="System (slug)")
    status = django_filters.MultipleChoiceFilter(choices=Delivery.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Delivery.Kind.choices)
    received_after = django_filters.DateTimeFilter(
        field_name="received_at", lookup_expr="gte", label="Received at or after (ISO date-time)"
    )
    received_before = django_filters.DateTimeFilter(
        field_name="received_at", lookup_expr="lt", label="Received before (ISO date-time)"
    )

    class Meta:
        model = Delivery
        fields = {"verified": ["exact"], "scheme": ["exact"], "correlation_id": ["exact"]}


class InboundEventFilter(django_filters.FilterSet):
    system = django_filters.CharFilter(field_name="system__slug", label="System (slug)")
    status = django_filters.MultipleChoiceFilter(choices=InboundEvent.Status.choices)
    type = django_filters.CharFilter(field_name="event_type", label="Event type")
    received_after = django_filters.DateTimeFilter(
        field_name="delivery__received_at", lookup_expr="gte", label="Received at or after (ISO date-time)"
    )
    received_before = django_filters.DateTimeFilter(
        field_name="delivery__received_at", lookup_expr="lt", label="Received before (ISO date-time)"
    )
    profile = django_filters.CharFilter(field_name="profile__name", label="Read with profile (name)")

    class Meta:
        model = InboundEvent
        fields = {
            "delivery": ["exact"],
            "vendor_event_id": ["exact"],
            "idempotency_key": ["exact"],
            "correlation_id": ["exact"],
        }
