"""Runs workflow steps from the ledger: claim with a lease, do the work, record the outcome atomically.

A step runs in three phases so no database transaction is held open across an outbound call:
1. claim (short transaction): the step is due → running, attempts+1, a lease, an attempt row;
2. work (no transaction): the workflow's step function reads, validates and calls target systems;
3. finish (short transaction): if we still hold the lease, apply the step's canonical writes and
   cross-references together with "step succeeded" and the next step becoming due — or record the
   failure, schedule a retry with backoff, or raise an exception for a person to handle.

A worker that dies between 1 and 3 leaves the step running with a lease that runs out; the sweep then
hands it to another worker, which records the dead attempt as abandoned and tries again with the same
idempotency key, so the target never sees two creates.
"""

import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.context import audit_context, current_reason, system_context
from apps.core.errors import BusinessError, ErrorClass
from apps.inbound.models import InboundEvent

from . import intake
from .failures import classify
from .groups import exception_file
from .locks import lock_step, lock_step_and_next
from .models import Step, StepAttempt, Transaction
from .queue import enqueue_step, schedule_retry, send_with_commit
from .registry import workflow_for
from .steps import StepContext, StepResult
from .writes import Insert, Save, Update, save_with_history

logger = logging.getLogger(__name__)


def _setting(name: str, default: float) -> float:
    """Ledger timings, read when used so an operator (or a test) can change them without a restart."""
    return getattr(settings, name, default)


def lease_seconds() -> float:
    # Longer than django-q2's task timeout: a step still running inside its time limit never loses its lease.
    return _setting("SYNC_LEASE_SECONDS", settings.Q_TIMEOUT + 60)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    step_id: int
    attempt_id: int
    number: int
    worker: str
    started: float
    step: Step | None = field(default=None, compare=False, repr=False)  # as claimed, so the worker need not reload it


def _is_due(step: Step, now) -> bool:
    if step.status in Step.DUE_STATUSES:
        # A step becomes due when the previous one succeeds (it gets a next_attempt_at); until then it waits.
        return step.next_attempt_at is not None and step.next_attempt_at <= now
    if step.status == Step.Status.RUNNING:
        return step.lease_expires_at is not None and step.lease_expires_at <= now
    return False


def claim_step(step_id: int, *, worker: str | None = None) -> Claim | None:
    """Take a due step for this worker, or return None if it is not due or someone else holds it."""
    worker = worker or worker_name()
    now = timezone.now()
    with transaction.atomic():
        step = lock_step(step_id, skip_locked=True)
        if step is None or not _is_due(step, now):
            return None
        txn = step.transaction
        if txn.status not in Transaction.OPEN_STATUSES or step.earlier_open:
            return None
        if step.status == Step.Status.RUNNING:
            _abandon_running_attempt(step, now)
            if step.attempts >= step.max_attempts:
                _fail_for_good(step, _stopped_error(step), error_class=ErrorClass.PERMANENT, now=now)
                return None
        return _take(step, worker, now)


def _take(step: Step, worker: str, now, *, writes: tuple = (), also: tuple = ()) -> Claim:
    """Mark a due (or lease-expired) step running for this worker, with a lease and an attempt row.

    `writes` and the saves `also` go out with the step's own (one statement on PostgreSQL, apps/sync/writes.py).
    """
    txn = step.transaction
    reason = f"Step {step.name} attempt {step.attempts + 1} claimed by {worker}"
    with audit_context(reason=reason, correlation_id=txn.correlation_id):
        step.status = Step.Status.RUNNING
        step.attempts += 1
        step.lease_expires_at = now + timedelta(seconds=lease_seconds())
        step.leased_by = worker
        step.started_at = now
        attempt = StepAttempt(step=step, number=step.attempts, worker=worker, started_at=now)
        if txn.status != Transaction.Status.RUNNING:
            txn.status = Transaction.Status.RUNNING
            also = (Save(txn, ["status", "updated_at"]), *also)
        save_with_history(step, writes=(*writes, Insert(attempt)), also=also)
    return Claim(step.pk, attempt.pk, step.attempts, worker, time.monotonic(), step)


def _stopped_error(step: Step) -> BusinessError:
    """The last attempt's worker stopped and no attempt is left; say how many of them really stopped."""
    stopped = StepAttempt.objects.filter(step=step, outcome=StepAttempt.Outcome.ABANDONED).count()
    name = step.title or step.name
    if stopped >= step.attempts:
        message = f"Step '{name}' was started {step.attempts} times and the worker stopped every time before finishing."
    else:
        others = step.attempts - stopped
        message = (
            f"Step '{name}' has used all {step.attempts} of its attempts: the worker stopped before finishing "
            f"{stopped} {'time' if stopped == 1 else 'times'}, the last one included, and {others} "
            f"{'attempt' if others == 1 else 'attempts'} failed"
            + (f" (the last failure: {step.error_message})" if step.error_message else "")
            + "."
        )
    return BusinessError(
        message,
        fix="Check the worker logs for crashes or time-outs on this step, then re-run the transaction.",
        technical=f"lease expired on {stopped} of {step.attempts} attempts",
    )


def _abandon_running_attempt(step: Step, now) -> None:
    StepAttempt.objects.filter(step=step, number=step.attempts, outcome=StepAttempt.Outcome.RUNNING).update(
        outcome=StepAttempt.Outcome.ABANDONED,
        finished_at=now,
        error_message="The worker running this attempt stopped before it finished; the lease ran out.",
    )


def _still_ours(step: Step | None, claim: Claim) -> bool:
    return (
        step is not None
        and step.status == Step.Status.RUNNING
        and step.attempts == claim.number
        and step.leased_by == claim.worker
    )


def _supersede(claim: Claim, now) -> None:
    StepAttempt.objects.filter(pk=claim.attempt_id).update(
        outcome=StepAttempt.Outcome.SUPERSEDED,
        finished_at=now,
        error_message="Finished after another worker had taken the step over; this result was not applied.",
    )


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter: base × 2^(attempt-1), capped, then a random share of it."""
    base = _setting("SYNC_BACKOFF_BASE_SECONDS", 5)
    ceiling = min(_setting("SYNC_BACKOFF_CAP_SECONDS", 900), base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def follow_seconds() -> float:
    """How long one task may go on running the next steps of its transaction itself (well inside its time-out)."""
    return _setting("SYNC_FOLLOW_SECONDS", settings.Q_TIMEOUT / 4)


def finish_success(claim: Claim, result: StepResult, calls: list[dict], *, follow_until: float = 0) -> Claim | None:
    """Record a successful attempt and make the next step due, atomically with the step's writes.

    Before `follow_until` (a monotonic time) the next step is claimed for this worker in the same database
    transaction (running, with a lease and an attempt row, as `claim_step` would) and its claim is returned, so
    the worker runs it at once; if the worker stops first, the lease runs out and the sweep hands the step to
    another worker. Otherwise the next step is due and queued.
    """
    now = timezone.now()
    next_claim = next_step_id = None
    with transaction.atomic():
        step, following = lock_step_and_next(claim.step)
        if not _still_ours(step, claim):
            _supersede(claim, now)
            return None
        txn = step.transaction
        applied = result.apply() if callable(result.apply) else None
        output = {**result.output, **(applied or {})}
        refined = output.pop("_transaction", {})
        for name, value in refined.items():
            setattr(txn, name, value)  # a step may refine what the transaction is about (subject, amount)
        duration = int((time.monotonic() - claim.started) * 1000)
        step.status = Step.Status.SKIPPED if result.skipped else Step.Status.SUCCEEDED
        step.output = output if not result.skipped else {**output, "skipped": result.skipped}
        step.finished_at = now
        step.duration_ms = duration
        step.lease_expires_at = None
        step.error_class = step.error_message = step.error_fix = step.error_technical = ""
        if calls:
            step.request, step.response = _split_call(calls[-1])
        attempt = StepAttempt.objects.filter(pk=claim.attempt_id)
        outcome = {"outcome": StepAttempt.Outcome.SUCCEEDED, "finished_at": now, "duration_ms": duration}
        # The step and its attempt are written with the transaction's completion or the next step's claim (one
        # statement on PostgreSQL), its history row keeping this finish's reason.
        finished = Save(step, reason=current_reason())
        finished_writes = (Update(attempt, {**outcome, "http_calls": calls}),)
        txn.state = {**txn.state, **output}
        had_error = any((txn.error_class, txn.error_message, txn.error_fix, txn.error_technical))
        txn.error_class = txn.error_message = txn.error_fix = txn.error_technical = ""
        if following is None:
            workflow_for(txn.workflow).on_complete(txn)
            _mark_event_processed(txn)
            txn.status = Transaction.Status.COMPLETED
            txn.completed_at = now
            # One statement for the step, its attempt and the transaction; post_save still runs for the transaction
            # (a closed transaction settles its exception group).
            save_with_history(step, writes=finished_writes, also=(Save(txn),))
            return None
        following.next_attempt_at = now
        following.enqueued_at = now
        if time.monotonic() < follow_until and following.status in Step.DUE_STATUSES:
            # The transaction stays running; only its state (kept out of its history) changes, unless the step
            # refined a tracked field or cleared an error.
            writes = ()
            if refined or had_error or txn.status != Transaction.Status.RUNNING:
                txn.status = Transaction.Status.RUNNING
                save_with_history(txn)
            else:  # history-ok: state only, which its history leaves out
                writes = (Update(Transaction.objects.filter(pk=txn.pk), {"state": txn.state, "updated_at": now}),)
            next_claim = _take(following, claim.worker, now, writes=(*finished_writes, *writes), also=(finished,))
        else:
            save_with_history(step, writes=finished_writes)
            txn.status = Transaction.Status.PENDING
            following.save(update_fields=["next_attempt_at", "enqueued_at", "updated_at"])
            txn.save()
            next_step_id = following.pk
            send_with_commit(lambda: enqueue_step(next_step_id))
    return next_claim


def _mark_event_processed(txn: Transaction) -> None:
    """A workflow that started from an inbound event finished: the event is now fully processed."""
    if txn.workflow == "inbound_event" or txn.inbound_event_id is None:
        return
    event = InboundEvent.objects.filter(pk=txn.inbound_event_id).exclude(status=InboundEvent.Status.PROCESSED).first()
    if event is not None:
        event.status = InboundEvent.Status.PROCESSED
        event.processed_at = timezone.now()
        event.save()


def finish_failure(claim: Claim, error: BusinessError, calls: list[dict], *, retryable: bool) -> None:
    """Record a failed attempt; retry later with backoff, or raise an exception for a person."""
    now = timezone.now()
    retry_step_id = retry_at = None
    with transaction.atomic():
        step = lock_step(claim.step_id, skip_locked=False)
        if not _still_ours(step, claim):
            _supersede(claim, now)
            return
        duration = int((time.monotonic() - claim.started) * 1000)
        if calls:
            step.request, step.response = _split_call(calls[-1])
        step.duration_ms = duration
        step.finished_at = now
        step.lease_expires_at = None
        step.error_class = error.error_class
        step.error_message = error.message
        step.error_fix = error.fix
        step.error_technical = error.technical
        hinted = getattr(error, "retry_at", None)
        waited = retryable and hinted is not None and not getattr(error, "attempt_spent", True)
        if waited:
            _give_back_attempt(step, claim, calls)
        if retryable and step.attempts < step.max_attempts:
            # The target (Retry-After) or our own rate limit said when: come back then, not after a backoff.
            retry_at = hinted if hinted is not None else now + timedelta(seconds=backoff_seconds(step.attempts))
            step.status = Step.Status.WAITING_RETRY
            step.next_attempt_at = retry_at
            step.enqueued_at = now
            step.save()
            txn = step.transaction
            txn.status = Transaction.Status.WAITING_RETRY
            txn.error_class, txn.error_message, txn.error_fix = error.error_class, error.message, error.fix
            txn.error_technical = error.technical
            txn.save()
            retry_step_id = step.pk
        else:
            _fail_for_good(step, error, error_class=error.error_class, now=now)
        StepAttempt.objects.filter(pk=claim.attempt_id).update(  # gone if the claim was undone (a wait, no call)
            outcome=StepAttempt.Outcome.FAILED,
            finished_at=now,
            duration_ms=duration,
            error_class=error.error_class,
            error_message=error.message,
            error_technical=error.technical[:5000],
            http_calls=calls,
            retry_at=retry_at,
        )
        if retry_step_id is not None:
            transaction.on_commit(lambda: schedule_retry(retry_step_id, retry_at))


def _give_back_attempt(step: Step, claim: Claim, calls: list[dict]) -> None:
    """A wait for the rate limit is not a failed attempt: the step keeps its whole budget.

    With no call made, the claim is undone (no attempt row; attempts back to what they were). A step that
    made calls before it had to wait keeps that attempt in the log with its calls, and gets one more, up to
    SYNC_MAX_ATTEMPTS_WITH_WAITS: a step whose calls never fit in the limit's wait (each retry repeats its
    first calls) still ends as an exception instead of retrying for ever.
    """
    if calls:
        if step.max_attempts < _setting("SYNC_MAX_ATTEMPTS_WITH_WAITS", 50):
            step.max_attempts += 1
    else:
        StepAttempt.objects.filter(pk=claim.attempt_id).delete()
        step.attempts -= 1


def _fail_for_good(step: Step, error: BusinessError, *, error_class: str, now) -> None:
    """The step will not be retried automatically: the transaction becomes an exception in the queue."""
    step.status = Step.Status.FAILED
    step.error_class = error_class
    step.error_message = error.message
    step.error_fix = error.fix
    step.error_technical = error.technical
    step.lease_expires_at = None
    step.save()
    txn = step.transaction
    txn.status = Transaction.Status.EXCEPTION
    txn.exception_at = now
    txn.error_class = error_class
    txn.error_message = error.message
    txn.error_fix = error.fix
    txn.error_technical = error.technical
    if not txn.owner_role:
        txn.owner_role = workflow_for(txn.workflow).owner_role
    txn.save()
    exception_file(txn=txn, step=step, error=error, error_class=error_class)
    workflow_for(txn.workflow).on_exception(txn, error)


def _split_call(call: dict) -> tuple[dict, dict]:
    request = {key: call.get(key) for key in ("method", "url", "request_headers", "request_body", "idempotency_key")}
    response = {key: call.get(key) for key in ("status", "response_headers", "response_body", "duration_ms", "error")}
    return request, response


def run_step(step_id: int, *, worker: str | None = None, follow: bool = False) -> str:
    """Claim a step, run it, record the outcome. Returns what happened (for logs and tests).

    With `follow` (the task entry point), a step that succeeds is followed at once by the next step of its
    transaction in this worker, for up to `follow_seconds()`, instead of a round trip through the queue: the
    finishing transaction claims the next step too.
    """
    follow_until = time.monotonic() + follow_seconds() if follow else 0
    claim = claim_step(step_id, worker=worker)
    if claim is None:
        return "not-claimed"
    outcome, next_claim = _run_claimed(claim, follow_until=follow_until)
    while next_claim is not None:
        _, next_claim = _run_claimed(next_claim, follow_until=follow_until)
    return outcome


def _run_claimed(claim: Claim, *, follow_until: float) -> tuple[str, Claim | None]:
    step_id = claim.step_id
    calls: list[dict] = []
    correlation_id = None
    label = f"Step #{step_id}"
    try:
        step = claim.step
        correlation_id = step.transaction.correlation_id
        label = f"Step {step.sequence} ({step.title or step.name})"  # the trace numbers steps by sequence
        txn = step.transaction
        with system_context(
            f"{txn.get_workflow_display()}: {step.title or step.name}", correlation_id=txn.correlation_id
        ):
            workflow = workflow_for(txn.workflow)

            def work_and_finish():
                # A finish retried after a lost connection runs the step's work again, with the same idempotency
                # key, instead of re-applying the first try's result: that try's `apply()` may have changed objects
                # in memory that its rolled-back transaction never stored, and would then find nothing to save.
                result = workflow.run(step.name, StepContext(transaction=txn, step=step, calls=calls))
                return finish_success(claim, result, calls, follow_until=follow_until)

            next_claim = _with_reconnect(work_and_finish)
        return "succeeded", next_claim
    except Exception as exc:  # every failure is recorded on the step, never lost in a worker log
        error, retryable = classify(exc)
        logger.warning("Step %s failed: %s", step_id, error.message)
        if isinstance(exc, OperationalError | InterfaceError):
            connection.close()  # a dead connection stays dead until closed; the next query reconnects

        def record_failure():
            with system_context(f"{label} failed: {error.message[:300]}", correlation_id=correlation_id):
                finish_failure(claim, error, calls, retryable=retryable)

        try:
            # The database may have dropped this worker's connection whatever the step's own error was.
            _with_reconnect(record_failure)
        except DatabaseError:
            logger.exception("Could not record the failure of step %s; its lease will expire and it reruns", step_id)
        return "failed", None


def _with_reconnect(finish, *args, attempts: int = 4, **kwargs):
    """Record an outcome even across a database restart: keep trying for a few seconds before giving up (then the
    lease runs out and the step reruns idempotently). `finish` is called again from the start on each try."""
    for attempt in range(1, attempts + 1):
        try:
            return finish(*args, **kwargs)
        except (OperationalError, InterfaceError):
            if attempt == attempts:
                raise
            logger.warning("Database unavailable while recording a step outcome; reconnecting (try %s)", attempt)
            connection.close()
            time.sleep(min(2**attempt, 10) / 2)


def due_step_ids(*, now=None, limit: int = 500, include_recently_queued: bool = False) -> list[int]:
    """Steps that should run now: due new steps and retries, and running steps whose lease ran out.

    A step queued within the last few minutes is left alone (its message is probably still waiting
    in the queue) unless `include_recently_queued`; a lost message is thus re-sent a few minutes later.
    """
    now = now or timezone.now()
    open_txns = list(Transaction.OPEN_STATUSES)
    due = Step.objects.filter(status__in=Step.DUE_STATUSES, transaction__status__in=open_txns, next_attempt_at__lte=now)
    if not include_recently_queued:
        stale = now - timedelta(seconds=_setting("SYNC_REQUEUE_AFTER_SECONDS", 120))
        due = due.filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=stale) | Q(status=Step.Status.WAITING_RETRY))
    expired = Step.objects.filter(
        status=Step.Status.RUNNING, lease_expires_at__lte=now, transaction__status__in=open_txns
    )
    ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    ids += list(expired.order_by("lease_expires_at").values_list("pk", flat=True)[:limit])
    return ids


def sweep(*, now=None) -> int:
    """Start the transactions of stored events that have none yet, then queue every due step.

    Installed as a django-q2 schedule; safe to run from several clusters at once. Returns the steps queued.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=_setting("SYNC_REQUEUE_AFTER_SECONDS", 120))
    ids = due_step_ids(now=now)  # before the pick-up: the transactions it starts queue their own first step
    intake.pick_up_stored_events(received_before=stale)
    if ids:
        Step.objects.filter(pk__in=ids).update(enqueued_at=now)  # history-ok: bookkeeping of the queue only
        for step_id in ids:
            enqueue_step(step_id)
    return len(ids)


def run_due_steps(*, limit: int = 10_000, now=None) -> int:
    """Run due steps inline until none is left (used by tests and the `sync_run` command); returns steps run.

    Stored inbound events without their transaction are picked up first, as the sweep would.
    """
    intake.pick_up_stored_events()
    ran = 0
    while ran < limit:
        ids = due_step_ids(now=now, limit=100, include_recently_queued=True)
        if not ids:
            break
        progressed = False
        for step_id in ids:
            if run_step(step_id) != "not-claimed":
                ran += 1
                progressed = True
        if not progressed:
            break
    return ran
