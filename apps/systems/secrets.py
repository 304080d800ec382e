"""Secrets are stored by reference only: {"env": "IC_SECRET_NAME"} or {"file": "/run/secrets/name"}.

The database, the history and exported configuration hold the reference, never the value; the value
is read from the process environment or a mounted file at the moment it is needed.

A reference may only point inside the namespace set aside for integration secrets: environment variables
whose names start with `settings.SECRET_ENV_PREFIX` and files inside `settings.SECRETS_DIR`. Anything
else (`SECRET_KEY`, `DATABASE_URL`, `/etc/passwd`, `../`) is refused when saved and again when resolved,
so whoever may edit a connected system still cannot make the console read the server's own secrets.
"""

import os
import re
from pathlib import Path

from django.conf import settings
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


def env_prefix() -> str:
    return settings.SECRET_ENV_PREFIX


def secrets_dir() -> Path:
    return Path(settings.SECRETS_DIR)


def validate_reference(reference, *, where: str = "secret") -> None:
    """Refuse anything that is not exactly one env or file reference inside the secrets namespace.

    That also refuses plain-text secrets.
    """
    prefix, directory = env_prefix(), secrets_dir()
    if not isinstance(reference, dict) or len(reference) != 1 or next(iter(reference)) not in REFERENCE_KINDS:
        raise ValidationError(
            f'The {where} must be a reference such as {{"env": "{prefix}HUBSPOT_CLIENT_SECRET"}} or '
            f'{{"file": "{directory / "hubspot"}"}}; secrets themselves are never stored here.'
        )
    kind, value = next(iter(reference.items()))
    if kind == "env":
        if not (isinstance(value, str) and ENV_NAME.match(value)):
            raise ValidationError(
                f"The {where} names environment variable {value!r}; use capital letters, digits and underscores."
            )
        if not value.startswith(prefix) or value == prefix:
            raise ValidationError(
                f"The {where} names environment variable {value}, which is not an integration secret: only "
                f"variables whose names start with {prefix} may be used (for example {prefix}{value}). "
                "The server's own settings can never be referenced."
            )
    if kind == "file":
        if not (isinstance(value, str) and value.startswith("/")):
            raise ValidationError(f"The {where} names file {value!r}; give an absolute path inside {directory}.")
        if ".." in Path(value).parts or not _inside(Path(value), directory):
            raise ValidationError(
                f"The {where} names file {value}, which is outside the secrets directory {directory}: only files "
                f"in that directory may be used (for example {directory / Path(value).name})."
            )


def _inside(path: Path, directory: Path) -> bool:
    """True when `path`, with symbolic links followed, lies inside `directory`."""
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError):
        return False


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
    """The secret's value, read now; raises SecretUnavailable naming the reference, never a value.

    The reference is checked against the namespace again here: a row saved before the namespace existed,
    or written around validation, still cannot reach outside it.
    """
    try:
        validate_reference(reference)
    except ValidationError as exc:
        raise SecretUnavailable(
            " ".join(exc.messages),
            fix=f"Store the secret in an environment variable starting with {env_prefix()} or in a file in "
            f"{secrets_dir()}, and point the reference there.",
            technical="reference outside the secrets namespace",
        ) from None
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
