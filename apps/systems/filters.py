"""FilterSets for connected systems, signing secrets and ownership rules (used by the API and lists)."""

import django_filters

from apps.core.filters import FilterSet
from apps.core.objects import BusinessObject

from .models import ConnectedSystem, OwnershipRule, Route, SigningSecret, SystemKind


class ConnectedSystemFilter(FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=SystemKind.choices)

    class Meta:
        model = ConnectedSystem
        fields = {
            "slug": ["exact"],
            "vendor": ["exact", "iexact"],
            "enabled": ["exact"],
            "inbound_scheme": ["exact"],
            "outbound_auth": ["exact"],
        }


class SigningSecretFilter(FilterSet):
    system = django_filters.CharFilter(field_name="system__slug", label="System (slug)")

    class Meta:
        model = SigningSecret
        fields = {"active": ["exact"], "label": ["exact", "icontains"], "not_after": ["isnull", "lte", "gte"]}


class OwnershipRuleFilter(FilterSet):
    object_type = django_filters.MultipleChoiceFilter(choices=BusinessObject.choices)
    owner = django_filters.CharFilter(field_name="owner__slug", label="Owning system (slug)")
    in_force_on = django_filters.DateFilter(method="filter_in_force_on", label="In force on (date)")

    class Meta:
        model = OwnershipRule
        fields = {"field": ["exact"], "effective_from": ["exact", "gte", "lte"], "effective_to": ["isnull"]}

    def filter_in_force_on(self, queryset, name, value):
        return queryset.in_force(value)


class RouteFilter(FilterSet):
    target_kind = django_filters.MultipleChoiceFilter(choices=SystemKind.choices)
    system = django_filters.CharFilter(field_name="system__slug", label="System (slug)")
    in_force_on = django_filters.DateFilter(method="filter_in_force_on", label="In force on (date)")

    class Meta:
        model = Route
        fields = {"workflow": ["exact"], "legal_entity": ["exact"], "effective_to": ["isnull"]}

    def filter_in_force_on(self, queryset, name, value):
        return queryset.in_force(value)
