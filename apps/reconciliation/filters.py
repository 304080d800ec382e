"""One FilterSet per model, used by the API lists (and reusable by console pages)."""

import django_filters

from apps.core.filters import FilterSet, IsoDateTimeFilter

from .models import Check, Discrepancy, PeriodSignOff, ReconciliationRun

SEARCH_FIELDS = ["business_key", "description"]


class ReconciliationRunFilter(FilterSet):
    period = django_filters.CharFilter(help_text="Accounting month, YYYY-MM.")
    legal_entity = django_filters.CharFilter(field_name="legal_entity__code", help_text="Legal entity code.")
    status = django_filters.MultipleChoiceFilter(choices=ReconciliationRun.Status.choices)
    trigger = django_filters.MultipleChoiceFilter(choices=ReconciliationRun.Trigger.choices)

    class Meta:
        model = ReconciliationRun
        fields = ["period", "legal_entity", "status", "trigger"]


class DiscrepancyFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Discrepancy.Status.choices)
    check_type = django_filters.MultipleChoiceFilter(choices=Check.choices)
    period = django_filters.CharFilter(help_text="Accounting month, YYYY-MM.")
    legal_entity = django_filters.CharFilter(field_name="legal_entity__code", help_text="Legal entity code.")
    currency = django_filters.CharFilter()
    business_key = django_filters.CharFilter(lookup_expr="icontains")
    min_value_at_risk = django_filters.NumberFilter(field_name="value_at_risk", lookup_expr="gte")
    seen_in_run = django_filters.NumberFilter(field_name="last_seen_run", help_text="Last seen in this run (id).")
    closed_by_run = django_filters.NumberFilter(field_name="closed_by_run")
    first_seen_after = IsoDateTimeFilter(field_name="first_seen_at", lookup_expr="gte")

    class Meta:
        model = Discrepancy
        fields = ["status", "check_type", "period", "legal_entity", "currency"]


class PeriodSignOffFilter(FilterSet):
    period = django_filters.CharFilter()
    legal_entity = django_filters.CharFilter(field_name="legal_entity__code")
    status = django_filters.MultipleChoiceFilter(choices=PeriodSignOff.Status.choices)

    class Meta:
        model = PeriodSignOff
        fields = ["period", "legal_entity", "status"]
