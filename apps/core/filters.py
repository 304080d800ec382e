"""Filter classes the apps' FilterSets share."""

import datetime

import django_filters
from django import forms
from django.db import models
from django_filters.fields import IsoDateTimeField
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS

from .approvals import registered_kinds
from .models import ChangeRequest


class ListedCharFilter(django_filters.CharFilter):
    """Free text for the API; `choices` (a list of pairs, or a callable returning one) is what a list offers."""

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = choices


class _InUtc:
    """A date-time form field whose value is given to the database in UTC.

    An ISO 8601 offset may be up to ±23:59 in Python, but PostgreSQL refuses more than ±15:59 (a 500,
    found by schemathesis); the same instant in UTC is always accepted, and out-of-range dates are a 400.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None or value.tzinfo is None:
            return value
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("This date and time is out of range.", code="invalid") from None


class UtcDateTimeField(_InUtc, forms.DateTimeField):
    pass


class UtcIsoDateTimeField(_InUtc, IsoDateTimeField):
    pass


class DateTimeFilter(django_filters.DateTimeFilter):
    """django-filter's DateTimeFilter, safe for any offset on every database."""

    field_class = UtcDateTimeField


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """django-filter's IsoDateTimeFilter, safe for any offset on every database."""

    field_class = UtcIsoDateTimeField


class FilterSet(django_filters.FilterSet):
    """The apps' FilterSet base: date-time filters generated from `Meta.fields` compare in UTC too."""

    FILTER_DEFAULTS = {**FILTER_FOR_DBFIELD_DEFAULTS, models.DateTimeField: {"filter_class": DateTimeFilter}}


class ChangeRequestFilter(FilterSet):
    """Four-eyes change requests by status and kind."""

    kind = ListedCharFilter(choices=lambda: [(kind, action.label) for kind, action in registered_kinds().items()])

    class Meta:
        model = ChangeRequest
        fields = ["status", "kind"]
