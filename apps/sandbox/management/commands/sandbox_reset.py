"""manage.py sandbox_reset [--kind K]: empty the sandbox systems and re-seed their reference data."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import BusinessError
from apps.sandbox.services import KINDS, sandbox_reset


class Command(BaseCommand):
    help = "Clear the sandbox systems' records, idempotency keys, calls, webhooks and faults; re-seed reference data."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=KINDS, help="Reset only this sandbox (default: all of them).")

    def handle(self, *args, kind=None, **options):
        try:
            systems = sandbox_reset(kind, reason="manage.py sandbox_reset")
        except BusinessError as exc:
            raise CommandError(f"{exc.message} {exc.fix}".strip()) from exc
        for system in systems:
            self.stdout.write(f"Reset the {system} sandbox.")
