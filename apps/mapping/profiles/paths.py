"""The path language of profiles: parse 'data.object.lines.data[0].amount', '$fetched.deal.id', 'value[*].id' or
'fields["Employee #"]', and read a parsed path in a payload (the event, the current item, a fetched record)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from .values import as_text

ROOTS = ("$event", "$item", "$fetched")
MISSING = object()  # what an absent root (no fetched record yet) or an absent value in a condition reads as


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


def _walk(value: Any, steps: tuple, scope: Scope) -> tuple[bool, Any]:
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
            found, key, _ = resolve(step[1], scope)
            if not found or key is None or isinstance(key, (dict, list)):
                return False, None
            if isinstance(value, list) and re.fullmatch(r"-?\d+", str(key)):
                step = ("index", int(str(key)))
                if not -len(value) <= step[1] < len(value):
                    return False, None
                value = value[step[1]]
                continue
            step = ("key", as_text(key))
        if not isinstance(value, dict) or step[1] not in value:
            return False, None
        value = value[step[1]]
    return True, value


def resolve(path: Path, scope: Scope) -> tuple[bool, Any, str]:
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
    if base is MISSING:
        return False, None, shown
    found, value = _walk(base, path.steps, scope)
    return found, value, shown


@dataclass
class Scope:
    """Where a path is read: the event, the item being mapped, the current list element, a fetched record;
    and, while the engine maps them, the fields of this scope already mapped or failed."""

    event: Any
    item: Any
    item_path: str
    current: Any
    current_path: str
    fetched: Any = MISSING
    data: dict = field(default_factory=dict)
    failed: set = field(default_factory=set)  # fields of this scope that could not be mapped
    parent: Scope | None = None

    def child(self, current: Any, current_path: str) -> Scope:
        return Scope(self.event, self.item, self.item_path, current, current_path, self.fetched, parent=self)
