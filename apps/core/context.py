"""Who is acting, why, and under which correlation ID — for the current request, task or command.

History rows, log lines and outbound calls read these values, so a change made anywhere in the
product can be traced back to the request, webhook or workflow step that caused it.
"""

import re
import uuid
from contextlib import contextmanager
from contextvars import ContextVar

from .users import system_user

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_actor: ContextVar[object | None] = ContextVar("actor", default=None)
_reason: ContextVar[str | None] = ContextVar("reason", default=None)

_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def new_correlation_id() -> str:
    """A fresh correlation ID."""
    return uuid.uuid4().hex


def clean_correlation_id(candidate: str | None) -> str:
    """Keep a caller's correlation ID if it is safe to store and echo; otherwise make a new one."""
    if candidate and _VALID_ID.match(candidate):
        return candidate
    return new_correlation_id()


def get_correlation_id() -> str | None:
    return _correlation_id.get()


def current_actor():
    return _actor.get()


def current_reason() -> str | None:
    return _reason.get()


@contextmanager
def audit_context(*, actor=None, reason: str | None = None, correlation_id: str | None = None):
    """Set who/why/correlation for everything inside the block; values not given are inherited."""
    tokens = []
    if actor is not None:
        tokens.append((_actor, _actor.set(actor)))
    if reason is not None:
        tokens.append((_reason, _reason.set(reason)))
    if correlation_id is not None:
        tokens.append((_correlation_id, _correlation_id.set(correlation_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextmanager
def system_context(reason: str, *, correlation_id: str | None = None):
    """Run non-request code (tasks, commands, webhook processing) as the integration system user."""
    with audit_context(
        actor=system_user(),
        reason=reason,
        correlation_id=correlation_id or get_correlation_id() or new_correlation_id(),
    ):
        yield
