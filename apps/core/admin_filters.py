"""Admin lists filtered by the model's FilterSet: the filters, parameter names and choices the API uses.

An admin with `filterset_class` (FilterSetAdminMixin; every HistoryAdmin has it) names, in `list_filter`, the
FilterSet filters its sidebar offers
(`"status"`, or `("queue", "status")` with a title). Every other filter of the FilterSet still applies when its
parameter is in the address (`?created_after=…` works on the list as on the API) and is shown, with a link to
drop it, under "more filters". Choices come from what the FilterSet declares (choices, yes/no, the rows of a
related table, a `ListedCharFilter`'s list), never from a DISTINCT over the listed table.
"""

import django_filters
from django.contrib.admin.filters import FacetsMixin, ListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, ForeignKey, Q
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from django_filters.utils import get_model_field, label_for_filter

from .filters import ListedCharFilter

BOOLEAN_CHOICES = [("true", _("Yes")), ("false", _("No"))]


def filter_title(filterset_class, name: str) -> str:
    """A sidebar title from the filter's label ('Legal entity' → 'legal entity')."""
    filter_ = filterset_class.base_filters[name]
    label = filter_.label or label_for_filter(filterset_class._meta.model, filter_.field_name, filter_.lookup_expr)
    label = str(label)
    return label[:1].lower() + label[1:]


def choice_source(filterset_class, name: str):
    """What the sidebar offers for one filter, from the FilterSet's declaration: a callable read on each request.

    Raises ImproperlyConfigured (when the admin is built) for a filter that declares no choices.
    """
    filter_ = filterset_class.base_filters[name]
    if isinstance(filter_, ListedCharFilter):
        choices = filter_.choices
    elif isinstance(filter_, django_filters.BooleanFilter):
        choices = BOOLEAN_CHOICES
    elif isinstance(filter_, django_filters.ModelChoiceFilter | django_filters.ModelMultipleChoiceFilter):
        queryset = filter_.extra.get("queryset")
        return lambda: [(str(obj.pk), str(obj)) for obj in (queryset(None) if callable(queryset) else queryset.all())]
    elif "choices" in filter_.extra:
        choices = filter_.extra["choices"]
    else:
        return _related_choices(filterset_class._meta.model, filter_.field_name)
    return lambda: [
        (str(value), str(label)) for value, label in (choices() if callable(choices) else choices) if value != ""
    ]


def _related_choices(model, field_name: str):
    """`system__slug`: the slugs of the connected systems (the related table, not the listed one), by name."""
    path, _sep, attribute = field_name.rpartition("__")
    field = get_model_field(model, path) if path else None
    target = get_model_field(field.related_model, attribute) if isinstance(field, ForeignKey) else None
    if target is None or not target.unique:
        raise ImproperlyConfigured(
            f"{model.__name__}: the filter on '{field_name}' declares no choices, so a list cannot offer it; "
            "use a ChoiceFilter or a ListedCharFilter, or leave it out of list_filter (the parameter still works)."
        )
    related = field.related_model
    return lambda: [(str(getattr(obj, attribute)), str(obj)) for obj in related._default_manager.order_by(attribute)]


def _apply(filterset_class, request, queryset, values: dict[str, list[str]]):
    data = QueryDict(mutable=True)
    for name, value in values.items():
        data.setlist(name, value)
    filterset = filterset_class(data=data, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise IncorrectLookupParameters(filterset.errors)
    return filterset.qs


class FilterSetListFilter(FacetsMixin, ListFilter):
    """One FilterSet filter in the sidebar; `default` applies when the address names none (the queue's 'problems')."""

    filterset_class = None
    name = ""
    default = None
    choice_source = None

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        if self.name in params:
            self.used_parameters[self.name] = [value for value in params.pop(self.name) if value != ""]
        self.lookup_choices = self.choice_source()

    def values(self) -> list[str]:
        given = self.used_parameters.get(self.name)
        if given:
            return given
        return [str(self.default)] if self.default is not None else []

    def has_output(self):
        return True

    def expected_parameters(self):
        return [self.name]

    def queryset(self, request, queryset):
        values = self.values()
        return _apply(self.filterset_class, request, queryset, {self.name: values}) if values else queryset

    def get_facet_counts(self, pk_attname, filtered_qs):
        return {
            f"{index}__c": Count(
                pk_attname,
                filter=Q(pk__in=_apply(self.filterset_class, self.request, filtered_qs, {self.name: [value]})),
            )
            for index, (value, _label) in enumerate(self.lookup_choices)
        }

    def choices(self, changelist):
        current = self.values()
        counts = self.get_facet_queryset(changelist) if changelist.add_facets else None
        if self.default is None:
            yield {
                "selected": not current,
                "query_string": changelist.get_query_string(remove=[self.name]),
                "display": _("All"),
            }
        for index, (value, label) in enumerate(self.lookup_choices):
            if counts is not None:
                label = f"{label} ({counts.get(f'{index}__c', '-')})"
            yield {
                "selected": value in current,
                "query_string": changelist.get_query_string({self.name: value}),
                "display": label,
            }


class MoreFiltersListFilter(ListFilter):
    """The FilterSet's other filters: applied when named in the address, listed (each with a remove link) if so."""

    title = _("more filters")
    template = "admin/core/more_filters.html"
    filterset_class = None
    names: tuple[str, ...] = ()

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.names:
            if name in params:
                values = [value for value in params.pop(name) if value != ""]
                if values:
                    self.used_parameters[name] = values

    def has_output(self):
        return bool(self.used_parameters)  # nothing to apply or show otherwise

    def expected_parameters(self):
        return list(self.names)

    def queryset(self, request, queryset):
        return (
            _apply(self.filterset_class, request, queryset, self.used_parameters) if self.used_parameters else queryset
        )

    def choices(self, changelist):
        for name, values in self.used_parameters.items():
            yield {
                "selected": True,
                "query_string": changelist.get_query_string(remove=[name]),
                "display": f"{filter_title(self.filterset_class, name)}: {', '.join(values)}",
            }


def filterset_list_filters(filterset_class, entries, *, defaults=None) -> list:
    """`list_filter` for an admin: the named FilterSet filters, then one for all the others."""
    defaults = defaults or {}
    known = filterset_class.base_filters
    shown, result = [], []
    for entry in entries:
        if isinstance(entry, type) and issubclass(entry, ListFilter):
            result.append(entry)
            continue
        name, title = entry if isinstance(entry, tuple | list) else (entry, None)
        if name not in known:
            raise ImproperlyConfigured(
                f"list_filter names '{name}', which {filterset_class.__name__} does not define; "
                f"the list offers the FilterSet's filters only ({', '.join(sorted(known))})."
            )
        shown.append(name)
        attrs = {
            "filterset_class": filterset_class,
            "name": name,
            "title": title or filter_title(filterset_class, name),
            "default": defaults.get(name),
            "choice_source": staticmethod(choice_source(filterset_class, name)),
        }
        result.append(type(f"{filterset_class.__name__}_{name}", (FilterSetListFilter,), attrs))
    others = tuple(name for name in known if name not in shown)
    if others:
        attrs = {"filterset_class": filterset_class, "names": others}
        result.append(type(f"{filterset_class.__name__}_more", (MoreFiltersListFilter,), attrs))
    return result


class FilterSetAdminMixin:
    """A ModelAdmin whose list is filtered by `filterset_class`; `list_filter` names the filters the sidebar offers."""

    filterset_class = None
    filterset_defaults: dict = {}  # applied when the address names no value, e.g. {"queue": "problems"}

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        if self.filterset_class is not None:
            self.list_filter = filterset_list_filters(
                self.filterset_class, self.list_filter, defaults=self.filterset_defaults
            )
