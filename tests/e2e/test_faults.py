"""Faults on the way to the targets: nothing lost, nothing twice, no call before the target allows it."""

import datetime
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from apps.demo.scenario import DEALS, announce_closed_won, crm_create_deal, drain, project_for
from apps.sandbox.models import SandboxCall, SandboxRecord
from apps.sandbox.services import sandbox_faults_set
from apps.sync.engine import run_step
from apps.sync.intake import pick_up_stored_events
from apps.sync.models import Step, StepAttempt, Transaction
from apps.systems.models import ConnectedSystem

pytestmark = pytest.mark.django_db(transaction=True)

DEAL = DEALS[0]


def erp_customers():
    return SandboxRecord.objects.filter(kind="erp", object_type="customer", data__companyName=DEAL.account)


def deal_transaction() -> Transaction:
    return Transaction.objects.get(workflow="opportunity_to_project")


def short_erp_timeout(seconds=1):
    ConnectedSystem.objects.filter(slug="netsuite").update(read_timeout_seconds=seconds)


def test_a_target_that_commits_then_drops_its_answer_ends_with_one_record(world):
    short_erp_timeout()
    sandbox_faults_set("erp", drop_next=1, drop_seconds=3)
    crm_create_deal(world, DEAL)
    announce_closed_won(world, DEAL)
    assert drain(inline=True, timeout=90)
    txn = deal_transaction()
    assert txn.status == "completed", txn.error_message
    step = txn.steps.get(name="upsert_customer_erp")
    outcomes = list(step.attempt_log.order_by("number").values_list("outcome", "error_class"))
    assert outcomes[0] == ("failed", "transient")  # the answer never came: time-out after the ERP committed
    assert outcomes[-1][0] == "succeeded"
    assert "did not answer" in step.attempt_log.get(number=1).error_message
    assert erp_customers().count() == 1
    assert SandboxCall.objects.filter(kind="erp", fault="dropped").count() == 1


def test_a_429_storm_is_waited_out_and_no_call_arrives_before_retry_after(world):
    sandbox_faults_set("erp", throttle_next=3, retry_after_seconds=2)
    crm_create_deal(world, DEAL)
    announce_closed_won(world, DEAL)
    assert drain(inline=True, timeout=120)
    assert deal_transaction().status == "completed"
    calls = list(SandboxCall.objects.filter(kind="erp").order_by("received_at", "pk"))
    throttled = [call for call in calls if call.response_status == 429]
    assert len(throttled) >= 3
    for call in throttled:
        retry_after = datetime.timedelta(seconds=2)
        later = [other for other in calls if other.received_at > call.received_at]
        assert later, "the storm was never waited out"
        # The first call after a 429 comes no sooner than Retry-After (allowing the answer's own latency).
        assert later[0].received_at - call.received_at >= retry_after - datetime.timedelta(milliseconds=300)
    assert erp_customers().count() == 1


def _test_database_url() -> str:
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def test_a_worker_killed_mid_step_completes_the_step_exactly_once(world):
    """A real second process takes the ERP step, the ERP commits, and the process is SIGKILLed before it records it."""
    crm_create_deal(world, DEAL)
    announce_closed_won(world, DEAL)
    pick_up_stored_events()  # what the pick-up task does once the delivery is stored
    # Run everything up to the ERP step in this process.
    for _ in range(10):
        due = Step.objects.filter(status="pending", next_attempt_at__isnull=False).order_by("pk").first()
        if due is None or due.name == "upsert_customer_erp":
            break
        run_step(due.pk)
    step = Step.objects.get(name="upsert_customer_erp")
    sandbox_faults_set("erp", drop_next=1, drop_seconds=30)  # the ERP commits, then holds its answer back
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "VAR_DIR": str(settings.VAR_DIR),
        "LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "sync_run", "--step", str(step.pk)],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not erp_customers().exists():
        assert worker.poll() is None, worker.stdout.read().decode()[-2000:]
        time.sleep(0.1)
    assert erp_customers().exists(), "the worker never reached the ERP"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    step.refresh_from_db()
    assert step.status == "running"  # nobody recorded the outcome
    # The lease runs out (180 s in production; moved forward here instead of waiting).
    Step.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert drain(inline=True, timeout=90)
    step.refresh_from_db()
    assert step.status == "succeeded"
    assert list(step.attempt_log.order_by("number").values_list("outcome", flat=True)) == ["abandoned", "succeeded"]
    assert erp_customers().count() == 1
    assert deal_transaction().status == "completed"


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="a database restart is a PostgreSQL event; SQLite has no server",
)
def test_a_postgresql_restart_mid_run_loses_nothing(world):
    """Every connection to the database is cut (what clients see when PostgreSQL restarts) while steps run."""
    sandbox_faults_set("erp", latency_ms=1500)
    sandbox_faults_set("psa", latency_ms=1500)
    for deal in DEALS[:2]:
        crm_create_deal(world, deal)
        announce_closed_won(world, deal)
    finished = {}

    def worker():
        try:
            finished["drained"] = drain(inline=True, timeout=120)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline
        and not StepAttempt.objects.filter(
            step__name__in=["upsert_customer_erp", "create_project_psa"], outcome="running"
        ).exists()
    ):
        time.sleep(0.05)
    name = connection.settings_dict["NAME"]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchone()[0]
    assert killed >= 1
    connection.close()
    thread.join(timeout=180)
    assert finished.get("drained"), "the ledger did not settle after the restart"
    transactions = Transaction.objects.filter(workflow="opportunity_to_project")
    assert transactions.count() == 2
    assert set(transactions.values_list("status", flat=True)) == {"completed"}
    for deal in DEALS[:2]:
        assert project_for(world, deal).status == "active"
        assert (
            SandboxRecord.objects.filter(kind="erp", object_type="customer", data__companyName=deal.account).count()
            == 1
        )
    assert SandboxRecord.objects.filter(kind="psa", object_type="workspaces").count() == 2
