"""manage.py chaos: signed webhooks and month-end uploads under SIGKILLs and PostgreSQL restarts, then the count.

Starts its own PostgreSQL on a temporary data directory (loopback, --pg-port), two gunicorn web
processes and two django-q2 clusters, drives the load, breaks things a bounded number of times,
waits for the ledger to drain and checks: acknowledgements = distinct stored events = completed
effects in the sandbox systems, no duplicates, no step succeeded twice. Writes the figures to
docs/RELIABILITY.md (or --report) and deletes everything it created. `--no-chaos` is the scale-out
run: the same processes and load, nothing killed. Exit status 1 when a check fails.
"""

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.demo.chaos import (
    Harness,
    Plan,
    TempPostgres,
    child_environment,
    plan_as_json,
    plan_from_json,
    report_block,
    write_report,
)
from apps.demo.runner import manage_py


class Command(BaseCommand):
    help = "Chaos under load against a PostgreSQL, web processes and task clusters of its own; figures to a report."

    def add_arguments(self, parser):
        defaults = Plan()
        parser.add_argument("--webhooks", type=int, default=defaults.webhooks, help="Distinct closed-won events.")
        parser.add_argument("--duplicates", type=int, default=defaults.duplicates, help="Events sent a second time.")
        parser.add_argument("--uploads", type=int, default=defaults.uploads, help="Month-end bulk time uploads.")
        parser.add_argument("--gunicorn-kills", type=int, default=defaults.gunicorn_kills)
        parser.add_argument("--cluster-kills", type=int, default=defaults.cluster_kills)
        parser.add_argument("--pg-restarts", type=int, default=defaults.pg_restarts)
        parser.add_argument("--no-chaos", action="store_true", help="Scale-out only: kill nothing, restart nothing.")
        parser.add_argument("--interval", type=float, default=defaults.chaos_interval, help="Seconds between faults.")
        parser.add_argument("--time-limit", type=float, default=defaults.time_limit, help="Seconds for the whole run.")
        parser.add_argument("--pg-port", type=int, default=defaults.pg_port)
        parser.add_argument("--web-ports", default="8731,8732", help="Comma-separated ports of the web processes.")
        parser.add_argument("--report", default=str(Path(settings.BASE_DIR) / "docs" / "RELIABILITY.md"))
        parser.add_argument("--json", dest="json_path", default="", help="Also write the figures as JSON here.")
        parser.add_argument("--inside", default="", help="(internal) run the harness; the value is the plan.")
        parser.add_argument("--pg-data", default="", help="(internal) the temporary data directory.")
        parser.add_argument("--result", default="", help="(internal) where the inner run writes its figures.")

    def handle(self, *args, **options):
        if options["inside"]:
            return self.inside(options)
        plan = Plan(
            webhooks=options["webhooks"],
            duplicates=min(options["duplicates"], options["webhooks"]),
            uploads=min(options["uploads"], options["webhooks"]),
            gunicorn_kills=0 if options["no_chaos"] else options["gunicorn_kills"],
            cluster_kills=0 if options["no_chaos"] else options["cluster_kills"],
            pg_restarts=0 if options["no_chaos"] else options["pg_restarts"],
            chaos_interval=options["interval"],
            time_limit=options["time_limit"],
            pg_port=options["pg_port"],
            web_ports=tuple(int(port) for port in options["web_ports"].split(",")),
        )
        mode = "chaos" if plan.chaos else "scale-out"
        command = " ".join(["python manage.py chaos", shlex.join(sys.argv[2:])]).strip()
        pg = TempPostgres(plan.pg_port)
        self.stdout.write(f"PostgreSQL of our own in {pg.root} on {pg.url}")
        try:
            pg.create()
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
                result_path = Path(handle.name)
            # The harness process itself queues work too (its sweep while it waits for the drain): it needs the
            # same SECRET_KEY and Q_CLUSTER_NAME as the clusters, or its messages go to a queue nobody reads.
            env = child_environment(database_url=pg.url, plan=plan, var_dir=pg.root / "var")
            argv = manage_py(
                "chaos", "--inside", plan_as_json(plan), "--pg-data", str(pg.data), "--result", str(result_path)
            )
            inner = subprocess.run(argv, env=env, cwd=settings.BASE_DIR, timeout=plan.time_limit + 600)
            if inner.returncode != 0 or not result_path.stat().st_size:
                raise CommandError(f"The chaos run stopped early (exit code {inner.returncode}); see its output above.")
            figures = json.loads(result_path.read_text())
            result_path.unlink()
        finally:
            pg.destroy()
        when = timezone.now().strftime("%Y-%m-%d %H:%M UTC")
        block = report_block(mode=mode, plan=plan, figures=figures, command=command, when=when)
        write_report(Path(options["report"]), block, mode)
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(figures, indent=2))
        self.stdout.write(block)
        if figures["problems"]:
            raise CommandError("The run found problems: " + "; ".join(figures["problems"]))
        self.stdout.write(self.style.SUCCESS(f"{mode}: every check passed; figures in {options['report']}"))

    def inside(self, options):
        plan = plan_from_json(options["inside"])
        harness = Harness(plan, pg_data=options["pg_data"], say=lambda text: self.stdout.write(text))
        figures = harness.run()
        Path(options["result"]).write_text(json.dumps(figures.__dict__, default=str))
