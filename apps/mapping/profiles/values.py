"""Reading one payload value: numbers, text, presence, dates and date-times, and how a value is shown in a message.

Shared by the profile engine, the validator and the inbound envelope splitters.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo


def jsonable(value: Any) -> Any:
    """The value with amounts and dates as text, safe to store as JSON."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(inner) for inner in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def is_present(value: Any) -> bool:
    """False for None and blank text: a field that is sent empty counts as not sent."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return True


class BadValue(Exception):
    """A value that cannot be used; the message completes a sentence that starts with the field's label."""

    def __init__(self, message: str, fix: str = "", *, after_colon: bool = False):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.after_colon = after_colon  # a whole sentence of its own, e.g. a value map miss

    def sentence(self, label: str) -> str:
        return f"{label}: {self.message}" if self.after_colon else f"{label} {self.message}"


def _zone(mapping: Mapping) -> datetime.tzinfo:
    return ZoneInfo(mapping["timezone"]) if "timezone" in mapping else datetime.UTC


def _moment(value: Any, mapping: Mapping, expect: str) -> datetime.datetime | datetime.date:
    """A date or an aware datetime from ISO text, epoch seconds/milliseconds or a strptime pattern."""
    value_format = mapping.get("format", "iso")
    if value_format in ("epoch_s", "epoch_ms"):
        number = as_number(value)
        unit = "seconds" if value_format == "epoch_s" else "milliseconds"
        if number is None:
            raise BadValue(f"'{display(value)}' is not {expect}: expected a number of {unit} since 1970.")
        if value_format == "epoch_ms":
            number = number / 1000
        try:
            return datetime.datetime.fromtimestamp(float(number), tz=datetime.UTC)
        except (OverflowError, OSError, ValueError):
            hint = " (is it in milliseconds?)" if value_format == "epoch_s" else ""
            raise BadValue(
                f"'{display(value)}' is not {expect}: it is not a time in {unit} since 1970{hint}."
            ) from None
    if isinstance(value, datetime.datetime | datetime.date):
        return value
    text = as_text(value).strip()
    if value_format != "iso":
        try:
            return datetime.datetime.strptime(text, value_format)
        except ValueError:
            raise BadValue(f"'{text}' is not {expect} in the format {value_format}.") from None
    try:
        if len(text) == 10:
            return datetime.date.fromisoformat(text)
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        example = "2026-03-31" if expect == "a date" else "2026-03-31T14:30:00Z"
        raise BadValue(f"'{text}' is not {expect} (expected ISO 8601, e.g. {example}).") from None


def as_date(value: Any, mapping: Mapping) -> datetime.date:
    moment = _moment(value, mapping, "a date")
    if isinstance(moment, datetime.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(_zone(mapping))
        return moment.date()
    return moment


def as_datetime(value: Any, mapping: Mapping) -> datetime.datetime:
    moment = _moment(value, mapping, "a date and time")
    if not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.combine(moment, datetime.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(mapping))
    return moment.astimezone(datetime.UTC)


def as_number(value: Any) -> Decimal | None:
    """A Decimal from an int, Decimal, float (via its shortest repr) or numeric text; None if it is not a number."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def display(value: Any, *, quote: bool = False, limit: int = 80) -> str:
    if isinstance(value, (dict, list)):
        text = json.dumps(jsonable(value), ensure_ascii=False, sort_keys=True)
    else:
        text = as_text(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if quote and not isinstance(value, (bool, int, float, Decimal, dict, list)):
        return f"'{text}'"
    return text
