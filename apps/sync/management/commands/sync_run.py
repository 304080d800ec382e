"""Run due ledger steps in this process until none is left (operations: drain without a cluster)."""

from django.core.management.base import BaseCommand

from apps.sync.engine import run_due_steps


class Command(BaseCommand):
    help = "Run every due step of the transaction ledger inline, then exit."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=10_000)

    def handle(self, *args, limit, **options):
        ran = run_due_steps(limit=limit)
        self.stdout.write(f"ran {ran} step(s)")
