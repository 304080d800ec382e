"""Filter classes the apps' FilterSets share."""

import django_filters


class ListedCharFilter(django_filters.CharFilter):
    """Free text for the API; `choices` (a list of pairs, or a callable returning one) is what a list offers."""

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = choices
