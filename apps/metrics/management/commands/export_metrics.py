"""Write the BI export: one CSV per metric for a month, with the columns documented in docs/metrics.md."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import BusinessError
from apps.metrics.definitions import DEFINITIONS
from apps.metrics.export import export_filename, metric_csv
from apps.metrics.periods import Period


class Command(BaseCommand):
    help = "Write <metric>_<YYYY-MM>.csv for each metric (or the ones given) of a month into a directory."

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="The month, e.g. 2026-11.")
        parser.add_argument("--metric", action="append", default=[], choices=sorted(DEFINITIONS))
        parser.add_argument("--dir", default=".", help="Where to write the files (created if missing).")

    def handle(self, *args, **options):
        directory = Path(options["dir"])
        directory.mkdir(parents=True, exist_ok=True)
        try:
            period = Period.parse(options["period"])
            for metric in options["metric"] or sorted(DEFINITIONS):
                path = directory / export_filename(metric, period)
                path.write_text(metric_csv(metric, period), encoding="utf-8")
                self.stdout.write(str(path))
        except BusinessError as error:
            raise CommandError(f"{error.message} {error.fix}") from None
