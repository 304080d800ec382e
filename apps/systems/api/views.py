"""Read-only API for connected systems and their signing-secret references; read-write ownership rules."""

from rest_framework import status
from rest_framework.response import Response

from apps.core.api import ReadOnlyViewSet, TrackedModelViewSet
from apps.core.api.approvals import pending_response
from apps.core.models import ChangeRequest

from .. import selectors
from ..filters import ConnectedSystemFilter, OwnershipRuleFilter, RouteFilter, SigningSecretFilter
from .serializers import ConnectedSystemSerializer, OwnershipRuleSerializer, RouteSerializer, SigningSecretSerializer


class ConnectedSystemViewSet(ReadOnlyViewSet):
    """Connected systems; credentials and signing secrets appear as references, never values."""

    queryset = selectors.connected_system_list()
    serializer_class = ConnectedSystemSerializer
    filterset_class = ConnectedSystemFilter
    search_fields = ["slug", "name", "vendor"]
    ordering_fields = ["slug", "name", "kind", "vendor", "updated_at"]


class SigningSecretViewSet(ReadOnlyViewSet):
    """The signing secrets of every system, by reference."""

    queryset = selectors.signing_secret_list()
    serializer_class = SigningSecretSerializer
    filterset_class = SigningSecretFilter
    search_fields = ["label", "system__slug"]
    ordering_fields = ["label", "not_after", "updated_at"]


class OwnershipRuleViewSet(TrackedModelViewSet):
    """Which system owns which object (or field) over which period; writes go through ownership_rule_save."""

    queryset = selectors.ownership_rule_list()
    serializer_class = OwnershipRuleSerializer
    filterset_class = OwnershipRuleFilter
    search_fields = ["object_type", "field", "rationale", "owner__slug"]
    ordering_fields = ["object_type", "field", "effective_from", "effective_to", "updated_at"]

    # With four-eyes on for ownership rules, the serializer's save stores a change request instead (202).
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        if isinstance(serializer.instance, ChangeRequest):
            return pending_response(serializer.instance, request)
        return Response(serializer.data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        self.perform_update(serializer)
        if isinstance(serializer.instance, ChangeRequest):
            return pending_response(serializer.instance, request)
        return Response(serializer.data)


class RouteViewSet(TrackedModelViewSet):
    """Which system each workflow writes to per kind (and legal entity) over which period; saved by route_save."""

    queryset = selectors.route_list()
    serializer_class = RouteSerializer
    filterset_class = RouteFilter
    search_fields = ["workflow", "legal_entity", "rationale", "system__slug"]
    ordering_fields = ["target_kind", "workflow", "legal_entity", "effective_from", "effective_to", "updated_at"]
