"""manage.py bench: the console's hot paths, each timed beside a baseline measured in the same run.

Machines here are noisy, so every figure is reported as a ratio to a baseline doing the nearest plain
thing on the same database in the same process a moment earlier. Runs on a throwaway test database
(never the one `make demo` uses) and writes docs/BENCHMARKS.md.
"""

import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment
from django.utils import timezone


def _timed(function, repeat: int = 3) -> float:
    """The median of `repeat` runs, in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


class Command(BaseCommand):
    help = (
        "Benchmark webhook intake, bulk ingestion and the ledger against same-run baselines; write docs/BENCHMARKS.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--records", type=int, default=50_000, help="Bulk upload size (default 50,000).")
        parser.add_argument("--webhooks", type=int, default=300, help="Webhook deliveries to time (default 300).")
        parser.add_argument("--transactions", type=int, default=300, help="Ledger transactions (default 300).")
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "docs" / "BENCHMARKS.md"))

    def handle(self, *args, records, webhooks, transactions, output, **options):
        from django.test.runner import DiscoverRunner

        self.sizes = {"records": records, "webhooks": webhooks, "transactions": transactions}
        settings.DEBUG = False  # DEBUG keeps every query in memory: not what production does
        # Throughput, not the per-sender throttle (apps/core/throttles.py), is what is measured here.
        rates = {**settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), "inbound": None}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        setup_test_environment(debug=False)
        runner = DiscoverRunner(verbosity=0, interactive=False)
        databases = runner.setup_databases()
        try:
            results = [
                self.webhook_intake(webhooks),
                self.bulk_ingestion(records),
                self.ledger_steps(transactions),
            ]
        finally:
            runner.teardown_databases(databases)
        self.write(results, output)

    # --- fixtures ---------------------------------------------------------------------------------
    def _system(self):
        from apps.systems.models import ConnectedSystem, SigningSecret

        os.environ.setdefault("IC_SECRET_BENCH_TOKEN", "bench-token-0123456789")
        system, created = ConnectedSystem.objects.get_or_create(
            slug="bench-psa",
            defaults={"name": "Bench PSA", "kind": "psa", "vendor": "generic", "inbound_scheme": "bearer"},
        )
        if created:
            SigningSecret.objects.create(system=system, label="bench", reference={"env": "IC_SECRET_BENCH_TOKEN"})
        return system

    # --- 1. webhook intake ------------------------------------------------------------------------
    def webhook_intake(self, count: int) -> dict:
        """A signed delivery stored with its event and its ledger transaction, vs. the health check."""
        self._system()
        client = Client()
        headers = {"HTTP_AUTHORIZATION": f"Bearer {os.environ['IC_SECRET_BENCH_TOKEN']}"}
        sequence = iter(range(10**9))

        def deliveries():
            for _ in range(count):
                body = json.dumps({"id": f"evt-{next(sequence)}", "type": "bench.event", "amount": "12.50"})
                response = client.post(
                    "/api/v1/inbound/bench-psa/", data=body, content_type="application/json", **headers
                )
                assert response.status_code == 202, response.content

        from apps.inbound.models import Delivery

        system = self._system()

        def raw_inserts():
            for n in range(count):
                body = json.dumps({"id": f"raw-{n}", "type": "bench.event", "amount": "12.50"}).encode()
                Delivery.objects.create(
                    system=system,
                    status="accepted",
                    received_at=timezone.now(),
                    method="POST",
                    url="http://bench/",
                    body=body,
                    correlation_id="bench",
                )

        baseline = _timed(raw_inserts)
        measured = _timed(deliveries)
        self.stdout.write(f"  webhooks: {measured:.2f} s (raw insert {baseline:.2f} s)")
        return {
            "name": "Webhook intake",
            "what": f"{count} signed deliveries (verify, store raw, split, dedupe, start ledger transaction), "
            "each answered 202",
            "baseline": f"{count} inserts of the raw body as one row each (the least a receiver must do)",
            "measured_s": measured,
            "baseline_s": baseline,
            "rate": f"{count / measured:,.0f} deliveries/s",
        }

    # --- 2. bulk ingestion ------------------------------------------------------------------------
    def bulk_ingestion(self, count: int) -> dict:
        """A month-end upload through the bulk path, vs. a plain bulk_create of the same rows."""
        from apps.inbound import bulk, signatures
        from apps.inbound.models import Delivery, InboundEvent

        system = self._system()
        run = iter(range(10**6))

        def records():
            prefix = next(run)
            return [
                {
                    "time_entry_external_id": f"TE-{prefix}-{n}",
                    "resource_external_id": "U-7",
                    "project_external_id": "W-42",
                    "work_date": "2026-10-31",
                    "hours": "7.5",
                    "role": "Senior Consultant",
                    "billable": True,
                    "description": "Data migration workshop",
                }
                for n in range(count)
            ]

        def upload():
            body = json.dumps(records()).encode()
            meta = {
                "received_at": timezone.now(),
                "method": "POST",
                "url": "http://bench/",
                "headers": {},
                "body_size": len(body),
                "content_type": "application/json",
                "remote_addr": None,
            }
            verification = signatures.Verification(
                scheme="bearer", secret_label="bench", signed_at=None, delivery_id=None
            )
            report = bulk.receive_bulk(
                system=system,
                request_meta=meta,
                verification=verification,
                body=body,
                content_type="application/json",
                record_type="time_entry",
            )
            assert report.accepted == count

        def plain():
            delivery = Delivery.objects.create(
                system=system,
                status="accepted",
                received_at=timezone.now(),
                method="POST",
                url="http://bench/",
                correlation_id="bench",
            )
            InboundEvent.objects.bulk_create(  # history-ok: the benchmark's floor, on purpose without history
                [
                    InboundEvent(
                        delivery=delivery,
                        system=system,
                        idempotency_key=f"plain:{next(run)}:{n}",
                        payload=record,
                        correlation_id="bench",
                    )
                    for n, record in enumerate(records())
                ],
                batch_size=1000,
            )

        baseline = _timed(plain, repeat=2)  # the first run of each also warms the tables and caches
        measured = _timed(upload, repeat=2)
        self.stdout.write(f"  bulk: {measured:.2f} s (plain {baseline:.2f} s)")
        return {
            "name": "Bulk ingestion",
            "what": f"{count:,} time records: parse, check each, dedupe, store with history, queue "
            f"{-(-count // bulk.CHUNK)} ledger chunks",
            "baseline": f"plain bulk_create of {count:,} event rows (no checks, no history)",
            "measured_s": measured,
            "baseline_s": baseline,
            "rate": f"{count / measured:,.0f} records/s",
        }

    # --- 3. ledger --------------------------------------------------------------------------------
    def ledger_steps(self, count: int) -> dict:
        """Claim, run and finish steps of a no-op workflow inline, vs. saving the same number of tracked rows."""
        from apps.canonical.models import LegalEntity
        from apps.sync.engine import StepResult, run_due_steps
        from apps.sync.registry import StepSpec, WorkflowDefinition, register
        from apps.sync.services import transaction_start

        @register
        class BenchFlow(WorkflowDefinition):
            name = "bench"

            def plan(self, data):
                return [StepSpec("one", "One"), StepSpec("two", "Two")]

            def step_one(self, ctx):
                return StepResult(output={"one": True})

            def step_two(self, ctx):
                return StepResult(output={"two": True})

        run = iter(range(10**6))

        from apps.sync.models import Transaction

        # Earlier benchmarks queued month-end chunks; park them so only the bench workflow's steps run here.
        Transaction.objects.exclude(workflow="bench").update(status="ignored")  # history-ok: throwaway database

        def ledger():
            for n in range(count):
                transaction_start(workflow="bench", data={"n": n}, reason="bench")
            assert run_due_steps() == 2 * count

        def tracked_saves():
            prefix = next(run)
            for n in range(2 * count):
                LegalEntity.objects.create(code=f"B{prefix}-{n}", name="Bench", country="US", currency="USD")

        baseline = _timed(tracked_saves, repeat=1)
        measured = _timed(ledger, repeat=1)
        return {
            "name": "Ledger steps",
            "what": f"{count} two-step transactions started and run inline ({2 * count} steps: claim with lease, "
            "attempt row, finish, next step due, history)",
            "baseline": f"{2 * count} single-row saves of a tracked model (one history row each)",
            "measured_s": measured,
            "baseline_s": baseline,
            "rate": f"{2 * count / measured:,.0f} steps/s (one process, no task queue)",
        }

    # --- report -------------------------------------------------------------------------------------
    def write(self, results: list[dict], output: str) -> None:
        """Rewrite this database's section of the report; keep the other database's section and the notes."""
        vendor = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
        version = (
            ".".join(map(str, connection.Database.sqlite_version_info))
            if connection.vendor == "sqlite"
            else f"{connection.pg_version // 10000}.{connection.pg_version % 10000}"
        )
        section = [
            f"## {vendor}",
            "",
            f"- Command: `make bench` ({'DATABASE_URL=postgres://… ' if vendor == 'PostgreSQL' else ''}"
            f"`manage.py bench --records {self.sizes['records']} --webhooks {self.sizes['webhooks']} "
            f"--transactions {self.sizes['transactions']}`)",
            f"- Measured: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {platform.system()} {platform.release()}, {os.cpu_count()} CPU(s), "
            f"Python {platform.python_version()}, {vendor} {version}",
            "",
            "| What | Measured | Baseline (same run) | Ratio | Throughput |",
            "| --- | --- | --- | --- | --- |",
        ]
        for result in results:
            ratio = result["measured_s"] / result["baseline_s"] if result["baseline_s"] else float("nan")
            section.append(
                f"| {result['name']}: {result['what']} | {result['measured_s']:.2f} s | {result['baseline']}: "
                f"{result['baseline_s']:.2f} s | {ratio:.2f}× | {result['rate']} |"
            )
            self.stdout.write(
                f"{result['name']}: {result['measured_s']:.2f} s vs {result['baseline_s']:.2f} s "
                f"baseline ({ratio:.2f}×), {result['rate']}"
            )
        path = Path(output)
        previous = path.read_text() if path.exists() else ""
        sections = {
            name: body for name, body in _sections(previous).items() if name in ("SQLite", "PostgreSQL", "Notes")
        }
        sections[vendor] = "\n".join(section[1:])
        header = [
            "# Benchmarks",
            "",
            "Produced by `make bench` (`manage.py bench`), which runs on a throwaway database and rewrites the section",
            "of the database it ran on. Each figure sits beside a baseline measured in the same run, because these",
            "machines are noisy: compare ratios, not absolute times.",
            "",
            "",
        ]
        body = [
            f"## {name}\n{sections[name].rstrip()}\n" for name in ("SQLite", "PostgreSQL", "Notes") if name in sections
        ]
        path.write_text("\n".join(header) + "\n".join(body))
        self.stdout.write(f"Wrote the {vendor} section of {output}")


def _sections(text: str) -> dict[str, str]:
    """'## Name' sections of a markdown file, by name."""
    found: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        name, _, body = chunk.partition("\n")
        found[name.strip()] = body
    return found
