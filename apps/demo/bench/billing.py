"""M1: month-end billing events posted through the ledger on the cluster to the billing sandbox, served by the
bench's gunicorn, with the sandbox enforcing Chargebee's documented rate limit and the connector's shared rate
limit set to stay inside it.

Chargebee documents its limit as the requests of the past 60 seconds: 1,000 a minute on the Performance plan
(150 on test sites), beyond which it answers 429 ("What are the Chargebee API limits?",
https://www.chargebee.com/docs/billing/2.0/kb/platform/what-are-the-chargebee-api-limits). A token bucket
lets `burst` calls through at once and refills at its rate, so any 60 seconds carry at most rate + burst calls:
the connector is set to 1,000 − burst a minute so the sandbox's window is never exceeded. Charges go 100 to a
call (`CHARGES_PER_CALL`, the adapter's batch of `charges[…][i]`), so 100,000 entries need 1,000 calls: 60 s at
1,000 a minute is the floor.
"""

import math
import time

from django.db import connection
from django.utils import timezone

from apps.canonical.models import BillingEvent, Project
from apps.connectors.adapters.chargebee import CHARGES_PER_CALL
from apps.core.context import system_context
from apps.core.history import bulk_create_tracked
from apps.mapping.services import cross_reference_record, external_id_for
from apps.sandbox import records
from apps.sandbox.billing import CUSTOMER_DEFAULTS
from apps.sandbox.models import Fault, SandboxCall
from apps.sandbox.services import sandbox_faults_set
from apps.sync.models import Transaction
from apps.sync.registry import target_system
from apps.sync.services import transaction_start

from .workflow import POST_CHARGES

VENDOR_PER_MINUTE = 1000  # Chargebee, Performance plan (live site)
BURST = 10
CLIENT_PER_MINUTE = VENDOR_PER_MINUTE - BURST
EVENTS_PER_TRANSACTION = 5000  # one customer's month-end charges a transaction: 50 calls of 100
RECIPIENTS = 4
ANALYZE_EVERY = 5.0  # seconds; see `finished`
SANDBOX_KIND = "billing"


def calls_needed(entries: int) -> int:
    return math.ceil(entries / CHARGES_PER_CALL)


def floor_seconds(entries: int) -> float:
    """Calls needed ÷ the vendor's allowed rate."""
    return calls_needed(entries) / (VENDOR_PER_MINUTE / 60)


def prepare() -> dict:
    """The billing system and a few invoice recipients with an account in the billing sandbox (untimed)."""
    billing = target_system("billing", workflow=POST_CHARGES)
    recipients: dict = {}
    with system_context("Bench M1: billing accounts of the recipients the month-end charges are for"):
        for project in Project.objects.filter(contract__isnull=False).select_related(
            "contract__bill_to", "contract__customer", "customer"
        ):
            recipient = project.contract.invoice_recipient()
            if recipient.pk in recipients:
                continue
            billing_id = external_id_for(system=billing, obj=recipient) or recipient.number
            account = records.find(SANDBOX_KIND, "customer", billing_id)
            if account is None:
                data = {**CUSTOMER_DEFAULTS, "company": recipient.name, "preferred_currency_code": project.currency}
                account = records.create(SANDBOX_KIND, "customer", data, internal_id=billing_id)
            if external_id_for(system=billing, obj=recipient) is None:
                cross_reference_record(system=billing, obj=recipient, external_id=billing_id)
            currency = account.data.get("preferred_currency_code") or project.currency
            recipients[recipient.pk] = (project, currency)
            if len(recipients) == RECIPIENTS:
                break
    return {"billing": billing, "projects": list(recipients.values())}


def limits_set(context: dict, *, on: bool) -> None:
    """The sandbox's vendor limit and the connector's shared limit, on for M1 and off after it."""
    billing = context["billing"]
    if on:
        context.setdefault("previous", (billing.rate_limit_per_minute, billing.rate_limit_burst))
    per_minute, burst = (CLIENT_PER_MINUTE, BURST) if on else context["previous"]
    with system_context("Bench M1: the billing platform's documented rate limit" if on else "Bench M1 done"):
        sandbox_faults_set(SANDBOX_KIND, requests_per_minute=VENDOR_PER_MINUTE if on else 0)
        billing.rate_limit_per_minute, billing.rate_limit_burst = per_minute, burst
        billing.save()


def events_create(context: dict, count: int, round_no: int) -> list[list[int]]:
    """`count` pending billing events, cut into one id list per transaction (one recipient each); untimed."""
    projects = context["projects"]
    today = timezone.localdate()
    batches = []
    with system_context(f"Bench M1 round {round_no}: month-end billing events"):
        for start in range(0, count, EVENTS_PER_TRANSACTION):
            project, currency = projects[(start // EVENTS_PER_TRANSACTION) % len(projects)]
            size = min(EVENTS_PER_TRANSACTION, count - start)
            events = bulk_create_tracked(
                BillingEvent,
                [
                    BillingEvent(
                        project=project,
                        contract=project.contract,
                        source=BillingEvent.Source.TIME,
                        event_date=today,
                        description=f"M1 round {round_no}: entry {start + n}",
                        quantity=1,
                        unit_price=150,
                        amount=150,
                        currency=currency,
                    )
                    for n in range(size)
                ],
            )
            batches.append([event.pk for event in events])
    return batches


def post(batches: list[list[int]], round_no: int) -> dict:
    """Start one ledger transaction per batch and wait until all completed; the figures of the round."""
    started = timezone.now()
    with system_context(f"Bench M1 round {round_no}: post month-end charges"):
        ids = [
            transaction_start(workflow=POST_CHARGES, data={"billing_event_ids": batch}, reason="bench M1").pk
            for batch in batches
        ]
    return {"started": started, "transactions": ids, "round": round_no}


def finished(run: dict) -> bool:
    """Whether every transaction of the round ended; meanwhile keeps the simulator's table statistics fresh.

    The simulator's record table grows by 100,000 rows in a minute, far faster than autovacuum re-analyses it
    (once a minute at best), and with statistics of a small table PostgreSQL looks references up by scanning
    every charge: the simulator (not the ledger) would slow down as the round goes on. Real Chargebee has no
    such table, so the bench analyses it every few seconds.
    """
    if connection.vendor == "postgresql" and time.monotonic() - run.get("analyzed", 0) > ANALYZE_EVERY:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE sandbox_sandboxrecord")
        run["analyzed"] = time.monotonic()
    open_ = Transaction.objects.filter(pk__in=run["transactions"]).exclude(
        status__in=[Transaction.Status.COMPLETED, Transaction.Status.EXCEPTION]
    )
    return not open_.exists()


def figures(run: dict, entries: int) -> dict:
    txns = Transaction.objects.filter(pk__in=run["transactions"])
    exceptions = txns.filter(status=Transaction.Status.EXCEPTION)
    last = max(txns.values_list("completed_at", flat=True), default=None) or timezone.now()
    calls = SandboxCall.objects.filter(kind=SANDBOX_KIND, received_at__gte=run["started"])
    total = calls.count()
    throttled = calls.filter(response_status=429).count()
    return {
        "seconds": (last - run["started"]).total_seconds(),
        "calls": total,
        "throttled": throttled,
        "vendor_refused": calls.filter(fault=Fault.RATE_LIMITED).count(),
        "exceptions": exceptions.count(),
        "exception_message": exceptions.values_list("error_message", flat=True).first() or "",
        "sent": BillingEvent.objects.filter(
            description__startswith=f"M1 round {run['round']}:", status=BillingEvent.Status.SENT
        ).count(),
        "floor": floor_seconds(entries),
        "needed": calls_needed(entries),
    }
