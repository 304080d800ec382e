"""The steward's mapping tables over HTTP: cross-references and value maps (read-write), reference values (read)."""

from apps.core.api import ReadOnlyViewSet, TrackedModelViewSet

from .. import selectors
from ..filters import CrossReferenceFilter, ReferenceValueFilter, ValueMapEntryFilter, ValueMapFilter
from .serializers import (
    CrossReferenceSerializer,
    ReferenceValueSerializer,
    ValueMapEntrySerializer,
    ValueMapSerializer,
)


class CrossReferenceViewSet(TrackedModelViewSet):
    queryset = selectors.cross_reference_list()
    serializer_class = CrossReferenceSerializer
    filterset_class = CrossReferenceFilter
    search_fields = ["external_id", "system__slug"]
    ordering_fields = ["object_type", "object_id", "external_id", "last_synced_at", "updated_at"]


class ValueMapViewSet(TrackedModelViewSet):
    queryset = selectors.value_map_list()
    serializer_class = ValueMapSerializer
    filterset_class = ValueMapFilter
    search_fields = ["name", "source_label", "target_label", "description"]
    ordering_fields = ["name", "updated_at"]


class ValueMapEntryViewSet(TrackedModelViewSet):
    queryset = selectors.value_map_entry_list()
    serializer_class = ValueMapEntrySerializer
    filterset_class = ValueMapEntryFilter
    search_fields = ["source_value", "target_value", "note", "value_map__name"]
    ordering_fields = ["source_value", "target_value", "effective_from", "updated_at"]


class ReferenceValueViewSet(ReadOnlyViewSet):
    """Code lists pulled from connected systems; the reference data batch writes them, people read them."""

    queryset = selectors.reference_value_list()
    serializer_class = ReferenceValueSerializer
    filterset_class = ReferenceValueFilter
    search_fields = ["code", "name", "external_id"]
    ordering_fields = ["kind", "code", "name", "updated_at"]
