"""manage.py load_demo: the demo firm's configuration, records and logins, into an already migrated database."""

import io

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import BusinessError
from apps.demo.services import (
    CONFIG_PATH,
    DEMO_PASSWORD,
    demo_alert_rules_ensure,
    demo_data_load,
    demo_users_ensure,
    refuse_outside_development,
)


class Command(BaseCommand):
    help = (
        "Load the demo firm Northwind Advisory: its systems, ownership rules, value maps and rate cards "
        "(through import_config), its canonical records, and one login per role. Safe to run again: "
        "what is already there is left as it is."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Load even with DEBUG off. Only for throwaway databases: the demo logins' password is public.",
        )

    def handle(self, *args, force: bool = False, **options):
        verbosity = options.get("verbosity", 1)
        try:
            refuse_outside_development(force=force)
            report = io.StringIO()
            call_command("import_config", str(CONFIG_PATH), stdout=report, stderr=self.stderr, verbosity=verbosity)
            summary = demo_data_load()
            users = demo_users_ensure()
            rules = demo_alert_rules_ensure()
        except BusinessError as exc:
            raise CommandError(f"{exc.message} {exc.fix}".strip()) from exc
        for line in report.getvalue().splitlines():
            # The import's per-row lines are indented; its header and section totals are not.
            if verbosity > 1 or not line.startswith(" "):
                self.stdout.write(line)
        if summary.changes:
            self.stdout.write(f"Demo records: {summary.changes} created or changed.")
            if verbosity > 1:
                for line in summary.lines():
                    self.stdout.write(f"  {line}")
        else:
            self.stdout.write("Demo records: already loaded, nothing changed.")
        created = [spec.username for spec, was_created in users if was_created]
        if created:
            self.stdout.write(f"Demo logins created: {', '.join(created)} (password '{DEMO_PASSWORD}').")
        else:
            self.stdout.write(f"Demo logins: {len(users)} in place (password '{DEMO_PASSWORD}').")
        new_rules = [rule.name for rule, was_created in rules if was_created]
        self.stdout.write(
            f"Alert rules: {', '.join(new_rules)} created." if new_rules else f"Alert rules: {len(rules)} in place."
        )
