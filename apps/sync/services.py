"""Starting, re-running and resolving transactions: every action a person or an inbound event takes here."""

import re

from django.db import transaction
from django.utils import timezone

from apps.core import approvals
from apps.core.approvals import approval_request, needs_second_person
from apps.core.context import audit_context, get_correlation_id, new_correlation_id
from apps.core.errors import BusinessError
from apps.core.history import bulk_create_tracked
from apps.core.models import ChangeRequest

from .models import Step, Transaction
from .queue import enqueue_step, send_with_commit, step_message_row
from .registry import workflow_for
from .targets import planned_system
from .writes import create_with_history, fast_path

REPLAY_ATTEMPTS = 6  # a re-run gets a fresh budget of automatic retries


class ActionRefused(BusinessError):
    code = "action_refused"


def transaction_start(
    *,
    workflow: str,
    data: dict,
    inbound_event=None,
    parent: Transaction | None = None,
    command_index: int | None = None,
    root_correlation_id: str = "",
    actor=None,
    reason: str = "",
) -> Transaction:
    """Record a new workflow execution with all its steps, and queue the first step once committed.

    Idempotent for a command of a parent transaction: starting it again returns the existing one.
    The root correlation ID (given, else the parent's, else the current request's or task's) ties the
    transaction to what started the chain, e.g. an inbound delivery.
    """
    if parent is not None and command_index is not None:
        existing = Transaction.objects.filter(parent=parent, command_index=command_index).first()
        if existing is not None:
            return existing
    definition = workflow_for(workflow)
    subject = definition.subject(data)
    now = timezone.now()
    correlation_id = new_correlation_id()
    root = root_correlation_id or (parent.root_correlation_id if parent is not None else "")
    txn = Transaction(
        workflow=workflow,
        correlation_id=correlation_id,
        root_correlation_id=(root or get_correlation_id() or correlation_id)[:64],
        input=data,
        inbound_event=inbound_event,
        parent=parent,
        command_index=command_index,
        business_key=subject.business_key[:255],
        subject=subject.label[:300],
        subject_type=subject.object_type,
        subject_id=subject.object_id,
        value_at_risk=subject.value_at_risk,
        currency=subject.currency,
        owner_role=definition.owner_role,
    )
    steps = [
        Step(
            sequence=sequence,
            name=spec.name,
            title=spec.title,
            target_system=planned_system(workflow=workflow, kind=spec.target, data=data),
            max_attempts=spec.max_attempts,
            idempotency_key=f"{txn.correlation_id}.{sequence}",
            next_attempt_at=now if sequence == 1 else None,
            enqueued_at=now if sequence == 1 else None,
        )
        for sequence, spec in enumerate(definition.plan(data), start=1)
    ]
    with audit_context(actor=actor, reason=reason or f"Started {workflow}"):
        if steps and fast_path():
            # PostgreSQL: the transaction, its steps, every history row and, with the ORM broker, the first step's
            # message in one statement (atomic by itself); another broker gets the message once committed.
            if not create_with_history(txn, steps, link="transaction", message=step_message_row):
                first_id = steps[0].pk
                send_with_commit(lambda: enqueue_step(first_id))
            return txn
        with transaction.atomic():
            txn.save(force_insert=True)
            if steps:
                for step in steps:
                    step.transaction = txn
                # One INSERT for the steps, one INSERT … SELECT for their history rows (who/why/correlation as save()).
                steps = bulk_create_tracked(Step, steps)
                first_id = steps[0].pk
                send_with_commit(lambda: enqueue_step(first_id))
            else:
                txn.status = Transaction.Status.COMPLETED
                txn.completed_at = now
                txn.save()
    return txn


def _restartable_step(txn: Transaction, from_sequence: int | None) -> Step:
    steps = txn.steps.order_by("sequence")
    if from_sequence is not None:
        step = steps.filter(sequence=from_sequence).first()
        if step is None:
            raise ActionRefused(f"Transaction {txn.correlation_id} has no step {from_sequence}.")
        return step
    step = steps.exclude(status__in=[Step.Status.SUCCEEDED, Step.Status.SKIPPED]).first()
    if step is None:
        raise ActionRefused(f"Transaction {txn.correlation_id} has no failed or unfinished step to re-run.")
    return step


# A changed value under a key like these is an amount: an edit that changes one needs four-eyes approval.
AMOUNT_KEY = re.compile(r"amount|rate|price|total|cost|fee|hours|quantity|qty|discount|tax|balance", re.IGNORECASE)


def amount_changes(before, after, path: str = "") -> list[dict]:
    """The amounts an edited input changes: [{field: "lines[0].amount", old, new}], walking nested JSON."""
    if isinstance(before, dict) or isinstance(after, dict):
        old = before if isinstance(before, dict) else {}
        new = after if isinstance(after, dict) else {}
        changes = []
        for key in sorted(set(old) | set(new), key=str):
            changes += amount_changes(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return changes
    if isinstance(before, list) or isinstance(after, list):
        old = before if isinstance(before, list) else []
        new = after if isinstance(after, list) else []
        changes = []
        for index in range(max(len(old), len(new))):
            changes += amount_changes(
                old[index] if index < len(old) else None, new[index] if index < len(new) else None, f"{path}[{index}]"
            )
        return changes
    if before == after:
        return []
    key = re.sub(r"(\[\d+\])+$", "", path).rsplit(".", 1)[-1]
    return [{"field": path, "old": before, "new": after}] if AMOUNT_KEY.search(key) else []


def _replayable(txn: Transaction, reason: str) -> Transaction:
    if not reason.strip():
        raise ActionRefused("Say why you are re-running this transaction; auditors read it in the history.")
    txn = Transaction.objects.select_for_update().get(pk=txn.pk)
    if txn.status not in (Transaction.Status.EXCEPTION, Transaction.Status.WAITING_RETRY):
        raise ActionRefused(
            f"Transaction {txn.correlation_id} is {txn.get_status_display().lower()}; only exceptions and "
            f"transactions waiting to retry can be re-run."
        )
    return txn


@transaction.atomic
def transaction_replay(
    *,
    txn: Transaction,
    actor,
    reason: str,
    from_sequence: int | None = None,
    input_override: dict | None = None,
    step_input_override: dict | None = None,
) -> Transaction | ChangeRequest:
    """Re-run a transaction, or, when an edit changes an amount and four-eyes is on, ask a second person to."""
    edited = input_override is not None or step_input_override is not None
    if edited and needs_second_person(approvals.TRANSACTION_REPLAY_AMOUNT, actor):
        txn = _replayable(txn, reason)
        restart = _restartable_step(txn, from_sequence)
        if input_override is not None:
            diff = amount_changes(txn.effective_input, input_override)
        else:
            base = restart.input_override if restart.input_override is not None else txn.effective_input
            diff = amount_changes(base, step_input_override)
        if diff:
            return approval_request(
                kind=approvals.TRANSACTION_REPLAY_AMOUNT,
                target=txn,
                summary=f"Re-run {txn.subject or txn.correlation_id} with edited amounts",
                payload={
                    "from_sequence": from_sequence,
                    "input_override": input_override,
                    "step_input_override": step_input_override,
                },
                diff=diff,
                actor=actor,
                reason=reason,
            )
    return transaction_replay_now(
        txn=txn,
        actor=actor,
        reason=reason,
        from_sequence=from_sequence,
        input_override=input_override,
        step_input_override=step_input_override,
    )


def transaction_replay_apply_approval(change_request: ChangeRequest, *, actor, reason: str) -> Transaction:
    """The four-eyes action: re-run with the edit the request holds, as the checker."""
    payload = change_request.payload
    return transaction_replay_now(
        txn=change_request.target,
        actor=actor,
        reason=reason,
        from_sequence=payload.get("from_sequence"),
        input_override=payload.get("input_override"),
        step_input_override=payload.get("step_input_override"),
    )


@transaction.atomic
def transaction_replay_now(
    *,
    txn: Transaction,
    actor,
    reason: str,
    from_sequence: int | None = None,
    input_override: dict | None = None,
    step_input_override: dict | None = None,
) -> Transaction:
    """Re-run a transaction from its failed step (or a chosen one), as it is or with edited input.

    The original input is never changed: an edit is stored beside it (and in the history with who and
    why). Steps from the restart point on get fresh attempts; edited inputs get fresh idempotency keys,
    because the target must not answer an edited request with the stored answer to the original.
    """
    txn = _replayable(txn, reason)
    restart = _restartable_step(txn, from_sequence)
    edited = input_override is not None or step_input_override is not None
    now = timezone.now()
    with audit_context(actor=actor, reason=reason):
        if input_override is not None:
            txn.input_override = input_override
        txn.status = Transaction.Status.PENDING
        txn.error_class = txn.error_message = txn.error_fix = txn.error_technical = ""
        txn.exception_at = None
        txn.save()
        for step in txn.steps.filter(sequence__gte=restart.sequence).order_by("sequence"):
            step.status = Step.Status.PENDING
            step.max_attempts = step.attempts + REPLAY_ATTEMPTS
            step.next_attempt_at = now if step.pk == restart.pk else None
            step.enqueued_at = now if step.pk == restart.pk else None
            step.lease_expires_at = None
            step.error_class = step.error_message = step.error_fix = step.error_technical = ""
            if step.pk == restart.pk and step_input_override is not None:
                step.input_override = step_input_override
            if edited:
                step.idempotency_key = f"{txn.correlation_id}.{step.sequence}.r{now:%Y%m%d%H%M%S}"
            step.save()
    restart_id = restart.pk
    send_with_commit(lambda: enqueue_step(restart_id))
    return txn


def transactions_replay(*, transactions, actor, reason: str) -> dict:
    """Re-run many transactions as they are; each is its own atomic action. Returns counts and refusals."""
    report = {"replayed": 0, "refused": []}
    for txn in transactions:
        try:
            transaction_replay(txn=txn, actor=actor, reason=reason)
            report["replayed"] += 1
        except ActionRefused as exc:
            report["refused"].append({"transaction": txn.correlation_id, "reason": exc.message})
    return report


@transaction.atomic
def transaction_resolve(*, txn: Transaction, actor, reason: str, ignore: bool = False) -> Transaction:
    """Close an exception by hand (fixed elsewhere) or ignore it, with a reason."""
    if not reason.strip():
        raise ActionRefused("Say why you are closing this exception; auditors read it in the history.")
    txn = Transaction.objects.select_for_update().get(pk=txn.pk)
    if txn.status in Transaction.CLOSED_STATUSES:
        raise ActionRefused(f"Transaction {txn.correlation_id} is already {txn.get_status_display().lower()}.")
    with audit_context(actor=actor, reason=reason):
        txn.status = Transaction.Status.IGNORED if ignore else Transaction.Status.RESOLVED
        txn.resolved_at = timezone.now()
        txn.resolved_by = actor
        txn.resolution_reason = reason
        txn.save()
        txn.steps.filter(status__in=[Step.Status.PENDING, Step.Status.WAITING_RETRY]).update(
            next_attempt_at=None
        )  # history-ok: scheduling bookkeeping of steps that will not run
    return txn


@transaction.atomic
def transaction_assign(*, txn: Transaction, owner, actor, reason: str = "") -> Transaction:
    """Give an exception to a person."""
    txn = Transaction.objects.select_for_update().get(pk=txn.pk)
    with audit_context(actor=actor, reason=reason or f"Assigned to {owner.get_username() if owner else 'nobody'}"):
        txn.owner = owner
        txn.save(update_fields=["owner", "updated_at"])
    return txn
