"""Compute the business metrics now (the hourly schedule does the same) and evaluate the alert rules."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.context import system_context
from apps.core.errors import BusinessError
from apps.metrics.definitions import DEFINITIONS
from apps.metrics.periods import Period
from apps.metrics.services import alert_rules_evaluate, metric_values_compute


class Command(BaseCommand):
    help = "Compute business metrics for the given months (default: the running and the previous month)."

    def add_arguments(self, parser):
        parser.add_argument("--period", action="append", default=[], help="A month, e.g. 2026-11 (repeatable).")
        parser.add_argument("--metric", action="append", default=[], choices=sorted(DEFINITIONS))
        parser.add_argument("--no-alerts", action="store_true", help="Compute only; do not evaluate alert rules.")

    def handle(self, *args, **options):
        reason = "Metrics computed with manage.py compute_metrics"
        try:
            periods = [Period.parse(text) for text in options["period"]] or None
        except BusinessError as error:
            raise CommandError(f"{error.message} {error.fix}") from None
        with system_context(reason):
            snapshots = metric_values_compute(periods=periods, metrics=options["metric"] or None, reason=reason)
            for snapshot in snapshots:
                self.stdout.write(f"{snapshot.metric} {snapshot.period:%Y-%m}: {snapshot.figure_count} figure(s)")
            if not options["no_alerts"]:
                result = alert_rules_evaluate(
                    periods=sorted({Period.of(s.period) for s in snapshots}, key=lambda p: p.start), reason=reason
                )
                self.stdout.write(
                    f"alert rules checked: {result['rules']}, notified: {result['notified']}, "
                    f"cleared: {result['cleared']}"
                )
