"""Shared reads of cross-references and value maps, with their systems and entries loaded."""

from django.db.models import Prefetch, QuerySet

from .models import CrossReference, ReferenceValue, ValueMap, ValueMapEntry


def cross_reference_list() -> QuerySet[CrossReference]:
    """Cross-references with their system."""
    return CrossReference.objects.select_related("system")


def value_map_list() -> QuerySet[ValueMap]:
    """Value maps with their systems and entries."""
    return ValueMap.objects.select_related("source_system", "target_system").prefetch_related(
        Prefetch("entries", queryset=ValueMapEntry.objects.order_by("source_value", "effective_from"))
    )


def value_map_entry_list() -> QuerySet[ValueMapEntry]:
    """Value map entries with their map."""
    return ValueMapEntry.objects.select_related("value_map")


def reference_value_list() -> QuerySet[ReferenceValue]:
    """Reference values (code lists pulled from systems) with their system."""
    return ReferenceValue.objects.select_related("system")
