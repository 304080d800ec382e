"""What the inbound endpoints need to know about a sending system, read once and remembered for a few seconds.

Every delivery needs the system (by slug), its signing secrets and the envelope format its source profiles
declare: three queries that would otherwise run on every request although they change a few times a year.
They are kept per process for `INBOUND_SENDER_CACHE_SECONDS` (default 5): saving or deleting a system, a
signing secret or a source profile forgets them at once in the process that made the change, and other
processes (other web workers) see the change within those seconds. Only what was read outside a database
transaction is kept, so nothing that could still be rolled back is remembered. Secret values are still
resolved from their references on every request; only the rows are remembered.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from apps.systems.models import ConnectedSystem

from .services import delivery_scheme_for


@dataclass(frozen=True)
class Sender:
    """A connected system as its deliveries are received: the row with its signing secrets, and its envelope."""

    system: ConnectedSystem
    delivery_scheme: str


_remembered: dict[tuple[str, str], tuple[float, Sender | None]] = {}


def cache_seconds() -> float:
    return float(getattr(settings, "INBOUND_SENDER_CACHE_SECONDS", 5))


def sender_for(slug: str) -> Sender | None:
    """The system called `slug` (None if there is none), with its signing secrets and envelope format."""
    key = (connection.settings_dict.get("NAME") or "", slug)
    now = time.monotonic()
    hit = _remembered.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    system = ConnectedSystem.objects.filter(slug=slug).prefetch_related("signing_secrets").first()
    found = Sender(system, delivery_scheme_for(system)) if system is not None else None
    if not connection.in_atomic_block and cache_seconds() > 0:
        _remembered[key] = (now + cache_seconds(), found)
    return found


def forget_senders(**kwargs) -> None:
    """Signal receiver: a system, signing secret or source profile changed (or the database was flushed)."""
    _remembered.clear()
