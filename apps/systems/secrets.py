"""Secrets are stored by reference only: {"env": "NAME"} or {"file": "/run/secrets/name"}.

The database, the history and exported configuration hold the reference, never the value; the value
is read from the process environment or a mounted file at the moment it is needed.
"""

import os
import re
from pathlib import Path

from django.core.exceptions import ValidationError

from apps.core.errors import BusinessError, ErrorClass

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
REFERENCE_KINDS = ("env", "file")


class SecretUnavailable(BusinessError):
    error_class = ErrorClass.PERMANENT
    code = "secret_unavailable"


def describe(reference: dict) -> str:
    """A human description of a reference, safe to show anywhere."""
    if isinstance(reference, dict) and len(reference) == 1:
        kind, value = next(iter(reference.items()))
        if kind == "env":
            return f"environment variable {value}"
        if kind == "file":
            return f"file {value}"
    return "an invalid secret reference"


def validate_reference(reference, *, where: str = "secret") -> None:
    """Refuse anything that is not exactly one env or file reference (and so refuse plain-text secrets)."""
    if not isinstance(reference, dict) or len(reference) != 1 or next(iter(reference)) not in REFERENCE_KINDS:
        raise ValidationError(
            f'The {where} must be a reference such as {{"env": "HUBSPOT_CLIENT_SECRET"}} or '
            f'{{"file": "/run/secrets/hubspot"}}; secrets themselves are never stored here.'
        )
    kind, value = next(iter(reference.items()))
    if kind == "env" and not (isinstance(value, str) and ENV_NAME.match(value)):
        raise ValidationError(
            f"The {where} names environment variable {value!r}; use capital letters, digits and underscores."
        )
    if kind == "file" and not (isinstance(value, str) and value.startswith("/")):
        raise ValidationError(f"The {where} names file {value!r}; give an absolute path.")


def validate_credentials(credentials) -> None:
    """Outbound credentials: empty, one reference, or an object whose values are references."""
    if credentials in (None, {}):
        return
    if isinstance(credentials, dict) and len(credentials) == 1 and next(iter(credentials)) in REFERENCE_KINDS:
        validate_reference(credentials, where="credential")
        return
    if not isinstance(credentials, dict):
        raise ValidationError("Credentials must be a reference or an object of references.")
    for part, reference in credentials.items():
        validate_reference(reference, where=f"credential part '{part}'")


def resolve(reference: dict) -> str:
    """The secret's value, read now; raises SecretUnavailable naming the reference, never a value."""
    validate_reference(reference)
    kind, name = next(iter(reference.items()))
    if kind == "env":
        value = os.environ.get(name)
    else:
        path = Path(name)
        value = path.read_text().strip() if path.is_file() else None
    if not value:
        raise SecretUnavailable(
            f"The secret in {describe(reference)} is not set on this server.",
            fix=f"Set {describe(reference)} for the web and worker processes, then retry.",
        )
    return value


def resolve_credentials(credentials) -> dict[str, str] | str | None:
    if not credentials:
        return None
    if len(credentials) == 1 and next(iter(credentials)) in REFERENCE_KINDS:
        return resolve(credentials)
    return {part: resolve(reference) for part, reference in credentials.items()}
