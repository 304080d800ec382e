"""Install the django-q2 schedules the ledger (and the console home) rely on; safe to run on every deploy."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "ledger sweep",
        "func": "apps.sync.tasks.sweep",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
    },
    {
        "name": "console home figures",
        "func": "apps.console.tasks.refresh_home_figures",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
        "repeats": -1,
    },
    {
        "name": "reference data pull",
        "func": "apps.sync.workflows.reference_data.start_scheduled_pull",
        "schedule_type": Schedule.HOURLY,
        "repeats": -1,
    },
    {
        "name": "daily reconciliation",
        "func": "apps.reconciliation.tasks.reconcile_daily",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
    {
        "name": "business metrics and alerts",
        "func": "apps.metrics.tasks.refresh_metrics",
        "schedule_type": Schedule.HOURLY,
        "repeats": -1,
    },
    {
        "name": "alert digest",
        "func": "apps.metrics.tasks.send_digest",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
]


class Command(BaseCommand):
    help = "Create or update the ledger's django-q2 schedules (idempotent: keyed by name)."

    def handle(self, *args, **options):
        for spec in SCHEDULES:
            values = {key: value for key, value in spec.items() if key != "name"}
            matches = Schedule.objects.filter(name=spec["name"]).order_by("pk")
            first = matches.first()
            if first is None:
                Schedule.objects.create(name=spec["name"], **values)
                self.stdout.write(f"created schedule '{spec['name']}'")
                continue
            matches.exclude(pk=first.pk).delete()  # names are not unique in django-q2's table; keep one
            changed = [key for key, value in values.items() if getattr(first, key) != value]
            if changed:
                for key in changed:
                    setattr(first, key, values[key])
                first.save()
                self.stdout.write(f"updated schedule '{spec['name']}' ({', '.join(changed)})")
            else:
                self.stdout.write(f"schedule '{spec['name']}' unchanged")
