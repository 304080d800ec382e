"""manage.py bench: the hot paths (W1 webhooks, B1 bulk, L1 ledger steps) beside their floors, measured in the same
run on a PostgreSQL database of the bench's own; writes docs/BENCHMARKS.md. The run itself is apps/demo/bench/."""

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import BusinessError
from apps.demo.bench.harness import FULL, QUICK, Bench


class Command(BaseCommand):
    help = "Benchmark webhook intake, bulk time and ledger steps against floors measured in the same run."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="Small sizes and two rounds, for development.")
        parser.add_argument(
            "--only",
            default="",
            help="Comma-separated rows to measure (e.g. W1,L1); the others are left out of the written table.",
        )
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "docs" / "BENCHMARKS.md"))

    def handle(self, *args, quick: bool, output: str, only: str, **options):
        rows = frozenset(part.strip().upper() for part in only.split(",") if part.strip())
        bench = Bench(QUICK if quick else FULL, out=self.stdout, quick=quick, only=rows)
        try:
            bench.run()
        except BusinessError as exc:
            raise CommandError(f"{exc.message} {exc.fix or ''} {exc.technical or ''}".strip()) from exc
        command = "make bench" + (" BENCH_ARGS=--quick" if quick else "")
        bench.write(Path(output), command)
        for row in bench.rows():
            self.stdout.write(f"{row[0]}: {row[2]} | floor {row[3]} | ratio {row[4]} | {row[6]}")
        self.stdout.write(f"Wrote {output} ({' '.join(sys.argv[1:])})")
