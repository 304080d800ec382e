"""Filter classes the apps' FilterSets share."""

import django_filters

from .approvals import registered_kinds
from .models import ChangeRequest


class ListedCharFilter(django_filters.CharFilter):
    """Free text for the API; `choices` (a list of pairs, or a callable returning one) is what a list offers."""

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = choices


class ChangeRequestFilter(django_filters.FilterSet):
    """Four-eyes change requests by status and kind."""

    kind = ListedCharFilter(choices=lambda: [(kind, action.label) for kind, action in registered_kinds().items()])

    class Meta:
        model = ChangeRequest
        fields = ["status", "kind"]
