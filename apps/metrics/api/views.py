"""Figures with definitions and their CSV export; alert rules; the alert and notification logs."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import renderers
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import ReadOnlyViewSet, TrackedModelViewSet
from apps.core.errors import BusinessError

from .. import selectors
from ..definitions import DEFINITIONS
from ..export import export_filename, metric_csv
from ..filters import AlertFilter, AlertNotificationFilter, AlertRuleFilter, MetricValueFilter
from ..periods import Period
from .serializers import (
    AlertNotificationSerializer,
    AlertRuleSerializer,
    AlertSerializer,
    MetricDefinitionSerializer,
    MetricValueSerializer,
)


class CSVRenderer(renderers.BaseRenderer):
    """text/csv for the export; an error body (a dict) is written as JSON text."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str | bytes):
            return data
        return renderers.JSONRenderer().render(data)


class MetricValueViewSet(ReadOnlyViewSet):
    """Business metrics: the current figure per metric, legal entity, period and currency, with its definition.

    `?snapshots=all` adds every earlier computation (the history of each figure).
    """

    queryset = selectors.metric_value_list(current_only=False).select_related("snapshot")
    serializer_class = MetricValueSerializer
    filterset_class = MetricValueFilter
    ordering_fields = ["period", "metric", "value", "computed_at"]
    ordering = ["-period", "metric", "legal_entity__code", "currency", "-computed_at"]

    @extend_schema(responses=MetricDefinitionSerializer(many=True), filters=False)
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def definitions(self, request):
        """What each metric measures and in which unit."""
        return Response(MetricDefinitionSerializer(DEFINITIONS.values(), many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("metric", str, required=True, enum=sorted(DEFINITIONS)),
            OpenApiParameter("period", str, required=True, description="YYYY-MM"),
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR},
        filters=False,
    )
    @action(
        detail=False,
        methods=["get"],
        renderer_classes=[CSVRenderer, renderers.JSONRenderer],
        filterset_class=None,
        pagination_class=None,
    )
    def export(self, request):
        """The current figures of one metric for one period as CSV (columns documented in docs/metrics.md)."""
        metric, period_text = request.query_params.get("metric"), request.query_params.get("period")
        if not metric or not period_text:
            raise BusinessError(
                "The export is one metric for one period.",
                fix="Give both, e.g. ?metric=wip&period=2026-11.",
                technical=f"metric={metric!r} period={period_text!r}",
            )
        period = Period.parse(period_text)
        response = HttpResponse(metric_csv(metric, period), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{export_filename(metric, period)}"'
        return response


class AlertRuleViewSet(TrackedModelViewSet):
    """Thresholds per metric and per discrepancy value, and the role each notifies."""

    queryset = selectors.alert_rule_list()
    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "metric", "owner_role", "updated_at"]


class AlertViewSet(ReadOnlyViewSet):
    """Every breach a rule found: when it was first seen, notified, worsened and cleared."""

    queryset = selectors.alert_list()
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    search_fields = ["subject", "subject_key"]
    ordering_fields = ["first_breached_at", "notified_at", "current_value", "status"]


class AlertNotificationViewSet(ReadOnlyViewSet):
    """Every email sent (breach, worsening, digest), with its recipients: the proof of who was told once."""

    queryset = selectors.alert_notification_list()
    serializer_class = AlertNotificationSerializer
    filterset_class = AlertNotificationFilter
    search_fields = ["subject"]
    ordering_fields = ["sent_at", "kind", "role"]
