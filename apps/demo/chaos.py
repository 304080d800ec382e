"""Chaos under load: a PostgreSQL of its own, two web processes, two task clusters, and things dying on purpose.

`manage.py chaos` runs in two processes. The outer one creates a throwaway PostgreSQL cluster
(`initdb` + `pg_ctl` on a temporary data directory, loopback only) and deletes it at the end; the
inner one runs with DATABASE_URL pointing at it and does the rest: migrate, load the demo firm,
start two gunicorn web processes and two django-q2 clusters, post signed Salesforce webhooks
(some twice) and month-end bulk time uploads while SIGKILLing gunicorn workers and a cluster and
restarting PostgreSQL, wait for the ledger to drain, and count what arrived where.

Every count is bounded (webhooks, uploads, kills, restarts) and so is the time (`time_limit`).

Over 500 lines on purpose: one run (its PostgreSQL, processes, load, faults and the final count) read top to
bottom.
"""

import contextlib
import datetime
import json
import os
import random
import secrets as pysecrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import requests
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count
from django.utils import timezone

from apps.canonical.models import Project, TimeEntry
from apps.core.context import system_context
from apps.demo.environment import demo_environment_apply, demo_secrets_ensure
from apps.demo.runner import HOST, Supervisor, manage_py, wait_until_healthy
from apps.demo.scenario import (
    Deal,
    World,
    closed_won_body,
    crm_create_deal,
    drain,
    project_for,
    resources_known_to_psa,
    sandbox_wire,
    signed_by_salesforce,
)
from apps.inbound.models import InboundEvent
from apps.mapping.models import CrossReference
from apps.mapping.services import external_id_for
from apps.sandbox.models import SandboxCall, SandboxRecord
from apps.sync.models import StepAttempt, Transaction
from apps.systems import secrets
from apps.systems.models import ConnectedSystem

DB_ERRORS = (OperationalError, InterfaceError)
# The sandbox records one closed-won deal leaves behind, one of each when nothing ran twice.
DEAL_EFFECTS = (("erp", "customer"), ("psa", "workspaces"), ("erp", "job"), ("billing", "billing_schedule"))
# What makes each of those records one of a kind (the field the connector sets from the canonical record).
EFFECT_KEYS = {
    "erp.customer": "companyName",
    "psa.workspaces": "external_reference",
    "erp.job": "entityId",
    "billing.billing_schedule": "project_ref",
}
# The demo's vendor rate limits (60 calls a minute to NetSuite) would make a bounded run mostly waiting.
RATE_LIMIT_PER_MINUTE = 1200


@dataclass
class Plan:
    """How much load and how much chaos, all bounded."""

    webhooks: int = 60
    duplicates: int = 10
    uploads: int = 4
    gunicorn_kills: int = 4
    cluster_kills: int = 2
    pg_restarts: int = 2
    chaos_interval: float = 6.0
    time_limit: float = 900.0
    pg_port: int = 54329
    web_ports: tuple = (8731, 8732)
    web_workers: int = 2
    clusters: int = 2
    q_timeout: int = 20
    seed: int = 11

    @property
    def chaos(self) -> bool:
        return bool(self.gunicorn_kills or self.cluster_kills or self.pg_restarts)


# --- a PostgreSQL of its own ----------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL binaries (the newest installed), or None when there are none."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class TempPostgres:
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only; deleted by `destroy()`."""

    def __init__(self, port: int, *, root: Path | None = None):
        self.port = port
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("initdb was not found under /usr/lib/postgresql/*/bin (apt-get install postgresql).")
        self.root = Path(root or tempfile.mkdtemp(prefix="ic-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    @property
    def url(self) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/chaos"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def create(self) -> None:
        if self.as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start()
        self._run("createdb", "-h", HOST, "-p", str(self.port), "-U", "postgres", "chaos")

    def _options(self) -> str:
        # Loopback only, socket in our own directory; fsync stays on so a restart is a real one.
        return f"-p {self.port} -k {self.root} -c listen_addresses={HOST} -c max_connections=200"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l", str(self.log), "-w", "start")

    def restart(self) -> None:
        """A real restart: fast shutdown (every session cut), then start again."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", self._options(), "-l", str(self.log), "-m", "fast", "-w", "restart"
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def restart_postgres(data_dir: str, port: int) -> None:
    """Restart the harness's PostgreSQL from the inner process (which knows only its data directory)."""
    pg = TempPostgres(port, root=Path(data_dir).parent)
    pg._run("pg_ctl", "-D", str(pg.data), "-o", pg._options(), "-l", str(pg.log), "-m", "fast", "-w", "restart")


# --- the processes ---------------------------------------------------------------------------------


def child_environment(*, database_url: str, plan: Plan, var_dir: Path) -> dict:
    """What every process of the run shares: database, secret key, cluster name, sandbox on."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "apps.demo.chaos_settings",
            "SECRET_KEY": env.get("SECRET_KEY") or pysecrets.token_urlsafe(50),
            "DEBUG": "1",
            "SANDBOX_ENABLED": "1",
            "Q_CLUSTER_NAME": "ic-chaos",
            "Q_TIMEOUT": str(plan.q_timeout),
            "Q_WORKERS": "2",
            "CONN_MAX_AGE": "60",
            "VAR_DIR": str(var_dir),
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def gunicorn_argv(port: int, workers: int) -> list[str]:
    return [
        manage_py()[0],
        "-m",
        "gunicorn",
        "integration_console.wsgi:application",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
    ]


def children_of(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


@dataclass
class Figures:
    """What the run did and what it found."""

    webhook_acks: int = 0  # distinct events acknowledged with a 2xx
    webhook_2xx: int = 0  # every 2xx answer, retries and deliberate duplicates included
    webhook_failures: int = 0  # answers that were not 2xx, or no answer at all (the sender retried)
    duplicates_sent: int = 0
    duplicates_acked_as_repeats: int = 0
    uploads_acked: int = 0
    upload_records_accepted: int = 0
    gunicorn_kills: int = 0
    cluster_kills: int = 0
    pg_restarts: int = 0
    events: dict = field(default_factory=dict)
    effects: dict = field(default_factory=dict)
    duplicates: dict = field(default_factory=dict)
    steps_succeeded_twice: int = 0
    transactions: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    drained: bool = False
    duration_seconds: float = 0.0


class Harness:
    """The inner process: everything after PostgreSQL exists."""

    def __init__(self, plan: Plan, *, pg_data: str, say=print):
        self.plan = plan
        self.pg_data = pg_data
        self.say = say
        self.random = random.Random(plan.seed)
        self.figures = Figures()
        self.started = time.monotonic()
        self.deadline = self.started + plan.time_limit
        self.var_dir = Path(tempfile.mkdtemp(prefix="ic-chaos-var-"))
        # The demo configuration names its webhook secrets and credentials by environment variable.
        demo_environment_apply(demo_secrets_ensure(path=self.var_dir / "secrets.env"))
        self.env = child_environment(database_url=os.environ["DATABASE_URL"], plan=plan, var_dir=self.var_dir)
        self.supervisor = Supervisor(stop_timeout=10)
        self.webs: list = []
        self.clusters: list = []
        self.clusters_started = 0
        self.lock = threading.Lock()
        self.tag = uuid.uuid4().hex[:6]
        self.world = World(base_url=f"http://{HOST}:{plan.web_ports[0]}", say=lambda *a: None)

    # --- set-up ------------------------------------------------------------------------------------
    def manage(self, *args: str) -> None:
        subprocess.run(manage_py(*args), env=self.env, check=True, capture_output=True, timeout=600)

    def prepare(self) -> None:
        self.say("Migrating a fresh database and loading the demo firm...")
        self.manage("migrate", "--no-input", "-v", "0")
        self.manage("createcachetable")
        self.manage("load_demo", "--force", "-v", "0")
        self.manage("install_schedules")
        for index, port in enumerate(self.plan.web_ports):
            log = self.var_dir / f"web{index + 1}.log"
            web = self.supervisor.start(
                f"web {index + 1}", gunicorn_argv(port, self.plan.web_workers), env=self.env, log=log
            )
            self.webs.append(web)
        for index, web in enumerate(self.webs):
            wait_until_healthy(web, f"http://{HOST}:{self.plan.web_ports[index]}/healthz", timeout=120)
        for _ in range(self.plan.clusters):
            self.start_cluster()
        sandbox_wire(self.world.base_url)
        with system_context("Chaos run: vendor rate limits raised for a bounded run"):
            for system in ConnectedSystem.objects.filter(slug__in=["salesforce", "kantata", "netsuite", "chargebee"]):
                system.rate_limit_per_minute, system.rate_limit_burst = RATE_LIMIT_PER_MINUTE, 50
                system.save()
        resources_known_to_psa()

    def start_cluster(self):
        self.clusters_started += 1
        log = self.var_dir / f"cluster{self.clusters_started}.log"
        cluster = self.supervisor.start(
            f"cluster {self.clusters_started}", manage_py("qcluster"), env=self.env, log=log
        )
        self.clusters.append(cluster)
        return cluster

    def deals(self) -> list[Deal]:
        return [
            Deal(
                f"Chaos {self.tag} Customer {number:03}",
                f"Chaos {self.tag} – rollout {number:03}",
                Decimal("50000") + number,
                "USD",
                "North America",
                "Time & Materials",
                rate_card="STD-US",
                tax_id=f"12-{3400000 + number}",
            )
            for number in range(1, self.plan.webhooks + 1)
        ]

    # --- load --------------------------------------------------------------------------------------
    def web_url(self, path: str) -> str:
        port = self.random.choice(self.plan.web_ports)
        return f"http://{HOST}:{port}{path}"

    def post_until_acknowledged(self, path: str, body: bytes, headers: dict, content_type: str) -> dict | None:
        """What a sender does: retry (same bytes) until a 2xx, within the run's time limit."""
        pause = 0.2
        while time.monotonic() < self.deadline:
            try:
                response = requests.post(
                    self.web_url(path), data=body, headers={"Content-Type": content_type, **headers}, timeout=30
                )
            except requests.RequestException:
                response = None
            if response is not None and 200 <= response.status_code < 300:
                with self.lock:
                    self.figures.webhook_2xx += 1
                return response.json()
            with self.lock:
                self.figures.webhook_failures += 1
            time.sleep(pause)
            pause = min(pause * 2, 3.0)
        return None

    def send_webhooks(self, deals: list[Deal], twice: set, pace: float) -> None:
        for deal in deals:
            time.sleep(pace)
            body = closed_won_body(self.world, deal)
            answer = self.post_until_acknowledged(
                "/api/v1/inbound/salesforce/", body, signed_by_salesforce(body), "application/json"
            )
            if answer is None:
                continue
            with self.lock:
                self.figures.webhook_acks += 1
            if deal in twice:
                # The relay delivers the same event again (a new message id, the same change event).
                again = self.post_until_acknowledged(
                    "/api/v1/inbound/salesforce/", body, signed_by_salesforce(body), "application/json"
                )
                with self.lock:
                    self.figures.duplicates_sent += 1
                    if again is not None and again.get("duplicate") is True:
                        self.figures.duplicates_acked_as_repeats += 1

    def time_records(self, project: Project) -> list[dict]:
        kantata = ConnectedSystem.objects.get(slug="kantata")
        workspace_id = external_id_for(system=kantata, obj=project)
        people = [r for r in resources_known_to_psa().items() if r[1].legal_entity_id == project.legal_entity_id][:3]
        records, today = [], timezone.localdate()
        day = today.replace(day=1)
        while day <= today:
            if day.weekday() < 5:
                for user_id, resource in people:
                    records.append(
                        {
                            "time_entry_external_id": f"TE-{workspace_id}-{user_id}-{day.isoformat()}",
                            "resource_external_id": user_id,
                            "project_external_id": workspace_id,
                            "work_date": day.isoformat(),
                            "hours": "7.5",
                            "role": resource.role,
                            "billable": True,
                            "description": "Delivery work",
                        }
                    )
            day += datetime.timedelta(days=1)
        return records

    def send_uploads(self, deals: list[Deal]) -> None:
        token = secrets.resolve({"env": "IC_SECRET_DEMO_KANTATA_WEBHOOK_TOKEN"})
        for position, deal in enumerate(deals):
            project = None
            while time.monotonic() < self.deadline and project is None:
                try:
                    found = project_for(self.world, deal)
                    if found is not None and found.status == Project.Status.ACTIVE:
                        project = found
                        records = self.time_records(project)
                except DB_ERRORS:
                    connection.close()
                if project is None:
                    time.sleep(1.0)
            if project is None or not records:
                continue
            body = "\n".join(json.dumps(record) for record in records).encode()
            headers = {"Authorization": f"Bearer {token}"}
            answer = self.post_until_acknowledged(
                "/api/v1/inbound/kantata/bulk?record_type=time_entry", body, headers, "application/x-ndjson"
            )
            if answer is None:
                continue
            with self.lock:
                self.figures.uploads_acked += 1
                self.figures.upload_records_accepted += answer.get("accepted", 0)
                self.time_entry_ids.update(record["time_entry_external_id"] for record in records)
            if position == 0:  # the PSA sends its export again
                self.post_until_acknowledged(
                    "/api/v1/inbound/kantata/bulk?record_type=time_entry", body, headers, "application/x-ndjson"
                )

    # --- chaos -------------------------------------------------------------------------------------
    def kill_gunicorn_worker(self) -> None:
        web = self.random.choice(self.webs)
        workers = children_of(web.process.pid)
        if workers:
            os.kill(self.random.choice(workers), signal.SIGKILL)
            self.figures.gunicorn_kills += 1
            self.say(f"  SIGKILL a gunicorn worker of {web.name}")

    def kill_cluster(self) -> None:
        alive = [cluster for cluster in self.clusters if cluster.running]
        if not alive:
            return
        victim = self.random.choice(alive)
        # The whole cluster (it runs in a session of its own: its group id is the pid we started it with).
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
        self.supervisor.children.remove(victim)
        self.clusters.remove(victim)
        self.figures.cluster_kills += 1
        self.say(f"  SIGKILL {victim.name} (every process of it); a new cluster starts, as a supervisor would")
        time.sleep(1.0)
        self.start_cluster()

    def restart_postgres(self) -> None:
        self.say("  PostgreSQL: pg_ctl restart -m fast")
        restart_postgres(self.pg_data, self.plan.pg_port)
        self.figures.pg_restarts += 1

    def chaos_loop(self, load_done: threading.Event) -> None:
        actions = (
            [self.kill_gunicorn_worker] * self.plan.gunicorn_kills
            + [self.kill_cluster] * self.plan.cluster_kills
            + [self.restart_postgres] * self.plan.pg_restarts
        )
        self.random.shuffle(actions)
        time.sleep(self.plan.chaos_interval / 2)
        for action in actions:
            if time.monotonic() > self.deadline:
                break
            action()
            # Keep going after the load finished: faults while the ledger works off the backlog count too.
            load_done.wait(self.plan.chaos_interval)
            if load_done.is_set():
                time.sleep(self.plan.chaos_interval / 3)

    # --- the run -----------------------------------------------------------------------------------
    def run(self) -> Figures:
        try:
            self.prepare()
            self.baseline = self.effect_counts()
            deals = self.deals()
            self.say(f"Creating {len(deals)} deals in the sandbox CRM...")
            for deal in deals:
                crm_create_deal(self.world, deal)
            self.time_entry_ids: set[str] = set()
            duplicate_every = max(1, len(deals) // self.plan.duplicates) if self.plan.duplicates else 0
            twice = set(deals[::duplicate_every][: self.plan.duplicates]) if duplicate_every else set()
            # Under chaos the webhooks are spread over the faults' window, so faults meet requests in flight.
            faults = self.plan.gunicorn_kills + self.plan.cluster_kills + self.plan.pg_restarts
            pace = self.plan.chaos_interval * (faults + 1) / max(1, len(deals) / 2) if faults else 0.0
            self.say(
                f"Load: {len(deals)} closed-won webhooks ({len(twice)} sent twice), "
                f"{self.plan.uploads} month-end uploads; chaos: {self.plan.gunicorn_kills} gunicorn worker kills, "
                f"{self.plan.cluster_kills} cluster kills, {self.plan.pg_restarts} PostgreSQL restarts"
            )
            load_started = time.monotonic()
            senders = [
                threading.Thread(target=self.send_webhooks, args=(deals[half::2], twice, pace)) for half in (0, 1)
            ]
            senders.append(threading.Thread(target=self.send_uploads, args=(deals[: self.plan.uploads],)))
            load_done = threading.Event()
            chaos = threading.Thread(target=self.chaos_loop, args=(load_done,))
            for thread in [*senders, chaos]:
                thread.start()
            for thread in senders:
                thread.join()
            load_done.set()
            chaos.join()
            self.say(f"Load sent in {time.monotonic() - load_started:.0f} s; waiting for the ledger to drain...")
            self.figures.drained = self.drain()
            self.check(deals)
        finally:
            self.figures.duration_seconds = round(time.monotonic() - self.started, 1)
            self.supervisor.stop_all()
            with contextlib.suppress(Exception):
                connection.close()
            shutil.rmtree(self.var_dir, ignore_errors=True)
        return self.figures

    def drain(self) -> bool:
        """Sweep until nothing is open; the ledger's own sweep picks up events whose pick-up was lost."""
        remaining = max(30.0, self.deadline - time.monotonic())
        for _ in range(3):
            try:
                return drain(inline=False, timeout=remaining, quiet=4.0, progress=self.say)
            except DB_ERRORS:
                connection.close()
                time.sleep(1)
        return False

    # --- the checks ----------------------------------------------------------------------------------
    @staticmethod
    def effect_counts() -> dict:
        return {
            f"{kind}.{object_type}": SandboxRecord.objects.filter(kind=kind, object_type=object_type).count()
            for kind, object_type in DEAL_EFFECTS
        }

    def check(self, deals: list[Deal]) -> None:
        f = self.figures
        salesforce = ConnectedSystem.objects.get(slug="salesforce")
        kantata = ConnectedSystem.objects.get(slug="kantata")
        webhook_events = InboundEvent.objects.filter(system=salesforce, event_type__icontains="opportunity")
        f.events["webhook_rows"] = webhook_events.count()
        f.events["webhook_distinct"] = webhook_events.values("idempotency_key").distinct().count()
        bulk_events = InboundEvent.objects.filter(system=kantata, delivery__kind="bulk")
        f.events["bulk_rows"] = bulk_events.count()
        f.events["bulk_distinct"] = bulk_events.values("idempotency_key").distinct().count()

        deal_txns = Transaction.objects.filter(workflow="opportunity_to_project")
        for workflow, status, n in (
            Transaction.objects.order_by().values_list("workflow", "status").annotate(n=Count("pk"))
        ):
            f.transactions.setdefault(workflow, {})[status] = n
        per_event = Counter(deal_txns.exclude(inbound_event=None).values_list("inbound_event_id", flat=True))
        f.duplicates["transactions_per_event"] = sum(n - 1 for n in per_event.values() if n > 1)

        counts = self.effect_counts()
        delta = {name: counts[name] - self.baseline.get(name, 0) for name in counts}
        completed_deals, unfinished = 0, []
        for deal in deals:
            project = project_for(self.world, deal)
            if project is not None and project.status == Project.Status.ACTIVE:
                completed_deals += 1
            else:
                unfinished.append(self.explain_deal(deal, project))
        f.effects = {"deals_completed": completed_deals, **{f"sandbox.{k}": v for k, v in delta.items()}}
        for name, key in EFFECT_KEYS.items():
            kind, object_type = name.split(".")
            keys = Counter(
                SandboxRecord.objects.filter(kind=kind, object_type=object_type).values_list(f"data__{key}", flat=True)
            )
            f.duplicates[f"sandbox.{name}"] = sum(n - 1 for value, n in keys.items() if n > 1 and value)
        time_xrefs = CrossReference.objects.filter(system=kantata, object_type="time_entry")
        xref_ids = Counter(time_xrefs.filter(external_id__in=self.time_entry_ids).values_list("external_id", flat=True))
        f.effects["time_entries"] = len(xref_ids)
        f.effects["time_entries_total"] = TimeEntry.objects.filter(
            pk__in=time_xrefs.filter(external_id__in=self.time_entry_ids).values("object_id")
        ).count()
        f.duplicates["time_entries"] = sum(n - 1 for n in xref_ids.values() if n > 1)
        f.effects["billing.unbilled_charge"] = SandboxRecord.objects.filter(
            kind="billing", object_type="unbilled_charge"
        ).count()
        f.effects["sandbox_calls_replayed"] = SandboxCall.objects.filter(replayed=True).count()

        twice = (
            StepAttempt.objects.filter(outcome="succeeded")
            .order_by()
            .values("step_id")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
        )
        f.steps_succeeded_twice = twice.count()

        problems = f.problems
        if not f.drained:
            problems.append("the ledger did not drain within the time limit")
        if f.webhook_acks != len(deals):
            problems.append(f"only {f.webhook_acks} of {len(deals)} webhooks were acknowledged in time")
        if not (f.webhook_acks == f.events["webhook_distinct"] == completed_deals):
            problems.append(
                f"acks {f.webhook_acks}, distinct events {f.events['webhook_distinct']}, "
                f"completed deals {completed_deals} differ"
            )
        if f.events["webhook_rows"] != f.events["webhook_distinct"]:
            problems.append("an event was stored twice")
        if f.upload_records_accepted != f.events["bulk_distinct"] or f.events["bulk_distinct"] != len(xref_ids):
            problems.append(
                f"upload records accepted {f.upload_records_accepted}, stored {f.events['bulk_distinct']}, "
                f"time entries {len(xref_ids)} differ"
            )
        for name, value in delta.items():
            if value != completed_deals:
                problems.append(f"sandbox {name}: {value} records for {completed_deals} deals")
        problems.extend(unfinished[:10])
        if any(f.duplicates.values()):
            problems.append(f"duplicates: { {k: v for k, v in f.duplicates.items() if v} }")
        if f.steps_succeeded_twice:
            problems.append(f"{f.steps_succeeded_twice} steps succeeded twice")
        open_or_failed = {
            status: n
            for counts_by_status in f.transactions.values()
            for status, n in counts_by_status.items()
            if status != "completed"
        }
        if open_or_failed:
            problems.append(f"transactions not completed: {open_or_failed}")
            problems.extend(self.explain_open_transactions())

    def explain_deal(self, deal: Deal, project: Project | None) -> str:
        """Why a deal does not count as completed: where its project and its transaction stand."""
        number = self.world.opportunities.get(deal.name, "")
        txns = Transaction.objects.filter(business_key=f"opportunity:{number}")
        states = ", ".join(f"#{txn.pk} {txn.status}" for txn in txns) or "no transaction"
        where = f"project {project.code} is {project.status}" if project is not None else "no project found"
        return f"{deal.name} (CRM {number}): {where}; transactions {states}"

    def explain_open_transactions(self) -> list[str]:
        """For a failed run: what each unfinished transaction waits for, and the clusters' last words."""
        lines = []
        for txn in Transaction.objects.exclude(status="completed").order_by("pk")[:10]:
            steps = ", ".join(
                f"{step.name}={step.status} (attempts {step.attempts}, queued {step.enqueued_at:%H:%M:%S})"
                if step.enqueued_at
                else f"{step.name}={step.status} (attempts {step.attempts})"
                for step in txn.steps.order_by("sequence")
            )
            lines.append(f"{txn.workflow} #{txn.pk} {txn.status}: {txn.error_message[:200]} [{steps}]")
        for cluster in self.clusters:
            alive = "running" if cluster.running else f"exited {cluster.process.returncode}"
            tail = cluster.log.read_text(errors="replace").strip().splitlines()[-3:] if cluster.log.exists() else []
            lines.append(f"{cluster.name} {alive}; last log lines: {' | '.join(tail)[:600]}")
        return lines


# --- the report ----------------------------------------------------------------------------------


def report_block(*, mode: str, plan: Plan, figures: dict, command: str, when: str) -> str:
    f = figures
    verdict = "PASS" if not f["problems"] else "FAIL"
    lines = [
        f"<!-- {mode}:begin -->",
        f"### {'Chaos under load' if mode == 'chaos' else 'Scale-out, no chaos'}: {verdict}",
        "",
        f"Command: `{command}` (run {when}, {f['duration_seconds']:.0f} s in all, set-up included).",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| web processes × workers / task clusters | {len(plan.web_ports)} × {plan.web_workers} / {plan.clusters} |",
        f"| closed-won webhooks sent (distinct events) | {plan.webhooks} |",
        f"| 2xx acknowledgements (distinct events) | {f['webhook_acks']} |",
        f"| 2xx answers in all (retries, duplicates, uploads) | {f['webhook_2xx']} |",
        f"| failed sends the sender retried (5xx, reset, refused) | {f['webhook_failures']} |",
        f"| duplicates sent / answered as repeats | {f['duplicates_sent']} / {f['duplicates_acked_as_repeats']} |",
        f"| persisted webhook events (rows / distinct) | {f['events']['webhook_rows']} / "
        f"{f['events']['webhook_distinct']} |",
        f"| deals completed (project active after PSA, ERP, billing, CRM) | {f['effects']['deals_completed']} |",
        *(
            f"| sandbox records created: {name} | {f['effects'].get('sandbox.' + name, 0)} |"
            for name in (f"{k}.{o}" for k, o in DEAL_EFFECTS)
        ),
        f"| month-end uploads acknowledged / records accepted | {f['uploads_acked']} / "
        f"{f['upload_records_accepted']} |",
        f"| persisted bulk events (rows / distinct) | {f['events']['bulk_rows']} / {f['events']['bulk_distinct']} |",
        f"| time entries recorded | {f['effects']['time_entries']} |",
        f"| transactions by status | {json.dumps(f['transactions'], sort_keys=True)} |",
        f"| duplicates in the sandbox systems and ledger | {sum(f['duplicates'].values())} |",
        f"| steps with more than one succeeded attempt | {f['steps_succeeded_twice']} |",
        f"| outbound calls answered from a stored idempotency key | {f['effects']['sandbox_calls_replayed']} |",
        f"| gunicorn workers SIGKILLed | {f['gunicorn_kills']} |",
        f"| task clusters SIGKILLed (and restarted) | {f['cluster_kills']} |",
        f"| PostgreSQL restarts (`pg_ctl restart -m fast`) | {f['pg_restarts']} |",
        f"| duration (seconds) | {f['duration_seconds']} |",
        "",
    ]
    if f["problems"]:
        lines += ["Problems found:", "", *(f"- {problem}" for problem in f["problems"]), ""]
    lines.append(f"<!-- {mode}:end -->")
    return "\n".join(lines)


def write_report(path: Path, block: str, mode: str) -> None:
    """Replace this mode's block in the report (or append it), leaving the rest of the page alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Reliability\n"
    begin, end = f"<!-- {mode}:begin -->", f"<!-- {mode}:end -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def plan_as_json(plan: Plan) -> str:
    return json.dumps(asdict(plan))


def plan_from_json(text: str) -> Plan:
    values = json.loads(text)
    values["web_ports"] = tuple(values["web_ports"])
    return Plan(**values)
