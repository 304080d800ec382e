"""The admin's date drill-down without a DISTINCT over the listed table.

Django's `date_hierarchy` lists the years, months or days that hold rows with `SELECT DISTINCT date_trunc(…)`
over the whole filtered list: seconds over a million rows. `range_date_hierarchy` offers every period between
the first and the last row instead (one MIN/MAX, read from the date's index), with the same links and template.
"""

import calendar
import datetime

from django import template
from django.contrib.admin.utils import get_fields_from_path
from django.db import models
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

register = template.Library()


def _bounds(cl, field_name: str, is_datetime: bool):
    found = cl.queryset.order_by().aggregate(first=models.Min(field_name), last=models.Max(field_name))
    first, last = found["first"], found["last"]
    if first is None or last is None:
        return None, None
    if is_datetime:
        first, last = (timezone.localtime(v) if timezone.is_aware(v) else v for v in (first, last))
    return first, last


@register.inclusion_tag("admin/date_hierarchy.html")
def range_date_hierarchy(cl):
    """The years, months or days between the list's first and last row, each a link that narrows the list."""
    if not cl.date_hierarchy:
        return {"show": False}
    field_name = cl.date_hierarchy
    is_datetime = isinstance(get_fields_from_path(cl.model, field_name)[-1], models.DateTimeField)
    year_field, month_field, day_field = (f"{field_name}__{part}" for part in ("year", "month", "day"))
    year, month, day = (cl.params.get(name) for name in (year_field, month_field, day_field))

    def link(filters):
        return cl.get_query_string(filters, [f"{field_name}__"])

    if year and month and day:
        chosen = datetime.date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    first, last = _bounds(cl, field_name, is_datetime)
    if not (year or month) and first is not None and first.year == last.year:
        year = first.year  # one year only: open on its months (as Django's drill-down does)
        if first.month == last.month:
            month = first.month
    if first is None:
        choices = []
    elif year and month:
        year, month = int(year), int(month)
        days = range(first.day, last.day + 1) if (first.year, first.month) == (last.year, last.month) else None
        days = days or range(1, calendar.monthrange(year, month)[1] + 1)
        choices = [
            {
                "link": link({year_field: year, month_field: month, day_field: number}),
                "title": capfirst(formats.date_format(datetime.date(year, month, number), "MONTH_DAY_FORMAT")),
            }
            for number in days
        ]
        return {"show": True, "back": {"link": link({year_field: year}), "title": str(year)}, "choices": choices}
    elif year:
        year = int(year)
        months = range(first.month, last.month + 1) if first.year == last.year == year else range(1, 13)
        choices = [
            {
                "link": link({year_field: year, month_field: number}),
                "title": capfirst(formats.date_format(datetime.date(year, number, 1), "YEAR_MONTH_FORMAT")),
            }
            for number in months
        ]
        return {"show": True, "back": {"link": link({}), "title": _("All dates")}, "choices": choices}
    else:
        choices = [
            {"link": link({year_field: str(number)}), "title": str(number)}
            for number in range(first.year, last.year + 1)
        ]
    return {"show": True, "back": None, "choices": choices}
