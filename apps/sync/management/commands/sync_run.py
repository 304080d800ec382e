"""Run ledger steps in this process: every due step until none is left, or one given step."""

from django.core.management.base import BaseCommand

from apps.sync.engine import run_due_steps, run_step


class Command(BaseCommand):
    help = "Run every due step of the transaction ledger inline (or just --step ID), then exit."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=10_000, help="Stop after this many steps.")
        parser.add_argument("--step", type=int, help="Run only this step (if it is due).")

    def handle(self, *args, limit, step=None, **options):
        if step is not None:
            self.stdout.write(f"step {step}: {run_step(step)}")
            return
        self.stdout.write(f"ran {run_due_steps(limit=limit)} step(s)")
