"""manage.py demo: a working console with the demo firm loaded, from a fresh checkout, in one command.

Steps, in order: demo secrets into the environment, migrate, cache table, load_demo, then (unless
--no-serve) start the web console, wait for /healthz, print where to go, and stay in the foreground
until Ctrl-C, when every process it started is stopped.
"""

import logging
import os

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.urls import NoReverseMatch, reverse

from apps.console.health import history_figures
from apps.core.context import system_context
from apps.core.errors import BusinessError
from apps.demo.environment import demo_environment_apply, demo_secrets_ensure, secrets_path
from apps.demo.month_end import inject_reconciliation_faults, reconcile_month
from apps.demo.runner import (
    HOST,
    Supervisor,
    ensure_port_free,
    ignore_stop_signals,
    log_path,
    start_task_cluster,
    start_web_console,
    stop_on_signals,
    wait_until_healthy,
    watch,
)
from apps.demo.scenario import World, run
from apps.demo.services import DEMO_PASSWORD, DEMO_USERS, refuse_outside_development
from apps.metrics.services import metrics_refresh
from apps.sync.groups import live_groups, money_by_group
from apps.sync.models import Transaction

# What to open first: (admin URL name, a record to open or None for the list, why it is worth a look).
TOUR = (
    ("console:home", None, "the console home: money stuck and flowing, exception groups, connected systems"),
    ("console:exceptions", None, "exceptions grouped by cause: fix once, re-run the whole group"),
    ("admin:sync_transaction_changelist", None, "the exception queue: what failed, why, and how to fix it"),
    ("admin:inbound_delivery_changelist", None, "every webhook and bulk upload received, kept byte for byte"),
    ("admin:systems_connectedsystem_changelist", None, "the seven connected systems, auth and webhook secrets"),
    ("admin:systems_ownershiprule_changelist", None, "who owns what: system-of-record rules, some per field"),
    (
        "admin:systems_route_changelist",
        None,
        "routes: NW-UK bills through Stripe, the other entities through Chargebee",
    ),
    ("admin:mapping_valuemap_changelist", None, "value maps: region → subsidiary, items, tax codes, currencies"),
    ("admin:canonical_ratecard_changelist", None, "rate cards STD-US and STD-EU, 2025 and 2026 versions"),
    ("admin:canonical_customer_changelist", None, "the Fabrikam group: parent, sold-to and separate bill-to"),
    ("admin:canonical_contract_change", ("canonical", "Contract", "number", "K-1001"), "contract K-1001, amended"),
    ("admin:canonical_timeentry_changelist", None, "time entries: billed, approved, waiting for approval"),
    ("admin:canonical_invoice_change", ("canonical", "Invoice", "number", "INV-UK-2026-0001"), "an invoice with VAT"),
    ("admin:reconciliation_discrepancy_changelist", None, "month-end reconciliation: billing vs ERP vs console"),
    ("api-docs", None, "the REST API (OpenAPI)"),
)


class Command(BaseCommand):
    help = (
        "Run the demo: migrate, load the demo firm, start the console on 127.0.0.1:<port>, print the URL "
        "and the logins, and wait for Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Port for the web console (default 8000).")
        parser.add_argument(
            "--no-serve", action="store_true", help="Do everything except starting the console (tests, CI)."
        )
        parser.add_argument(
            "--scenario",
            choices=["auto", "always", "never"],
            default="auto",
            help="Drive the demo month through the sandbox systems: 'auto' runs it once on a fresh database.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off. Only for throwaway databases: the demo logins' password is public.",
        )

    def handle(self, *args, port: int = 8000, no_serve: bool = False, force: bool = False, scenario="auto", **options):
        self.scenario = scenario
        self.verbosity = options.get("verbosity", 1)
        try:
            refuse_outside_development(force=force)
            if not no_serve:
                ensure_port_free(port)
            self.prepare_environment()
            self.prepare_database()
            self.load_demo_firm()
            if no_serve:
                self.print_welcome(base_url=None)
                return
            self.serve(port)
        except BusinessError as exc:
            raise CommandError(f"{exc.message} {exc.fix}".strip()) from exc
        except KeyboardInterrupt:
            raise CommandError("Interrupted before the console started; run `make demo` again to finish.") from None

    # --- steps ------------------------------------------------------------------------------------
    def step(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"== {text}"))

    def prepare_environment(self) -> None:
        """Demo secrets into this process's environment; the processes started later inherit them."""
        values = demo_secrets_ensure()
        demo_environment_apply(values)
        self.step(f"Demo secrets: {len(values)} DEMO_* variables from {secrets_path()}")

    def prepare_database(self) -> None:
        self.step("Migrating the database")
        call_command("migrate", interactive=False, verbosity=max(self.verbosity - 1, 0), stdout=self.stdout)
        call_command("createcachetable", verbosity=max(self.verbosity - 1, 0), stdout=self.stdout)

    def load_demo_firm(self) -> None:
        self.step("Loading the demo firm, Northwind Advisory")
        call_command("load_demo", force=True, verbosity=self.verbosity, stdout=self.stdout, stderr=self.stderr)

    def serve(self, port: int) -> None:
        """Start the processes, say where to go, and stay in the foreground until stopped."""
        base_url = f"http://{HOST}:{port}"
        supervisor = Supervisor()
        stop_on_signals()
        try:
            self.step(f"Starting the web console on {base_url}")
            console = start_web_console(supervisor, port=port, env=dict(os.environ))
            wait_until_healthy(console, f"{base_url}/healthz")
            self.step("Starting the task cluster (django-q2) and the ledger's schedules")
            call_command("install_schedules", stdout=self.stdout)
            start_task_cluster(supervisor, env=dict(os.environ))
            self.drive_scenario(base_url)
            self.refresh_metrics()
            self.print_welcome(base_url=base_url)
            dead = watch(supervisor)
            raise CommandError(
                f"The {dead.name} stopped on its own (exit code {dead.process.returncode}); the demo stops too. "
                f"{dead.output_hint}."
            )
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the demo...")
        finally:
            ignore_stop_signals()
            supervisor.stop_all()
        self.stdout.write("Demo stopped.")

    def drive_scenario(self, base_url: str) -> None:
        """A month at the demo firm through the sandbox systems, unless it already ran on this database."""

        if self.scenario == "never" or (self.scenario == "auto" and Transaction.objects.exists()):
            self.step("Scenario already ran on this database (run with --scenario always to drive it again)")
            return
        self.step("Driving the demo month through the sandbox CRM, PSA, ERP and billing platform")
        logging.getLogger("apps.connectors").setLevel(logging.WARNING)  # the story, not every HTTP call
        world = World(base_url=base_url, say=lambda text: self.stdout.write(f"   {text}"))
        outcome = run(world)
        done = sum(counts.get("completed", 0) for counts in outcome["by_workflow"].values())
        self.stdout.write(self.style.SUCCESS(f"   {done} transactions completed."))
        if outcome["exceptions"]:
            self.stdout.write(f"   {len(outcome['exceptions'])} exceptions wait for you in the queue:")
            for item in outcome["exceptions"]:
                self.stdout.write(f"   - {item['subject']}: {item['message']}")
        self.step("Month end: what only a reconciliation notices, then the reconciliation of the month")
        inject_reconciliation_faults(world)
        reconcile_month(world)

    def refresh_metrics(self) -> None:
        """The month's figures, the alert rules and the home page's figures now, not at their next scheduled run."""
        self.step("Computing the business metrics and checking the alert rules (alert emails print below)")
        with system_context("Demo: metrics after the scenario"):
            result = metrics_refresh(reason="Demo: metrics after the scenario")
        self.stdout.write(f"   {result['figures']} figures; {result['notified']} alert email(s) sent.")
        history_figures(refresh=True)  # the home page's 30-day figures include the whole month, not a mid-run cache

    # --- output ---------------------------------------------------------------------------------------
    def print_welcome(self, *, base_url: str | None) -> None:
        lines = [""]
        if base_url:
            lines += [self.style.SUCCESS(f"The Integration Console is running at {base_url}/"), ""]
        else:
            lines += [self.style.SUCCESS("The demo database is ready (console not started: --no-serve)."), ""]
        lines.append(f"Logins (password for all: {DEMO_PASSWORD}):")
        lines += [f"  {spec.username:<12} {spec.role or 'superuser':<18} {spec.looks_at}" for spec in DEMO_USERS]
        if base_url:
            lines += ["", *self.click_first(base_url)]
        tour = self.tour(base_url or "")
        if tour:
            lines += ["", "Worth a look:"]
            lines += [f"  {url:<58} {why}" for url, why in tour]
        if base_url:
            lines += ["", f"Logs: {log_path('web')} (console) and {log_path('worker')} (task cluster)."]
            lines += ["Press Ctrl-C to stop."]
        self.stdout.write("\n".join(lines))

    def click_first(self, base_url: str) -> list[str]:
        """Where to start: the console home as finance ops, and the exception group holding up the most."""
        lines = [self.style.SUCCESS(f"Click first: {base_url}/  (log in as 'finance' to see the money stuck)")]
        groups = list(live_groups().filter(open_count__gt=0).order_by("-open_count", "-last_seen")[:20])
        money = money_by_group(group.pk for group in groups)
        if not groups:
            lines.append("No exception is open: every transaction of the month went through.")
            return lines

        def weight(group) -> tuple:
            return (sum(amount for _, amount in money.get(group.pk, [])), group.open_count)

        biggest = max(groups, key=weight)
        held = ", ".join(f"{currency} {amount:,.2f}" for currency, amount in money.get(biggest.pk, [])) or "no amount"
        url = base_url + reverse("console:exception-group", args=[biggest.pk])
        label = biggest.missing_label or biggest.title
        lines.append(f"Then the biggest exception group: {url}")
        lines.append(f"  {label[:100]} ({biggest.open_count} open, {held})")
        return lines

    def tour(self, base_url: str) -> list[tuple[str, str]]:
        """The TOUR entries that exist in this build of the console, as URLs."""
        from django.apps import apps

        stops = []
        for url_name, record, why in TOUR:
            args = ()
            if record is not None:
                app_label, model_name, key, value = record
                pk = apps.get_model(app_label, model_name).objects.filter(**{key: value}).values_list("pk", flat=True)
                if not pk:
                    continue
                args = (pk[0],)
            try:
                stops.append((base_url + reverse(url_name, args=args), why))
            except NoReverseMatch:
                continue  # that page is not part of this build yet
        return stops
