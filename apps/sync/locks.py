"""The row locks the ledger engine takes before it changes a step (claim and finish), each in one query."""

from django.db import connection
from django.db.models import Exists, OuterRef

from .models import Step


def _locking(queryset, *, skip_locked: bool = False):
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update(
            skip_locked=skip_locked and connection.features.has_select_for_update_skip_locked, of=("self",)
        )
    return queryset


def lock_step(step_id: int, *, skip_locked: bool) -> Step | None:
    """The step (with its transaction and target), locked, and whether an earlier step is still open (`earlier_open`).

    With `skip_locked` a step another worker holds is not waited for: None, as for a step that does not exist.
    """
    earlier_open = Step.objects.filter(transaction_id=OuterRef("transaction_id"), sequence__lt=OuterRef("sequence"))
    earlier_open = earlier_open.exclude(status__in=[Step.Status.SUCCEEDED, Step.Status.SKIPPED])
    queryset = Step.objects.select_related("transaction", "target_system").annotate(earlier_open=Exists(earlier_open))
    return _locking(queryset, skip_locked=skip_locked).filter(pk=step_id).first()


def lock_step_and_next(step: Step) -> tuple[Step | None, Step | None]:
    """The step as now stored and the step after it in its transaction (None if it is the last), both locked in
    sequence order, with their transaction (one object for both: the next step sees this one's output)."""
    queryset = Step.objects.select_related("transaction", "target_system").filter(
        transaction_id=step.transaction_id, sequence__gte=step.sequence
    )
    rows = list(_locking(queryset).order_by("sequence")[:2])
    if not rows or rows[0].pk != step.pk:
        return None, None
    current, following = rows[0], (rows[1] if len(rows) > 1 else None)
    if following is not None:
        following.transaction = current.transaction
    return current, following
