"""FilterSets for figures, alert rules, alerts and notifications (used by the API)."""

import django_filters

from apps.core.filters import FilterSet

from .definitions import Metric
from .models import Alert, AlertNotification, AlertRule, MetricValue
from .periods import Period
from .selectors import latest_snapshots


class PeriodFilter(django_filters.CharFilter):
    """A month given as 2026-11; anything else is answered with a readable 422 (BusinessError)."""

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__{self.lookup_expr}": Period.parse(value).start})


class MetricValueFilter(FilterSet):
    metric = django_filters.MultipleChoiceFilter(choices=Metric.choices)
    entity = django_filters.CharFilter(field_name="legal_entity__code", label="Legal entity (code)")
    firm_wide = django_filters.BooleanFilter(
        field_name="legal_entity", lookup_expr="isnull", label="Only firm-wide figures (no legal entity)"
    )
    period = PeriodFilter(field_name="period", lookup_expr="exact", label="Period (YYYY-MM)")
    period_from = PeriodFilter(field_name="period", lookup_expr="gte", label="From period (YYYY-MM)")
    period_to = PeriodFilter(field_name="period", lookup_expr="lte", label="To period (YYYY-MM)")
    snapshots = django_filters.ChoiceFilter(
        choices=[("current", "Current figures only"), ("all", "Every snapshot (history)")],
        method="filter_snapshots",
        label="Which snapshots (default: current)",
    )

    class Meta:
        model = MetricValue
        fields = {"currency": ["exact"], "computed_at": ["gte", "lte"]}

    def filter_snapshots(self, queryset, name, value):
        return queryset  # applied in filter_queryset, so that "current" is also the default

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.form.cleaned_data.get("snapshots") != "all":
            queryset = queryset.filter(snapshot__in=latest_snapshots())
        return queryset


class AlertRuleFilter(FilterSet):
    metric = django_filters.MultipleChoiceFilter(choices=Metric.choices)
    entity = django_filters.CharFilter(field_name="legal_entity__code", label="Legal entity (code)")

    class Meta:
        model = AlertRule
        fields = {"kind": ["exact"], "owner_role": ["exact"], "active": ["exact"]}


class AlertFilter(FilterSet):
    rule = django_filters.CharFilter(field_name="rule__name", label="Rule (name)")
    metric = django_filters.MultipleChoiceFilter(field_name="rule__metric", choices=Metric.choices)
    entity = django_filters.CharFilter(field_name="legal_entity__code", label="Legal entity (code)")
    period = PeriodFilter(field_name="period", lookup_expr="exact", label="Period (YYYY-MM)")
    owner_role = django_filters.CharFilter(field_name="rule__owner_role")

    class Meta:
        model = Alert
        fields = {"status": ["exact"], "first_breached_at": ["gte", "lte"]}


class AlertNotificationFilter(FilterSet):
    class Meta:
        model = AlertNotification
        fields = {"kind": ["exact"], "role": ["exact"], "alert": ["exact"], "sent_at": ["gte", "lte"]}
