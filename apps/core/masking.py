"""Sensitive amounts (bill and cost rates) are hidden from users without a dedicated permission.

A model lists its sensitive fields in a `sensitive_fields` class attribute; admin lists, forms,
history diffs and API serializers all ask this module, so the rule lives in one place.
"""

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
