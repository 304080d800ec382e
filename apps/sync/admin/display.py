"""Read-only JSON fields of the ledger's admin pages, masked for people who may not see amounts."""

from django.utils.html import format_html_join

from apps.core.admin import MaskedHistoryContextHelper
from apps.core.masking import can_see_sensitive

from .. import selectors
from ..presentation import pretty

JSON_FIELDS = ("input", "input_override", "state")


def json_display(attribute: str, description: str, *, masked: bool, kind: str = "json"):
    """A read-only admin field showing a JSON attribute; the masked variant hides sensitive amounts.

    Two variants instead of one that looks at the user: an admin instance serves every request at once.
    """

    def display(self, obj):
        value = getattr(obj, attribute)
        if kind == "call":
            values = [selectors.visible_call(value or {}, None) if masked else value]
        elif kind == "calls":
            values = [selectors.visible_call(call, None) if masked else call for call in value or []]
        else:
            values = [selectors.visible_json(value, None) if masked else value]
        texts = [pretty(item) for item in values if pretty(item)]
        if not texts:
            return "—"
        return format_html_join("", '<pre class="sync-json">{}</pre>', ((text,) for text in texts))

    display.short_description = description
    return display


def json_names(names, user) -> list:
    """Field names with each JSON display swapped for its masked variant when the user may not see amounts."""
    if can_see_sensitive(user):
        return list(names)
    return [f"{name}_masked" if isinstance(name, str) and name.endswith("_json") else name for name in names]


class TransactionHistoryHelper(MaskedHistoryContextHelper):
    """History diffs with sensitive amounts inside the JSON input hidden too."""

    def __init__(self, model, historical_record, *, hidden=frozenset(), user=None):
        super().__init__(model, historical_record, hidden=hidden)
        self.user = user

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        if change.field in JSON_FIELDS:
            return selectors.visible_json(value, self.user)
        return value
