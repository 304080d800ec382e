"""FilterSets for the inbound log (deliveries and their events), shared by the admin and the read API."""

import django_filters

from apps.core.filters import DateTimeFilter, FilterSet, ListedCharFilter
from apps.mapping.models import SourceProfile
from apps.systems.models import SigningScheme

from .models import Delivery, InboundEvent


def event_type_choices() -> list[tuple[str, str]]:
    """The event types the source profiles read (configuration, a few rows), not a scan of the event log."""
    types = {
        str(pattern)
        for patterns in SourceProfile.objects.values_list("event_types", flat=True)
        for pattern in patterns or []
        if not any(char in str(pattern) for char in "*?[")
    }
    return [(event_type, event_type) for event_type in sorted(types)]


class DeliveryFilter(FilterSet):
    system = django_filters.CharFilter(field_name="system__slug", label="System (slug)")
    status = django_filters.MultipleChoiceFilter(choices=Delivery.Status.choices, distinct=False)
    kind = django_filters.ChoiceFilter(choices=Delivery.Kind.choices)
    scheme = ListedCharFilter(choices=SigningScheme.choices, label="Signing scheme")
    received_after = DateTimeFilter(
        field_name="received_at", lookup_expr="gte", label="Received at or after (ISO date-time)"
    )
    received_before = DateTimeFilter(
        field_name="received_at", lookup_expr="lt", label="Received before (ISO date-time)"
    )

    class Meta:
        model = Delivery
        fields = {"verified": ["exact"], "correlation_id": ["exact"]}


class InboundEventFilter(FilterSet):
    system = django_filters.CharFilter(field_name="system__slug", label="System (slug)")
    status = django_filters.MultipleChoiceFilter(choices=InboundEvent.Status.choices, distinct=False)
    type = ListedCharFilter(field_name="event_type", label="Event type", choices=event_type_choices)
    received_after = DateTimeFilter(
        field_name="delivery__received_at", lookup_expr="gte", label="Received at or after (ISO date-time)"
    )
    received_before = DateTimeFilter(
        field_name="delivery__received_at", lookup_expr="lt", label="Received before (ISO date-time)"
    )
    profile = django_filters.CharFilter(field_name="profile__name", label="Read with profile (name)")
    profile_version = django_filters.ModelChoiceFilter(
        field_name="profile", queryset=SourceProfile.objects.all(), label="Read with profile version (id)"
    )

    class Meta:
        model = InboundEvent
        fields = {
            "delivery": ["exact"],
            "vendor_event_id": ["exact"],
            "idempotency_key": ["exact"],
            "correlation_id": ["exact"],
        }
