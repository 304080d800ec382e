"""The `when` conditions of a profile: whether they hold for a payload, and if not, a reason a steward can read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .catalogue import OPERATORS
from .paths import MISSING, Scope, parse_path, resolve
from .values import as_number, as_text, display, is_present


def unmet(conditions: list, scope: Scope) -> str:
    """'' when every condition holds, else why the first one does not."""
    for condition in conditions:
        reason = _check(condition, scope)
        if reason:
            return reason
    return ""


def _check(condition: Mapping, scope: Scope) -> str:
    description = condition.get("description", "")
    if "all" in condition:
        reason = unmet(condition["all"], scope)
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
    found, value, shown = resolve(parse_path(condition["path"]), scope)
    present = found and value is not None
    operator = next(key for key in condition if key in OPERATORS)
    operand = condition[operator]
    ignore_case = condition.get("ignore_case", False)
    if _holds(operator, operand, value if present else MISSING, ignore_case):
        return ""
    actual = f"'{shown}' is {display(value, quote=True)}" if present else f"'{shown}' has no value"
    expected = _expectation(operator, operand)
    detail = f"{actual}, {expected}"
    return f"{description}: {detail}" if description else f"Condition not met: {detail}"


def _expectation(operator: str, operand: Any) -> str:
    if operator in ("in", "not_in"):
        choices = ", ".join(display(choice, quote=True) for choice in operand)
        return f"expected one of {choices}" if operator == "in" else f"expected none of {choices}"
    if operator == "exists":
        return "expected a value" if operand else "expected no value"
    return {
        "equals": f"expected {display(operand, quote=True)}",
        "not_equals": f"expected anything but {display(operand, quote=True)}",
        "contains": f"expected it to contain {display(operand, quote=True)}",
        "matches": f"expected it to match {operand}",
        "gt": f"expected more than {operand}",
        "gte": f"expected at least {operand}",
        "lt": f"expected less than {operand}",
        "lte": f"expected at most {operand}",
    }[operator]


def _holds(operator: str, operand: Any, value: Any, ignore_case: bool) -> bool:
    missing = value is MISSING
    if operator == "exists":
        return (not missing and is_present(value)) == operand
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
        return re.search(str(operand), as_text(value), re.IGNORECASE if ignore_case else 0) is not None
    number, limit = as_number(value), as_number(operand)
    if number is None or limit is None:
        return False
    return {"gt": number > limit, "gte": number >= limit, "lt": number < limit, "lte": number <= limit}[operator]


def _equal(value: Any, operand: Any, ignore_case: bool) -> bool:
    if isinstance(value, bool) or isinstance(operand, bool):
        return value is operand
    if isinstance(value, (int, float, Decimal)) and isinstance(operand, (int, float, Decimal)):
        return as_number(value) == as_number(operand)
    if isinstance(value, (dict, list)) or isinstance(operand, (dict, list)):
        return value == operand
    return _fold(as_text(value), ignore_case) == _fold(as_text(operand), ignore_case)


def _fold(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text
