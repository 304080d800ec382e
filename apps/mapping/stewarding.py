"""What stewards need beside the profile engine: a spec in reading order, command rows, version history.

Shared by the admin pages and the API. The preview of a sample delivery is apps.inbound.preview: it cuts the
sample into events the way inbound does.
"""

from collections.abc import Mapping
from typing import Any

from apps.mapping.models import SourceProfile
from apps.mapping.profiles.catalogue import MAPPING_KEYS, OPERATORS, SPEC_KEYS

# How a spec reads best: its settings in the documented order, a command's type first, a mapping's path first.
INNER_ORDER = tuple(
    dict.fromkeys(
        ("type", *MAPPING_KEYS, *OPERATORS, "ignore_case", "description", "object", "id", "occurred_at")
        + ("params", "include", "each", "when", "all", "any", "not", "fields")
    )
)


def readable_spec(spec: Any) -> Any:
    """The spec with its keys in reading order, the same whichever database stored it (PostgreSQL reorders them)."""
    return _ordered(spec, SPEC_KEYS)


NAMED_CHILDREN = ("fields", "map", "params")  # their keys are names (canonical fields, vendor values), not settings


def _ordered(value: Any, order: tuple[str, ...]) -> Any:
    if isinstance(value, Mapping):
        rank = {key: index for index, key in enumerate(order)}
        keys = sorted(value, key=lambda key: (rank.get(key, len(rank)), str(key)))
        return {key: _ordered(value[key], () if key in NAMED_CHILDREN else INNER_ORDER) for key in keys}
    if isinstance(value, list):
        return [_ordered(item, INNER_ORDER) for item in value]
    return value


def command_rows(data: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    """A command's data as (field, value) rows for a table; list fields become `lines[0].amount` rows."""
    rows = []
    for name, value in data.items():
        label = f"{prefix}{name}"
        if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            for index, item in enumerate(value):
                rows.extend(command_rows(item, f"{label}[{index}]."))
        elif isinstance(value, bool):
            rows.append((label, "true" if value else "false"))
        else:
            rows.append((label, "" if value is None else str(value)))
    return rows


def profile_versions(profile: SourceProfile) -> list[tuple[SourceProfile, object]]:
    """Every version of the profile's name, newest first, each with its last history row (when, who, why)."""
    versions = list(SourceProfile.objects.filter(name=profile.name).order_by("-version"))
    last_change = {}
    rows = SourceProfile.history.filter(id__in=[version.pk for version in versions]).select_related("history_user")
    for row in rows.order_by("-history_date", "-history_id"):
        last_change.setdefault(row.id, row)
    return [(version, last_change.get(version.pk)) for version in versions]
