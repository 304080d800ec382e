"""Sensitive amounts (bill and cost rates) are hidden from users without a dedicated permission.

A model lists its sensitive fields in a `sensitive_fields` class attribute; admin lists, forms,
history diffs and API serializers all ask this module, so the rule lives in one place.
"""

import json

from django.apps import apps

SENSITIVE_PERMISSION = "core.view_sensitive_amounts"
MASK = "•••"


def can_see_sensitive(user) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(SENSITIVE_PERMISSION))


def sensitive_fields(model) -> frozenset[str]:
    """The sensitive field names of a model or of its history model."""
    base = getattr(model, "instance_type", model)
    return frozenset(getattr(base, "sensitive_fields", ()))


def masked_fields_for(user, model) -> frozenset[str]:
    """The fields of the model this user must not see."""
    if can_see_sensitive(user):
        return frozenset()
    return sensitive_fields(model)


# --- sensitive amounts inside JSON and raw bodies ---------------------------------------------------------
#
# Payloads (inbound events, raw bodies, captured calls, ledger input and output) carry rates under the source
# system's own names. The keys to hide are: every model's `sensitive_fields`, the payload keys the source profiles
# declare or map to those fields (registered by the mapping app, which knows the profiles), and amounts from which
# a rate can be worked out (a charge's unit price, the total sent for a number of hours).
RATE_REVEALING_KEYS = frozenset({"amount_sent", "unit_price", "unit_amount"})
_key_sources: list = []


def register_sensitive_keys(source) -> None:
    """Add a callable returning more payload key names to hide (apps.mapping registers the profiles' keys)."""
    if source not in _key_sources:
        _key_sources.append(source)


def sensitive_fields_of_all_models() -> frozenset[str]:
    """Every field name some model lists in `sensitive_fields` (bill_rate, cost_rate, …)."""
    names = set()
    for model in apps.get_models():
        names.update(getattr(model, "sensitive_fields", ()))
    return frozenset(names)


def sensitive_payload_keys() -> frozenset[str]:
    """Every JSON key whose value a user without the permission may not see."""
    names = set(RATE_REVEALING_KEYS) | sensitive_fields_of_all_models()
    for source in _key_sources:
        names.update(source())
    return frozenset(names)


def mask_json(value, keys: frozenset[str]):
    """A copy of a JSON value with the value of every key in `keys` replaced by MASK, at any depth."""
    if isinstance(value, dict):
        return {key: MASK if key in keys else mask_json(item, keys) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_json(item, keys) for item in value]
    return value


def json_holds(value, keys: frozenset[str]) -> bool:
    """Whether a JSON value carries any of `keys` anywhere."""
    if isinstance(value, dict):
        return any(key in keys or json_holds(item, keys) for key, item in value.items())
    if isinstance(value, list):
        return any(json_holds(item, keys) for item in value)
    return False


def visible_json(value, user, keys: frozenset[str] | None = None):
    """A JSON value as this user may see it: whole for holders of the permission, masked for everyone else."""
    if can_see_sensitive(user):
        return value
    return mask_json(value, sensitive_payload_keys() if keys is None else keys)


def visible_body(body: bytes, user) -> bytes | None:
    """A raw JSON or NDJSON body as this user may see it; None when it cannot be shown masked (not JSON)."""
    if can_see_sensitive(user) or not body:
        return body
    keys = sensitive_payload_keys()
    try:
        return json.dumps(mask_json(json.loads(body), keys), indent=2, ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        lines = [line for line in body.decode("utf-8").splitlines() if line.strip()]
        return "\n".join(json.dumps(mask_json(json.loads(line), keys), ensure_ascii=False) for line in lines).encode()
    except (ValueError, UnicodeDecodeError):
        return None
