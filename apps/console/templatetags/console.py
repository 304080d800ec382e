"""Template filters of the console: money with its currency, ages, role labels."""

from django import template
from django.utils import timezone

from apps.core.money import MINOR_UNITS

register = template.Library()


@register.filter
def money(amount, currency: str = "") -> str:
    """'USD 72,000.00'; '—' when there is no amount."""
    if amount is None or amount == "":
        return "—"
    places = MINOR_UNITS.get(currency, 2)
    return f"{currency} {amount:,.{places}f}".strip()


@register.filter
def age(moment) -> str:
    """How long ago, in the largest whole unit: 'just now', '12 min', '3 h', '5 d'."""
    if not moment:
        return ""
    seconds = max(int((timezone.now() - moment).total_seconds()), 0)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@register.filter
def role(value: str) -> str:
    return value.replace("_", " ").capitalize() if value else ""
