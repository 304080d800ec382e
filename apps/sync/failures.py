"""What a step's failure means: any exception a step raised, as a business-readable error and whether to retry it."""

import traceback

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError

from apps.core.errors import BusinessError, ErrorClass


def classify(exc: Exception) -> tuple[BusinessError, bool]:
    """Turn anything a step raised into a business-readable error and whether to retry it."""
    if isinstance(exc, BusinessError):
        return exc, exc.error_class == ErrorClass.TRANSIENT
    if isinstance(exc, DjangoValidationError):
        problems = "; ".join(
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages)
            for field, messages in getattr(exc, "message_dict", {"__all__": exc.messages}).items()
        )
        error = BusinessError(
            f"The data could not be recorded: {problems}",
            fix="Correct the source data or the mapping that produced it, then re-run.",
            technical=repr(exc),
        )
        return error, False
    if isinstance(exc, OperationalError | InterfaceError):
        return (
            BusinessError(
                "The console's database was unavailable while this step ran; it will be retried.",
                technical=f"{type(exc).__name__}: {exc}",
            ),
            True,
        )
    technical = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-5000:]
    error = BusinessError(
        "The step failed with an unexpected error in the console.",
        fix="Send the correlation ID to the integration team; re-run after the fix.",
        technical=technical,
    )
    error.error_class = ErrorClass.PERMANENT
    return error, False
