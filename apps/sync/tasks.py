"""django-q2 entry points: take ids, call one engine function. Delivery is at-least-once; these are idempotent."""

from .batches import rerun_batch_process as _rerun_batch_process
from .engine import run_step as _run_step
from .engine import sweep as _sweep
from .intake import pick_up_delivery as _pick_up_delivery
from .intake import pick_up_events as _pick_up_events


def run_step(step_id) -> str:
    """Run one ledger step if it is due (a duplicate message finds it claimed or done and does nothing), then
    the next steps of its transaction while they succeed, for a bounded time, without a queue round trip."""
    return _run_step(int(step_id), follow=True)


def pick_up_delivery(delivery_id) -> int:
    """Start the ledger transactions of a stored delivery (a repeat finds them started and does nothing)."""
    return len(_pick_up_delivery(int(delivery_id)))


def pick_up_events(system_id, keys) -> int:
    """Start the ledger transactions of the deliveries holding these events (a repeat does nothing)."""
    return len(_pick_up_events(int(system_id), list(keys)))


def sweep() -> int:
    """Queue every due step: retries, steps whose message was lost, steps whose worker died; and start the
    transactions of stored events whose pick-up message was lost."""
    return _sweep()


def rerun_batch_process(batch_id) -> int:
    """Re-run a bulk re-run's transactions (resumes where it stopped; a cancelled batch does nothing)."""
    batch = _rerun_batch_process(batch_id=int(batch_id))
    return batch.processed if batch is not None else 0
