"""Source profiles: a steward's declarative, versioned mapping from one vendor payload to canonical commands.

A profile is plain JSON (the format is documented in docs/source-profiles.md). This module reads it:

- `validate_spec(spec)` lists what is wrong with a profile, each message located ("commands[0].fields.amount: …");
- `apply_profile(spec, payload, fetched=None, on=None)` turns one payload into canonical commands, skips with a
  reason, fetch requests for thin notifications, and every mapping error found; it never raises for bad input;
- `split_delivery(scheme, body, headers=...)` cuts one raw webhook delivery into events, each with the
  idempotency key it is deduplicated on;
- `profile_matches(spec, vendor=..., event_type=..., schema_version=...)` says whether a profile reads an event.

Nothing here writes to the database; value-map lookups are the only reads.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apps.core.errors import BusinessError, MappingError
from apps.core.money import MINOR_UNITS, from_minor_units

SPEC_VERSION = 1

# The canonical ContractType values (apps.canonical.models.ContractType); kept here so this module stays pure.
CONTRACT_TYPES = ("fixed_fee", "time_and_materials", "retainer", "subscription", "milestone", "usage")
# The canonical Invoice.Status values.
INVOICE_STATUSES = ("draft", "posted", "partially_paid", "paid", "void")


# --- the canonical commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanonicalField:
    """One key of a canonical command's data: its kind, whether a profile must map it, allowed values."""

    kind: str  # string, currency, decimal, int, boolean, date, datetime, lines
    required: bool = True
    choices: tuple[str, ...] = ()
    fields: Mapping[str, CanonicalField] | None = None  # for kind "lines": the keys of each line

    @property
    def default_type(self) -> str:
        return {"currency": "string"}.get(self.kind, self.kind)


def _required(kind: str = "string", **options) -> CanonicalField:
    return CanonicalField(kind, True, **options)


def _optional(kind: str = "string", **options) -> CanonicalField:
    return CanonicalField(kind, False, **options)


INVOICE_LINE = {
    "description": _required(),
    "quantity": _required("decimal"),
    "unit_price": _required("decimal"),
    "amount": _required("decimal"),
    "tax_amount": _required("decimal"),
    "service_item": _optional(),
}

RATE_CHANGE = {
    "role": _required(),
    "bill_rate": _required("decimal"),
    "cost_rate": _optional("decimal"),
    "currency": _optional("currency"),
}

CANONICAL_COMMANDS: dict[str, dict[str, CanonicalField]] = {
    "opportunity.won": {
        "opportunity_external_id": _required(),
        "opportunity_name": _required(),
        "amount": _required("decimal"),
        "currency": _required("currency"),
        "close_date": _required("date"),
        "contract_type": _required(choices=CONTRACT_TYPES),
        "rate_card": _optional(),
        "customer_external_id": _required(),
        "customer_name": _required(),
        "customer_tax_id": _optional(),
        "customer_country": _optional(),
        "region": _optional(),
        "legal_entity": _required(),
        "billing_email": _optional(),
    },
    "customer.changed": {
        "customer_external_id": _required(),
        "name": _required(),
        "tax_id": _optional(),
        "tax_region": _optional(),
        "currency": _optional("currency"),
        "billing_email": _optional(),
        "region": _optional(),
        "parent_external_id": _optional(),
    },
    "time_entry.approved": {
        "time_entry_external_id": _required(),
        "resource_external_id": _required(),
        "project_external_id": _required(),
        "task_external_id": _optional(),
        "work_date": _required("date"),
        "hours": _required("decimal"),
        "role": _optional(),
        "billable": _required("boolean"),
        "description": _optional(),
        "approved_at": _optional("datetime"),
    },
    "expense.approved": {
        "expense_external_id": _required(),
        "resource_external_id": _required(),
        "project_external_id": _required(),
        "incurred_on": _required("date"),
        "category": _required(),
        "amount": _required("decimal"),
        "currency": _required("currency"),
        "billable": _required("boolean"),
        "description": _optional(),
    },
    "milestone.completed": {
        "milestone_external_id": _required(),
        "project_external_id": _required(),
        "name": _required(),
        "amount": _optional("decimal"),
        "currency": _optional("currency"),
        "completed_on": _required("date"),
    },
    "invoice.posted": {
        "invoice_external_id": _required(),
        "number": _required(),
        "customer_external_id": _required(),
        "issue_date": _required("date"),
        "due_date": _required("date"),
        "currency": _required("currency"),
        "subtotal": _required("decimal"),
        "tax_total": _required("decimal"),
        "total": _required("decimal"),
        "status": _required(choices=INVOICE_STATUSES),
        "lines": _required("lines", fields=INVOICE_LINE),
    },
    "payment.received": {
        "payment_external_id": _required(),
        "reference": _required(),
        "customer_external_id": _required(),
        "invoice_external_id": _optional(),
        "received_on": _required("date"),
        "amount": _required("decimal"),
        "currency": _required("currency"),
        "method": _optional(),
    },
    "contract.amended": {
        "contract_external_id": _required(),
        "version": _required("int"),
        "effective_from": _required("date"),
        "new_total_value": _optional("decimal"),
        "new_end_date": _optional("date"),
        "description": _required(),
        "new_rates": _optional("lines", fields=RATE_CHANGE),
    },
    "resource.changed": {
        "resource_external_id": _required(),
        "employee_number": _optional(),
        "name": _required(),
        "email": _optional(),
        "role": _optional(),
        "active": _required("boolean"),
    },
}

VALUE_TYPES = ("string", "int", "decimal", "minor_units", "boolean", "date", "datetime")
KIND_TYPES = {
    "string": ("string",),
    "currency": ("string",),
    "decimal": ("decimal", "minor_units"),
    "int": ("int",),
    "boolean": ("boolean",),
    "date": ("date",),
    "datetime": ("datetime",),
}
DATE_FORMATS = ("iso", "epoch_s", "epoch_ms")
TRANSFORMS = {
    "strip": str.strip,
    "upper": str.upper,
    "lower": str.lower,
    "collapse_spaces": lambda text: " ".join(text.split()),
}
OPERATORS = ("equals", "not_equals", "in", "not_in", "exists", "contains", "matches", "gt", "gte", "lt", "lte")
TRUE_WORDS = {"true", "t", "yes", "y", "1", "on"}
FALSE_WORDS = {"false", "f", "no", "n", "0", "off"}


# --- paths -----------------------------------------------------------------------------------------------------

ROOTS = ("$event", "$item", "$fetched")
_MISSING = object()


class PathError(ValueError):
    """A path in a profile that cannot be read."""


@dataclass(frozen=True)
class Path:
    """A parsed field path: an optional root ($event, $item, $fetched) and steps (keys, indexes, [*], [{path}])."""

    text: str
    root: str
    steps: tuple

    @property
    def rest(self) -> str:
        return self.text[len(self.root) :].lstrip(".") if self.root else self.text


@functools.lru_cache(maxsize=2048)
def parse_path(text: str) -> Path:
    """Parse 'data.object.lines.data[0].amount', 'fields["Employee #"]', 'value[*].id' or '$fetched.deal.id'."""
    if not isinstance(text, str) or not text.strip():
        raise PathError("a path must be a non-empty text such as 'data.object.id'")
    text = text.strip()
    n = len(text)
    i = 0
    root = ""
    if text.startswith("$"):
        while i < n and text[i] not in ".[":
            i += 1
        root = text[:i]
        if root not in ROOTS:
            raise PathError(f"'{root}' is not a starting point a path can have; use {', '.join(ROOTS)} or none")
        if i < n and text[i] == ".":
            i += 1
            if i >= n or text[i] in ".[":
                raise PathError(f"'{text}': '.' must be followed by a field name")
    steps = []
    while i < n:
        if text[i] == "[":
            close = _closing_bracket(text, i)
            steps.append(_bracket_step(text[i + 1 : close].strip(), text))
            i = close + 1
        elif text[i] == ".":
            raise PathError(f"'{text}' has an empty field name (two dots, or a dot in the wrong place)")
        else:
            start = i
            while i < n and text[i] not in ".[]":
                i += 1
            if i < n and text[i] == "]":
                raise PathError(f"'{text}' has a ']' without a '['")
            key = text[start:i]
            if key != key.strip():
                raise PathError(f"'{text}': field name '{key}' starts or ends with a space; quote it as [\"{key}\"]")
            steps.append(("key", key))
        if i < n and text[i] == ".":
            i += 1
            if i >= n or text[i] in ".[":
                raise PathError(f"'{text}': '.' must be followed by a field name")
    return Path(text, root, tuple(steps))


def _closing_bracket(text: str, start: int) -> int:
    depth, quote = 0, ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index
    raise PathError(f"'{text}' has a '[' that is never closed")


def _bracket_step(inner: str, text: str) -> tuple:
    if inner == "*":
        return ("all",)
    if re.fullmatch(r"-?\d+", inner):
        return ("index", int(inner))
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "\"'":
        return ("key", inner[1:-1])
    if inner.startswith("{") and inner.endswith("}"):
        return ("dynamic", parse_path(inner[1:-1]))
    raise PathError(f"'[{inner}]' in '{text}' is not understood; use [0], [*], [\"field name\"] or [{{path}}]")


def _join(prefix: str, rest: str) -> str:
    if not prefix:
        return rest
    if not rest:
        return prefix
    return prefix + rest if rest.startswith("[") else f"{prefix}.{rest}"


def _walk(value: Any, steps: tuple, scope: _Scope) -> tuple[bool, Any]:
    for position, step in enumerate(steps):
        kind = step[0]
        if kind == "all":
            if isinstance(value, list):
                elements = value
            elif isinstance(value, dict):
                elements = list(value.values())
            else:
                return False, None
            collected = []
            for element in elements:
                found, inner = _walk(element, steps[position + 1 :], scope)
                if found:
                    collected.append(inner)
            return True, collected
        if kind == "index":
            if not isinstance(value, list) or not -len(value) <= step[1] < len(value):
                return False, None
            value = value[step[1]]
            continue
        if kind == "dynamic":
            found, key, _ = _resolve(step[1], scope)
            if not found or key is None or isinstance(key, (dict, list)):
                return False, None
            if isinstance(value, list) and re.fullmatch(r"-?\d+", str(key)):
                step = ("index", int(str(key)))
                if not -len(value) <= step[1] < len(value):
                    return False, None
                value = value[step[1]]
                continue
            step = ("key", _text(key))
        if not isinstance(value, dict) or step[1] not in value:
            return False, None
        value = value[step[1]]
    return True, value


def _resolve(path: Path, scope: _Scope) -> tuple[bool, Any, str]:
    """(found, value, the path as the steward would read it in this payload)."""
    if path.root == "$event":
        base, prefix = scope.event, ""
    elif path.root == "$item":
        base, prefix = scope.item, scope.item_path
    elif path.root == "$fetched":
        base, prefix = scope.fetched, "$fetched"
    else:
        base, prefix = scope.current, scope.current_path
    shown = _join(prefix, path.rest)
    if base is _MISSING:
        return False, None, shown
    found, value = _walk(base, path.steps, scope)
    return found, value, shown


# --- results ---------------------------------------------------------------------------------------------------


@dataclass
class MappingIssue:
    """One thing wrong with a payload (or the profile), located in the profile and in the payload."""

    message: str
    field: str = ""  # the canonical field, e.g. 'amount' or 'lines[1].tax_amount'; '' for the whole item
    location: str = ""  # where in the profile, e.g. 'commands[0].fields.amount'
    path: str = ""  # where in the payload, e.g. 'data.object.amount_paid'
    fix: str = ""
    value: str = ""  # the offending value, shortened
    command: str = ""
    item: int | None = None
    source_event_id: str = ""

    def as_dict(self) -> dict:
        return _jsonable(self.__dict__)


@dataclass
class Skip:
    """An item or command the profile chose not to map, and why."""

    reason: str
    command: str = ""
    item: int | None = None
    source_event_id: str = ""

    def as_dict(self) -> dict:
        return _jsonable(self.__dict__)


@dataclass
class FetchRequest:
    """A thin notification: the record must be fetched from the source system, then the profile applied again."""

    object: str
    id: str
    params: dict = field(default_factory=dict)
    include: tuple[str, ...] = ()
    item: int | None = None
    source_event_id: str = ""

    @property
    def key(self) -> str:
        """The key under which the fetched record is passed back: apply_profile(..., fetched={key: record})."""
        return f"{self.object}:{self.id}"

    @property
    def message(self) -> str:
        return f"needs fetch of {self.object} {self.id} from the source system"

    def as_dict(self) -> dict:
        return _jsonable({**self.__dict__, "include": list(self.include), "key": self.key, "message": self.message})


@dataclass
class CanonicalCommand:
    """One canonical command: its type, canonical data (Decimal amounts, date values) and where it came from."""

    type: str
    data: dict
    source_event_id: str = ""
    occurred_at: datetime.datetime | None = None
    item: int | None = None

    def as_dict(self) -> dict:
        return _jsonable(self.__dict__)


@dataclass
class ProfileResult:
    """What applying a profile to one payload produced."""

    commands: list[CanonicalCommand] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    needs_fetch: list[FetchRequest] = field(default_factory=list)
    errors: list[MappingIssue] = field(default_factory=list)
    # Commands with errors, holding the fields that did map (an exception's amount and currency come from here).
    incomplete: list[CanonicalCommand] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        """A JSON-safe rendering (amounts and dates as text) for the ledger, the preview and the API."""
        return {
            "commands": [command.as_dict() for command in self.commands],
            "skipped": [skip.as_dict() for skip in self.skipped],
            "needs_fetch": [request.as_dict() for request in self.needs_fetch],
            "errors": [issue.as_dict() for issue in self.errors],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(inner) for inner in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


# --- validating a profile --------------------------------------------------------------------------------------

SPEC_KEYS = (
    "spec_version", "vendor", "event_types", "schema_version", "delivery", "description", "notes", "each", "when",
    "event", "fetch", "commands",
)  # fmt: skip
MAPPING_KEYS = (
    "path", "const", "template", "type", "format", "timezone", "currency", "divide_by", "multiply_by", "places",
    "transform", "extract", "map", "map_default", "value_map", "as_of", "required", "default", "choices", "label",
)  # fmt: skip
LIST_KEYS = ("each", "fields", "required", "label")
TEMPLATE_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def validate_spec(spec: Any) -> list[str]:
    """Everything wrong with a profile, each message saying where ('commands[0].fields.amount: …')."""
    if not isinstance(spec, Mapping):
        return ["The profile must be a JSON object with 'vendor', 'event_types' and 'commands'."]
    problems: list[str] = []
    for key in spec:
        if key not in SPEC_KEYS:
            problems.append(f"'{key}' is not a setting a profile can have (allowed: {', '.join(SPEC_KEYS)}).")
    if spec.get("spec_version", SPEC_VERSION) != SPEC_VERSION:
        problems.append(
            f"spec_version: this product reads profile format {SPEC_VERSION}, not {spec['spec_version']!r}."
        )
    if not isinstance(spec.get("vendor"), str) or not spec.get("vendor", "").strip():
        problems.append("vendor: say which vendor's payloads this profile reads, e.g. 'hubspot'.")
    event_types = spec.get("event_types")
    if not isinstance(event_types, list) or not event_types:
        problems.append("event_types: list the vendor event types this profile reads, e.g. ['invoice.paid'].")
    elif not all(isinstance(name, str) and name.strip() for name in event_types):
        problems.append("event_types: every event type must be a non-empty text.")
    if not isinstance(spec.get("schema_version", ""), str):
        problems.append("schema_version: must be a text such as 'v2'; leave it out to accept any schema version.")
    for key in ("delivery", "description", "notes"):
        if key in spec and not isinstance(spec[key], str):
            problems.append(f"{key}: must be a text.")
    if isinstance(spec.get("delivery"), str) and spec["delivery"] and spec["delivery"] not in DELIVERY_SCHEMES:
        problems.append(
            f"delivery: '{spec['delivery']}' is not a delivery format this product reads "
            f"(one of {', '.join(DELIVERY_SCHEMES)}); leave it out to read each sample as one event."
        )
    if "each" in spec:
        candidates = spec["each"] if isinstance(spec["each"], list) else [spec["each"]]
        if not candidates:
            problems.append("each: the list of paths is empty.")
        for text in candidates:
            _check_path(text, "each", problems)
    _check_conditions(spec.get("when", []), "when", problems)
    event = spec.get("event", {})
    if not isinstance(event, Mapping):
        problems.append("event: must be an object with 'id' and/or 'occurred_at'.")
    else:
        for key, value in event.items():
            if key not in ("id", "occurred_at"):
                problems.append(f"event.{key}: not understood; 'event' has 'id' and 'occurred_at'.")
            else:
                kind = CanonicalField("datetime" if key == "occurred_at" else "string", required=False)
                _check_mapping(value, f"event.{key}", kind, {}, {}, problems)
    if "fetch" in spec:
        _check_fetch(spec["fetch"], problems)
    commands = spec.get("commands")
    if not isinstance(commands, list) or not commands:
        problems.append('commands: list at least one command, e.g. [{"type": "opportunity.won", "fields": {…}}].')
        return problems
    for index, command in enumerate(commands):
        _check_command(command, f"commands[{index}]", problems)
    return problems


def _check_path(value: Any, location: str, problems: list[str]) -> None:
    try:
        parse_path(value)
    except PathError as exc:
        problems.append(f"{location}: {exc}.")


def _check_conditions(conditions: Any, location: str, problems: list[str]) -> None:
    if not isinstance(conditions, list):
        problems.append(f"{location}: must be a list of conditions.")
        return
    for index, condition in enumerate(conditions):
        _check_condition(condition, f"{location}[{index}]", problems)


def _check_condition(condition: Any, location: str, problems: list[str]) -> None:
    if not isinstance(condition, Mapping):
        problems.append(f'{location}: a condition must be an object such as {{"path": "status", "equals": "paid"}}.')
        return
    combinators = [key for key in ("all", "any", "not") if key in condition]
    if combinators:
        extra = [key for key in condition if key not in (*combinators, "description")]
        if len(combinators) > 1 or extra:
            problems.append(f"{location}: use one of 'all', 'any' or 'not' (plus 'description'), nothing else.")
            return
        key = combinators[0]
        if key == "not":
            _check_condition(condition["not"], f"{location}.not", problems)
        else:
            _check_conditions(condition[key], f"{location}.{key}", problems)
        return
    if "path" not in condition:
        problems.append(f"{location}: a condition needs a 'path' to test.")
    else:
        _check_path(condition["path"], f"{location}.path", problems)
    operators = [key for key in condition if key in OPERATORS]
    unknown = [key for key in condition if key not in (*OPERATORS, "path", "description", "ignore_case")]
    if unknown:
        problems.append(f"{location}: '{unknown[0]}' is not understood (operators: {', '.join(OPERATORS)}).")
    if len(operators) != 1:
        problems.append(f"{location}: give exactly one operator ({', '.join(OPERATORS)}).")
        return
    operator, operand = operators[0], condition[operators[0]]
    if operator in ("in", "not_in") and not isinstance(operand, list):
        problems.append(f"{location}.{operator}: must be a list of values.")
    if operator == "exists" and not isinstance(operand, bool):
        problems.append(f"{location}.exists: must be true or false.")
    if operator == "matches":
        try:
            re.compile(str(operand))
        except re.error as exc:
            problems.append(f"{location}.matches: '{operand}' is not a valid pattern ({exc}).")
    if operator in ("gt", "gte", "lt", "lte") and _number(operand) is None:
        problems.append(f"{location}.{operator}: must be a number.")
    if "ignore_case" in condition and not isinstance(condition["ignore_case"], bool):
        problems.append(f"{location}.ignore_case: must be true or false.")


def _check_fetch(fetch: Any, problems: list[str]) -> None:
    if not isinstance(fetch, Mapping):
        problems.append('fetch: must be an object such as {"object": "deal", "id": "objectId"}.')
        return
    for key in fetch:
        if key not in ("object", "id", "params", "include", "description"):
            problems.append(f"fetch.{key}: not understood; 'fetch' has object, id, params, include, description.")
    if not isinstance(fetch.get("object"), str) or not fetch.get("object", "").strip():
        problems.append("fetch.object: name the record type to fetch, e.g. 'deal'.")
    if "id" not in fetch:
        problems.append('fetch.id: say where the record\'s ID is, e.g. "objectId".')
    else:
        _check_mapping(fetch["id"], "fetch.id", CanonicalField("string"), {}, {}, problems)
    params = fetch.get("params", {})
    if not isinstance(params, Mapping):
        problems.append("fetch.params: must be an object of name → mapping.")
    else:
        for name, mapping in params.items():
            _check_mapping(mapping, f"fetch.params.{name}", CanonicalField("string"), {}, {}, problems)
    include = fetch.get("include", [])
    if not isinstance(include, list) or not all(isinstance(name, str) and name for name in include):
        problems.append("fetch.include: must be a list of related record types, e.g. ['company'].")


def _check_command(command: Any, location: str, problems: list[str]) -> None:
    if not isinstance(command, Mapping):
        problems.append(f"{location}: a command must be an object with 'type' and 'fields'.")
        return
    for key in command:
        if key not in ("type", "when", "fields", "description"):
            problems.append(f"{location}.{key}: not understood; a command has type, when, fields, description.")
    command_type = command.get("type")
    canon = CANONICAL_COMMANDS.get(command_type) if isinstance(command_type, str) else None
    if canon is None:
        problems.append(
            f"{location}.type: '{command_type}' is not a canonical command ({', '.join(CANONICAL_COMMANDS)})."
        )
    _check_conditions(command.get("when", []), f"{location}.when", problems)
    fields = command.get("fields")
    if not isinstance(fields, Mapping):
        problems.append(f"{location}.fields: must be an object of canonical field → mapping.")
        return
    if canon is not None:
        _check_fields(fields, canon, command_type, f"{location}.fields", {}, problems)


def _check_fields(
    fields: Mapping, canon: Mapping[str, CanonicalField], owner: str, location: str, parent: Mapping, problems
) -> None:
    for name in fields:
        if name not in canon:
            problems.append(f"{location}: '{name}' is not a field of {owner} (its fields: {', '.join(canon)}).")
    for name, definition in canon.items():
        if definition.required and name not in fields:
            problems.append(f"{location}: {owner} needs '{name}', but the profile does not map it.")
    for name, mapping in fields.items():
        if name in canon:
            _check_mapping(mapping, f"{location}.{name}", canon[name], fields, parent, problems)


def _check_mapping(
    mapping: Any, location: str, canon: CanonicalField, siblings: Mapping, parent: Mapping, problems: list[str]
) -> None:
    if canon.kind == "lines":
        _check_list_mapping(mapping, location, canon, siblings, problems)
        return
    if isinstance(mapping, str):
        _check_path(mapping, location, problems)
        return
    if not isinstance(mapping, Mapping):
        problems.append(f'{location}: give a path (text) or an object such as {{"path": "…", "type": "date"}}.')
        return
    for key in mapping:
        if key not in MAPPING_KEYS:
            hint = " ('each' is only for list fields such as invoice lines)" if key == "each" else ""
            problems.append(f"{location}.{key}: not understood{hint} (allowed: {', '.join(MAPPING_KEYS)}).")
    sources = [key for key in ("path", "const", "template") if key in mapping]
    if len(sources) != 1:
        problems.append(f"{location}: give exactly one of 'path', 'const' or 'template'.")
    if "path" in mapping:
        paths = mapping["path"] if isinstance(mapping["path"], list) else [mapping["path"]]
        if not paths:
            problems.append(f"{location}.path: the list of paths is empty.")
        for position, text in enumerate(paths):
            _check_path(
                text, f"{location}.path" + (f"[{position}]" if isinstance(mapping["path"], list) else ""), problems
            )
    if "template" in mapping:
        template = mapping["template"]
        placeholders = TEMPLATE_PLACEHOLDER.findall(template) if isinstance(template, str) else []
        if not placeholders:
            problems.append(f'{location}.template: must be a text with at least one {{path}}, e.g. "INV-{{number}}".')
        for text in placeholders:
            _check_path(text, f"{location}.template", problems)
    value_type = mapping.get("type", canon.default_type)
    if value_type not in VALUE_TYPES:
        problems.append(f"{location}.type: '{value_type}' is not a type ({', '.join(VALUE_TYPES)}).")
    elif canon.kind in KIND_TYPES and value_type not in KIND_TYPES[canon.kind]:
        allowed = " or ".join(KIND_TYPES[canon.kind])
        problems.append(f"{location}.type: this field holds a {canon.kind}; use {allowed}, not '{value_type}'.")
    if "format" in mapping:
        value_format = mapping["format"]
        if value_type not in ("date", "datetime"):
            problems.append(f"{location}.format: only dates and date-times have a format.")
        elif not isinstance(value_format, str) or (value_format not in DATE_FORMATS and "%" not in value_format):
            problems.append(
                f"{location}.format: '{value_format}' is not a date format; use iso, epoch_s, epoch_ms "
                "or a pattern such as '%d/%m/%Y'."
            )
    if "timezone" in mapping:
        try:
            ZoneInfo(str(mapping["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"{location}.timezone: '{mapping['timezone']}' is not a time zone such as 'Europe/Paris'.")
    if value_type == "minor_units":
        currency = mapping.get("currency")
        if currency is None:
            problems.append(f"{location}.currency: an amount in minor units (cents) needs its currency field.")
        elif isinstance(currency, str):
            if currency not in siblings and currency not in parent:
                problems.append(f"{location}.currency: there is no field '{currency}' in this command to take it from.")
        else:
            _check_mapping(currency, f"{location}.currency", CanonicalField("currency"), {}, {}, problems)
    elif "currency" in mapping:
        problems.append(f"{location}.currency: only an amount with type minor_units takes a currency.")
    for key in ("divide_by", "multiply_by"):
        if key in mapping:
            number = _number(mapping[key])
            if value_type != "decimal":
                problems.append(f"{location}.{key}: only decimal fields can be divided or multiplied.")
            elif number is None or number == 0:
                problems.append(f"{location}.{key}: must be a number other than zero.")
    if "places" in mapping:
        places = mapping["places"]
        if value_type not in ("decimal", "minor_units"):
            problems.append(f"{location}.places: only decimal fields are rounded.")
        elif not isinstance(places, int) or isinstance(places, bool) or not 0 <= places <= 10:
            problems.append(f"{location}.places: must be a whole number from 0 to 10.")
    transforms = mapping.get("transform", [])
    if isinstance(transforms, str):
        transforms = [transforms]
    if not isinstance(transforms, list) or any(name not in TRANSFORMS for name in transforms):
        problems.append(f"{location}.transform: use a list of {', '.join(TRANSFORMS)}.")
    if "extract" in mapping:
        try:
            pattern = re.compile(str(mapping["extract"]))
            if pattern.groups > 1:
                problems.append(f"{location}.extract: the pattern may have at most one (group).")
        except re.error as exc:
            problems.append(f"{location}.extract: '{mapping['extract']}' is not a valid pattern ({exc}).")
    if "map" in mapping and (not isinstance(mapping["map"], Mapping) or not mapping["map"]):
        problems.append(f'{location}.map: must be an object of source value → value, e.g. {{"Active": true}}.')
    if "map_default" in mapping and "map" not in mapping:
        problems.append(f"{location}.map_default: only used together with 'map'.")
    if "value_map" in mapping and (not isinstance(mapping["value_map"], str) or not mapping["value_map"].strip()):
        problems.append(f"{location}.value_map: name the value map, e.g. 'region-subsidiary'.")
    if "as_of" in mapping:
        if "value_map" not in mapping:
            problems.append(f"{location}.as_of: only used together with 'value_map'.")
        _check_mapping(mapping["as_of"], f"{location}.as_of", CanonicalField("date"), {}, {}, problems)
    if "required" in mapping:
        if not isinstance(mapping["required"], bool):
            problems.append(f"{location}.required: must be true or false.")
        elif canon.required and mapping["required"] is False:
            problems.append(f"{location}.required: this canonical field is always required.")
    if "choices" in mapping and (not isinstance(mapping["choices"], list) or not mapping["choices"]):
        problems.append(f"{location}.choices: must be a list of the allowed values.")
    if "label" in mapping and not isinstance(mapping["label"], str):
        problems.append(f"{location}.label: must be a text.")


def _check_list_mapping(mapping: Any, location: str, canon: CanonicalField, siblings: Mapping, problems) -> None:
    if not isinstance(mapping, Mapping) or "each" not in mapping or "fields" not in mapping:
        problems.append(
            f"{location}: a list field needs 'each' (the path of the list) and 'fields' (one mapping per key)."
        )
        return
    for key in mapping:
        if key not in LIST_KEYS:
            problems.append(f"{location}.{key}: not understood; a list field has {', '.join(LIST_KEYS)}.")
    _check_path(mapping["each"], f"{location}.each", problems)
    if not isinstance(mapping["fields"], Mapping):
        problems.append(f"{location}.fields: must be an object of field → mapping.")
        return
    _check_fields(mapping["fields"], canon.fields or {}, "each line", f"{location}.fields", siblings, problems)


# --- applying a profile ----------------------------------------------------------------------------------------


@dataclass
class _Scope:
    event: Any
    item: Any
    item_path: str
    current: Any
    current_path: str
    fetched: Any = _MISSING
    data: dict = field(default_factory=dict)
    failed: set = field(default_factory=set)  # fields of this scope that could not be mapped
    parent: _Scope | None = None

    def child(self, current: Any, current_path: str) -> _Scope:
        return _Scope(self.event, self.item, self.item_path, current, current_path, self.fetched, parent=self)


@dataclass
class _Context:
    on: datetime.date
    errors: list[MappingIssue]
    item: int | None = None
    command: str = ""
    source_event_id: str = ""

    def issue(self, message: str, **details) -> None:
        self.errors.append(
            MappingIssue(message, command=self.command, item=self.item, source_event_id=self.source_event_id, **details)
        )


class _Bad(Exception):
    """A value that cannot be used; the message completes a sentence that starts with the field's label."""

    def __init__(self, message: str, fix: str = "", *, after_colon: bool = False):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.after_colon = after_colon  # a whole sentence of its own, e.g. a value map miss

    def sentence(self, label: str) -> str:
        return f"{label}: {self.message}" if self.after_colon else f"{label} {self.message}"


def apply_profile(
    spec: Mapping,
    payload: Any,
    fetched: Mapping[str, Any] | None = None,
    on: datetime.date | None = None,
    *,
    source_event_id: str = "",
    occurred_at: datetime.datetime | None = None,
) -> ProfileResult:
    """Map one vendor payload to canonical commands; bad input becomes located errors, never an exception.

    `fetched` carries records the sync layer fetched for an earlier result's `needs_fetch`, keyed by
    `FetchRequest.key`. `on` is the date value maps are read at (default: today) unless a field says `as_of`.
    `source_event_id` and `occurred_at` are used when the profile does not read them from the payload.
    """
    result = ProfileResult()
    problems = validate_spec(spec)
    if problems:
        result.errors = [
            MappingIssue(f"The profile cannot be used: {problem}", fix="Correct the profile and publish it again.")
            for problem in problems
        ]
        return result
    if on is None:
        from django.utils import timezone

        on = timezone.localdate()
    fetched = fetched or {}
    root = _Scope(payload, payload, "", payload, "")
    items = [(payload, "")]
    if "each" in spec:
        candidates = spec["each"] if isinstance(spec["each"], list) else [spec["each"]]
        items = next((found for text in candidates if (found := _items(parse_path(text), root)) is not None), None)
        if not items:
            where = " or ".join(f"'{text}'" for text in candidates)
            reason = f"the list at {where} is empty" if items == [] else f"the payload has no list at {where}"
            result.skipped.append(Skip(f"Nothing to read: {reason}.", source_event_id=source_event_id))
            return result
    for index, (item, item_path) in enumerate(items):
        position = index if "each" in spec else None
        scope = _Scope(payload, item, item_path, item, item_path)
        ctx = _Context(on, result.errors, item=position)
        _apply_to_item(spec, scope, ctx, result, fetched, source_event_id, occurred_at)
    return result


def _items(path: Path, scope: _Scope) -> list[tuple[Any, str]] | None:
    found, value, shown = _resolve(path, scope)
    if not found or value is None:
        return None
    if not isinstance(value, list):
        return [(value, shown)]
    if "[*]" in shown:
        head, _, tail = shown.partition("[*]")
        return [(element, f"{head}[{index}]{tail}") for index, element in enumerate(value)]
    return [(element, f"{shown}[{index}]") for index, element in enumerate(value)]


def _apply_to_item(spec, scope: _Scope, ctx: _Context, result: ProfileResult, fetched, event_id, occurred_at) -> None:
    event = spec.get("event", {})
    if event_id and ctx.item is not None:
        event_id = f"{event_id}[{ctx.item}]"
    # The event's own ID and time are reported only for an item that is mapped, not for one that is skipped.
    header = _Context(ctx.on, [], ctx.item)
    if "id" in event:
        kind = CanonicalField("string", False)
        status, value = _evaluate(event["id"], scope, header, "source_event_id", "event.id", kind)
        event_id = value if status == "ok" else event_id
    if "occurred_at" in event:
        kind = CanonicalField("datetime", False)
        status, value = _evaluate(event["occurred_at"], scope, header, "occurred_at", "event.occurred_at", kind)
        occurred_at = value if status == "ok" else occurred_at
    ctx.source_event_id = event_id
    reason = _unmet(spec.get("when", []), scope)
    if reason:
        result.skipped.append(Skip(reason, item=ctx.item, source_event_id=event_id))
        return
    for issue in header.errors:
        issue.source_event_id = event_id
        result.errors.append(issue)
    if "fetch" in spec:
        request = _fetch_request(spec["fetch"], scope, ctx)
        if request is None:
            return
        record = fetched.get(request.key)
        if record is None:
            result.needs_fetch.append(request)
            return
        scope.fetched = record
    for index, command in enumerate(spec["commands"]):
        ctx.command = command["type"]
        reason = _unmet(command.get("when", []), scope)
        if reason:
            result.skipped.append(Skip(reason, command=command["type"], item=ctx.item, source_event_id=event_id))
            continue
        ok, data = _map_fields(
            command["fields"], CANONICAL_COMMANDS[command["type"]], scope, ctx, f"commands[{index}].fields", ""
        )
        if ok:
            result.commands.append(CanonicalCommand(command["type"], data, event_id, occurred_at, ctx.item))
        else:
            result.incomplete.append(CanonicalCommand(command["type"], data, event_id, occurred_at, ctx.item))
    ctx.command = ""


def _fetch_request(fetch: Mapping, scope: _Scope, ctx: _Context) -> FetchRequest | None:
    status, record_id = _evaluate(fetch["id"], scope, ctx, "fetch.id", "fetch.id", CanonicalField("string"))
    failed = status != "ok"
    params = {}
    for name, mapping in fetch.get("params", {}).items():
        status, value = _evaluate(
            mapping, scope, ctx, f"fetch.params.{name}", f"fetch.params.{name}", CanonicalField("string")
        )
        failed = failed or status == "error"
        if status == "ok":
            params[name] = value
    if failed:
        return None
    return FetchRequest(
        fetch["object"], record_id, params, tuple(fetch.get("include", [])), ctx.item, ctx.source_event_id
    )


def _map_fields(
    fields: Mapping, canon: Mapping[str, CanonicalField], scope: _Scope, ctx: _Context, location: str, prefix: str
) -> tuple[bool, dict]:
    """Map every field; amounts in minor units after the fields holding their currency, lists last."""
    scope.data, scope.failed = {}, set()
    failed = scope.failed

    def stage(item) -> int:
        name, mapping = item
        if canon[name].kind == "lines":
            return 2
        return 1 if isinstance(mapping, Mapping) and mapping.get("type") == "minor_units" else 0

    for name, mapping in sorted(fields.items(), key=stage):
        definition = canon[name]
        if definition.kind == "lines":
            status, value = _map_list(mapping, definition, scope, ctx, f"{location}.{name}", f"{prefix}{name}")
        else:
            status, value = _evaluate(mapping, scope, ctx, f"{prefix}{name}", f"{location}.{name}", definition)
        if status == "ok":
            scope.data[name] = value
        elif status == "error":
            failed.add(name)
    return not failed, {name: scope.data[name] for name in fields if name in scope.data}


def _map_list(
    mapping: Mapping, definition: CanonicalField, scope: _Scope, ctx: _Context, location: str, field_name: str
) -> tuple[str, Any]:
    label = mapping.get("label") or _label(field_name)
    items = _items(parse_path(mapping["each"]), scope)
    required = mapping.get("required", definition.required)
    if not items:
        if not required:
            return "absent", None
        _, _, shown = _resolve(parse_path(mapping["each"]), scope)
        ctx.issue(
            f"{label}: the payload has no entries at '{shown}'.",
            field=field_name,
            location=f"{location}.each",
            path=shown,
            fix="Check that the source system sends the lines, or correct the path in the profile.",
        )
        return "error", None
    lines, failed = [], False
    for index, (element, element_path) in enumerate(items):
        child = scope.child(element, element_path)
        ok, data = _map_fields(
            mapping["fields"], definition.fields or {}, child, ctx, f"{location}.fields", f"{field_name}[{index}]."
        )
        failed = failed or not ok
        lines.append(data)
    return ("error", None) if failed else ("ok", lines)


def _evaluate(
    mapping: Any, scope: _Scope, ctx: _Context, field_name: str, location: str, definition: CanonicalField
) -> tuple[str, Any]:
    """Read, clean, translate and convert one value: ('ok', value), ('absent', None) or ('error', None)."""
    if isinstance(mapping, str):
        mapping = {"path": mapping}
    label = mapping.get("label") or _label(field_name)
    found, raw, shown = _read(mapping, scope)
    if not found and "default" in mapping:
        found, raw, shown = True, mapping["default"], f"{shown} (default)"
    if not found:
        if mapping.get("required", definition.required):
            where = f"at '{shown}'" if shown else "in the payload"
            ctx.issue(
                f"{label} is required, but the payload has no value {where}.",
                field=field_name,
                location=location,
                path=shown,
                fix="Check that the source system sends this value, or give the field a default in the profile.",
            )
            return "error", None
        return "absent", None
    try:
        value = _clean(mapping, raw)
        if "value_map" in mapping:
            value = _translate(mapping, value, scope, ctx)
        value_type = mapping.get("type", definition.default_type)
        value = _convert(value_type, value, mapping, scope, ctx)
        value = _check_allowed(value, mapping, definition)
    except _Bad as exc:
        ctx.issue(exc.sentence(label), field=field_name, location=location, path=shown, fix=exc.fix, value=_shown(raw))
        return "error", None
    except (InvalidOperation, OverflowError):
        message = f"{label} '{_shown(raw)}' is too large or too precise to be an amount or quantity."
        ctx.issue(message, field=field_name, location=location, path=shown, value=_shown(raw))
        return "error", None
    except _Cascade:
        return "error", None
    return "ok", value


class _Cascade(Exception):
    """A value that cannot be converted because another field already failed (reported there, not twice)."""


def _read(mapping: Mapping, scope: _Scope) -> tuple[bool, Any, str]:
    if "const" in mapping:
        return mapping["const"] is not None, mapping["const"], ""
    if "template" in mapping:
        template = mapping["template"]
        values = {}
        for text in TEMPLATE_PLACEHOLDER.findall(template):
            found, value, shown = _resolve(parse_path(text), scope)
            if not found or not _present(value) or isinstance(value, (dict, list)):
                return False, None, shown
            values[text] = _text(value)
        return True, TEMPLATE_PLACEHOLDER.sub(lambda match: values[match[1]], template), template
    paths = mapping["path"] if isinstance(mapping["path"], list) else [mapping["path"]]
    tried = []
    for text in paths:
        found, value, shown = _resolve(parse_path(text), scope)
        tried.append(shown)
        if found and _present(value):
            return True, value, shown
    return False, None, " or ".join(tried)


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return True


def _clean(mapping: Mapping, value: Any) -> Any:
    if "extract" in mapping:
        match = re.search(str(mapping["extract"]), _text(value))
        if match is None:
            raise _Bad(f"'{_shown(value)}' does not contain the expected part (pattern {mapping['extract']}).")
        value = match[1] if match.groups() else match[0]
    transforms = mapping.get("transform", [])
    for name in [transforms] if isinstance(transforms, str) else transforms:
        if isinstance(value, str):
            value = TRANSFORMS[name](value)
    if "map" in mapping:
        table = mapping["map"]
        key = _text(value)
        if key in table:
            value = table[key]
        elif "map_default" in mapping:
            value = mapping["map_default"]
        else:
            known = ", ".join(f"'{name}'" for name in table)
            raise _Bad(
                f"'{key}' is not a value this profile knows (known: {known}).",
                fix="Add the value to the profile's 'map', or correct it in the source system.",
            )
    return value


def _translate(mapping: Mapping, value: Any, scope: _Scope, ctx: _Context) -> str:
    from apps.mapping.services import value_map_lookup

    on = ctx.on
    if "as_of" in mapping:
        inner = _Context(ctx.on, [], ctx.item, ctx.command, ctx.source_event_id)
        status, as_of = _evaluate(mapping["as_of"], scope, inner, "as_of", "as_of", CanonicalField("date", False))
        if status == "error":
            raise _Bad(inner.errors[0].message, inner.errors[0].fix, after_colon=True)
        on = as_of or on
    try:
        return value_map_lookup(str(mapping["value_map"]), value, on=on)
    except BusinessError as exc:
        raise _Bad(exc.message, exc.fix, after_colon=True) from None


def _convert(value_type: str, value: Any, mapping: Mapping, scope: _Scope, ctx: _Context) -> Any:
    if value_type == "string":
        if isinstance(value, (dict, list)):
            raise _Bad(f"'{_shown(value)}' is a group of values, not a single text.")
        return _text(value)
    if value_type == "int":
        number = _number(value)
        if number is None or number != number.to_integral_value():
            raise _Bad(f"'{_shown(value)}' is not a whole number.")
        return int(number)
    if value_type == "decimal":
        number = _number(value)
        if number is None:
            raise _Bad(f"'{_shown(value)}' is not a number.", fix="Correct the value in the source system.")
        if "divide_by" in mapping:
            number = number / _number(mapping["divide_by"])
        if "multiply_by" in mapping:
            number = number * _number(mapping["multiply_by"])
        if "places" in mapping:
            number = number.quantize(Decimal(1).scaleb(-mapping["places"]), rounding=ROUND_HALF_UP)
        return number
    if value_type == "minor_units":
        number = _number(value)
        if number is None or number != number.to_integral_value():
            raise _Bad(f"'{_shown(value)}' is not a whole number of minor units (cents).")
        currency = _currency_for(mapping, scope, ctx)
        amount = from_minor_units(number, currency)
        if "places" in mapping:
            amount = amount.quantize(Decimal(1).scaleb(-mapping["places"]), rounding=ROUND_HALF_UP)
        return amount
    if value_type == "boolean":
        if isinstance(value, bool):
            return value
        word = _text(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise _Bad(f"'{_shown(value)}' is not a yes/no value (true or false).")
    if value_type == "date":
        return _date(value, mapping)
    if value_type == "datetime":
        return _datetime(value, mapping)
    raise _Bad(f"has an unknown type '{value_type}'.")  # validate_spec refuses this first


def _currency_for(mapping: Mapping, scope: _Scope, ctx: _Context) -> str:
    reference = mapping["currency"]
    if isinstance(reference, str):
        holder = scope
        while holder is not None and reference not in holder.data and reference not in holder.failed:
            holder = holder.parent
        if holder is not None and reference in holder.failed:
            raise _Cascade()
        if holder is None:
            raise _Bad(f"cannot be read: it is in minor units (cents) and its currency ('{reference}') has no value.")
        return holder.data[reference]
    inner = _Context(ctx.on, [], ctx.item, ctx.command, ctx.source_event_id)
    status, code = _evaluate(reference, scope, inner, "currency", "currency", CanonicalField("currency"))
    if status != "ok":
        message = inner.errors[0].message if inner.errors else "its currency has no value"
        raise _Bad(f"cannot be read: it is in minor units (cents) and {message[0].lower()}{message[1:]}")
    return code


def _check_allowed(value: Any, mapping: Mapping, definition: CanonicalField) -> Any:
    if definition.kind == "currency":
        code = value.strip().upper() if isinstance(value, str) else value
        if code not in MINOR_UNITS:
            raise _Bad(
                f"'{_shown(value)}' is not a currency code this product knows (ISO 4217, e.g. USD, EUR, GBP).",
                fix="Correct the currency in the source system, or translate it with a value map.",
            )
        value = code
    choices = mapping.get("choices") or definition.choices
    if choices and value not in choices:
        raise _Bad(
            f"'{_shown(value)}' is not one of the allowed values: {', '.join(str(choice) for choice in choices)}.",
            fix="Correct the value in the source system, or translate it with a 'map' or value map in the profile.",
        )
    return value


def _zone(mapping: Mapping) -> datetime.tzinfo:
    return ZoneInfo(mapping["timezone"]) if "timezone" in mapping else datetime.UTC


def _moment(value: Any, mapping: Mapping, expect: str) -> datetime.datetime | datetime.date:
    """A date or an aware datetime from ISO text, epoch seconds/milliseconds or a strptime pattern."""
    value_format = mapping.get("format", "iso")
    if value_format in ("epoch_s", "epoch_ms"):
        number = _number(value)
        unit = "seconds" if value_format == "epoch_s" else "milliseconds"
        if number is None:
            raise _Bad(f"'{_shown(value)}' is not {expect}: expected a number of {unit} since 1970.")
        if value_format == "epoch_ms":
            number = number / 1000
        try:
            return datetime.datetime.fromtimestamp(float(number), tz=datetime.UTC)
        except (OverflowError, OSError, ValueError):
            hint = " (is it in milliseconds?)" if value_format == "epoch_s" else ""
            raise _Bad(f"'{_shown(value)}' is not {expect}: it is not a time in {unit} since 1970{hint}.") from None
    if isinstance(value, datetime.datetime | datetime.date):
        return value
    text = _text(value).strip()
    if value_format != "iso":
        try:
            return datetime.datetime.strptime(text, value_format)
        except ValueError:
            raise _Bad(f"'{text}' is not {expect} in the format {value_format}.") from None
    try:
        if len(text) == 10:
            return datetime.date.fromisoformat(text)
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        example = "2026-03-31" if expect == "a date" else "2026-03-31T14:30:00Z"
        raise _Bad(f"'{text}' is not {expect} (expected ISO 8601, e.g. {example}).") from None


def _date(value: Any, mapping: Mapping) -> datetime.date:
    moment = _moment(value, mapping, "a date")
    if isinstance(moment, datetime.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(_zone(mapping))
        return moment.date()
    return moment


def _datetime(value: Any, mapping: Mapping) -> datetime.datetime:
    moment = _moment(value, mapping, "a date and time")
    if not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.combine(moment, datetime.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(mapping))
    return moment.astimezone(datetime.UTC)


# --- conditions ------------------------------------------------------------------------------------------------


def _unmet(conditions: list, scope: _Scope) -> str:
    """'' when every condition holds, else why the first one does not."""
    for condition in conditions:
        reason = _check(condition, scope)
        if reason:
            return reason
    return ""


def _check(condition: Mapping, scope: _Scope) -> str:
    description = condition.get("description", "")
    if "all" in condition:
        reason = _unmet(condition["all"], scope)
        return f"{description}: {reason}" if reason and description else reason
    if "any" in condition:
        reasons = []
        for inner in condition["any"]:
            reason = _check(inner, scope)
            if not reason:
                return ""
            reasons.append(reason)
        return f"{description or 'None of the alternatives holds'}: " + "; or ".join(reasons)
    if "not" in condition:
        if _check(condition["not"], scope):
            return ""
        return description or f"Excluded by a 'not' condition on '{condition['not'].get('path', '…')}'."
    found, value, shown = _resolve(parse_path(condition["path"]), scope)
    present = found and value is not None
    operator = next(key for key in condition if key in OPERATORS)
    operand = condition[operator]
    ignore_case = condition.get("ignore_case", False)
    if _holds(operator, operand, value if present else _MISSING, ignore_case):
        return ""
    actual = f"'{shown}' is {_shown(value, quote=True)}" if present else f"'{shown}' has no value"
    expected = _expectation(operator, operand)
    detail = f"{actual}, {expected}"
    return f"{description}: {detail}" if description else f"Condition not met: {detail}"


def _expectation(operator: str, operand: Any) -> str:
    if operator in ("in", "not_in"):
        choices = ", ".join(_shown(choice, quote=True) for choice in operand)
        return f"expected one of {choices}" if operator == "in" else f"expected none of {choices}"
    if operator == "exists":
        return "expected a value" if operand else "expected no value"
    return {
        "equals": f"expected {_shown(operand, quote=True)}",
        "not_equals": f"expected anything but {_shown(operand, quote=True)}",
        "contains": f"expected it to contain {_shown(operand, quote=True)}",
        "matches": f"expected it to match {operand}",
        "gt": f"expected more than {operand}",
        "gte": f"expected at least {operand}",
        "lt": f"expected less than {operand}",
        "lte": f"expected at most {operand}",
    }[operator]


def _holds(operator: str, operand: Any, value: Any, ignore_case: bool) -> bool:
    missing = value is _MISSING
    if operator == "exists":
        return (not missing and _present(value)) == operand
    if operator == "not_equals":
        return missing or not _equal(value, operand, ignore_case)
    if operator == "not_in":
        return missing or not any(_equal(value, choice, ignore_case) for choice in operand)
    if missing:
        return False
    if operator == "equals":
        return _equal(value, operand, ignore_case)
    if operator == "in":
        return any(_equal(value, choice, ignore_case) for choice in operand)
    if operator == "contains":
        if isinstance(value, list):
            return any(_equal(element, operand, ignore_case) for element in value)
        if isinstance(value, str):
            return _fold(str(operand), ignore_case) in _fold(value, ignore_case)
        return False
    if operator == "matches":
        if isinstance(value, (dict, list)):
            return False
        return re.search(str(operand), _text(value), re.IGNORECASE if ignore_case else 0) is not None
    number, limit = _number(value), _number(operand)
    if number is None or limit is None:
        return False
    return {"gt": number > limit, "gte": number >= limit, "lt": number < limit, "lte": number <= limit}[operator]


def _equal(value: Any, operand: Any, ignore_case: bool) -> bool:
    if isinstance(value, bool) or isinstance(operand, bool):
        return value is operand
    if isinstance(value, (int, float, Decimal)) and isinstance(operand, (int, float, Decimal)):
        return _number(value) == _number(operand)
    if isinstance(value, (dict, list)) or isinstance(operand, (dict, list)):
        return value == operand
    return _fold(_text(value), ignore_case) == _fold(_text(operand), ignore_case)


def _fold(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


# --- small helpers ---------------------------------------------------------------------------------------------


def _number(value: Any) -> Decimal | None:
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


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _shown(value: Any, *, quote: bool = False, limit: int = 80) -> str:
    if isinstance(value, (dict, list)):
        text = json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True)
    else:
        text = _text(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if quote and not isinstance(value, (bool, int, float, Decimal, dict, list)):
        return f"'{text}'"
    return text


def _label(field_name: str) -> str:
    """'close_date' → 'Close date'; 'lines[1].tax_amount' → 'Line 2 tax amount'."""
    match = re.fullmatch(r"(\w+)\[(\d+)\]\.(\w+)", field_name)
    if match:
        return f"{match[1].rstrip('s').capitalize()} {int(match[2]) + 1} {match[3].replace('_', ' ')}"
    text = re.sub(r"\bid\b", "ID", field_name.replace("_", " ").replace(".", " "))
    return text[:1].upper() + text[1:]


# --- selecting a profile ---------------------------------------------------------------------------------------


def profile_matches(spec: Mapping, *, vendor: str, event_type: str, schema_version: str = "") -> bool:
    """Does this profile read this vendor's event type (glob patterns allowed) at this schema version?"""
    if str(spec.get("vendor", "")).strip().lower() != str(vendor).strip().lower():
        return False
    patterns = spec.get("event_types")
    if not isinstance(patterns, list) or not any(fnmatch.fnmatchcase(event_type, str(name)) for name in patterns):
        return False
    wanted = str(spec.get("schema_version", "") or "")
    return not wanted or fnmatch.fnmatchcase(str(schema_version or ""), wanted)


# --- splitting a delivery into events --------------------------------------------------------------------------


class UnreadableDelivery(MappingError):
    """A delivery whose body cannot be cut into events (not JSON, or not the vendor's envelope)."""

    code = "unreadable_delivery"


@dataclass(frozen=True)
class DeliveredEvent:
    """One event of a delivery: its type, the key it is deduplicated on, and its part of the body."""

    event_type: str
    idempotency_key: str
    payload: Any
    vendor_event_id: str = ""
    schema_version: str = ""
    occurred_at: datetime.datetime | None = None
    position: int = 0


def canonical_hash(value: Any) -> str:
    """SHA-256 of an event in canonical JSON (sorted keys, no spaces, UTF-8), for vendors that send no event ID."""
    text = json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_delivery(scheme: str, body: Any, *, headers: Mapping[str, str] | None = None) -> list[DeliveredEvent]:
    """Cut one delivery into events with their idempotency keys; raises UnreadableDelivery for a body it cannot read.

    `body` is the raw bytes/text or the already-parsed JSON. `scheme` is the vendor's delivery format, one of
    DELIVERY_SCHEMES.
    """
    splitter = _SPLITTERS.get(scheme)
    if splitter is None:
        raise ValueError(f"Unknown delivery scheme {scheme!r}; expected one of {', '.join(DELIVERY_SCHEMES)}.")
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UnreadableDelivery(
                "The delivery is not valid JSON, so its events cannot be read.",
                fix="Ask the sender to post JSON (Content-Type: application/json).",
                technical=str(exc),
            ) from None
    lowered = {str(key).lower(): str(value) for key, value in (headers or {}).items()}
    try:
        events = splitter(body, lowered)
    except (AttributeError, KeyError, TypeError, IndexError) as exc:
        raise UnreadableDelivery(
            f"The delivery does not have the shape a {scheme} delivery has, so its events cannot be read.",
            fix="Check that the connected system's delivery scheme matches what the vendor sends.",
            technical=f"{type(exc).__name__}: {exc}",
        ) from None
    keys = [event.idempotency_key for event in events]
    # Two events of one delivery with the same key are one event delivered twice; keep the first.
    unique = [event for index, event in enumerate(events) if event.idempotency_key not in keys[:index]]
    return [dataclasses.replace(event, position=position) for position, event in enumerate(unique)]


def _as_list(body: Any) -> list:
    return body if isinstance(body, list) else [body]


def _epoch(value: Any, *, millis: bool = False) -> datetime.datetime | None:
    number = _number(value)
    if number is None:
        return None
    try:
        return datetime.datetime.fromtimestamp(float(number / 1000 if millis else number), tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _iso(value: Any) -> datetime.datetime | None:
    try:
        return _datetime(value, {})
    except _Bad:
        return None


def _split_standard_webhooks(body, headers) -> list[DeliveredEvent]:
    webhook_id = headers.get("webhook-id", "")
    key = f"webhook-id:{webhook_id}" if webhook_id else f"sha256:{canonical_hash(body)}"
    occurred = _epoch(headers.get("webhook-timestamp")) or _iso(body.get("timestamp"))
    return [DeliveredEvent(str(body.get("type", "")), key, body, webhook_id, "", occurred)]


def _split_stripe(body, headers) -> list[DeliveredEvent]:
    return [
        DeliveredEvent(
            body["type"],
            f"stripe:{body['id']}",
            body,
            body["id"],
            str(body.get("api_version") or ""),
            _epoch(body.get("created")),
        )
    ]


def _split_chargebee(body, headers) -> list[DeliveredEvent]:
    return [
        DeliveredEvent(
            body["event_type"],
            f"chargebee:{body['id']}",
            body,
            body["id"],
            str(body.get("api_version") or ""),
            _epoch(body.get("occurred_at")),
        )
    ]


HUBSPOT_KEY_FIELDS = (
    "portalId", "subscriptionType", "objectTypeId", "objectId", "occurredAt", "eventId", "propertyName",
    "propertyValue", "changeFlag", "associationType", "fromObjectId", "toObjectId", "primaryObjectId",
    "mergedObjectIds",
)  # fmt: skip


def _split_hubspot(body, headers) -> list[DeliveredEvent]:
    # HubSpot documents eventId as "not guaranteed to be unique", and a retry repeats the event with a higher
    # attemptNumber, so the key is a hash of what identifies the change itself, never the attempt.
    events = []
    for event in _as_list(body):
        composite = {name: event[name] for name in HUBSPOT_KEY_FIELDS if name in event}
        events.append(
            DeliveredEvent(
                event["subscriptionType"],
                f"hubspot:{canonical_hash(composite)}",
                event,
                str(event.get("eventId", "")),
                "",
                _epoch(event.get("occurredAt"), millis=True),
            )
        )
    return events


def _split_salesforce(body, headers) -> list[DeliveredEvent]:
    if isinstance(body, Mapping) and isinstance(body.get("events"), list):
        return [_salesforce_pubsub_event(body, event) for event in body["events"]]
    return [_salesforce_cometd_event(message) for message in _as_list(body)]


def _salesforce_cometd_event(message: Mapping) -> DeliveredEvent:
    data = message.get("data", message) if "payload" not in message else message
    payload, event = data["payload"], data.get("event", {})
    channel = str(message.get("channel", ""))
    replay_id = str(event.get("replayId", ""))
    header = payload.get("ChangeEventHeader")
    if header is not None:
        event_type = _salesforce_change_event_type(channel, header)
        key, vendor_id = _salesforce_change_key(header, channel, replay_id, message)
        occurred = _epoch(header.get("commitTimestamp"), millis=True)
    else:
        event_type = channel.rsplit("/", 1)[-1] or str(data.get("schema", ""))
        uuid = event.get("EventUuid") or payload.get("EventUuid")
        key, vendor_id = _salesforce_platform_key(uuid, channel, replay_id, message)
        occurred = _iso(payload.get("CreatedDate"))
    return DeliveredEvent(event_type, key, message, vendor_id, "", occurred)


def _salesforce_pubsub_event(response: Mapping, consumer_event: Mapping) -> DeliveredEvent:
    topic = str(response.get("topic_name", ""))
    producer = consumer_event["event"]
    payload = producer["payload"]
    replay_id = str(consumer_event.get("replay_id", ""))
    part = {"topic_name": topic, **consumer_event}
    header = payload.get("ChangeEventHeader")
    if header is not None:
        event_type = _salesforce_change_event_type(topic, header)
        key, vendor_id = _salesforce_change_key(header, topic, replay_id, part)
        occurred = _epoch(header.get("commitTimestamp"), millis=True)
    else:
        event_type = topic.rsplit("/", 1)[-1]
        key, vendor_id = _salesforce_platform_key(producer.get("id"), topic, replay_id, part)
        occurred = _epoch(payload.get("CreatedDate"), millis=True)
    return DeliveredEvent(event_type, key, part, vendor_id, "", occurred)


def _salesforce_change_event_type(channel: str, header: Mapping) -> str:
    name = channel.rsplit("/", 1)[-1]
    if name.endswith("ChangeEvent"):
        return name
    entity = str(header.get("entityName", ""))
    return f"{entity[:-1]}ChangeEvent" if entity.endswith("__c") else f"{entity}ChangeEvent"


def _salesforce_change_key(header: Mapping, channel: str, replay_id: str, part: Any) -> tuple[str, str]:
    transaction, sequence = header.get("transactionKey"), header.get("sequenceNumber")
    if transaction and sequence is not None:
        return f"salesforce:cdc:{transaction}:{sequence}", f"{transaction}:{sequence}"
    if replay_id:
        return f"salesforce:replay:{channel}:{replay_id}", replay_id
    return f"sha256:{canonical_hash(part)}", ""


def _salesforce_platform_key(uuid: Any, channel: str, replay_id: str, part: Any) -> tuple[str, str]:
    if uuid:
        return f"salesforce:event:{uuid}", str(uuid)
    if replay_id:
        return f"salesforce:replay:{channel}:{replay_id}", replay_id
    return f"sha256:{canonical_hash(part)}", ""


def _split_microsoft_graph(body, headers) -> list[DeliveredEvent]:
    events = []
    for notification in body["value"]:
        resource = str(notification.get("resource", ""))
        segments = [segment for segment in resource.split("/") if segment]
        entity_set = segments[-1].split("(", 1)[0] if segments else ""
        version = next((segment for segment in segments if re.fullmatch(r"v\d+(\.\d+)?|beta", segment)), "")
        event_type = f"{entity_set}.{notification.get('changeType', '')}"
        events.append(
            DeliveredEvent(
                event_type,
                f"sha256:{canonical_hash(notification)}",
                notification,
                "",
                version,
                _iso(notification.get("lastModifiedDateTime")),
            )
        )
    return events


def _split_bamboohr(body, headers) -> list[DeliveredEvent]:
    if "employees" in body:
        return [
            DeliveredEvent(
                f"employee_with_fields.{str(employee.get('action', '')).lower()}",
                f"sha256:{canonical_hash(employee)}",
                employee,
                "",
                "",
                _iso(employee.get("timestamp")),
            )
            for employee in body["employees"]
        ]
    return [DeliveredEvent(body["type"], f"sha256:{canonical_hash(body)}", body, "", "", _iso(body.get("timestamp")))]


def _split_kantata(body, headers) -> list[DeliveredEvent]:
    # An API page: 'results' lists [{key, id}] in order, each object lives under body[key][id]. Each event
    # keeps the side-loaded collections so a profile can follow workspace_id, user_id… to them.
    collections = {key: value for key, value in body.items() if key not in ("count", "meta", "results")}
    events = []
    for reference in body["results"]:
        record = body[reference["key"]][str(reference["id"])]
        changed = record.get("updated_at")
        key = (
            f"kantata:{reference['key']}:{reference['id']}:{changed}" if changed else f"sha256:{canonical_hash(record)}"
        )
        events.append(
            DeliveredEvent(
                reference["key"], key, {"record": record, **collections}, str(reference["id"]), "v1", _iso(changed)
            )
        )
    return events


def _split_netsuite(body, headers) -> list[DeliveredEvent]:
    record = body["record"]
    event_type = f"{body['recordType']}.{body['type']}"
    changed = record.get("lastModifiedDate")
    key = f"netsuite:{body['recordType']}:{body['id']}:{changed}" if changed else f"sha256:{canonical_hash(body)}"
    return [DeliveredEvent(event_type, key, body, str(body["id"]), "", _iso(changed))]


def _split_generic(body, headers) -> list[DeliveredEvent]:
    return [
        DeliveredEvent(
            str(event.get("type", "") if isinstance(event, Mapping) else ""), f"sha256:{canonical_hash(event)}", event
        )
        for event in _as_list(body)
    ]


_SPLITTERS = {
    "standard-webhooks": _split_standard_webhooks,
    "stripe": _split_stripe,
    "chargebee": _split_chargebee,
    "hubspot": _split_hubspot,
    "salesforce": _split_salesforce,
    "microsoft-graph": _split_microsoft_graph,
    "bamboohr": _split_bamboohr,
    "kantata": _split_kantata,
    "netsuite": _split_netsuite,
    "generic": _split_generic,
}
DELIVERY_SCHEMES = tuple(_SPLITTERS)
