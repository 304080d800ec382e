"""The outbound rate limit of each system, shared by every worker on every machine through the database.

A token bucket per system: `rate_limit_burst` calls may start at once, then calls trickle in at
`rate_limit_per_minute`. The bucket row is read and written in one short transaction under
`select_for_update()` (PostgreSQL row lock; on SQLite the IMMEDIATE transaction mode serialises
writers). A caller that would wait a little reserves its slot (tokens go below zero, so the next
caller queues behind it) and sleeps outside the transaction; one that would wait long is refused with
a `RateLimitWait` carrying `retry_at`, so the ledger reschedules the step for that slot instead of holding
a worker, and without spending one of the step's attempts (no request left the machine).

After a 429 (or a 503 with Retry-After) the system's `blocked_until` is set, and until then nobody
calls it: every caller is refused before any request leaves the machine.

Call connectors outside long transactions: inside an outer `atomic()` the bucket row stays locked
until that outer transaction ends.
"""

import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .errors import RateLimitWait
from .models import RateLimitState

DEFAULT_MAX_WAIT_SECONDS = 2.0


def max_wait_seconds() -> float:
    """How long a caller may sleep for a slot before it is refused (setting CONNECTOR_RATE_LIMIT_MAX_WAIT_SECONDS)."""
    return float(getattr(settings, "CONNECTOR_RATE_LIMIT_MAX_WAIT_SECONDS", DEFAULT_MAX_WAIT_SECONDS))


def _locked_state(system, now) -> RateLimitState:
    try:
        return RateLimitState.objects.select_for_update().get(system=system)
    except RateLimitState.DoesNotExist:
        pass
    try:
        # A savepoint, so a concurrent creator's row (IntegrityError) leaves the outer transaction usable.
        with transaction.atomic():
            return RateLimitState.objects.create(
                system=system, tokens=float(system.rate_limit_burst or 1), refreshed_at=now
            )
    except IntegrityError:
        return RateLimitState.objects.select_for_update().get(system=system)


def _refuse_if_blocked(system, blocked_until, now) -> None:
    if blocked_until and blocked_until > now:
        raise RateLimitWait(
            f"{system.name} asked us to pause until {blocked_until:%H:%M:%S} UTC (too many requests); "
            f"no call is made to it before then.",
            retry_at=blocked_until,
            technical=f"{system.slug} blocked_until={blocked_until.isoformat()} (from its Retry-After)",
            system=system.slug,
        )


def rate_limit_acquire(*, system, max_wait: float | None = None) -> float:
    """Take one call slot for the system; returns the seconds to sleep before calling, or raises RateLimitWait."""
    max_wait = max_wait_seconds() if max_wait is None else max_wait
    if not system.rate_limit_per_minute:
        blocked = RateLimitState.objects.filter(system=system).values_list("blocked_until", flat=True).first()
        _refuse_if_blocked(system, blocked, timezone.now())
        return 0.0
    with transaction.atomic():
        state = _locked_state(system, timezone.now())
        now = timezone.now()  # after the lock: another worker may have held it
        _refuse_if_blocked(system, state.blocked_until, now)
        per_second = system.rate_limit_per_minute / 60
        elapsed = max(0.0, (now - state.refreshed_at).total_seconds())
        tokens = min(float(system.rate_limit_burst), state.tokens + elapsed * per_second)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / per_second
        if wait > max_wait:
            retry_at = now + datetime.timedelta(seconds=wait)
            raise RateLimitWait(
                f"Calls to {system.name} are limited to {system.rate_limit_per_minute} a minute and the limit is "
                f"reached; this call waits for the next free slot at {retry_at:%H:%M:%S} UTC.",
                retry_at=retry_at,
                technical=f"{system.slug} token bucket: {tokens:.3f} tokens, next in {wait:.2f} s "
                f"(rate {system.rate_limit_per_minute}/min, burst {system.rate_limit_burst})",
                system=system.slug,
            )
        state.tokens = tokens - 1
        state.refreshed_at = now
        state.save(update_fields=["tokens", "refreshed_at"])
    return wait


def rate_limit_block(*, system, until: datetime.datetime) -> None:
    """Keep every worker from calling the system before `until` (never shortens an existing block)."""
    with transaction.atomic():
        state = _locked_state(system, timezone.now())
        if state.blocked_until is None or state.blocked_until < until:
            state.blocked_until = until
            state.save(update_fields=["blocked_until"])
