"""Masking for captured outbound calls: what the ledger and the logs keep must never hold a secret.

Three layers, because any one of them can miss: sensitive headers are replaced whole; JSON and form
fields whose names look secret are replaced; and every secret value the client resolved for the call
(tokens, passwords, API keys, the Basic credential) is scrubbed from whatever text is left, wherever
it appears (a URL, an echoed body, a vendor error message).
"""

import base64
import functools
import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "•••"
BODY_LIMIT = 8 * 1024

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "apikey", "x-auth-token"}
)
_SENSITIVE_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "authorization",
    "credential",
    "private_key",
    "access_key",
    "cookie",
    "session",
    "signature",
)
_SENSITIVE_WHOLE = frozenset({"auth", "key", "pwd", "pin", "cvv", "card_number"})
_BRACKETS = re.compile(r"[\[\]]+")


@functools.lru_cache(maxsize=8192)  # a month-end body repeats the same few hundred names in every call
def is_sensitive_name(name: str) -> bool:
    """Does a header, JSON key or form field name look like it holds a secret? (`Idempotency-Key` does not.)"""
    normalized = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    parts = [part for part in _BRACKETS.split(normalized) if part]  # Chargebee-style card[number] → card, number
    for part in [*parts, "_".join(parts)] if parts else [normalized]:
        if part in _SENSITIVE_WHOLE or any(marker in part for marker in _SENSITIVE_PARTS):
            return True
    return False


def secret_variants(secrets: Iterable[str]) -> list[str]:
    """The forms a secret may take on the wire: as is, URL-encoded, and as a Basic credential."""
    variants = set()
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        variants.update({secret, quote(secret, safe=""), quote_plus(secret)})
    return sorted(variants, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of a known secret value in a text."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_headers(headers, secrets: Iterable[str] = ()) -> dict:
    """Headers with sensitive ones replaced whole and known secrets scrubbed from the rest."""
    secrets = list(secrets)
    masked = {}
    for name, value in (headers or {}).items():
        if name.lower() in SENSITIVE_HEADERS or is_sensitive_name(name):
            masked[name] = MASK
        else:
            masked[name] = scrub(str(value), secrets)
    return masked


def mask_url(url: str, secrets: Iterable[str] = ()) -> str:
    """A URL with user info and secret-looking query parameters masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_sensitive_name(k) else v) for k, v in pairs], safe="[]:,")
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), list(secrets))


def mask_data(value):
    """A JSON-like structure with the values of secret-looking keys replaced."""
    if isinstance(value, dict):
        return {key: (MASK if is_sensitive_name(key) else mask_data(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_data(item) for item in value]
    return value


def mask_body(body, content_type: str = "", secrets: Iterable[str] = (), limit: int = BODY_LIMIT) -> str | None:
    """A request or response body as masked, truncated text (JSON and form bodies are parsed and masked)."""
    if body is None or body == b"" or body == "":
        return None
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes | bytearray) else str(body)
    content_type = (content_type or "").lower()
    masked = None
    if "json" in content_type or text.lstrip()[:1] in ("{", "["):
        try:
            masked = json.dumps(mask_data(json.loads(text)), ensure_ascii=False)
        except ValueError:
            masked = None
    if masked is None and "x-www-form-urlencoded" in content_type:
        pairs = parse_qsl(text, keep_blank_values=True)
        masked = urlencode([(k, MASK if is_sensitive_name(k) else v) for k, v in pairs], safe="[]:,")
    if masked is None:
        masked = text
    masked = scrub(masked, list(secrets))
    return truncate(masked, limit)


def truncate(text: str, limit: int = BODY_LIMIT) -> str:
    """At most `limit` bytes of UTF-8, with a note of how much was cut."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore") + f"… [truncated: {len(encoded)} bytes in all]"


def basic_credential(username: str, password: str) -> str:
    """The base64 token of an HTTP Basic header (itself a secret to scrub)."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
