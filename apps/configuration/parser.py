"""Reading and writing the configuration document as JSON or YAML, with numbers kept exact.

YAML is read with the safe loader plus three changes: a number with a decimal point becomes a
Decimal built from its source text (250.10 stays 250.10, never a float); dates and timestamps stay
text, so they are checked where they are used and a bad one is reported at its location; and only
true/false are booleans (YAML 1.2), so a region code like NO stays text. A key given twice is an error.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import yaml
from yaml.constructor import ConstructorError

from .errors import ConfigError, LocatedError

JSON = "json"
YAML = "yaml"
FORMATS = (JSON, YAML)
_EXTENSIONS = {".json": JSON, ".yaml": YAML, ".yml": YAML}


@dataclass(frozen=True)
class LoadedDocument:
    """A parsed document with the format it was read as and the SHA-256 of its bytes."""

    data: object
    format: str
    sha256: str


class _Loader(yaml.SafeLoader):
    """Safe YAML loader: exact decimals, dates as text, YAML 1.2 booleans, duplicate keys refused."""

    def construct_decimal(self, node):
        text = self.construct_scalar(node)
        try:
            value = Decimal(text.replace("_", ""))
        except InvalidOperation:
            return text  # .inf, .nan, 1:30 — reported as "not a number" where a number is expected
        return value if value.is_finite() else text

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the base constructor reports it
            if duplicate:
                raise ConstructorError(
                    "while reading a mapping", node.start_mark, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:bool",)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_decimal)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


class _Dumper(yaml.SafeDumper):
    """Block-style YAML; ISO dates written plain (our loader reads them back as text)."""

    def represent_text(self, data):
        style = "|" if "\n" in data else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}
_Dumper.add_representer(str, _Dumper.represent_text)


def detect_format(name: str, text: str) -> str:
    """JSON or YAML, from the file extension, else from the content (JSON starts with '{')."""
    for extension, fmt in _EXTENSIONS.items():
        if name.lower().endswith(extension):
            return fmt
    return JSON if text.lstrip().startswith("{") else YAML


def _refuse_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} is given twice")
        result[key] = value
    return result


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number this document accepts")


def load_document(raw: bytes | str, *, name: str = "", format: str | None = None) -> LoadedDocument:
    """Parse a document; a syntax error raises ConfigError naming the line and column."""
    digest = hashlib.sha256(raw.encode() if isinstance(raw, str) else raw).hexdigest()
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                [LocatedError("", f"the file is not UTF-8 text (byte {exc.start})")], source_name=name
            ) from None
    else:
        text = raw
    fmt = format or detect_format(name, text)
    if fmt == JSON:
        try:
            data = json.loads(
                text, parse_float=Decimal, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
            )
        except json.JSONDecodeError as exc:
            error = LocatedError(f"line {exc.lineno}, column {exc.colno}", f"this is not valid JSON: {exc.msg}")
            raise ConfigError([error], source_name=name) from None
        except ValueError as exc:
            raise ConfigError([LocatedError("", f"this is not valid JSON: {exc}")], source_name=name) from None
    else:
        try:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            location = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = " ".join(part for part in (exc.context, exc.problem) if part)
            raise ConfigError(
                [LocatedError(location, f"this is not valid YAML: {problem}")], source_name=name
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError([LocatedError("", f"this is not valid YAML: {exc}")], source_name=name) from None
    return LoadedDocument(data=data, format=fmt, sha256=digest)


def dump_document(document: dict, *, format: str) -> str:
    """The document as text; the same data always gives the same bytes."""
    if format == JSON:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if format == YAML:
        return yaml.dump(
            document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120
        )
    raise ValueError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")


def document_digest(document) -> str:
    """SHA-256 of a document given as data (not as a file): its canonical JSON form."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
