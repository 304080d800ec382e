"""The demo scenario: a month at Northwind Advisory, driven through the built-in sandbox systems over real HTTP.

Deals close in the sandbox CRM and arrive as signed Salesforce change events; projects, customers and billing
schedules are created in the sandbox PSA, ERP and billing platforms; approved time arrives as a month-end bulk
upload; milestones complete; the billing platforms invoice and take payments and tell the console by webhook;
a contract is amended. Two billing platforms make it route: the firm's routes send the UK entity's billing to
Stripe and every other entity's to Chargebee (`billing_system_for`). A few faults are injected on the way (a
429 burst, a lost answer after the ERP committed, a PSA outage) and a few deals are wrong on purpose, so the
console ends with completed transactions and real exceptions to fix.

The same functions drive the end-to-end tests (against pytest's live server) and `make demo`.

Over 500 lines on purpose: the month is one story, told in order from the first deal to the last payment.
"""

import datetime
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import requests
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count
from django.utils import timezone

from apps.canonical.models import Opportunity, Project, Resource
from apps.connectors.registry import adapter_for
from apps.core.context import system_context
from apps.mapping.models import CrossReference
from apps.mapping.services import cross_reference_record, external_id_for
from apps.sandbox.services import sandbox_faults_set, sandbox_reset, sandbox_system_configure, sandbox_webhooks_wait
from apps.sync.engine import run_due_steps, sweep
from apps.sync.intake import deliveries_waiting
from apps.sync.models import Transaction
from apps.systems import secrets
from apps.systems.models import ConnectedSystem, OutboundAuth, SystemKind, url_host
from apps.systems.routing import choose_system

# The demo systems and the sandbox path that plays each of them.
SANDBOX_PATHS = {
    "salesforce": ("crm", "services/data/v60.0/"),
    "kantata": ("psa", "api/v1/"),
    "netsuite": ("erp", "services/rest/record/v1/"),
    "chargebee": ("billing", "api/v2/"),
    "stripe": ("stripe", "v1/"),
}
# Outbound credentials the sandbox accepts (any non-empty token; Chargebee: the API key as Basic user name).
SANDBOX_AUTH = {
    "salesforce": (OutboundAuth.BEARER, {"env": "IC_SECRET_DEMO_SALESFORCE_CLIENT_SECRET"}),
    "kantata": (OutboundAuth.BEARER, {"env": "IC_SECRET_DEMO_KANTATA_API_TOKEN"}),
    "netsuite": (OutboundAuth.BEARER, {"env": "IC_SECRET_DEMO_NETSUITE_CLIENT_SECRET"}),
    "chargebee": (OutboundAuth.BASIC, {"username": {"env": "IC_SECRET_DEMO_CHARGEBEE_API_KEY"}}),
    "stripe": (OutboundAuth.BEARER, {"env": "IC_SECRET_DEMO_STRIPE_SECRET_KEY"}),
}
# The billing sandboxes report invoices and payments to the console's inbound endpoint of their system.
SANDBOX_WEBHOOKS = {
    "chargebee": ("billing", {"env": "IC_SECRET_DEMO_CHARGEBEE_WEBHOOK_BASIC"}),
    "stripe": ("stripe", {"env": "IC_SECRET_DEMO_STRIPE_WEBHOOK_SECRET"}),
}
SANDBOX_READ_TIMEOUT = 5  # seconds: short, so a "lost answer" fault is noticed quickly in the demo


@dataclass(frozen=True)
class Deal:
    """A deal as the sales team enters it in the CRM."""

    account: str
    name: str
    amount: Decimal
    currency: str
    region: str
    contract_type: str
    rate_card: str = ""
    country: str = "US"
    tax_id: str = ""
    fmt: str = "cdc"  # how Salesforce tells us: a change event ("cdc") or a platform event ("platform")


DEALS = [
    Deal(
        "Globex Corporation",
        "Globex – Data platform rollout",
        Decimal("185000"),
        "USD",
        "North America",
        "Time & Materials",
        rate_card="STD-US",
        tax_id="12-3456789",
    ),
    Deal(
        "Initech GmbH",
        "Initech – ERP assessment",
        Decimal("60000"),
        "EUR",
        "DACH",
        "Milestone",
        country="DE",
        tax_id="DE811234567",
    ),
    Deal(
        "Soylent Foods Ltd",
        "Soylent – Finance operating model",
        Decimal("48000"),
        "GBP",
        "UK & Ireland",
        "Fixed Fee",
        country="GB",
    ),  # no VAT number: a UK entity cannot invoice it
    Deal(
        "Umbrella do Brasil",
        "Umbrella – LATAM expansion",
        Decimal("72000"),
        "USD",
        "LATAM",
        "Time & Materials",
        rate_card="STD-US",
        country="BR",
        tax_id="12.345.678/0001-90",
        fmt="platform",
    ),
    Deal(
        "Tailspin Toys Ireland DAC",
        "Tailspin – Supply chain diagnostic",
        Decimal("36000"),
        "GBP",
        "UK & Ireland",
        "Fixed Fee",
        country="IE",
        tax_id="IE6388047V",
    ),  # NW-UK bills it through Stripe (the UK entity's billing route); an Irish business: no UK VAT
]
UK_DEAL = DEALS[4]


@dataclass
class World:
    """Where the console runs, and what the scenario created in the sandbox."""

    base_url: str
    say: object = print
    accounts: dict = field(default_factory=dict)  # deal name -> CRM account id
    opportunities: dict = field(default_factory=dict)  # deal name -> CRM opportunity id

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"


# --- wiring ---------------------------------------------------------------------------------------


def sandbox_wire(base_url: str, *, actor=None) -> list[ConnectedSystem]:
    """Point the demo's CRM, PSA, ERP and billing systems at the built-in sandbox on this console."""
    wired = []
    with system_context(f"Demo: point systems at the built-in sandbox on {base_url}"):
        for slug, (kind, path) in SANDBOX_PATHS.items():
            system = ConnectedSystem.objects.filter(slug=slug).first()
            if system is None:
                continue
            auth, credentials = SANDBOX_AUTH[slug]
            address = f"{base_url.rstrip('/')}/sandbox/{kind}/{path}"
            values = {
                "base_url": address,
                "outbound_auth": auth,
                "outbound_credentials": credentials,
                "credentials_host": url_host(address),  # wiring attaches the credentials to the sandbox on purpose
                "read_timeout_seconds": Decimal(SANDBOX_READ_TIMEOUT),
                "enabled": True,
            }
            if any(getattr(system, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(system, name, value)
                system.full_clean()
                system.save()
            wired.append(system)
        sandbox_reset()
        for slug, (kind, credentials) in SANDBOX_WEBHOOKS.items():
            if not ConnectedSystem.objects.filter(slug=slug).exists():
                continue
            sandbox_system_configure(
                kind,
                webhook_url=f"{base_url.rstrip('/')}/api/v1/inbound/{slug}/",
                webhook_credentials=credentials,
                reason=f"Demo: the {kind} sandbox reports invoices and payments to this console",
            )
    return wired


def resources_known_to_psa() -> dict[str, str]:
    """The demo firm's consultants as Kantata knows them (user ids), recorded as cross-references."""
    kantata = ConnectedSystem.objects.get(slug="kantata")
    known = {}
    with system_context("Demo: people as the PSA knows them"):
        for resource in Resource.objects.filter(active=True).order_by("employee_number"):
            user_id = external_id_for(system=kantata, obj=resource)
            if user_id is None:
                user_id = f"KU-{resource.employee_number}"
                cross_reference_record(
                    system=kantata, obj=resource, external_id=user_id, origin=CrossReference.Origin.IMPORT
                )
            known[user_id] = resource
    return known


# --- what the vendors send ----------------------------------------------------------------------


def _post(world: World, path: str, body: bytes, headers: dict, *, content_type="application/json") -> dict:
    response = requests.post(world.url(path), data=body, headers={"Content-Type": content_type, **headers}, timeout=120)
    if response.status_code >= 400:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def signed_by_salesforce(body: bytes) -> dict:
    """Standard Webhooks headers, as the demo's Salesforce relay signs them."""
    return _standard_webhooks_headers(body, "IC_SECRET_DEMO_SALESFORCE_WEBHOOK_SECRET")


def _standard_webhooks_headers(body: bytes, secret_env: str) -> dict:
    from standardwebhooks import Webhook

    secret = secrets.resolve({"env": secret_env})
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    moment = timezone.now()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, moment, body.decode()),
    }


def deal_close_date() -> datetime.date:
    """Deals closed on the first of last month, so this month's time falls inside the projects."""
    return (timezone.localdate().replace(day=1) - datetime.timedelta(days=1)).replace(day=1)


def crm_create_deal(world: World, deal: Deal) -> str:
    """The sales rep creates the account and the opportunity in the CRM (the sandbox)."""
    crm = adapter_for(ConnectedSystem.objects.get(slug="salesforce"), correlation_id="demo-crm-seed")
    account = crm.create(
        "Account",
        {
            "Name": deal.account,
            "BillingCountry": deal.country,
            "BillingCountryCode": deal.country,
            "Tax_Id__c": deal.tax_id,
            "Region__c": deal.region,
            "CurrencyIsoCode": deal.currency,
            "Billing_Email__c": f"ap@{deal.account.split()[0].lower()}.example",
        },
        idempotency_key=f"demo-account-{uuid.uuid5(uuid.NAMESPACE_URL, deal.account)}",
    )
    opportunity = crm.create(
        "Opportunity",
        {
            "Name": deal.name,
            "AccountId": account.id,
            "Amount": str(deal.amount),
            "CurrencyIsoCode": deal.currency,
            "CloseDate": deal_close_date().isoformat(),
            "StageName": "Closed Won",
            "Contract_Type__c": deal.contract_type,
            "Rate_Card__c": deal.rate_card,
            "Region__c": deal.region,
        },
        idempotency_key=f"demo-opportunity-{uuid.uuid5(uuid.NAMESPACE_URL, deal.name)}",
    )
    world.accounts[deal.name] = account.id
    world.opportunities[deal.name] = opportunity.id
    return opportunity.id


def announce_closed_won(world: World, deal: Deal) -> dict:
    """Salesforce tells the console the deal was won: a change event (thin) or a platform event (full)."""
    body = closed_won_body(world, deal)
    return _post(world, "/api/v1/inbound/salesforce/", body, signed_by_salesforce(body))


def closed_won_body(world: World, deal: Deal) -> bytes:
    """The bytes Salesforce sends when the deal is won (a fresh event each call: its own transaction key)."""
    opportunity_id = world.opportunities[deal.name]
    now = timezone.now()
    if deal.fmt == "platform":
        message = {
            "channel": "/event/Opportunity_Won__e",
            "data": {
                "schema": "tOWNbSlYNB1qOLnhzmN8pA",
                "payload": {
                    "CreatedDate": now.isoformat().replace("+00:00", "Z"),
                    "Opportunity_Id__c": opportunity_id,
                    "Opportunity_Name__c": deal.name,
                    "Amount__c": float(deal.amount),
                    "Currency_Iso_Code__c": deal.currency,
                    "Close_Date__c": deal_close_date().isoformat(),
                    "Contract_Type__c": deal.contract_type,
                    "Rate_Card__c": deal.rate_card,
                    "Account_Id__c": world.accounts[deal.name],
                    "Account_Name__c": deal.account,
                    "Tax_Id__c": deal.tax_id,
                    "Billing_Country_Code__c": deal.country,
                    "Region__c": deal.region,
                },
                "event": {"EventUuid": str(uuid.uuid4()), "replayId": int(now.timestamp())},
            },
        }
    else:
        message = [
            {
                "channel": "/data/OpportunityChangeEvent",
                "data": {
                    "schema": "IeRuaY6cbI_HsV8Rv1Mc5g",
                    "payload": {
                        "LastModifiedDate": now.isoformat().replace("+00:00", "Z"),
                        "StageName": "Closed Won",
                        "IsWon": True,
                        "ChangeEventHeader": {
                            "entityName": "Opportunity",
                            "recordIds": [opportunity_id],
                            "changeType": "UPDATE",
                            "transactionKey": str(uuid.uuid4()),
                            "sequenceNumber": 1,
                            "commitTimestamp": int(now.timestamp() * 1000),
                            "changedFields": ["StageName", "IsWon"],
                        },
                    },
                    "event": {"replayId": int(now.timestamp())},
                },
            }
        ]
    return json.dumps(message).encode()


def upload_month_of_time(world: World, project: Project, *, month: datetime.date, odd_role: str = "") -> dict:
    """Kantata's month-end export of approved time for a project, as one bulk upload (NDJSON)."""
    kantata = ConnectedSystem.objects.get(slug="kantata")
    workspace_id = external_id_for(system=kantata, obj=project)
    people = [r for r in resources_known_to_psa().items() if r[1].legal_entity_id == project.legal_entity_id][:3]
    records = []
    day = month.replace(day=1)
    while day.month == month.month and day <= timezone.localdate():
        if day.weekday() < 5:
            for user_id, resource in people:
                records.append(
                    {
                        "time_entry_external_id": f"TE-{workspace_id}-{user_id}-{day.isoformat()}",
                        "resource_external_id": user_id,
                        "project_external_id": workspace_id,
                        "work_date": day.isoformat(),
                        "hours": "7.5",
                        "role": resource.role,
                        "billable": True,
                        "description": "Delivery work",
                    }
                )
        day += datetime.timedelta(days=1)
    if odd_role and people:
        user_id = people[0][0]
        records.append(
            {
                "time_entry_external_id": f"TE-{workspace_id}-{user_id}-workshop",
                "resource_external_id": user_id,
                "project_external_id": workspace_id,
                "work_date": month.replace(day=3).isoformat(),
                "hours": "4",
                "role": odd_role,
                "billable": True,
                "description": "Architecture workshop",
            }
        )
    body = "\n".join(json.dumps(record) for record in records).encode()
    token = secrets.resolve({"env": "IC_SECRET_DEMO_KANTATA_WEBHOOK_TOKEN"})
    return _post(
        world,
        "/api/v1/inbound/kantata/bulk?record_type=time_entry",
        body,
        {"Authorization": f"Bearer {token}"},
        content_type="application/x-ndjson",
    )


def complete_milestone(world: World, project: Project, *, title: str, amount: Decimal) -> dict:
    """Kantata reports a completed milestone (a stories page, as its API returns it)."""
    kantata = ConnectedSystem.objects.get(slug="kantata")
    workspace_id = external_id_for(system=kantata, obj=project)
    story_id = f"{workspace_id}{int(time.time())}"
    now = timezone.now().isoformat()
    page = {
        "count": 1,
        "results": [{"key": "stories", "id": story_id}],
        "stories": {
            story_id: {
                "id": story_id,
                "title": title,
                "story_type": "milestone",
                "state": "completed",
                "archived": False,
                "due_date": timezone.localdate().isoformat(),
                "updated_at": now,
                "created_at": now,
                "fixed_fee": True,
                "billable": True,
                "budget_estimate_in_cents": int(amount * 100),
                "workspace_id": workspace_id,
            }
        },
        "workspaces": {workspace_id: {"id": workspace_id, "title": project.name, "currency": project.currency}},
        "meta": {"count": 1, "page_count": 1, "page_number": 1, "page_size": 20},
    }
    body = json.dumps(page).encode()
    token = secrets.resolve({"env": "IC_SECRET_DEMO_KANTATA_WEBHOOK_TOKEN"})
    return _post(world, "/api/v1/inbound/kantata/", body, {"Authorization": f"Bearer {token}"})


def sign_change_order(
    world: World,
    deal: Deal,
    *,
    version: int,
    effective_from: datetime.date,
    new_total: Decimal,
    new_end: datetime.date,
    rates: dict[str, Decimal],
) -> dict:
    """The customer countersigns a change order in PandaDoc; the firm's relay posts it (Standard Webhooks)."""
    document_id = f"doc_{uuid.uuid4().hex[:20]}"
    event = {
        "type": "document.completed",
        "timestamp": timezone.now().isoformat(),
        "data": {
            "id": document_id,
            "name": f"{deal.name} – change order {version}",
            "status": "document.completed",
            "metadata": {
                "document_kind": "change_order",
                "opportunity_id": world.opportunities[deal.name],
                "contract_version": str(version),
                "effective_from": effective_from.isoformat(),
                "new_end_date": new_end.isoformat(),
            },
            "grand_total": {"amount": str(new_total), "currency": deal.currency},
            "pricing_tables": [
                {
                    "name": "Rates",
                    "items": [
                        {"name": role, "price": str(rate), "currency": deal.currency, "qty": 1}
                        for role, rate in rates.items()
                    ],
                }
            ],
        },
    }
    body = json.dumps(event).encode()
    return _post(
        world,
        "/api/v1/inbound/pandadoc/",
        body,
        _standard_webhooks_headers(body, "IC_SECRET_DEMO_PANDADOC_WEBHOOK_SECRET"),
    )


def billing_system_for(project: Project) -> ConnectedSystem:
    """The billing platform that bills the project's legal entity, as the firm's routes say (Stripe for NW-UK)."""
    entity = project.legal_entity.code if project.legal_entity_id else ""
    return choose_system(workflow="", kind=SystemKind.BILLING, legal_entity=entity).system


def billing_month_end_run(project: Project) -> list:
    """The billing platform's own month-end run: invoice the customer's unbilled charges (it then tells us)."""
    billing_system = billing_system_for(project)
    customer = project.contract.invoice_recipient() if project.contract else project.customer
    customer_id = external_id_for(system=billing_system, obj=customer)
    if not customer_id:
        return []
    billing = adapter_for(billing_system, correlation_id="demo-billing-run")
    return billing.invoice_charges(customer_billing_id=customer_id, idempotency_key=f"demo-run-{customer_id}")


def customer_pays(invoice_billing_id: str, amount: Decimal, *, billing_system: ConnectedSystem | None = None) -> None:
    """The customer pays an invoice; the billing platform (Chargebee unless named) records it (and tells us)."""
    billing_system = billing_system or ConnectedSystem.objects.get(slug="chargebee")
    billing = adapter_for(billing_system, correlation_id="demo-payment")
    billing.record_payment(
        invoice_billing_id,
        amount=amount,
        method="bank_transfer",
        paid_on=timezone.localdate(),
        idempotency_key=f"demo-pay-{invoice_billing_id}",
    )


# --- waiting for the work -----------------------------------------------------------------------


PROGRESS_EVERY = 3.0  # seconds between progress lines while the month runs


def ledger_progress() -> str:
    """One line on where the ledger stands: '14 completed, 2 running, 1 waiting to retry, 1 exception'."""
    counts = dict(Transaction.objects.order_by().values_list("status").annotate(n=Count("pk")))
    shown = [
        (Transaction.Status.COMPLETED, "completed"),
        (Transaction.Status.PENDING, "queued"),
        (Transaction.Status.RUNNING, "running"),
        (Transaction.Status.WAITING_RETRY, "waiting to retry"),
        (Transaction.Status.EXCEPTION, "exception"),
    ]
    parts = [f"{counts[status]} {label}" for status, label in shown if counts.get(status)]
    return ", ".join(parts) or "nothing yet"


def drain(
    *, inline: bool, timeout: float = 120.0, quiet: float = 2.0, progress: Callable[[str], None] | None = None
) -> bool:
    """Wait until no transaction is pending/running/retrying, every webhook received has its transaction, and the
    sandbox has delivered its webhooks.

    inline=True runs due steps in this process (tests); otherwise the django-q2 cluster runs them and this
    only nudges the sweep, so retries whose time has come do not wait for the next scheduler tick.
    `progress` receives a line on the ledger every few seconds while it waits (and once at the end).
    """
    started = time.monotonic()
    deadline = started + timeout
    calm_since = None
    last_report, last_line = started, ""

    def report(final: bool = False) -> None:
        nonlocal last_report, last_line
        if progress is None:
            return
        line = ledger_progress()
        if final or line != last_line or time.monotonic() - last_report >= 10 * PROGRESS_EVERY:
            progress(f"  … {line} ({time.monotonic() - started:.0f} s)")
            last_line = line
        last_report = time.monotonic()

    while time.monotonic() < deadline:
        if time.monotonic() - last_report >= PROGRESS_EVERY:
            report()
        try:
            if inline:
                run_due_steps()
            else:
                sweep()
            sandbox_webhooks_wait(timeout=5)
            # Busy while a transaction is open, or a webhook answered 202 is not picked up yet (a loaded worker).
            busy = Transaction.objects.filter(status__in=Transaction.OPEN_STATUSES).exists() or bool(
                deliveries_waiting(limit=1)
            )
        except (OperationalError, InterfaceError):
            connection.close()  # the database went away (restart): like a worker, reconnect and carry on
            time.sleep(0.5)
            continue
        if busy:
            calm_since = None
        else:
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= quiet:
                report(final=True)
                return True
        time.sleep(0.25 if inline else 1.0)
    report(final=True)
    return False


def summary() -> dict:
    """Transactions by workflow and status, and the open exceptions in business words."""
    counts = {}
    for row in Transaction.objects.values("workflow", "status").annotate(n=Count("pk")).order_by("workflow"):
        counts.setdefault(row["workflow"], {})[row["status"]] = row["n"]
    exceptions = [
        {"id": txn.pk, "subject": txn.subject, "message": txn.error_message, "fix": txn.error_fix}
        for txn in Transaction.objects.filter(status=Transaction.Status.EXCEPTION).order_by("exception_at")
    ]
    return {"by_workflow": counts, "exceptions": exceptions}


# --- the month ------------------------------------------------------------------------------------


def project_for(world: World, deal: Deal) -> Project | None:

    opportunity = Opportunity.objects.filter(number=world.opportunities.get(deal.name, "")).first()
    if opportunity is None:
        return None
    return Project.objects.filter(contract__opportunity=opportunity).select_related("contract", "customer").first()


def run(world: World, *, inline: bool = False, faults: bool = True) -> dict:
    """The whole month. Returns the summary."""
    say = world.say
    sandbox_wire(world.base_url)
    resources_known_to_psa()
    if faults:
        say("Faults on: NetSuite answers 429 twice, then loses one answer after committing; Kantata is down once.")
        sandbox_faults_set(
            "erp",
            throttle_next=2,
            retry_after_seconds=2,
            drop_next=1,
            drop_seconds=SANDBOX_READ_TIMEOUT + 2,
            reason="Demo faults",
        )
        sandbox_faults_set("psa", fail_next=1, reason="Demo faults")

    say(f"Closing {len(DEALS)} deals in the CRM and announcing them as Salesforce events...")
    for deal in DEALS:
        crm_create_deal(world, deal)
        announce_closed_won(world, deal)
    drain(inline=inline, progress=say)

    globex, initech = project_for(world, DEALS[0]), project_for(world, DEALS[1])
    today = timezone.localdate()
    if globex is not None and globex.status == Project.Status.ACTIVE:
        say(f"Month-end: uploading approved time for {globex.code} ({globex.name})...")
        answer = upload_month_of_time(world, globex, month=today, odd_role="Solution Architect")
        say(f"  {answer['accepted']} entries accepted, {answer['rejected']} refused, {answer['duplicates']} repeats")
        drain(inline=inline, progress=say)
        say("The billing platform runs its month-end invoicing...")
        billing_month_end_run(globex)
        drain(inline=inline, progress=say)
    if globex is not None and globex.status == Project.Status.ACTIVE:
        effective = today.replace(day=1) + datetime.timedelta(days=32)
        effective = effective.replace(day=1)
        say(
            f"{globex.customer.name} countersigns change order 2 in PandaDoc (more scope, new rate from "
            f"{effective:%d %b})..."
        )
        sign_change_order(
            world,
            DEALS[0],
            version=2,
            effective_from=effective,
            new_total=Decimal("240000"),
            new_end=effective + datetime.timedelta(days=180),
            rates={"Senior Consultant": Decimal("265.00")},
        )
        drain(inline=inline, progress=say)
    if initech is not None and initech.status == Project.Status.ACTIVE:
        say(f"Milestone 'Assessment sign-off' completed on {initech.code}...")
        complete_milestone(world, initech, title="Assessment sign-off", amount=Decimal("20000"))
        drain(inline=inline, progress=say)
        milestone_paid(world, initech, inline=inline)
    uk = project_for(world, UK_DEAL)
    if uk is not None and uk.status == Project.Status.ACTIVE:
        billing = billing_system_for(uk)
        say(
            f"Milestone 'Diagnostic report accepted' completed on {uk.code} ({uk.legal_entity.code}: "
            f"billed through {billing.name})..."
        )
        complete_milestone(world, uk, title="Diagnostic report accepted", amount=Decimal("12000"))
        drain(inline=inline, progress=say)
        milestone_paid(world, uk, inline=inline)
    return summary()


def milestone_paid(world: World, project: Project, *, inline: bool) -> None:
    """The customer pays the project's latest invoice in full, in the billing platform that issued it."""
    invoice = project.invoices.order_by("-pk").first() or project.customer.invoices.order_by("-pk").first()
    billing = billing_system_for(project)
    invoice_billing_id = external_id_for(system=billing, obj=invoice) if invoice else None
    if invoice_billing_id:
        world.say(f"{project.customer.name} pays invoice {invoice.number} ({billing.name})...")
        customer_pays(invoice_billing_id, invoice.total, billing_system=billing)
        drain(inline=inline, progress=world.say)
