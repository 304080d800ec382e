"""Typed reading of one mapping of the document: every problem is recorded with its location, none raises.

A section describes its keys as `Key`s (document key, model attribute, kind, required); `Item.read`
turns a mapping into model values, and `export_value` writes a model value back in the same shape,
so reading and writing a key can never drift apart.
"""

import datetime
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.money import validate_currency
from apps.systems import secrets

from .errors import Problems

TEXT = "text"
BOOL = "bool"
INT = "int"
NUMBER = "number"  # a decimal quantity such as a timeout: written as 5 or "7.5"
AMOUNT = "amount"  # money or a rate: written as a string with at least two decimals, "250.10"
DATE = "date"
DATETIME = "datetime"
CHOICE = "choice"
CURRENCY = "currency"
SLUG = "slug"  # a reference to another row by its key (e.g. a system slug), or null
SLUGS = "slugs"  # a list of such references
REFERENCE = "reference"  # a secret reference {env: NAME} or {file: /path}
CREDENTIALS = "credentials"  # empty, one reference, or an object of references
NAMES = "names"  # a list of names (e.g. source profile names), each once, order kept
JSON = "json"  # any JSON value stored as JSON (a profile's spec, a sample payload)

INVALID = object()  # returned for a value that was reported as a problem
SECRET_BY_REFERENCE = (
    "secrets are given by reference, e.g. {env: IC_SECRET_HUBSPOT_CLIENT_SECRET} or {file: /run/secrets/hubspot}; "
    "a secret value is never accepted in this document"
)


@dataclass(frozen=True)
class Key:
    """One key of a document mapping: its model attribute, its kind, and whether it must be given."""

    key: str
    attr: str
    kind: str = TEXT
    required: bool = False
    default: object = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None


def show(value) -> str:
    """A value as a message quotes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _type_name(value) -> str:
    if isinstance(value, bool):
        return f"true/false ({show(value)})"
    if isinstance(value, int | Decimal | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return show(value)


def parse_decimal(value) -> Decimal:
    """A Decimal straight from text or an exact number; ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int | Decimal):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            raise ValueError from None
    else:
        raise ValueError
    if not result.is_finite():
        raise ValueError
    return result


def parse_date(value) -> datetime.date:
    if isinstance(value, datetime.datetime):
        raise ValueError
    if isinstance(value, datetime.date):
        return value
    if not isinstance(value, str):
        raise ValueError
    return datetime.date.fromisoformat(value.strip())


def parse_datetime(value) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        result = value
    elif isinstance(value, str):
        result = datetime.datetime.fromisoformat(value.strip())
    else:
        raise ValueError
    if timezone.is_naive(result):
        result = timezone.make_aware(result)
    return result


def reference_problem(value, *, where: str) -> str | None:
    """Why a secret reference is refused (never quoting a value that could be the secret), or None."""
    try:
        secrets.validate_reference(value, where=where)
    except ValidationError as exc:
        if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in secrets.REFERENCE_KINDS):
            return SECRET_BY_REFERENCE
        return " ".join(exc.messages)
    return None


class Item:
    """One mapping of the document at `location`; records its problems in `problems` instead of raising."""

    def __init__(self, data: dict, location: str, problems: Problems):
        self.data = data
        self.location = location
        self.problems = problems

    @classmethod
    def of(cls, data, location: str, problems: Problems, *, keys, what: str = "an object") -> "Item | None":
        """The mapping at `location`, checked for unknown keys; None (reported) if it is not a mapping."""
        if not isinstance(data, dict):
            problems.add(location, f"expected {what}, got {_type_name(data)}")
            return None
        item = cls(data, location, problems)
        known = list(keys)
        for key in data:
            if key not in known:
                item.fail(item.at(key), f"unknown key {show(key)}; the keys here are {', '.join(known)}")
        return item

    def at(self, key) -> str:
        return f"{self.location}.{key}" if self.location else str(key)

    def fail(self, location: str, message: str) -> object:
        self.problems.add(location, message)
        return INVALID

    def read(self, keys: list[Key]) -> dict:
        """Model attribute -> value for each key; a missing optional key takes its default."""
        return {key.attr: self.value(key) for key in keys}

    def value(self, key: Key):
        location = self.at(key.key)
        if key.key not in self.data or self.data[key.key] is None:
            if key.required:
                return self.fail(
                    location, "this key is required" if key.key not in self.data else "must have a value, not null"
                )
            return key.default() if callable(key.default) else key.default
        raw = self.data[key.key]
        reader = getattr(self, f"_read_{key.kind}")
        return reader(raw, key, location)

    def _read_text(self, raw, key, location):
        if not isinstance(raw, str):
            return self.fail(location, f"expected text, got {_type_name(raw)}; put it in quotes")
        return raw

    _read_slug = _read_text

    def _read_bool(self, raw, key, location):
        if not isinstance(raw, bool):
            return self.fail(location, f"expected true or false, got {_type_name(raw)}")
        return raw

    def _read_int(self, raw, key, location):
        if isinstance(raw, bool) or not isinstance(raw, int | Decimal) or raw != int(raw):
            return self.fail(location, f"{show(raw)} is not a whole number")
        if key.minimum is not None and raw < key.minimum:
            return self.fail(location, f"{show(raw)} is too small; the least allowed is {key.minimum}")
        return int(raw)

    def _read_number(self, raw, key, location):
        try:
            return parse_decimal(raw)
        except ValueError:
            return self.fail(location, f"{show(raw)} is not a number")

    _read_amount = _read_number

    def _read_date(self, raw, key, location):
        try:
            return parse_date(raw)
        except ValueError:
            return self.fail(location, f"{show(raw)} is not a date; write it as YYYY-MM-DD")

    def _read_datetime(self, raw, key, location):
        try:
            return parse_datetime(raw)
        except ValueError:
            return self.fail(location, f"{show(raw)} is not a date and time; write it as YYYY-MM-DDTHH:MM:SS+00:00")

    def _read_choice(self, raw, key, location):
        if raw not in key.choices:
            return self.fail(location, f"{show(raw)} is not one of {', '.join(key.choices)}")
        return raw

    def _read_currency(self, raw, key, location):
        try:
            validate_currency(raw)
        except (ValidationError, TypeError):
            return self.fail(location, f"{show(raw)} is not a currency code this product knows (e.g. USD, EUR, GBP)")
        return raw

    def _read_slugs(self, raw, key, location):
        if not isinstance(raw, list):
            return self.fail(location, f"expected a list of system slugs, got {_type_name(raw)}")
        values = []
        for index, entry in enumerate(raw):
            if not isinstance(entry, str):
                self.fail(f"{location}[{index}]", f"expected a system slug, got {_type_name(entry)}")
            else:
                values.append(entry)
        return values if len(values) == len(raw) else INVALID

    def _read_names(self, raw, key, location):
        if not isinstance(raw, list):
            return self.fail(location, f"expected a list of names, got {_type_name(raw)}")
        values = []
        for index, entry in enumerate(raw):
            if not isinstance(entry, str) or not entry.strip():
                self.fail(f"{location}[{index}]", f"expected a name, got {_type_name(entry)}")
            elif entry in values:
                self.fail(f"{location}[{index}]", f"{show(entry)} is listed twice")
            else:
                values.append(entry)
        return values if len(values) == len(raw) else INVALID

    def _read_json(self, raw, key, location):
        try:
            return plain_json(raw)
        except ValueError as exc:
            return self.fail(location, str(exc))

    def _read_reference(self, raw, key, location):
        problem = reference_problem(raw, where="secret reference")
        if problem:
            return self.fail(location, problem)
        return dict(raw)

    def _read_credentials(self, raw, key, location):
        if raw == {}:
            return {}
        if not isinstance(raw, dict):
            return self.fail(location, SECRET_BY_REFERENCE)
        if len(raw) == 1 and next(iter(raw)) in secrets.REFERENCE_KINDS:
            return self._read_reference(raw, key, location)
        result = {}
        for part, reference in raw.items():
            problem = reference_problem(reference, where=f"credential part '{part}'")
            if problem:
                self.fail(f"{location}.{part}", problem)
            else:
                result[part] = dict(reference)
        return result if len(result) == len(raw) else INVALID

    def items(self, key: str, keys, *, what: str) -> list["Item"]:
        """The mappings listed under `key` (none if it is absent), each checked for unknown keys."""
        raw = self.data.get(key)
        if raw is None:
            return []
        location = self.at(key)
        if not isinstance(raw, list):
            self.fail(location, f"expected a list of {what}, got {_type_name(raw)}")
            return []
        found = []
        for index, entry in enumerate(raw):
            child = Item.of(entry, f"{location}[{index}]", self.problems, keys=keys, what=f"one of the {what}")
            if child is not None:
                found.append(child)
        return found

    def block(self, key: str, keys) -> "Item":
        """An optional nested mapping (an empty one if absent)."""
        raw = self.data.get(key)
        if raw is None:
            return Item({}, self.at(key), self.problems)
        child = Item.of(raw, self.at(key), self.problems, keys=keys)
        return child if child is not None else Item({}, self.at(key), self.problems)


def plain_json(value, where: str = ""):
    """A document value as the JSON a JSON column stores: text keys, and numbers with a point as floats.

    The parser reads 12.5 as Decimal('12.5') to keep amounts exact; inside a spec or a payload the
    database keeps a JSON number, which reads back as the float 12.5, so that is what is compared.
    """
    if isinstance(value, dict):
        result = {}
        for name, inner in value.items():
            if not isinstance(name, str):
                raise ValueError(f"the key {show(name)}{where and ' in ' + where} must be text; put it in quotes")
            result[name] = plain_json(inner, f"{where}.{name}" if where else name)
        return result
    if isinstance(value, list):
        return [plain_json(inner, f"{where}[{index}]") for index, inner in enumerate(value)]
    if isinstance(value, Decimal):
        return float(value)  # the parsers make a Decimal only of a number written with a point or an exponent
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"{_type_name(value)}{where and ' at ' + where} is not a JSON value")


def _sorted_json(value):
    if isinstance(value, dict):
        return {key: _sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(inner) for inner in value]
    return value


def export_value(kind: str, value):
    """A model value written the way `Item` reads it back; stable across databases."""
    if value is None:
        return None
    if kind == NUMBER:
        if value == value.to_integral_value():
            return int(value)
        return format(value.normalize(), "f")
    if kind == AMOUNT:
        value = value.normalize()
        if value.as_tuple().exponent > -2:
            value = value.quantize(Decimal("0.01"))
        return format(value, "f")
    if kind == DATE:
        return value.isoformat()
    if kind == DATETIME:
        return value.astimezone(datetime.UTC).isoformat()
    if kind in (REFERENCE, CREDENTIALS):
        return _sorted_mapping(value)
    if kind == SLUGS:
        return sorted(value)
    if kind == NAMES:
        return list(value)
    if kind == JSON:
        return _sorted_json(value)  # the same bytes whichever database stored it (PostgreSQL reorders keys)
    return value


def _sorted_mapping(value):
    if isinstance(value, dict):
        return {key: _sorted_mapping(value[key]) for key in sorted(value)}
    return value
