"""The run behind `make bench`: a database of its own, gunicorn + wrk for the web tier, a real qcluster for the
ledger, each hot path interleaved with its floor over several rounds, and docs/BENCHMARKS.md at the end.

Over 500 lines on purpose: the processes, rounds and floors of one benchmark run read best in one place.
"""

import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import dj_database_url
import psycopg
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task

from apps.canonical.models import BillingEvent, ContractType, Project, TimeEntry
from apps.core.context import system_context
from apps.core.errors import BusinessError
from apps.inbound.models import InboundEvent
from apps.mapping.models import CrossReference
from apps.mapping.services import cross_reference_record, external_id_for
from apps.sync.models import Step, Transaction
from apps.sync.queue import STEP_TASK_OPTIONS
from apps.sync.services import transaction_start
from apps.systems.models import ConnectedSystem, SigningSecret

from ..benchmarks import lists
from ..benchmarks import reconciliation as reconciliation_bench
from ..environment import demo_environment_apply, demo_secrets_ensure
from ..scenario import drain, resources_known_to_psa, sandbox_wire
from . import billing as m1
from . import floor
from .workflow import WORKFLOW

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
BENCH_SYSTEM = "bench-psa"
BENCH_TOKEN_ENV = "IC_SECRET_BENCH_WEBHOOK_TOKEN"
WEB_WORKERS = 2
CONNECTIONS = 16


class BenchError(BusinessError):
    code = "bench"


@dataclass(frozen=True)
class Sizes:
    rounds: int
    w1_seconds: int
    b1_records: int
    l1_transactions: int
    a1_ledgers: tuple[int, int]  # the list pages are timed over a ledger of each size: (reference, large)
    r1_lines: int  # invoice lines on each side of the reconciliation
    m1_entries: int  # billing events posted at the billing platform's rate limit
    m1_rounds: int  # fewer rounds than the others: a full round takes minutes, held to the rate limit itself


FULL = Sizes(
    rounds=3,
    w1_seconds=10,
    b1_records=100_000,
    l1_transactions=300,
    a1_ledgers=(10_000, 1_000_000),
    r1_lines=1_000_000,
    m1_entries=100_000,
    m1_rounds=1,
)
QUICK = Sizes(
    rounds=2,
    w1_seconds=4,
    b1_records=5_000,
    l1_transactions=40,
    a1_ledgers=(1_000, 10_000),
    r1_lines=20_000,
    m1_entries=10_000,
    m1_rounds=2,
)


@dataclass
class Series:
    """One figure over the rounds: median and range."""

    unit: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def text(self, digits: int = 0) -> str:
        if not self.values:
            return "not measured"
        fmt = f"{{:,.{digits}f}}"
        return f"{fmt.format(self.median)} {self.unit} [{fmt.format(min(self.values))}–{fmt.format(max(self.values))}]"


# --- the database -------------------------------------------------------------------------------------


def bench_database_url() -> str:
    url = getattr(settings, "BENCH_DATABASE_URL", "")
    if not url:
        raise BenchError(
            "The bench runs with its own settings, so it never touches the demo's database.",
            fix="Run `make bench`, or set DJANGO_SETTINGS_MODULE=apps.demo.bench.settings.",
        )
    return url


def recreate_database(url: str) -> None:
    """Drop and create the bench database (a dedicated one: its name must say 'bench')."""
    config = dj_database_url.parse(url)
    if not config["ENGINE"].endswith("postgresql"):
        raise BenchError("The bench runs on PostgreSQL only.", fix="Point BENCH_DATABASE_URL at a PostgreSQL server.")
    name = config["NAME"]
    if "bench" not in name:
        raise BenchError(
            f"The bench drops and recreates its database, and '{name}' does not look like a bench database.",
            fix="Give BENCH_DATABASE_URL a database name containing 'bench'.",
        )
    connection.close()
    admin = psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


# --- processes ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class Processes:
    log_dir: Path
    started: list[subprocess.Popen] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR, stdout=log, stderr=log, start_new_session=True)
        self.started.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process in self.started:
            self.started.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self.started)):
            self.stop(process)


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"A bench process stopped at start (exit {process.returncode}).", fix="Read var/bench/.")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise BenchError(f"{url} did not answer within {timeout:.0f} s.", fix="Read the logs in var/bench/.")


def worker_peak_rss_mb(master: subprocess.Popen) -> float:
    """The largest peak resident size (VmHWM) of gunicorn's workers, in MB."""
    peak = 0
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children")
    for pid in children.read_text().split() if children.exists() else []:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            match = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
            if match:
                peak = max(peak, int(match.group(1)))
    return peak / 1024


# --- the run ------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, sizes: Sizes, *, out, quick: bool, only: frozenset[str] = frozenset()):
        self.sizes = sizes
        self.only = only
        self.out = out
        self.quick = quick
        self.log_dir = Path(settings.VAR_DIR) / "bench"
        self.processes = Processes(self.log_dir)
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.results: dict[str, dict[str, Series]] = {}
        self.notes: list[str] = []

    def wants(self, row: str) -> bool:
        """Whether this run measures `row` (every row unless --only names some)."""
        return not self.only or row in self.only

    def analyze(self) -> None:
        """Vacuum and refresh the planner's statistics between rounds, untimed: what autovacuum does on a
        production server. This machine's PostgreSQL runs with autovacuum off, so the task queue's dead rows
        piled up round after round (the bare task's floor fell from 247 to 37 tasks/s over three rounds) and
        tables that grew by 100,000 rows were planned as if empty."""
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

    def say(self, text: str) -> None:
        self.out.write(text)

    def series(self, row: str, name: str, unit: str) -> Series:
        return self.results.setdefault(row, {}).setdefault(name, Series(unit))

    # --- setup
    def prepare(self) -> None:
        url = bench_database_url()
        self.say(f"== Database {dj_database_url.parse(url)['NAME']} (dropped and created)")
        recreate_database(url)
        demo_environment_apply(demo_secrets_ensure())
        os.environ.setdefault(BENCH_TOKEN_ENV, "bench-token-0123456789abcdef")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        self.say("== Loading the demo firm")
        call_command("load_demo", force=True, verbosity=0)
        floor.create_tables()
        with system_context("Bench: a generic system signing its webhooks with a bearer token"):
            system, _ = ConnectedSystem.objects.get_or_create(
                slug=BENCH_SYSTEM,
                defaults={"name": "Bench PSA", "kind": "psa", "vendor": "generic", "inbound_scheme": "bearer"},
            )
            SigningSecret.objects.get_or_create(system=system, label="bench", reference={"env": BENCH_TOKEN_ENV})
            sandbox_wire(self.base)

    def start_web(self) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "apps.demo.bench.settings"}
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
        self.web = self.processes.start(
            "gunicorn",
            [
                gunicorn,
                "-w",
                str(WEB_WORKERS),
                "-b",
                f"{HOST}:{self.port}",
                "--timeout",
                "120",
                "integration_console.wsgi:application",
            ],
            env,
        )
        wait_healthy(f"{self.base}/healthz", self.web)

    def start_cluster(self) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "apps.demo.bench.settings", "Q_WORKERS": "2"}
        self.cluster = self.processes.start("qcluster", [sys.executable, "manage.py", "qcluster"], env)
        time.sleep(3)
        if self.cluster.poll() is not None:
            raise BenchError("The task cluster stopped at start.", fix="Read var/bench/qcluster.log.")

    def run(self) -> None:
        started = time.monotonic()
        self.prepare()
        try:
            self.start_web()
            if self.wants("W1"):
                self.say(f"== W1: webhooks under gunicorn -w {WEB_WORKERS}, wrk -c{CONNECTIONS}, {self.base}")
                self.w1_warm_up()
                for round_no in range(1, self.sizes.rounds + 1):
                    self.w1_round(round_no)
                self.park_webhook_events()
            if self.wants("B1") or self.wants("L1") or self.wants("M1"):
                self.start_cluster()
                b1_context = self.b1_context() if self.wants("B1") else None
                for round_no in range(1, self.sizes.rounds + 1 if self.wants("B1") or self.wants("L1") else 1):
                    self.say(f"== Round {round_no}: B1 and L1 on the task cluster")
                    self.analyze()
                    if self.wants("B1"):
                        self.b1_round(round_no, b1_context)
                    if self.wants("L1"):
                        self.l1_round(round_no)
                if self.wants("B1"):
                    self.b1_peak = worker_peak_rss_mb(self.web)
            if self.wants("M1"):
                self.m1_rounds()
        finally:
            self.processes.stop_all()
        if self.wants("A1"):
            small, large = self.sizes.a1_ledgers
            self.say(f"== A1: console and admin lists over ledgers of {small:,} and {large:,} transactions")
            self.a1 = lists.measure(bench_database_url(), sizes=self.sizes.a1_ledgers, rounds=self.sizes.rounds)
        if self.wants("R1"):
            self.say(f"== R1: reconciliation of {self.sizes.r1_lines:,} invoice lines on each side")
            self.r1 = reconciliation_bench.measure(
                bench_database_url(), lines=self.sizes.r1_lines, rounds=self.sizes.rounds
            )
        self.elapsed = time.monotonic() - started

    # --- W1
    def wrk(self, path: str, prefix: str, seconds: int, rate: float = 0) -> dict:
        argv = [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / "wrk.lua"),
            f"{self.base}{path}",
            "--",
            prefix,
            os.environ[BENCH_TOKEN_ENV],
        ]
        if rate:
            argv += [f"{rate:.1f}", str(CONNECTIONS)]
        if shutil.which("wrk") is None:
            raise BenchError("wrk is not installed.", fix="Run `make bench-deps` (Debian's wrk package).")
        output = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
        line = next((line for line in output.splitlines() if line.startswith("BENCH ")), None)
        if line is None:
            raise BenchError("wrk printed no summary.", technical=output[-2000:])
        figures = json.loads(line.removeprefix("BENCH "))
        figures["rate"] = figures["requests"] / (figures["duration_us"] / 1e6)
        return figures

    def w1_warm_up(self) -> None:
        self.wrk("/bench/floor/webhook/", "warm-floor", 2)
        self.wrk(f"/api/v1/inbound/{BENCH_SYSTEM}/", "warm", 2)

    def w1_round(self, round_no: int) -> None:
        seconds = self.sizes.w1_seconds
        bare = self.wrk("/bench/floor/webhook/", f"floor-{round_no}", seconds)
        ours = self.wrk(f"/api/v1/inbound/{BENCH_SYSTEM}/", f"r{round_no}", seconds)
        half = bare["rate"] / 2
        ours_paced = self.wrk(f"/api/v1/inbound/{BENCH_SYSTEM}/", f"p{round_no}", seconds, rate=half)
        bare_paced = self.wrk("/bench/floor/webhook/", f"floor-p{round_no}", seconds, rate=half)
        for name, figures in (("ours", ours), ("floor", bare), ("ours_paced", ours_paced), ("floor_paced", bare_paced)):
            self.series("W1", f"{name}_rate", "req/s").values.append(figures["rate"])
            self.series("W1", f"{name}_p99", "ms").values.append(figures["p99_us"] / 1000)
            self.series("W1", f"{name}_errors", "").values.append(figures["non2xx"] + figures["socket_errors"])
        self.series("W1", "paced_at", "req/s").values.append(half)
        self.say(
            f"  round {round_no}: webhook {ours['rate']:,.0f} req/s p99 {ours['p99_us'] / 1000:.0f} ms | floor "
            f"{bare['rate']:,.0f} req/s p99 {bare['p99_us'] / 1000:.0f} ms | at {half:,.0f} req/s: p99 "
            f"{ours_paced['p99_us'] / 1000:.0f} ms vs floor {bare_paced['p99_us'] / 1000:.0f} ms"
        )

    def park_webhook_events(self) -> None:
        """W1's deliveries carry events no profile maps; keep them from occupying the cluster B1 and L1 measure."""
        stored = InboundEvent.objects.filter(system__slug=BENCH_SYSTEM).count()
        self.series("W1", "events_stored", "").values.append(stored)
        parked = InboundEvent.objects.filter(system__slug=BENCH_SYSTEM)
        parked.update(status=InboundEvent.Status.SKIPPED)  # history-ok: throwaway bench database, parked events
        OrmQ.objects.all().delete()
        Schedule.objects.all().delete()

    # --- B1
    def b1_context(self) -> dict:
        kantata = ConnectedSystem.objects.get(slug="kantata")
        project = (
            Project.objects.filter(contract__contract_type=ContractType.TIME_AND_MATERIALS)
            .select_related("contract")
            .order_by("pk")
            .first()
        )
        if project is None:
            raise BenchError("The demo firm has no time-and-materials project to book time on.")
        with system_context("Bench: the PSA's id of the project time is booked on"):
            workspace = external_id_for(system=kantata, obj=project)
            if workspace is None:
                workspace = f"BW-{project.pk}"
                cross_reference_record(
                    system=kantata, obj=project, external_id=workspace, origin=CrossReference.Origin.IMPORT
                )
        people = [
            (user_id, resource)
            for user_id, resource in resources_known_to_psa().items()
            if resource.legal_entity_id == project.legal_entity_id
        ]
        if not people:
            raise BenchError("No demo consultant works for the legal entity of the bench project.")
        on = max(project.start_date or datetime.date.min, datetime.date.today() - datetime.timedelta(days=3))
        return {"workspace": workspace, "people": people, "on": on.isoformat()}

    def b1_records(self, round_no: int, context: dict) -> list[dict]:
        people = context["people"]
        return [
            {
                "time_entry_external_id": f"TE-BENCH-{round_no}-{n}",
                "resource_external_id": people[n % len(people)][0],
                "project_external_id": context["workspace"],
                "work_date": context["on"],
                "hours": "1.5",
                "role": people[n % len(people)][1].role,
                "billable": True,
                "description": "Bench work",
            }
            for n in range(self.sizes.b1_records)
        ]

    def b1_round(self, round_no: int, context: dict) -> None:
        records = self.b1_records(round_no, context)
        count = len(records)
        started = time.perf_counter()
        floor.copy_time_rows(records)
        copy_seconds = time.perf_counter() - started

        body = "\n".join(json.dumps(record) for record in records).encode()
        entries_before = TimeEntry.objects.count()
        events_before = BillingEvent.objects.count()
        started = time.perf_counter()
        response = requests.post(
            f"{self.base}/api/v1/inbound/kantata/bulk?record_type=time_entry",
            data=body,
            headers={
                "Content-Type": "application/x-ndjson",
                "Authorization": f"Bearer {os.environ['IC_SECRET_DEMO_KANTATA_WEBHOOK_TOKEN']}",
            },
            timeout=600,
        )
        acknowledged = time.perf_counter() - started
        if response.status_code != 202:
            raise BenchError(f"The bulk upload was answered {response.status_code}.", technical=response.text[:2000])
        deadline = time.monotonic() + (900 if not self.quick else 300)
        while TimeEntry.objects.count() - entries_before < count:
            if time.monotonic() > deadline:
                raise BenchError(
                    f"Only {TimeEntry.objects.count() - entries_before} of {count} time entries were recorded in time."
                )
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        billed = BillingEvent.objects.count() - events_before
        self.series("B1", "ours_rate", "rows/s").values.append(count / seconds)
        self.series("B1", "floor_rate", "rows/s").values.append(count / copy_seconds)
        self.series("B1", "ack_s", "s").values.append(acknowledged)
        self.series("B1", "billing_events", "").values.append(billed)
        self.say(
            f"  B1: {count:,} entries in {seconds:.1f} s ({count / seconds:,.0f} rows/s; "
            f"202 after {acknowledged:.1f} s, {billed} billing events) | COPY {count / copy_seconds:,.0f} rows/s"
        )
        if not drain(inline=False, timeout=300 if not self.quick else 120):
            self.notes.append(f"B1 round {round_no}: the ledger had not drained after the upload when L1 started.")

    # --- L1
    def l1_round(self, round_no: int) -> None:
        count = self.sizes.l1_transactions
        steps = 2 * count
        floor.prepare_tasks(steps)
        self._wait_cluster_idle()
        started = time.perf_counter()
        for task_id in range(1, steps + 1):
            # The same task options as the ledger's step messages (no result row kept): the floor is the least work.
            async_task(
                "apps.demo.bench.floor.floor_task",
                task_id,
                q_options={"timeout": settings.Q_TIMEOUT, **STEP_TASK_OPTIONS},
            )
        self._wait(lambda: floor.tasks_done() >= steps, "floor tasks")
        floor_seconds = time.perf_counter() - started

        self._wait_cluster_idle()
        started = time.perf_counter()
        with system_context("Bench: ledger steps"):
            ids = [
                transaction_start(workflow=WORKFLOW, data={"target": f"{self.base}/healthz", "n": n}, reason="bench").pk
                for n in range(count)
            ]
        done = Step.objects.filter(transaction_id__in=ids, status=Step.Status.SUCCEEDED)
        self._wait(lambda: done.count() >= steps, "ledger steps")
        seconds = time.perf_counter() - started
        completed = Transaction.objects.filter(pk__in=ids, status=Transaction.Status.COMPLETED).count()
        self.series("L1", "ours_rate", "steps/s").values.append(steps / seconds)
        self.series("L1", "floor_rate", "tasks/s").values.append(steps / floor_seconds)
        self.say(
            f"  L1: {steps} steps in {seconds:.1f} s ({steps / seconds:,.1f}/s, {completed}/{count} transactions "
            f"completed) | bare task {steps / floor_seconds:,.1f}/s"
        )

    # --- M1
    def m1_rounds(self) -> None:
        entries = self.sizes.m1_entries
        self.say(
            f"== M1: {entries:,} billing events through the ledger to the billing sandbox at "
            f"{m1.VENDOR_PER_MINUTE:,} requests a minute ({m1.calls_needed(entries):,} calls of "
            f"{m1.CHARGES_PER_CALL}; floor {m1.floor_seconds(entries):.0f} s)"
        )
        if not drain(inline=False, timeout=300 if not self.quick else 120):
            self.notes.append("M1: the ledger had not drained before M1 started.")
        context = m1.prepare()
        m1.limits_set(context, on=True)
        try:
            for round_no in range(1, self.sizes.m1_rounds + 1):
                batches = m1.events_create(context, entries, round_no)
                run = m1.post(batches, round_no)
                self._wait(lambda run=run: m1.finished(run), "M1 transactions", timeout=900)
                figures = m1.figures(run, entries)
                if figures["exceptions"] or figures["sent"] != entries:
                    raise BenchError(
                        f"M1 round {round_no}: {figures['sent']:,} of {entries:,} billing events were sent and "
                        f"{figures['exceptions']} transactions became exceptions.",
                        technical=figures["exception_message"],
                    )
                share = figures["throttled"] / figures["calls"] if figures["calls"] else 0.0
                self.series("M1", "seconds", "s").values.append(figures["seconds"])
                self.series("M1", "ratio", "×").values.append(figures["seconds"] / figures["floor"])
                self.series("M1", "throttled_share", "%").values.append(100 * share)
                self.series("M1", "calls", "").values.append(figures["calls"])
                self.say(
                    f"  M1 round {round_no}: {entries:,} charges in {figures['seconds']:.1f} s "
                    f"({figures['seconds'] / figures['floor']:.2f}× the floor of {figures['floor']:.0f} s); "
                    f"{figures['calls']:,} calls for {figures['needed']:,} needed, {figures['throttled']} answered 429"
                )
        finally:
            m1.limits_set(context, on=False)

    def _wait_cluster_idle(self) -> None:
        """Untimed: until the cluster has acknowledged every task of the phase before (its monitor saves results
        and deletes the queue rows after the workers are done), so neither side of L1 pays for the other's tail."""
        self._wait(lambda: not OrmQ.objects.exists(), "task queue to empty")

    def _wait(self, condition, what: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise BenchError(
                    f"The {what} did not finish within {timeout:.0f} s.", fix="Read var/bench/qcluster.log."
                )
            time.sleep(0.1)

    # --- the report
    def machine(self) -> str:
        model = ""
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
            model = match.group(1).strip() if match else ""
        memory = ""
        meminfo = Path("/proc/meminfo")
        if meminfo.exists():
            match = re.search(r"MemTotal:\s+(\d+) kB", meminfo.read_text())
            memory = f", {int(match.group(1)) / 1024 / 1024:.1f} GB RAM" if match else ""
        version = f"{connection.pg_version // 10000}.{connection.pg_version % 10000}"
        return (
            f"{platform.system()} {platform.release()}, {os.cpu_count()} CPU(s) {model}{memory}; "
            f"Python {platform.python_version()}; PostgreSQL {version}; gunicorn -w {WEB_WORKERS} (sync workers); "
            f"django-q2 cluster with {settings.Q_CLUSTER['workers']} workers "
            f"(ORM broker, poll {settings.Q_CLUSTER['poll']} s)"
        )

    def rows(self) -> list[list[str]]:
        w1, b1, l1 = self.results.get("W1", {}), self.results.get("B1", {}), self.results.get("L1", {})
        out = []

        def ratio(row, ours="ours_rate", bare="floor_rate"):
            if ours not in row or bare not in row:
                return float("nan")
            return row[ours].median / row[bare].median

        if w1:
            w_ratio = ratio(w1)
            p99_ok = (
                w1["ours_paced_p99"].median <= 3 * w1["floor_paced_p99"].median and w1["ours_paced_p99"].median <= 250
            )
            out.append(
                [
                    "W1",
                    f"signed webhook (bearer), gunicorn -w {WEB_WORKERS}, wrk -t2 -c{CONNECTIONS}, distinct event ids, "
                    f"{self.sizes.w1_seconds} s per run",
                    f"{w1['ours_rate'].text()}, p99 {w1['ours_p99'].text()}; at {w1['paced_at'].median:,.0f} req/s "
                    f"(half the floor's rate): p99 {w1['ours_paced_p99'].text()}",
                    f"bare DRF endpoint, one INSERT of the raw body: {w1['floor_rate'].text()}, p99 "
                    f"{w1['floor_p99'].text()}; paced the same: p99 {w1['floor_paced_p99'].text()}",
                    f"{w_ratio:.0%}",
                    "≥ 50 % of the floor's req/s; p99 at half the floor's rate ≤ 3× the floor's p99 and ≤ 250 ms",
                    _met(w_ratio >= 0.5 and p99_ok),
                ]
            )
        if b1:
            b_ratio = ratio(b1)
            peak = getattr(self, "b1_peak", float("nan"))
            out.append(
                [
                    "B1",
                    f"{self.sizes.b1_records:,} approved time entries (NDJSON) uploaded through gunicorn → "
                    "time entries and billing events recorded by the ledger on the cluster",
                    f"{b1['ours_rate'].text()}; 202 after {b1['ack_s'].text(1)}; web worker peak RSS {peak:,.0f} MB",
                    f"psycopg COPY of the same rows: {b1['floor_rate'].text()}",
                    f"{b_ratio:.1%}",
                    "≥ 25 % of COPY's rows/s; web peak RSS ≤ 200 MB",
                    _met(b_ratio >= 0.25 and peak <= 200),
                ]
            )
        if l1:
            l_ratio = ratio(l1)
            out.append(
                [
                    "L1",
                    f"{self.sizes.l1_transactions} two-step ledger transactions (each step a GET to a local HTTP "
                    "target), qcluster with 2 workers",
                    f"{l1['ours_rate'].text(1)}",
                    f"bare django-q2 task doing one UPDATE, same cluster: {l1['floor_rate'].text(1)}",
                    f"{l_ratio:.0%}",
                    "≥ 40 % of the bare task's rate, every guarantee kept",
                    _met(l_ratio >= 0.4),
                ]
            )
        small, large = self.sizes.a1_ledgers
        by_page: dict[str, dict[int, dict]] = {}
        for row in getattr(self, "a1", []):
            by_page.setdefault(row["page"], {})[row["size"]] = row
        for page, at in by_page.items():
            ref, big = at[small], at[large]
            same_queries = ref["queries"] == big["queries"]
            out.append(
                [
                    "A1",
                    f"{page}, ledger of {large:,} transactions",
                    f"p95 {big['p95_ms']:,.0f} ms, {big['queries']} statements",
                    f"the same page over {small:,}: p95 {ref['p95_ms']:,.0f} ms, {ref['queries']} statements",
                    f"{big['p95_ms'] / ref['p95_ms']:.1f}×",
                    "p95 ≤ 300 ms and ≤ 2× the small ledger's, the same statement count",
                    _met(big["p95_ms"] <= 300 and big["p95_ms"] <= 2 * ref["p95_ms"] and same_queries),
                ]
            )
        m1_row = self.results.get("M1", {})
        if m1_row:
            entries = self.sizes.m1_entries
            ratio_ok = m1_row["ratio"].median <= 1.25 and max(m1_row["throttled_share"].values) <= 2
            out.append(
                [
                    "M1",
                    f"{entries:,} billing events, {m1.EVENTS_PER_TRANSACTION:,} a ledger transaction on the cluster, "
                    f"posted {m1.CHARGES_PER_CALL} charges a call to the Chargebee sandbox (gunicorn) limited to "
                    f"{m1.VENDOR_PER_MINUTE:,} requests in any 60 s; connector limit {m1.CLIENT_PER_MINUTE}/min, "
                    f"burst {m1.BURST}",
                    f"{m1_row['seconds'].text(1)}; 429s {m1_row['throttled_share'].text(2)} of "
                    f"{m1_row['calls'].text()} calls",
                    f"calls needed ÷ allowed rate: {m1.calls_needed(entries):,} ÷ {m1.VENDOR_PER_MINUTE:,}/min = "
                    f"{m1.floor_seconds(entries):.1f} s",
                    m1_row["ratio"].text(2),
                    "wall time ≤ 1.25× the floor, 429s ≤ 2 % of calls",
                    _met(ratio_ok),
                ]
            )
        for row in getattr(self, "r1", []):
            low, high = row["seconds_range"]
            base_low, base_high = row["baseline_seconds_range"]
            out.append(
                [
                    row["id"],
                    f"{row['name']}, {row['lines_per_side']:,} lines a side, {row['findings']:,} findings",
                    f"{row['seconds_median']:.2f} s [{low:.2f}–{high:.2f}]; Python peak {row['python_peak_mb']} MB",
                    f"bare FULL OUTER JOIN count: {row['baseline_seconds_median']:.2f} s "
                    f"[{base_low:.2f}–{base_high:.2f}]",
                    f"{row['ratio']}×",
                    f"≤ {row['target_ratio']}× the join; Python memory ≤ 200 MB",
                    _met(row["ratio_ok"] and row["memory_ok"]),
                ]
            )
        return out

    def write(self, path: Path, command: str) -> None:
        table = [
            "| id | path | here, median [range] | floor, same run | ratio | target | met |",
            "|---|---|---|---|---|---|---|",
        ]
        table += ["| " + " | ".join(row) + " |" for row in self.rows()]
        text = [
            "# Benchmarks",
            "",
            "Written by `make bench` (`apps/demo/bench/`). Each hot path runs the way a user meets it — the web tier",
            "under gunicorn loaded by Debian's `wrk` over loopback, the ledger on a real `qcluster` — beside its",
            "floor, implemented in the bench and measured in the same run, interleaved, over several rounds",
            "(median [range]). Compare ratios, not absolute figures: these machines are shared and noisy.",
            "",
            f"- Command: `{command}`",
            f"- Measured: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {self.sizes.rounds} rounds, "
            f"whole run {self.elapsed / 60:.1f} min{' (--quick sizes)' if self.quick else ''}",
            f"- Machine: {self.machine()}",
            "",
            *table,
            "",
            "## How each row is measured",
            "",
            "- **W1**: each round runs, back to back, wrk against the floor (`/bench/floor/webhook/`, a bare DRF",
            "  view doing one autocommitted INSERT of the raw body, served by the same gunicorn with the same",
            "  middleware), wrk against `/api/v1/inbound/bench-psa/` (a generic system verified by bearer token; every",
            "  request a new event id), then both again paced at half the floor's rate (wrk's `delay()` per",
            "  connection) for the latency target. The task cluster is stopped during W1 so only the web tier is",
            "  measured; the 202 still means the delivery and its events are committed.",
            "- **B1**: the same records are first COPYed into a table with the same columns (the floor), then uploaded",
            "  as NDJSON to `/api/v1/inbound/kantata/bulk?record_type=time_entry` with the cluster running; the clock",
            "  stops when every entry is a canonical time entry (billing events are written in the same step). The web",
            "  worker's peak RSS is the largest `VmHWM` of gunicorn's workers at the end of the run.",
            "- **L1**: 2 × N bare tasks (`apps.demo.bench.floor.floor_task`, one UPDATE each, sent with the step",
            "  messages' options: no result row kept) are queued and timed until all ran; then N transactions of",
            "  the two-step `bench_steps` workflow (`apps/demo/bench/workflow.py`) are started and timed until every",
            "  step succeeded — claim with a lease, attempt row, history, finish, next step due, all as in production.",
            "- **A1**: after the other rows, the bench database's ledger is filled set-based (`INSERT … SELECT",
            "  generate_series`) to each size in turn, and every list page is requested through Django's test client",
            "  as a superuser, 7 timed requests per round (`apps/demo/benchmarks/lists.py`); the floor is the same",
            "  page over the small ledger, measured in the same run.",
            "- **R1–R3**: both sides' snapshot tables are filled in SQL (a few per cent of lines off, some invoices",
            "  missing, some tax different; and an unchanged month), then the invoice checks run with and without the",
            "  range first pass, interleaved with a bare FULL OUTER JOIN count of the same tables",
            "  (`apps/demo/benchmarks/reconciliation.py`); Python memory is tracemalloc's peak.",
            "- **M1**: after B1 and L1, with the same gunicorn and cluster, the billing sandbox enforces Chargebee's",
            "  documented limit (requests in the past 60 seconds, 1,000 a minute on the Performance plan; 429 with",
            "  Retry-After beyond it) and the billing system's shared rate limit is set to 990 a minute, burst 10",
            "  (a token bucket lets rate + burst calls into any 60 s). Each round writes N pending billing events",
            "  (untimed), starts one `bench_post_charges` transaction per 5,000 (`apps/demo/bench/workflow.py`, the",
            "  time-to-bill step `post_charges`: 100 charges a call) and stops the clock at the last transaction's",
            "  completion. The floor is arithmetic: N ÷ 100 calls at 1,000 a minute; 429s are the sandbox's call",
            "  log (`apps/demo/bench/billing.py`). One round at full size (two with --quick); every event must end",
            "  sent, with no exception.",
        ]
        if self.notes:
            text += ["", "## Notes from this run", "", *[f"- {note}" for note in self.notes]]
        kept = _kept_notes(path.read_text() if path.exists() else "")
        path.write_text("\n".join(text) + "\n" + (f"\n{kept}" if kept else ""))


NOTES_HEADING = "## Notes (kept across runs)"


def _kept_notes(previous: str) -> str:
    """The hand-written analysis at the end of the report (profiles, what would meet each target) survives a rerun."""
    at = previous.find(NOTES_HEADING)
    return previous[at:].rstrip() + "\n" if at >= 0 else ""


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"
