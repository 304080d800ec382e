"""FilterSets for cross-references, value maps, their entries and source profiles (used by the API and lists)."""

import fnmatch

import django_filters

from apps.core.filters import FilterSet
from apps.core.objects import BusinessObject

from .models import CrossReference, ReferenceValue, SourceProfile, ValueMap, ValueMapEntry


class CrossReferenceFilter(FilterSet):
    system = django_filters.CharFilter(field_name="system__slug", label="System (slug)")
    object_type = django_filters.MultipleChoiceFilter(choices=BusinessObject.choices, distinct=False)

    class Meta:
        model = CrossReference
        fields = {
            "object_id": ["exact"],
            "external_id": ["exact"],
            "origin": ["exact"],
            "last_synced_at": ["gte", "lte", "isnull"],
        }


class ValueMapFilter(FilterSet):
    source_system = django_filters.CharFilter(field_name="source_system__slug", label="Source system (slug)")
    target_system = django_filters.CharFilter(field_name="target_system__slug", label="Target system (slug)")

    class Meta:
        model = ValueMap
        fields = {"name": ["exact", "icontains"], "case_sensitive": ["exact"]}


class ValueMapEntryFilter(FilterSet):
    value_map_name = django_filters.CharFilter(field_name="value_map__name", label="Value map name")
    in_force_on = django_filters.DateFilter(method="filter_in_force_on", label="In force on (date)")

    class Meta:
        model = ValueMapEntry
        fields = {
            "value_map": ["exact"],
            "source_value": ["exact", "iexact"],
            "target_value": ["exact", "iexact"],
            "effective_from": ["exact", "gte", "lte"],
            "effective_to": ["isnull"],
        }

    def filter_in_force_on(self, queryset, name, value):
        return queryset.in_force(value)


class ReferenceValueFilter(FilterSet):
    system = django_filters.CharFilter(field_name="system__slug", label="System (slug)")

    class Meta:
        model = ReferenceValue
        fields = {"kind": ["exact"], "code": ["exact", "iexact"], "external_id": ["exact"], "active": ["exact"]}


class SourceProfileFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=SourceProfile.Status.choices)
    vendor = django_filters.CharFilter(field_name="vendor", lookup_expr="iexact")
    event_type = django_filters.CharFilter(method="filter_event_type", label="Reads this event type")

    class Meta:
        model = SourceProfile
        fields = {"name": ["exact", "icontains"], "version": ["exact"], "builtin": ["exact"]}

    def filter_event_type(self, queryset, name, value):
        # event_types is a short JSON list of glob patterns; match them in Python (the same on every database).
        wanted = [
            pk
            for pk, patterns in queryset.values_list("pk", "event_types")
            if any(fnmatch.fnmatchcase(value, str(pattern)) for pattern in patterns or [])
        ]
        return queryset.filter(pk__in=wanted)
