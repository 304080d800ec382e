"""Admin for cross-references, effective-dated value maps and reference values, filtered by mapping's FilterSets."""

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from apps.core.admin import HistoryAdmin, HistoryInline
from apps.core.objects import BusinessObject, model_for

from ..filters import CrossReferenceFilter, ReferenceValueFilter, ValueMapEntryFilter, ValueMapFilter
from ..models import CrossReference, ReferenceValue, ValueMap, ValueMapEntry
from ..services import cross_reference_record

TIMESTAMPS = ("created_at", "updated_at")


def canonical_admin_url(object_type: str, object_id: int) -> str | None:
    """The admin change page of a canonical record, or None when its model has no admin page."""
    opts = model_for(object_type)._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
    except NoReverseMatch:
        return None


@admin.register(CrossReference)
class CrossReferenceAdmin(HistoryAdmin):
    list_display = ["system", "object_type", "external_id", "canonical_link", "origin", "last_synced_at"]
    filterset_class = CrossReferenceFilter
    # The (system, object type, external id) unique index gives this order without a sort; the model's ordering
    # by the system's slug needs a join and a sort of every row.
    ordering = ["system_id", "object_type", "external_id"]
    list_filter = ["system", "object_type", "origin"]
    list_select_related = ["system"]
    search_fields = ["external_id", "=object_id", "system__slug"]
    autocomplete_fields = ["system"]
    date_hierarchy = "created_at"
    readonly_fields = ["canonical_record", "last_synced_at", *TIMESTAMPS]
    fields = ["system", "object_type", "object_id", "canonical_record", "external_id", "origin", "last_synced_at"]

    def get_changeform_initial_data(self, request):
        return {"origin": CrossReference.Origin.MANUAL, **super().get_changeform_initial_data(request)}

    @admin.display(description="Canonical record", ordering="object_id")
    def canonical_link(self, obj):
        # The list shows type and id only, so it costs no query per row; the change page names the record.
        label = f"{BusinessObject(obj.object_type).label} #{obj.object_id}"
        url = canonical_admin_url(obj.object_type, obj.object_id)
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description="Canonical record")
    def canonical_record(self, obj):
        if not obj.pk:
            return "Shown once saved."
        record = obj.canonical_object
        if record is None:
            return f"Missing: there is no {BusinessObject(obj.object_type).label.lower()} #{obj.object_id} any more."
        url = canonical_admin_url(obj.object_type, obj.object_id)
        return format_html('<a href="{}">{}</a>', url, record) if url else str(record)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # New links go through the service, which refuses conflicts and answers a repeat with the first link.
        saved = cross_reference_record(
            system=obj.system,
            obj=obj.canonical_object,
            external_id=obj.external_id,
            origin=obj.origin,
            actor=request.user,
            reason=self._reason(request, form, change),
        )
        obj.pk = saved.pk
        obj.last_synced_at = saved.last_synced_at


class ValueMapEntryFormSet(BaseInlineFormSet):
    """Refuses two rows of one submission that map the same value over overlapping periods."""

    def clean(self):
        super().clean()
        case_sensitive = self.instance.case_sensitive
        seen: list[tuple[str, object, object]] = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("source_value") or not data.get("effective_from"):
                continue
            value = data["source_value"] if case_sensitive else data["source_value"].lower()
            start, end = data["effective_from"], data.get("effective_to")
            for other_value, other_start, other_end in seen:
                overlaps = (end is None or other_start <= end) and (other_end is None or start <= other_end)
                if other_value == value and overlaps:
                    raise ValidationError(
                        f"Two rows map '{data['source_value']}' over overlapping periods. Entries for the same value "
                        "may not overlap: end one the day before the other starts."
                    )
            seen.append((value, start, end))


class ValueMapEntryInline(HistoryInline):
    model = ValueMapEntry
    formset = ValueMapEntryFormSet
    fields = ["source_value", "target_value", "effective_from", "effective_to", "note"]


@admin.register(ValueMap)
class ValueMapAdmin(HistoryAdmin):
    list_display = ["name", "source_label", "target_label", "source_system", "target_system", "entry_count"]
    filterset_class = ValueMapFilter
    list_filter = ["source_system", "target_system", "case_sensitive"]
    list_select_related = ["source_system", "target_system"]
    search_fields = ["name", "source_label", "target_label", "description"]
    autocomplete_fields = ["source_system", "target_system"]
    readonly_fields = list(TIMESTAMPS)
    inlines = [ValueMapEntryInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(entry_total=Count("entries"))

    @admin.display(description="Entries", ordering="entry_total")
    def entry_count(self, obj):
        return obj.entry_total


@admin.register(ValueMapEntry)
class ValueMapEntryAdmin(HistoryAdmin):
    list_display = ["source_value", "target_value", "value_map", "effective_from", "effective_to", "note"]
    filterset_class = ValueMapEntryFilter
    list_filter = ["value_map"]
    list_select_related = ["value_map"]
    search_fields = ["source_value", "target_value", "value_map__name", "note"]
    autocomplete_fields = ["value_map"]
    date_hierarchy = "effective_from"
    readonly_fields = list(TIMESTAMPS)


@admin.register(ReferenceValue)
class ReferenceValueAdmin(HistoryAdmin):
    list_display = ["system", "kind", "code", "name", "external_id", "active", "updated_at"]
    filterset_class = ReferenceValueFilter
    list_filter = ["system", "active"]  # kind is free text: ?kind=…
    list_select_related = ["system"]
    search_fields = ["code", "name", "external_id"]
    autocomplete_fields = ["system"]
    readonly_fields = list(TIMESTAMPS)
