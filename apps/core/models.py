"""Shared model building blocks: timestamps, effective dating, and the product-wide permissions."""

import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


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
