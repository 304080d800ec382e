"""`validate_spec(spec)`: everything wrong with a profile, each message saying where ('commands[0].fields.amount: …').

Pure: it reads only the catalogue and the path language, so models and services can both use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .catalogue import (
    CANONICAL_COMMANDS,
    DATE_FORMATS,
    DELIVERY_SCHEMES,
    KIND_TYPES,
    LIST_KEYS,
    MAPPING_KEYS,
    OPERATORS,
    SPEC_KEYS,
    SPEC_VERSION,
    TEMPLATE_PLACEHOLDER,
    TRANSFORMS,
    VALUE_TYPES,
    CanonicalField,
)
from .paths import PathError, parse_path
from .values import as_number


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
    sensitive_paths = spec.get("sensitive", [])
    if not (isinstance(sensitive_paths, list) and all(isinstance(p, str) and p.strip() for p in sensitive_paths)):
        problems.append(
            "sensitive: list the payload paths that carry rates or costs, e.g. ['record.rate_in_cents']; "
            "users without the rates permission see them masked."
        )
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
    if operator in ("gt", "gte", "lt", "lte") and as_number(operand) is None:
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
            number = as_number(mapping[key])
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
