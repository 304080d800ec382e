"""The messages the ledger sends to django-q2 workers: "run step N now", "wake step N at T", "pick up delivery D".

Losing any of them is harmless: the database is the source of truth, and the sweep finds due steps and stored
events without their transaction.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task

logger = logging.getLogger(__name__)


# A step task that succeeds leaves no django-q2 result row: the ledger's own attempt log is the record (a failed
# task, i.e. an error the engine could not record, is still kept). Storing it cost the cluster's one monitor
# process a read of every kept result (up to Q_SAVE_LIMIT rows) per task to prune the oldest.
STEP_TASK_OPTIONS = {"save": False}


def enqueue_step(step_id: int) -> None:
    """Ask a worker to run the step now. Losing this message is harmless: the sweep finds due steps."""
    try:
        async_task(
            "apps.sync.tasks.run_step",
            step_id,
            task_name=f"step-{step_id}",
            q_options={"timeout": settings.Q_TIMEOUT, **STEP_TASK_OPTIONS},
        )
    except Exception:  # the broker is the database; if it fails now the sweep will pick the step up
        logger.exception("Could not enqueue step %s; the sweep will pick it up", step_id)


def schedule_retry(step_id: int, at) -> None:
    """Wake the step at its retry time (django-q2 checks schedules about every 30 s; the sweep is the backstop)."""
    try:
        Schedule.objects.create(
            name=f"retry step {step_id} at {at.isoformat()}",
            func="apps.sync.tasks.run_step",
            args=str(step_id),
            schedule_type=Schedule.ONCE,
            repeats=-1,
            next_run=at,
        )
    except Exception:
        logger.exception("Could not schedule the retry of step %s; the sweep will pick it up", step_id)


def broker_is_database(alias: str) -> bool:
    """Whether django-q2 keeps its queue in this database (its ORM broker), so a message can share a transaction."""
    cluster = settings.Q_CLUSTER
    others = ("redis", "sqs", "mongo", "iron_mq", "disque", "broker_class")
    return cluster.get("orm") == alias and not any(cluster.get(name) for name in others)


def send_with_commit(send: Callable[[], None], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Send a message that must not be seen before the current transaction commits.

    With the ORM broker on this database the message is written inside the transaction itself: it appears
    exactly when the work does (and vanishes with a rollback), at the cost of one INSERT instead of a second
    commit. With any other broker it is sent once the transaction has committed.
    """
    if broker_is_database(using) and transaction.get_connection(using).in_atomic_block:
        send()
    else:
        transaction.on_commit(send, using=using)


def enqueue_pickup(delivery_id: int) -> None:
    """Ask a worker to start the ledger transactions of a stored delivery. If this is lost, the sweep does it."""
    try:
        async_task(
            "apps.sync.tasks.pick_up_delivery",
            delivery_id,
            task_name=f"pick-up-delivery-{delivery_id}",
            q_options={"timeout": settings.Q_TIMEOUT},
        )
    except Exception:
        logger.exception("Could not enqueue the pick-up of delivery %s; the sweep will pick it up", delivery_id)


class _Captured:
    """A broker that keeps the package instead of sending it (django-q2 builds and signs it as usual)."""

    def __init__(self, list_key: str):
        self.list_key = list_key
        self.package: str | None = None

    def enqueue(self, package: str) -> str:
        self.package = package
        return "captured"


def pickup_row(system_id: int, keys: list[str], *, using: str = DEFAULT_DB_ALIAS) -> dict | None:
    """The django-q2 queue row asking a worker to pick up the events `keys` of a system, for a caller that
    inserts it itself (in the same statement as the events), or None when the broker is not this database.

    The delivery's id is not known before that statement, so the message names the events by their unique
    (system, idempotency key); the worker starts the transactions of the deliveries holding them.
    """
    return _queue_row(
        "apps.sync.tasks.pick_up_events",
        system_id,
        list(keys),
        task_name=f"pick-up-events-{system_id}-{keys[0][:40] if keys else ''}",
        q_options={"timeout": settings.Q_TIMEOUT},
        using=using,
    )


def step_message_row(steps: list, *, using: str = DEFAULT_DB_ALIAS) -> dict | None:
    """The queue row of `enqueue_step(steps[0].pk)`, for a caller that inserts it in the same statement as the
    steps (apps/sync/writes.py: create_with_history), or None when the broker is not this database."""
    step_id = steps[0].pk
    return _queue_row(
        "apps.sync.tasks.run_step",
        step_id,
        task_name=f"step-{step_id}",
        q_options={"timeout": settings.Q_TIMEOUT, **STEP_TASK_OPTIONS},
        using=using,
    )


def _queue_row(func: str, *args, task_name: str, q_options: dict, using: str) -> dict | None:
    """The django-q2 queue row `async_task` would insert (built and signed by django-q2 itself), or None."""
    if not broker_is_database(using) or Conf.SYNC:
        return None
    captured = _Captured(Conf.CLUSTER_NAME)
    async_task(func, *args, task_name=task_name, q_options=q_options, broker=captured)
    return {
        "model": OrmQ,
        "values": {"key": captured.list_key, "payload": captured.package, "lock": timezone.now()},
    }
