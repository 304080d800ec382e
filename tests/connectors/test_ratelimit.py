"""The shared outbound rate limit: a token bucket per system in the database, and Retry-After blocks."""

import datetime
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from apps.connectors.errors import RateLimitWait, TransientError
from apps.connectors.http import HttpClient
from apps.connectors.models import RateLimitState
from apps.connectors.ratelimit import rate_limit_block

from .. import factories
from .conftest import Reply


def limited(system, *, per_minute, burst):
    system.rate_limit_per_minute = per_minute
    system.rate_limit_burst = burst
    system.save()
    return system


def call(system, *, max_rate_wait=0.0):
    return HttpClient(system, correlation_id="rate-test", max_rate_wait=max_rate_wait).request("GET", "customer/1")


def run_in_threads(count, work):
    """Run `work(index)` in `count` threads started together; each closes its own database connection."""
    results = [None] * count
    start = threading.Barrier(count)

    def runner(index):
        try:
            start.wait()
            results[index] = work(index)
        except Exception as exc:  # collected and asserted on by the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db
def test_a_burst_passes_then_calls_are_refused_with_a_retry_time(target, target_system):
    limited(target_system, per_minute=60, burst=3)
    for _ in range(3):
        call(target_system)

    with pytest.raises(TransientError) as raised:
        call(target_system)

    assert len(target.received) == 3
    assert raised.value.retry_at > timezone.now()
    assert raised.value.message.startswith("Calls to NetSuite are limited to 60 a minute and the limit is reached")
    assert raised.value.maybe_committed is False


@pytest.mark.django_db
def test_the_bucket_refills_at_the_configured_rate(target, target_system):
    limited(target_system, per_minute=60, burst=2)
    call(target_system)
    call(target_system)
    with pytest.raises(TransientError):
        call(target_system)

    state = RateLimitState.objects.get(system=target_system)
    state.refreshed_at -= datetime.timedelta(seconds=1)  # one second at 60 a minute: one more call
    state.save()
    call(target_system)
    with pytest.raises(TransientError):
        call(target_system)

    assert len(target.received) == 3


@pytest.mark.django_db
def test_each_system_has_its_own_bucket(target, target_system):
    limited(target_system, per_minute=60, burst=1)
    other = factories.system(
        "other-erp", "erp", base_url=target_system.base_url, rate_limit_per_minute=60, rate_limit_burst=1
    )
    call(target_system)
    call(other)

    assert len(target.received) == 2


@pytest.mark.django_db
def test_a_short_wait_is_slept_instead_of_refused(target, target_system):
    limited(target_system, per_minute=1200, burst=1)  # one call every 50 ms
    for _ in range(4):
        call(target_system, max_rate_wait=2.0)

    assert len(target.received) == 4
    span = target.received[-1].at - target.received[0].at
    assert span >= 0.1  # three intervals of 50 ms, less the first call's own latency


@pytest.mark.django_db(transaction=True)
def test_the_bucket_is_shared_by_concurrent_workers(target, target_system):
    limited(target_system, per_minute=1, burst=3)

    results = run_in_threads(8, lambda index: call(target_system).status_code)

    assert len(target.received) == 3
    assert results.count(200) == 3
    assert sum(isinstance(result, TransientError) for result in results) == 5


@pytest.mark.django_db
def test_after_a_429_no_call_is_made_before_retry_after(target, target_system):
    target.queue(Reply(429, {"message": "Too many requests"}, headers={"Retry-After": "30"}))
    with pytest.raises(TransientError) as first:
        call(target_system)

    with pytest.raises(TransientError) as second:
        call(target_system)

    assert len(target.received) == 1
    assert second.value.retry_at == first.value.retry_at
    assert "asked us to pause until" in second.value.message
    assert RateLimitState.objects.get(system=target_system).blocked_until == first.value.retry_at


@pytest.mark.django_db(transaction=True)
def test_no_worker_reaches_the_target_before_its_retry_after_ends(target, target_system):
    limited(target_system, per_minute=6000, burst=10)
    target.queue(Reply(429, {"message": "Too many requests"}, headers={"Retry-After": "2"}))
    with pytest.raises(TransientError):
        call(target_system)

    def worker(index):
        for _ in range(50):
            try:
                return call(target_system, max_rate_wait=2.0).status_code
            except TransientError as exc:
                time.sleep(max(0.01, (exc.retry_at - timezone.now()).total_seconds()))
        return "gave up"

    results = run_in_threads(4, worker)

    assert results == [200, 200, 200, 200]
    throttled_at = target.received[0].at
    later = [request.at for request in target.received[1:]]
    assert len(later) == 4
    assert min(later) >= throttled_at + 2.0


@pytest.mark.django_db
def test_a_block_is_never_shortened_by_a_shorter_retry_after(target_system):
    far = timezone.now() + datetime.timedelta(minutes=10)
    rate_limit_block(system=target_system, until=far)
    rate_limit_block(system=target_system, until=timezone.now() + datetime.timedelta(seconds=5))

    assert RateLimitState.objects.get(system=target_system).blocked_until == far


@pytest.mark.django_db
def test_a_call_held_back_by_the_limit_is_a_wait_that_spends_no_attempt(target, target_system):
    limited(target_system, per_minute=60, burst=1)
    call(target_system)
    with pytest.raises(RateLimitWait) as waited:
        call(target_system)

    assert len(target.received) == 1  # the held-back call never left
    assert waited.value.attempt_spent is False
    assert waited.value.retry_at > timezone.now()
    assert waited.value.fix == "Nothing to do: the step waits for its turn and runs then."


@pytest.mark.django_db
def test_a_429_from_the_target_is_a_spent_attempt_and_later_calls_wait_for_its_retry_after(target, target_system):
    target.queue(Reply(429, {"message": "Too many requests"}, headers={"Retry-After": "30"}))
    with pytest.raises(TransientError) as throttled:
        call(target_system)
    with pytest.raises(RateLimitWait) as held:
        call(target_system)

    assert not isinstance(throttled.value, RateLimitWait)
    assert throttled.value.attempt_spent is True
    assert held.value.attempt_spent is False
    assert held.value.retry_at == throttled.value.retry_at
    assert len(target.received) == 1
