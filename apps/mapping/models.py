"""How each system names a canonical record (cross-references) and how values translate (value maps)."""

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.history import history
from apps.core.models import EffectiveDated, EffectiveQuerySet, Timestamped
from apps.core.objects import BusinessObject, model_for
from apps.systems.models import ConnectedSystem

from .profiles.validation import validate_spec


class CrossReference(Timestamped):
    """Canonical record ↔ its ID in one system. One external ID per system and object type, and vice versa."""

    class Origin(models.TextChoices):
        WORKFLOW = "workflow", "Recorded by a workflow"
        INBOUND = "inbound", "Learned from an inbound event"
        MANUAL = "manual", "Entered by a steward"
        IMPORT = "import", "Imported"

    system = models.ForeignKey(ConnectedSystem, on_delete=models.PROTECT, related_name="cross_references")
    object_type = models.CharField(max_length=32, choices=BusinessObject.choices)
    object_id = models.PositiveBigIntegerField(help_text="Primary key of the canonical record.")
    external_id = models.CharField(max_length=255)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.WORKFLOW)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["system__slug", "object_type", "external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "object_type", "external_id"],
                name="unique_xref_external_id",
                violation_error_message="This system already uses that external ID for another record of this type.",
            ),
            models.UniqueConstraint(
                fields=["system", "object_type", "object_id"],
                name="unique_xref_canonical_record",
                violation_error_message="This record already has an external ID in this system.",
            ),
        ]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["created_at"], name="mapping_xref_created"),  # the admin's date drill-down
            models.Index(fields=["external_id"], name="mapping_xref_external_id"),  # the timeline's search by any id
        ]

    def __str__(self) -> str:
        return f"{self.object_type} #{self.object_id} = {self.system.slug}:{self.external_id}"

    @property
    def canonical_object(self):
        return model_for(self.object_type).objects.filter(pk=self.object_id).first()

    def clean(self):
        if (
            self.object_type
            and self.object_id
            and not model_for(self.object_type).objects.filter(pk=self.object_id).exists()
        ):
            raise ValidationError(
                {"object_id": f"There is no {BusinessObject(self.object_type).label.lower()} with id {self.object_id}."}
            )


class ValueMap(Timestamped):
    """A named translation table, e.g. CRM region → ERP subsidiary, service item → ERP item, tax codes."""

    name = models.SlugField(max_length=80, unique=True, help_text="Stable key, e.g. 'region-subsidiary'.")
    source_label = models.CharField(max_length=80, help_text="What the source values are, e.g. 'region'.")
    target_label = models.CharField(max_length=80, help_text="What the target values are, e.g. 'subsidiary'.")
    description = models.TextField(blank=True)
    source_system = models.ForeignKey(
        ConnectedSystem, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target_system = models.ForeignKey(
        ConnectedSystem, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    case_sensitive = models.BooleanField(default=False, help_text="Off: 'emea' matches an entry for 'EMEA'.")
    default_target = models.CharField(
        max_length=255, blank=True, help_text="Used when no entry matches. Leave empty to make a miss an error."
    )

    history = history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.source_label}→{self.target_label} ({self.name})"

    @property
    def label(self) -> str:
        return f"{self.source_label}→{self.target_label}"


class ValueMapEntry(EffectiveDated, Timestamped):
    """One source value → target value over a period (both ends inclusive)."""

    value_map = models.ForeignKey(ValueMap, on_delete=models.CASCADE, related_name="entries")
    source_value = models.CharField(max_length=255)
    target_value = models.CharField(max_length=255)
    note = models.CharField(max_length=300, blank=True)

    objects = EffectiveQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["value_map", "source_value", "effective_from"]
        verbose_name_plural = "value map entries"
        indexes = [models.Index(fields=["value_map", "source_value"])]

    def __str__(self) -> str:
        return f"{self.source_value} → {self.target_value} ({self.period_label()})"

    def clean(self):
        self.clean_period()
        if not (self.value_map_id and self.effective_from and self.source_value):
            return
        same_value = (
            {"source_value": self.source_value}
            if self.value_map.case_sensitive
            else {"source_value__iexact": self.source_value}
        )
        clash = (
            ValueMapEntry.objects.filter(value_map_id=self.value_map_id, **same_value)
            .overlapping(self.effective_from, self.effective_to)
            .exclude(pk=self.pk)
            .first()
        )
        if clash is not None:
            raise ValidationError(
                f"Value map {self.value_map.label} already maps '{clash.source_value}' to '{clash.target_value}' "
                f"for {clash.period_label()}. Entries for the same value may not overlap: end that entry the day "
                f"before this one starts, or change these dates."
            )


class SourceProfile(Timestamped):
    """A versioned, declarative mapping from one vendor payload shape to canonical commands.

    Stewards edit a draft and publish it; publishing retires the previous active version of the same
    profile, so exactly one version of a profile name is active at a time and old versions stay readable.
    The spec format is documented in docs/source-profiles.md; apps.mapping.profiles validates and applies it.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    name = models.SlugField(max_length=100, help_text="e.g. 'hubspot-deal-closedwon'.")
    version = models.PositiveIntegerField(default=1)
    vendor = models.CharField(max_length=50, help_text="The vendor whose payloads this reads, e.g. 'hubspot'.")
    event_types = models.JSONField(default=list, help_text="Vendor event types it handles, e.g. ['invoice.paid'].")
    schema_version = models.CharField(max_length=40, blank=True, help_text="Empty: any schema version.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    builtin = models.BooleanField(default=False, help_text="Shipped with the product (from vendor documentation).")
    description = models.TextField(blank=True)
    documentation_url = models.URLField(blank=True, max_length=500)
    spec = models.JSONField(help_text="The mapping (see docs/source-profiles.md).")
    sample_payload = models.JSONField(null=True, blank=True, help_text="A payload to preview the mapping on.")

    history = history()

    class Meta:
        ordering = ["vendor", "name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "version"],
                name="unique_source_profile_version",
                violation_error_message="This profile already has a version with that number.",
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(status="active"),
                name="one_active_version_per_source_profile",
                violation_error_message="Another version of this profile is already active.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.get_status_display()})"

    def clean(self):
        problems = validate_spec(self.spec)
        if problems:
            raise ValidationError({"spec": problems})
        if self.spec.get("vendor") and self.vendor and self.spec["vendor"].lower() != self.vendor.lower():
            raise ValidationError({"vendor": f"The spec is for vendor '{self.spec['vendor']}', not '{self.vendor}'."})


class ReferenceValue(Timestamped):
    """A code list entry pulled from a system (subsidiary, currency, tax code, item, department…)."""

    system = models.ForeignKey(ConnectedSystem, on_delete=models.CASCADE, related_name="reference_values")
    kind = models.CharField(max_length=40, help_text="subsidiary, currency, tax_code, item, department, class")
    external_id = models.CharField(max_length=255)
    code = models.CharField(max_length=120, blank=True)
    name = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    data = models.JSONField(default=dict, blank=True)

    history = history(excluded_fields=["data"])

    class Meta:
        ordering = ["system", "kind", "code"]
        constraints = [models.UniqueConstraint(fields=["system", "kind", "external_id"], name="unique_reference_value")]

    def __str__(self) -> str:
        return f"{self.system.slug} {self.kind} {self.code or self.external_id} {self.name}"
