"""The transaction ledger: claims and leases, retries with backoff, exceptions, replay and resolution."""

import datetime

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from apps.canonical.models import LegalEntity
from apps.connectors.errors import RateLimitWait, TransientError
from apps.core.errors import BusinessError
from apps.sync import engine, tasks
from apps.sync.engine import claim_step, run_due_steps, run_step, sweep
from apps.sync.models import Step, StepAttempt, Transaction
from apps.sync.registry import StepSpec, Subject, WorkflowDefinition, register
from apps.sync.services import (
    ActionRefused,
    transaction_replay,
    transaction_resolve,
    transaction_start,
    transactions_replay,
)
from apps.sync.steps import Retryable, StepResult

pytestmark = pytest.mark.django_db

BEHAVIOUR: dict = {}


@register
class LedgerTestFlow(WorkflowDefinition):
    """Two steps whose behaviour each test sets in BEHAVIOUR."""

    name = "ledger_test"
    owner_role = "finance_ops"

    def plan(self, data):
        return [StepSpec("first", "First step", max_attempts=3), StepSpec("second", "Second step")]

    def subject(self, data):
        return Subject(business_key=f"test:{data.get('n', 0)}", label=f"Test {data.get('n', 0)}")

    def step_first(self, ctx):
        action = BEHAVIOUR.get("first")
        BEHAVIOUR.setdefault("seen_inputs", []).append(dict(ctx.input))
        BEHAVIOUR.setdefault("keys", []).append(ctx.idempotency_key)
        if callable(action):
            return action(ctx)
        code = ctx.input.get("code", "T-1")

        def apply():
            LegalEntity.objects.create(code=code, name="Test entity", country="US", currency="USD")
            return {"entity_code": code}

        return StepResult(output={"first": True}, apply=apply)

    def step_second(self, ctx):
        action = BEHAVIOUR.get("second")
        if callable(action):
            return action(ctx)
        return StepResult(output={"second": ctx.state.get("entity_code")})


@pytest.fixture(autouse=True)
def reset_behaviour():
    BEHAVIOUR.clear()
    yield
    BEHAVIOUR.clear()


def start(**data):
    return transaction_start(workflow="ledger_test", data=data or {"n": 1}, reason="test")


def make_due(txn):
    txn.steps.filter(status__in=Step.DUE_STATUSES).update(
        next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
    )


def test_a_transaction_runs_every_step_in_order_and_completes():
    txn = start(n=1)
    assert [step.name for step in txn.steps.all()] == ["first", "second"]
    assert run_due_steps() == 2
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.COMPLETED
    assert txn.state == {"first": True, "entity_code": "T-1", "second": "T-1"}
    assert all(step.status == Step.Status.SUCCEEDED and step.attempts == 1 for step in txn.steps.all())
    assert StepAttempt.objects.filter(step__transaction=txn, outcome="succeeded").count() == 2


def test_a_steps_writes_carry_the_transactions_correlation_id_and_the_system_user():
    txn = start(n=2)
    run_due_steps()
    row = LegalEntity.history.get(code="T-1")
    assert row.history_correlation_id == txn.correlation_id
    assert row.history_user.username == "integration-system"
    assert "First step" in row.history_change_reason


def test_a_transient_failure_waits_with_backoff_then_succeeds(django_capture_on_commit_callbacks):
    calls = {"n": 0}

    def flaky(ctx):
        calls["n"] += 1
        if calls["n"] == 1:
            raise Retryable("The ERP did not answer within 30 s.", technical="ReadTimeout")
        return StepResult(output={"ok": True})

    BEHAVIOUR["first"] = flaky
    txn = start()
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        run_due_steps()
    step = txn.steps.get(name="first")
    assert step.status == Step.Status.WAITING_RETRY
    assert step.error_message == "The ERP did not answer within 30 s."
    assert step.next_attempt_at >= before + datetime.timedelta(seconds=2.5)
    assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.WAITING_RETRY
    assert Schedule.objects.filter(func="apps.sync.tasks.run_step", args=str(step.pk)).exists()
    assert run_due_steps() == 0  # not due yet
    make_due(txn)
    run_due_steps()
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.COMPLETED
    attempts = list(StepAttempt.objects.filter(step=step).order_by("number").values_list("outcome", flat=True))
    assert attempts == ["failed", "succeeded"]


def test_retry_after_from_the_target_is_honoured_when_longer_than_the_backoff():
    retry_at = timezone.now() + datetime.timedelta(minutes=10)

    def throttled(ctx):
        raise Retryable("NetSuite asked us to slow down.", retry_at=retry_at)

    BEHAVIOUR["first"] = throttled
    txn = start()
    run_due_steps()
    assert txn.steps.get(name="first").next_attempt_at == retry_at


def test_a_shorter_retry_after_is_honoured_instead_of_the_backoff():
    tries = {"n": 0}

    def throttled(ctx):
        tries["n"] += 1
        if tries["n"] < 2:
            raise Retryable("Down for a moment.")
        raise TransientError("Chargebee asked us to slow down (too many requests).", retry_at=BEHAVIOUR["retry_at"])

    BEHAVIOUR["first"] = throttled
    txn = start()
    for _ in range(2):
        BEHAVIOUR["retry_at"] = timezone.now() + datetime.timedelta(seconds=1)
        make_due(txn)
        run_due_steps()
    step = txn.steps.get(name="first")
    assert (step.attempts, step.status) == (2, Step.Status.WAITING_RETRY)
    # The second attempt's backoff would be 5-10 s; the target said 1 s, so the step comes back then.
    assert step.next_attempt_at == BEHAVIOUR["retry_at"]


def wait_for_the_limit(ctx):
    raise RateLimitWait(
        "Calls to NetSuite are limited to 60 a minute and the limit is reached; this call waits for the next slot.",
        retry_at=timezone.now() + datetime.timedelta(seconds=1),
    )


def test_waiting_for_the_rate_limit_spends_no_attempt_however_often_it_happens():
    BEHAVIOUR["first"] = wait_for_the_limit
    txn = start()
    step = txn.steps.get(name="first")
    for _ in range(step.max_attempts * 3):
        make_due(txn)
        assert run_due_steps() == 1
    step.refresh_from_db()
    txn.refresh_from_db()
    assert step.status == Step.Status.WAITING_RETRY
    assert txn.status == Transaction.Status.WAITING_RETRY
    assert step.attempts == 0 and step.max_attempts == 3
    assert not StepAttempt.objects.filter(step=step).exists()  # no call left: nothing was attempted
    assert step.error_message.startswith("Calls to NetSuite are limited to 60 a minute")
    assert step.history.filter(history_change_reason__contains="limited to 60 a minute").exists()

    BEHAVIOUR.pop("first")
    make_due(txn)
    run_due_steps()
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.COMPLETED
    assert list(StepAttempt.objects.filter(step=step).values_list("number", "outcome")) == [(1, "succeeded")]


def test_a_wait_after_some_calls_keeps_its_attempt_and_gives_the_step_one_more():
    def call_then_wait(ctx):
        ctx.calls.append({"method": "POST", "url": "https://billing.example/unbilled_charges", "status": 200})
        wait_for_the_limit(ctx)

    BEHAVIOUR["first"] = call_then_wait
    txn = start()
    step = txn.steps.get(name="first")
    for _ in range(5):
        make_due(txn)
        run_due_steps()
    step.refresh_from_db()
    assert step.status == Step.Status.WAITING_RETRY
    assert (step.attempts, step.max_attempts) == (5, 8)
    attempts = StepAttempt.objects.filter(step=step)
    assert [a.outcome for a in attempts] == ["failed"] * 5
    assert all(a.http_calls and a.retry_at for a in attempts)


def test_a_step_whose_calls_never_fit_the_limit_still_ends_as_an_exception(settings):
    settings.SYNC_MAX_ATTEMPTS_WITH_WAITS = 5

    def call_then_wait(ctx):
        ctx.calls.append({"method": "POST", "url": "https://billing.example/unbilled_charges", "status": 200})
        wait_for_the_limit(ctx)

    BEHAVIOUR["first"] = call_then_wait
    txn = start()
    for _ in range(5):
        make_due(txn)
        run_due_steps()
    txn.refresh_from_db()
    step = txn.steps.get(name="first")
    assert (step.attempts, step.max_attempts, step.status) == (5, 5, Step.Status.FAILED)
    assert txn.status == Transaction.Status.EXCEPTION


def test_a_transient_failure_still_spends_its_attempt():
    def down(ctx):
        raise TransientError("Chargebee had a problem of its own (HTTP 503).")

    BEHAVIOUR["first"] = down
    txn = start()
    for _ in range(3):
        make_due(txn)
        run_due_steps()
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.EXCEPTION
    assert txn.steps.get(name="first").attempts == 3


def test_after_the_last_attempt_the_transaction_becomes_an_exception():
    def always_down(ctx):
        raise Retryable("Kantata is unavailable (503).")

    BEHAVIOUR["first"] = always_down
    txn = start()
    for _ in range(3):
        make_due(txn)
        run_due_steps()
    txn.refresh_from_db()
    step = txn.steps.get(name="first")
    assert step.attempts == 3
    assert step.status == Step.Status.FAILED
    assert txn.status == Transaction.Status.EXCEPTION
    assert txn.error_message == "Kantata is unavailable (503)."
    assert txn.error_class == "transient"
    assert txn.owner_role == "finance_ops"
    assert txn.exception_at is not None


def test_a_business_error_is_an_exception_at_once_with_its_fix():
    def no_rate(ctx):
        raise BusinessError(
            "Project P-1042 has no approved rate card version for role 'Senior Consultant' on 2026-10-31.",
            fix="Approve a rate card version covering 2026-10-31.",
        )

    BEHAVIOUR["first"] = no_rate
    txn = start()
    run_due_steps()
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.EXCEPTION
    assert txn.steps.get(name="first").attempts == 1
    assert txn.error_fix == "Approve a rate card version covering 2026-10-31."
    assert txn.steps.get(name="second").status == Step.Status.PENDING


def test_an_unexpected_error_keeps_the_traceback_beside_a_readable_message():
    BEHAVIOUR["first"] = lambda ctx: 1 / 0
    txn = start()
    run_due_steps()
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.EXCEPTION
    assert txn.error_message == "The step failed with an unexpected error in the console."
    assert "ZeroDivisionError" in txn.error_technical


def test_a_failing_write_in_apply_rolls_back_with_the_step():
    def bad_apply(ctx):
        def apply():
            LegalEntity.objects.create(code="HALF", name="Half written", country="US", currency="USD")
            raise BusinessError("The contract has no customer.")

        return StepResult(apply=apply)

    BEHAVIOUR["first"] = bad_apply
    txn = start()
    run_due_steps()
    assert not LegalEntity.objects.filter(code="HALF").exists()
    assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.EXCEPTION


def test_a_finish_retried_after_a_lost_connection_runs_the_work_again_instead_of_trusting_memory(monkeypatch):
    """The first finish changes an object in memory, then loses its connection: its transaction is gone. The retry
    must store the change, so it reruns the step's work (same idempotency key), which reads the object afresh."""
    LegalEntity.objects.create(code="RE", name="Before", country="US", currency="USD")
    tries = []

    def flaky(ctx):
        entity = LegalEntity.objects.get(code="RE")  # read by the work, outside apply(), as real steps do

        def apply():
            if entity.name != "After":  # an apply that saves only what it sees changing
                entity.name = "After"
                entity.save()
            tries.append(ctx.idempotency_key)
            if len(tries) == 1:
                raise OperationalError("server closed the connection unexpectedly")
            return {}

        return StepResult(apply=apply)

    monkeypatch.setattr(engine.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(connection, "close", lambda: None)  # the test's own transaction must stay open
    BEHAVIOUR["first"] = flaky
    txn = start()
    run_due_steps()
    assert LegalEntity.objects.get(code="RE").name == "After"
    assert len(BEHAVIOUR["keys"]) == 2 and len(set(BEHAVIOUR["keys"])) == 1  # the work ran again, same key
    step = txn.steps.get(name="first")
    assert step.status == Step.Status.SUCCEEDED and step.attempts == 1
    assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.COMPLETED


def test_a_claimed_step_cannot_be_claimed_again_while_its_lease_runs():
    txn = start()
    step = txn.steps.get(name="first")
    assert claim_step(step.pk, worker="a") is not None
    assert claim_step(step.pk, worker="b") is None
    assert run_step(step.pk, worker="c") == "not-claimed"


def test_a_step_whose_worker_died_is_taken_over_when_the_lease_expires():
    txn = start()
    step = txn.steps.get(name="first")
    dead = claim_step(step.pk, worker="dead-worker")
    Step.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert run_step(step.pk, worker="live-worker") == "succeeded"
    outcomes = dict(StepAttempt.objects.filter(step=step).values_list("number", "outcome"))
    assert outcomes == {1: "abandoned", 2: "succeeded"}
    # The dead worker comes back to life and tries to record its result: it is refused.
    engine.finish_success(dead, StepResult(output={"late": True}), [])
    assert StepAttempt.objects.get(step=step, number=1).outcome == "superseded"
    assert "late" not in Step.objects.get(pk=step.pk).output


def test_a_step_that_kills_its_worker_every_time_ends_as_an_exception_not_a_loop():
    txn = start()
    step = txn.steps.get(name="first")
    for number in range(step.max_attempts):
        assert claim_step(step.pk, worker=f"w{number}") is not None
        Step.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert claim_step(step.pk, worker="last") is None
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.EXCEPTION
    assert "the worker stopped every time" in txn.error_message


def test_a_step_that_failed_before_its_worker_stopped_says_how_many_times_the_worker_stopped():
    def down(ctx):
        raise Retryable("Kantata is unavailable (503).")

    BEHAVIOUR["first"] = down
    txn = start()
    step = txn.steps.get(name="first")
    for _ in range(step.max_attempts - 1):
        make_due(txn)
        run_due_steps()
    make_due(txn)
    assert claim_step(step.pk, worker="killed") is not None
    Step.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert claim_step(step.pk, worker="next") is None
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.EXCEPTION
    assert "every time" not in txn.error_message
    assert txn.error_message == (
        "Step 'First step' has used all 3 of its attempts: the worker stopped before finishing 1 time, the last one "
        "included, and 2 attempts failed (the last failure: Kantata is unavailable (503).)."
    )
    assert txn.error_technical == "lease expired on 1 of 3 attempts"


def test_the_sweep_queues_due_and_orphaned_steps_but_not_ones_queued_moments_ago():
    fresh = start(n=1)
    orphan = start(n=2)
    Step.objects.filter(transaction=orphan, sequence=1).update(enqueued_at=timezone.now() - datetime.timedelta(hours=1))
    OrmQ.objects.all().delete()  # the start messages (written with the transactions) were taken or lost
    assert sweep() == 1
    queued = OrmQ.objects.count()
    assert queued == 1
    assert Step.objects.get(transaction=fresh, sequence=1).status == Step.Status.PENDING


def test_replay_with_an_edited_input_keeps_the_original_and_records_who_and_why(steward):
    BEHAVIOUR["first"] = lambda ctx: (_ for _ in ()).throw(BusinessError("Legal entity code is wrong."))
    txn = start(n=1, code="BAD")
    run_due_steps()
    first_key = BEHAVIOUR["keys"][0]
    BEHAVIOUR.pop("first")
    transaction_replay(
        txn=txn, actor=steward, reason="Corrected entity code per FIN-9", input_override={"n": 1, "code": "GOOD"}
    )
    run_due_steps()
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.COMPLETED
    assert txn.input == {"n": 1, "code": "BAD"}
    assert txn.input_override == {"n": 1, "code": "GOOD"}
    assert LegalEntity.objects.filter(code="GOOD").exists()
    assert BEHAVIOUR["keys"][1] != first_key  # an edited request never reuses the original's idempotency key
    edit = txn.history.filter(history_change_reason="Corrected entity code per FIN-9").get()
    assert edit.history_user == steward
    assert edit.input_override == {"n": 1, "code": "GOOD"}


def test_replay_as_is_reuses_the_idempotency_key(steward):
    BEHAVIOUR["first"] = lambda ctx: (_ for _ in ()).throw(BusinessError("Target refused."))
    txn = start()
    run_due_steps()
    BEHAVIOUR.pop("first")
    transaction_replay(txn=txn, actor=steward, reason="Target fixed")
    run_due_steps()
    assert BEHAVIOUR["keys"][0] == BEHAVIOUR["keys"][1]


def test_replay_needs_a_reason_and_an_exception(steward):
    txn = start()
    with pytest.raises(ActionRefused, match="Say why"):
        transaction_replay(txn=txn, actor=steward, reason=" ")
    run_due_steps()
    with pytest.raises(ActionRefused, match="only exceptions"):
        transaction_replay(txn=txn, actor=steward, reason="again")


def test_bulk_replay_reports_what_it_refused(steward):
    BEHAVIOUR["first"] = lambda ctx: (_ for _ in ()).throw(BusinessError("No."))
    failed = [start(n=n, code=f"T-{n}") for n in range(3)]
    run_due_steps()
    BEHAVIOUR.pop("first")
    completed = start(n=9, code="T-9")
    run_due_steps()
    report = transactions_replay(transactions=[*failed, completed], actor=steward, reason="Mapping fixed")
    assert report["replayed"] == 3
    assert report["refused"][0]["transaction"] == completed.correlation_id
    run_due_steps()
    assert Transaction.objects.filter(pk__in=[t.pk for t in failed], status="completed").count() == 3


def test_resolving_an_exception_records_who_and_why(finance_user):
    BEHAVIOUR["first"] = lambda ctx: (_ for _ in ()).throw(BusinessError("Duplicate invoice in ERP."))
    txn = start()
    run_due_steps()
    with pytest.raises(ActionRefused):
        transaction_resolve(txn=txn, actor=finance_user, reason="")
    transaction_resolve(txn=txn, actor=finance_user, reason="Posted by hand in NetSuite as INV-77")
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.RESOLVED
    assert txn.resolved_by == finance_user
    assert txn.history.latest().history_change_reason == "Posted by hand in NetSuite as INV-77"
    assert run_due_steps() == 0


@pytest.mark.django_db(transaction=True)
def test_many_workers_claiming_one_step_at_once_get_it_exactly_once():
    import threading

    from django.db import connection as default_connection
    from django.db import connections

    txn = start(n=42)
    step = txn.steps.get(name="first")
    barrier = threading.Barrier(8)
    claims = []

    def worker(number):
        try:
            barrier.wait()
            claims.append(claim_step(step.pk, worker=f"machine-{number}"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [claim for claim in claims if claim is not None]
    assert len(won) == 1
    assert StepAttempt.objects.filter(step=step).count() == 1
    default_connection.close()


def test_the_task_runs_the_next_step_itself_instead_of_queueing_it():
    txn = transaction_start(workflow="ledger_test", data={"code": "T-FOLLOW"}, reason="test")
    first, second = txn.steps.order_by("sequence")
    OrmQ.objects.all().delete()

    assert tasks.run_step(first.pk) == "succeeded"

    txn.refresh_from_db()
    assert txn.status == Transaction.Status.COMPLETED
    assert [step.status for step in txn.steps.order_by("sequence")] == [Step.Status.SUCCEEDED] * 2
    assert StepAttempt.objects.filter(step__transaction=txn, outcome=StepAttempt.Outcome.SUCCEEDED).count() == 2
    assert not OrmQ.objects.exists()  # no queue round trip for the second step


def test_a_followed_step_left_by_a_stopped_worker_is_found_by_the_sweep_once_its_lease_runs_out():
    txn = transaction_start(workflow="ledger_test", data={"code": "T-STOP"}, reason="test")
    first, second = txn.steps.order_by("sequence")
    claim = claim_step(first.pk, worker="w")
    following = engine.finish_success(claim, StepResult(output={}), [], follow_until=float("inf"))
    assert following.step_id == second.pk  # claimed for this worker in the transaction that finished the first
    second.refresh_from_db()
    assert (second.status, second.leased_by, second.attempts) == (Step.Status.RUNNING, "w", 1)
    assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.RUNNING
    OrmQ.objects.all().delete()  # the worker stops here, before running the second step

    assert sweep() == 0  # its lease still runs: nobody else may take it
    Step.objects.filter(pk=second.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert sweep() == 1
    assert run_step(second.pk, worker="other") == "succeeded"
    outcomes = dict(StepAttempt.objects.filter(step=second).values_list("number", "outcome"))
    assert outcomes == {1: "abandoned", 2: "succeeded"}
    assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.COMPLETED


def test_every_step_change_of_a_followed_transaction_has_its_history_row_with_who_why_and_correlation_id():
    # On PostgreSQL the engine writes a step's update and its history row in one statement (apps/sync/writes.py);
    # on SQLite through save(). Both must record the same rows.
    txn = transaction_start(workflow="ledger_test", data={"code": "T-HIST"}, reason="test")
    first, second = txn.steps.order_by("sequence")
    assert tasks.run_step(first.pk) == "succeeded"  # the task follows into the second step

    for step in (first, second):
        step.refresh_from_db()
        rows = list(step.history.order_by("history_id"))
        assert [row.status for row in rows] == ["pending", "running", "succeeded"]
        assert [row.history_type for row in rows] == ["+", "~", "~"]
        for row in rows[1:]:
            assert row.history_user.username == "integration-system"
            assert row.history_correlation_id == txn.correlation_id
        assert rows[1].history_change_reason.startswith(f"Step {step.name} attempt 1 claimed by ")
        assert (rows[1].attempts, rows[1].leased_by) == (1, step.leased_by)
        assert rows[1].lease_expires_at is not None
        assert step.title in rows[2].history_change_reason
        assert (rows[2].finished_at, rows[2].duration_ms, rows[2].updated_at) == (
            step.finished_at,
            step.duration_ms,
            step.updated_at,
        )
    txn.refresh_from_db()
    txn_rows = list(txn.history.order_by("history_id"))
    assert [row.status for row in txn_rows] == ["pending", "running", "completed"]  # running once, not per step
    assert txn_rows[-1].history_correlation_id == txn.correlation_id
    assert txn.state == {"first": True, "entity_code": "T-HIST", "second": "T-HIST"}


def test_a_started_transaction_has_its_steps_history_rows_and_first_message_at_once(admin_user):
    # On PostgreSQL one statement after the keys are drawn (apps/sync/writes.py: create_with_history); on SQLite
    # the ORM. Both must record the same rows.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_q.signing import SignedPackage

    from apps.core.context import system_context

    OrmQ.objects.all().delete()
    with system_context("Test: start", correlation_id="corr-start-1"), CaptureQueriesContext(connection) as queries:
        txn = transaction_start(workflow="ledger_test", data={"n": 7}, actor=admin_user, reason="Because a test")
    if connection.vendor == "postgresql":
        assert len(queries) == 2, [query["sql"][:80] for query in queries]  # the keys, then everything else
    stored = Transaction.objects.get(pk=txn.pk)
    assert (stored.status, stored.business_key, stored.input) == ("pending", "test:7", {"n": 7})
    assert stored.created_at == txn.created_at and stored.updated_at == txn.updated_at
    steps = list(stored.steps.order_by("sequence"))
    assert [(step.name, step.status, step.idempotency_key) for step in steps] == [
        ("first", "pending", f"{txn.correlation_id}.1"),
        ("second", "pending", f"{txn.correlation_id}.2"),
    ]
    assert steps[0].next_attempt_at is not None and steps[1].next_attempt_at is None
    for row in [*stored.history.all(), *steps[0].history.all(), *steps[1].history.all()]:
        assert (row.history_type, row.history_user, row.history_change_reason) == ("+", admin_user, "Because a test")
        assert row.history_correlation_id == "corr-start-1"
    assert stored.history.get().status == "pending" and steps[1].history.get().sequence == 2
    # The first step's message, written with the transaction; a step task that succeeds stores no result row
    # (the ledger's attempt log is its record).
    (message,) = OrmQ.objects.all()
    task = SignedPackage.loads(message.payload)
    assert (task["func"], task["args"], task["save"]) == ("apps.sync.tasks.run_step", (steps[0].pk,), False)
    assert run_step(steps[0].pk) == "succeeded"


def test_a_child_transaction_started_twice_for_the_same_command_is_one_transaction():
    parent = start(n=8)
    first = transaction_start(workflow="ledger_test", data={"n": 9}, parent=parent, command_index=0, reason="test")
    again = transaction_start(workflow="ledger_test", data={"n": 9}, parent=parent, command_index=0, reason="test")
    assert first.pk == again.pk
    assert Transaction.objects.filter(parent=parent).count() == 1
    assert first.steps.count() == 2


def ledger_statements_prepared() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s AND statement LIKE %s",
            ["WITH %", "%sync_step%"],
        )
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.parametrize("prepared", [True, False])
def test_the_ledgers_one_statement_saves_are_prepared_on_postgresql_unless_turned_off(settings, prepared):
    settings.PREPARED_STATEMENTS = prepared  # off: e.g. behind a transaction-pooling proxy
    before = ledger_statements_prepared()
    for n in range(3):
        txn = start(n=n, code=f"P-{n}")
        run_due_steps()
        assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.COMPLETED
    if prepared:
        assert ledger_statements_prepared() > before  # the claim and finish statements, planned once and reused
    else:
        assert ledger_statements_prepared() == before
