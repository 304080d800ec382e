"""`apply_profile(spec, payload, fetched=None, on=None)`: one vendor payload → canonical commands, skips with a reason,
fetch requests for thin notifications, and every mapping error found; bad input never raises.

Value-map lookups (apps.mapping.services) are the only database reads; nothing here writes.
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from apps.core.errors import BusinessError
from apps.core.money import MINOR_UNITS, from_minor_units
from apps.mapping.services import value_map_lookup

from .catalogue import CANONICAL_COMMANDS, FALSE_WORDS, TEMPLATE_PLACEHOLDER, TRANSFORMS, TRUE_WORDS, CanonicalField
from .conditions import unmet
from .paths import Path, Scope, parse_path, resolve
from .results import CanonicalCommand, FetchRequest, MappingIssue, ProfileResult, Skip
from .validation import validate_spec
from .values import BadValue, as_date, as_datetime, as_number, as_text, display, is_present


@dataclass
class _Context:
    """The item and command being mapped, the date value maps are read at, and the list its issues go to."""

    on: datetime.date
    errors: list[MappingIssue]
    item: int | None = None
    command: str = ""
    source_event_id: str = ""

    def issue(self, message: str, **details) -> None:
        self.errors.append(
            MappingIssue(message, command=self.command, item=self.item, source_event_id=self.source_event_id, **details)
        )


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
        on = timezone.localdate()
    fetched = fetched or {}
    root = Scope(payload, payload, "", payload, "")
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
        scope = Scope(payload, item, item_path, item, item_path)
        ctx = _Context(on, result.errors, item=position)
        _apply_to_item(spec, scope, ctx, result, fetched, source_event_id, occurred_at)
    return result


def _items(path: Path, scope: Scope) -> list[tuple[Any, str]] | None:
    found, value, shown = resolve(path, scope)
    if not found or value is None:
        return None
    if not isinstance(value, list):
        return [(value, shown)]
    if "[*]" in shown:
        head, _, tail = shown.partition("[*]")
        return [(element, f"{head}[{index}]{tail}") for index, element in enumerate(value)]
    return [(element, f"{shown}[{index}]") for index, element in enumerate(value)]


def _apply_to_item(spec, scope: Scope, ctx: _Context, result: ProfileResult, fetched, event_id, occurred_at) -> None:
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
    reason = unmet(spec.get("when", []), scope)
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
        reason = unmet(command.get("when", []), scope)
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


def _fetch_request(fetch: Mapping, scope: Scope, ctx: _Context) -> FetchRequest | None:
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
    fields: Mapping, canon: Mapping[str, CanonicalField], scope: Scope, ctx: _Context, location: str, prefix: str
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
    mapping: Mapping, definition: CanonicalField, scope: Scope, ctx: _Context, location: str, field_name: str
) -> tuple[str, Any]:
    label = mapping.get("label") or _label(field_name)
    items = _items(parse_path(mapping["each"]), scope)
    required = mapping.get("required", definition.required)
    if not items:
        if not required:
            return "absent", None
        _, _, shown = resolve(parse_path(mapping["each"]), scope)
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
    mapping: Any, scope: Scope, ctx: _Context, field_name: str, location: str, definition: CanonicalField
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
    except BadValue as exc:
        ctx.issue(exc.sentence(label), field=field_name, location=location, path=shown, fix=exc.fix, value=display(raw))
        return "error", None
    except (InvalidOperation, OverflowError):
        message = f"{label} '{display(raw)}' is too large or too precise to be an amount or quantity."
        ctx.issue(message, field=field_name, location=location, path=shown, value=display(raw))
        return "error", None
    except _Cascade:
        return "error", None
    return "ok", value


class _Cascade(Exception):
    """A value that cannot be converted because another field already failed (reported there, not twice)."""


def _read(mapping: Mapping, scope: Scope) -> tuple[bool, Any, str]:
    if "const" in mapping:
        return mapping["const"] is not None, mapping["const"], ""
    if "template" in mapping:
        template = mapping["template"]
        values = {}
        for text in TEMPLATE_PLACEHOLDER.findall(template):
            found, value, shown = resolve(parse_path(text), scope)
            if not found or not is_present(value) or isinstance(value, (dict, list)):
                return False, None, shown
            values[text] = as_text(value)
        return True, TEMPLATE_PLACEHOLDER.sub(lambda match: values[match[1]], template), template
    paths = mapping["path"] if isinstance(mapping["path"], list) else [mapping["path"]]
    tried = []
    for text in paths:
        found, value, shown = resolve(parse_path(text), scope)
        tried.append(shown)
        if found and is_present(value):
            return True, value, shown
    return False, None, " or ".join(tried)


def _clean(mapping: Mapping, value: Any) -> Any:
    if "extract" in mapping:
        match = re.search(str(mapping["extract"]), as_text(value))
        if match is None:
            raise BadValue(f"'{display(value)}' does not contain the expected part (pattern {mapping['extract']}).")
        value = match[1] if match.groups() else match[0]
    transforms = mapping.get("transform", [])
    for name in [transforms] if isinstance(transforms, str) else transforms:
        if isinstance(value, str):
            value = TRANSFORMS[name](value)
    if "map" in mapping:
        table = mapping["map"]
        key = as_text(value)
        if key in table:
            value = table[key]
        elif "map_default" in mapping:
            value = mapping["map_default"]
        else:
            known = ", ".join(f"'{name}'" for name in table)
            raise BadValue(
                f"'{key}' is not a value this profile knows (known: {known}).",
                fix="Add the value to the profile's 'map', or correct it in the source system.",
            )
    return value


def _translate(mapping: Mapping, value: Any, scope: Scope, ctx: _Context) -> str:
    on = ctx.on
    if "as_of" in mapping:
        inner = _Context(ctx.on, [], ctx.item, ctx.command, ctx.source_event_id)
        status, as_of = _evaluate(mapping["as_of"], scope, inner, "as_of", "as_of", CanonicalField("date", False))
        if status == "error":
            raise BadValue(inner.errors[0].message, inner.errors[0].fix, after_colon=True)
        on = as_of or on
    try:
        return value_map_lookup(str(mapping["value_map"]), value, on=on)
    except BusinessError as exc:
        raise BadValue(exc.message, exc.fix, after_colon=True) from None


def _convert(value_type: str, value: Any, mapping: Mapping, scope: Scope, ctx: _Context) -> Any:
    if value_type == "string":
        if isinstance(value, (dict, list)):
            raise BadValue(f"'{display(value)}' is a group of values, not a single text.")
        return as_text(value)
    if value_type == "int":
        number = as_number(value)
        if number is None or number != number.to_integral_value():
            raise BadValue(f"'{display(value)}' is not a whole number.")
        return int(number)
    if value_type == "decimal":
        number = as_number(value)
        if number is None:
            raise BadValue(f"'{display(value)}' is not a number.", fix="Correct the value in the source system.")
        if "divide_by" in mapping:
            number = number / as_number(mapping["divide_by"])
        if "multiply_by" in mapping:
            number = number * as_number(mapping["multiply_by"])
        if "places" in mapping:
            number = number.quantize(Decimal(1).scaleb(-mapping["places"]), rounding=ROUND_HALF_UP)
        return number
    if value_type == "minor_units":
        number = as_number(value)
        if number is None or number != number.to_integral_value():
            raise BadValue(f"'{display(value)}' is not a whole number of minor units (cents).")
        currency = _currency_for(mapping, scope, ctx)
        amount = from_minor_units(number, currency)
        if "places" in mapping:
            amount = amount.quantize(Decimal(1).scaleb(-mapping["places"]), rounding=ROUND_HALF_UP)
        return amount
    if value_type == "boolean":
        if isinstance(value, bool):
            return value
        word = as_text(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise BadValue(f"'{display(value)}' is not a yes/no value (true or false).")
    if value_type == "date":
        return as_date(value, mapping)
    if value_type == "datetime":
        return as_datetime(value, mapping)
    raise BadValue(f"has an unknown type '{value_type}'.")  # validate_spec refuses this first


def _currency_for(mapping: Mapping, scope: Scope, ctx: _Context) -> str:
    reference = mapping["currency"]
    if isinstance(reference, str):
        holder = scope
        while holder is not None and reference not in holder.data and reference not in holder.failed:
            holder = holder.parent
        if holder is not None and reference in holder.failed:
            raise _Cascade()
        if holder is None:
            raise BadValue(
                f"cannot be read: it is in minor units (cents) and its currency ('{reference}') has no value."
            )
        return holder.data[reference]
    inner = _Context(ctx.on, [], ctx.item, ctx.command, ctx.source_event_id)
    status, code = _evaluate(reference, scope, inner, "currency", "currency", CanonicalField("currency"))
    if status != "ok":
        message = inner.errors[0].message if inner.errors else "its currency has no value"
        raise BadValue(f"cannot be read: it is in minor units (cents) and {message[0].lower()}{message[1:]}")
    return code


def _check_allowed(value: Any, mapping: Mapping, definition: CanonicalField) -> Any:
    if definition.kind == "currency":
        code = value.strip().upper() if isinstance(value, str) else value
        if code not in MINOR_UNITS:
            raise BadValue(
                f"'{display(value)}' is not a currency code this product knows (ISO 4217, e.g. USD, EUR, GBP).",
                fix="Correct the currency in the source system, or translate it with a value map.",
            )
        value = code
    choices = mapping.get("choices") or definition.choices
    if choices and value not in choices:
        raise BadValue(
            f"'{display(value)}' is not one of the allowed values: {', '.join(str(choice) for choice in choices)}.",
            fix="Correct the value in the source system, or translate it with a 'map' or value map in the profile.",
        )
    return value


def _label(field_name: str) -> str:
    """'close_date' → 'Close date'; 'lines[1].tax_amount' → 'Line 2 tax amount'."""
    match = re.fullmatch(r"(\w+)\[(\d+)\]\.(\w+)", field_name)
    if match:
        return f"{match[1].rstrip('s').capitalize()} {int(match[2]) + 1} {match[3].replace('_', ' ')}"
    text = re.sub(r"\bid\b", "ID", field_name.replace("_", " ").replace(".", " "))
    return text[:1].upper() + text[1:]


def profile_matches(spec: Mapping, *, vendor: str, event_type: str, schema_version: str = "") -> bool:
    """Does this profile read this vendor's event type (glob patterns allowed) at this schema version?"""
    if str(spec.get("vendor", "")).strip().lower() != str(vendor).strip().lower():
        return False
    patterns = spec.get("event_types")
    if not isinstance(patterns, list) or not any(fnmatch.fnmatchcase(event_type, str(name)) for name in patterns):
        return False
    wanted = str(spec.get("schema_version", "") or "")
    return not wanted or fnmatch.fnmatchcase(str(schema_version or ""), wanted)
