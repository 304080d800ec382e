"""manage.py reconcile --period 2026-11 [--entity NW-UK]: reconcile a period now, in this process."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.core.context import system_context
from apps.core.errors import BusinessError
from apps.reconciliation.models import ReconciliationRun
from apps.reconciliation.services import reconciliation_run_execute, reconciliation_run_request


class Command(BaseCommand):
    help = "Reconcile billing, ERP and the console for one period (and optionally one legal entity)."

    def add_arguments(self, parser):
        parser.add_argument("--period", default=None, help="Accounting month YYYY-MM (default: the current month).")
        parser.add_argument("--entity", default=None, help="Legal entity code, e.g. NW-UK (default: all).")

    def handle(self, *args, period=None, entity=None, **options):
        period = period or f"{timezone.localdate():%Y-%m}"
        try:
            with system_context(f"manage.py reconcile --period {period}"):
                run = reconciliation_run_request(
                    period=period, legal_entity_code=entity, trigger=ReconciliationRun.Trigger.COMMAND, actor=None
                )
            run = reconciliation_run_execute(run_id=run.pk)
        except BusinessError as exc:
            raise CommandError(f"{exc.message} {exc.fix}".strip()) from exc
        summary = run.summary
        self.stdout.write(
            f"Run #{run.pk} {period} ({entity or 'all entities'}): {run.get_status_display()} in "
            f"{run.duration.total_seconds():.1f} s; {summary.get('open', 0)} open discrepancies worth "
            f"{summary.get('value_at_risk', '0')} {summary.get('reporting_currency', '')} "
            f"({summary.get('opened', 0)} new, {summary.get('closed', 0)} closed, "
            f"{summary.get('reopened', 0)} reopened)."
        )
        for entry in run.not_compared:
            self.stdout.write(
                self.style.WARNING(f"Not compared: {entry['name']} for {entry['period']}: {entry['reason']}")
            )
