"""Shared model building blocks: timestamps, effective dating, and the product-wide permissions."""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .history import history


class Timestamped(models.Model):
    """Created/updated timestamps on a row (history keeps the full story; these make lists sortable)."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class EffectiveQuerySet(models.QuerySet):
    def in_force(self, on: datetime.date):
        """Rows whose effective period contains the date (both ends inclusive, open end = no end)."""
        return self.filter(Q(effective_from__lte=on), Q(effective_to__isnull=True) | Q(effective_to__gte=on))

    def overlapping(self, start: datetime.date, end: datetime.date | None):
        """Rows whose effective period shares at least one day with [start, end]."""
        qs = self.filter(Q(effective_to__isnull=True) | Q(effective_to__gte=start))
        if end is not None:
            qs = qs.filter(effective_from__lte=end)
        return qs


class EffectiveDated(models.Model):
    """A row that applies from one date to another, both inclusive; an empty end means "until further notice"."""

    effective_from = models.DateField(help_text="First day this applies.")
    effective_to = models.DateField(
        null=True, blank=True, help_text="Last day this applies (inclusive). Leave empty for no end date."
    )

    objects = EffectiveQuerySet.as_manager()

    class Meta:
        abstract = True

    def applies_on(self, on: datetime.date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)

    def period_label(self) -> str:
        end = self.effective_to.isoformat() if self.effective_to else "open-ended"
        return f"{self.effective_from.isoformat()} to {end}"

    def clean_period(self):
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValidationError(
                {"effective_to": f"The end date {self.effective_to} is before the start date {self.effective_from}."}
            )


class ProductPermissions(models.Model):
    """Holds product-wide permissions that belong to no single table (no table is created)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_sensitive_amounts", "Can see bill rates, cost rates and other sensitive amounts"),
        ]

    def __str__(self) -> str:
        return "Product permissions"


class ChangeRequest(Timestamped):
    """A change that waits for a second person (four-eyes): who asked, why, what and the diff; who decided and why.

    The change is applied only when a different user with the right permission approves it
    (`apps/core/approvals.py`); a rejected request keeps its reason.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    kind = models.CharField(max_length=64, db_index=True, help_text="The guarded action, e.g. rate_card_version.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    content_type = models.ForeignKey(
        "contenttypes.ContentType", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    object_id = models.CharField(max_length=64, blank=True, help_text="Empty when the change creates a record.")
    summary = models.CharField(max_length=300)
    payload = models.JSONField(default=dict, blank=True, help_text="What to apply on approval.")
    diff = models.JSONField(default=list, blank=True, help_text="[{field, old, new}] as the requester saw it.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    request_reason = models.TextField()
    correlation_id = models.CharField(max_length=64, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "change request (four-eyes)"

    def __str__(self) -> str:
        return f"{self.summary} ({self.get_status_display().lower()})"

    @property
    def target(self):
        if self.content_type_id is None or not self.object_id:
            return None
        return self.content_type.get_object_for_this_type(pk=self.object_id)
