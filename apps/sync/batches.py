"""Bulk re-runs: a plan (which transactions, how much money) recorded first, then run by a task, cancellable."""

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from apps.core.context import audit_context

from .groups import GroupActionRefused, reason_required
from .models import RerunBatch, Transaction
from .services import ActionRefused, transaction_replay


def group_open_transactions(group: ExceptionGroup):
    """The group's transactions that a re-run would pick up (exceptions and ones waiting to retry)."""
    return Transaction.objects.filter(
        exception_membership__group=group,
        status__in=(Transaction.Status.EXCEPTION, Transaction.Status.WAITING_RETRY),
    ).order_by("exception_at", "pk")


def plan_summary(queryset) -> dict:
    """How many, how much money per currency: what a plan shows before anything runs."""
    totals = (
        queryset.order_by()
        .values("currency")
        .annotate(count=Count("pk"), amount=Sum("value_at_risk"))
        .order_by("currency")
    )
    return {
        "count": sum(row["count"] for row in totals),
        "money": [(row["currency"], row["amount"]) for row in totals if row["amount"] is not None],
    }


PLAN_LIMIT = 5000


@transaction.atomic
def rerun_batch_plan(
    *, queryset, description: str, actor, reason: str, filters: dict | None = None, group=None
) -> RerunBatch:
    """Record which transactions a bulk re-run will take (re-runnable ones only), without running anything."""
    reason_required(reason, "re-running these transactions")
    candidates = queryset.filter(status__in=(Transaction.Status.EXCEPTION, Transaction.Status.WAITING_RETRY)).order_by(
        "exception_at", "pk"
    )
    ids = list(candidates.values_list("pk", flat=True)[: PLAN_LIMIT + 1])
    if not ids:
        raise GroupActionRefused(
            "Nothing to re-run: no exception or retrying transaction matches.",
            fix="Widen the filter, or open the exception queue to see what is open.",
        )
    if len(ids) > PLAN_LIMIT:
        raise GroupActionRefused(
            f"More than {PLAN_LIMIT} transactions match; a bulk re-run takes at most {PLAN_LIMIT}.",
            fix="Narrow the filter (by workflow, error class or date) and plan again.",
        )
    with audit_context(actor=actor, reason=reason):
        return RerunBatch.objects.create(
            description=description[:300],
            filters=filters or {},
            group=group,
            transaction_ids=ids,
            total=len(ids),
            reason=reason,
            created_by=actor,
        )


@transaction.atomic
def rerun_batch_start(*, batch: RerunBatch, actor) -> RerunBatch:
    """Start a planned batch: the task re-runs its transactions one by one."""
    batch = RerunBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != RerunBatch.Status.PLANNED:
        raise GroupActionRefused(f"Re-run #{batch.pk} is already {batch.get_status_display().lower()}.")
    with audit_context(actor=actor, reason=f"Started: {batch.reason}"):
        batch.status = RerunBatch.Status.RUNNING
        batch.started_at = timezone.now()
        batch.save()
    batch_id = batch.pk
    transaction.on_commit(lambda: enqueue_batch(batch_id))
    return batch


def enqueue_batch(batch_id: int) -> None:
    from django_q.tasks import async_task

    async_task("apps.sync.tasks.rerun_batch_process", batch_id, task_name=f"rerun-batch-{batch_id}")


@transaction.atomic
def rerun_batch_cancel(*, batch: RerunBatch, actor, reason: str = "") -> RerunBatch:
    """Stop a batch: transactions not yet re-run are left as they are."""
    batch = RerunBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.finished:
        raise GroupActionRefused(f"Re-run #{batch.pk} is already {batch.get_status_display().lower()}.")
    with audit_context(actor=actor, reason=reason or "Cancelled the bulk re-run"):
        batch.status = RerunBatch.Status.CANCELLED
        batch.cancelled_by = actor
        batch.finished_at = timezone.now()
        batch.save()
    return batch


def rerun_batch_process(*, batch_id: int) -> RerunBatch | None:
    """Re-run a running batch's transactions in order; stops when cancelled; safe to run twice (it resumes)."""
    batch = RerunBatch.objects.filter(pk=batch_id).select_related("created_by").first()
    if batch is None or batch.status != RerunBatch.Status.RUNNING:
        return batch
    for txn_id in batch.transaction_ids[batch.processed :]:
        with transaction.atomic():
            locked = RerunBatch.objects.select_for_update().get(pk=batch_id)
            if locked.status != RerunBatch.Status.RUNNING:
                return locked
            txn = Transaction.objects.filter(pk=txn_id).first()
            if txn is None:
                locked.refused = [*locked.refused, {"transaction": txn_id, "reason": "It no longer exists."}]
            else:
                try:
                    transaction_replay(txn=txn, actor=locked.created_by, reason=locked.reason)
                    locked.replayed += 1
                except ActionRefused as exc:
                    locked.refused = [*locked.refused, {"transaction": txn.correlation_id, "reason": exc.message}]
            locked.processed += 1
            with audit_context(actor=locked.created_by, reason=locked.reason):
                locked.save(update_fields=["processed", "replayed", "refused", "updated_at"])
    with transaction.atomic():
        locked = RerunBatch.objects.select_for_update().get(pk=batch_id)
        if locked.status == RerunBatch.Status.RUNNING:
            with audit_context(actor=locked.created_by, reason=locked.reason):
                locked.status = RerunBatch.Status.COMPLETED
                locked.finished_at = timezone.now()
                locked.save()
    return locked


def rerun_batch_progress(batch: RerunBatch) -> dict:
    """Where a batch is: queued so far, and what its transactions have become since (one query)."""
    outcomes = dict(
        Transaction.objects.filter(pk__in=batch.transaction_ids)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    in_flight = sum(outcomes.get(s, 0) for s in (Transaction.Status.PENDING, Transaction.Status.RUNNING))
    retrying = outcomes.get(Transaction.Status.WAITING_RETRY, 0)
    done = batch.finished and in_flight == 0 and (batch.status == RerunBatch.Status.CANCELLED or retrying == 0)
    return {
        "id": batch.pk,
        "status": batch.status,
        "status_label": batch.get_status_display(),
        "total": batch.total,
        "processed": batch.processed,
        "replayed": batch.replayed,
        "refused": len(batch.refused),
        "completed": outcomes.get(Transaction.Status.COMPLETED, 0),
        "exceptions": outcomes.get(Transaction.Status.EXCEPTION, 0),
        "in_flight": in_flight + retrying,
        "finished": done,
    }
