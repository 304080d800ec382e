"""Month end for reconciliation: the month's faults, injected through the sandboxes, and the run that finds them.

After the scenario's month: late-approved Globex time reaches Chargebee as charges after its invoicing run,
so it stays unbilled; someone cancels Initech's billing schedule in Chargebee; and Initech's customer record
is switched off in NetSuite just before a one-off fee is invoiced in Chargebee, so NetSuite refuses to post
it. Globex's invoice also carries Chargebee's US sales tax while NetSuite's tax code for the customer is
exempt. The reconciliation at the end finds each of them with both systems' amounts.
"""

import datetime
import json
from decimal import Decimal

import requests
from django.utils import timezone

from apps.connectors.adapters.chargebee import schedule_id_for, to_form
from apps.connectors.interfaces import Charge
from apps.connectors.registry import adapter_for
from apps.core.context import system_context
from apps.mapping.services import external_id_for
from apps.reconciliation.models import ReconciliationRun
from apps.reconciliation.services import reconciliation_run_execute, reconciliation_run_request
from apps.systems import secrets
from apps.systems.models import ConnectedSystem

from .scenario import DEALS, World, drain, project_for, resources_known_to_psa

ONE_OFF_FEE = Decimal("2500.00")


def _billing():
    return adapter_for(ConnectedSystem.objects.get(slug="chargebee"), correlation_id="demo-month-end")


def _erp():
    return adapter_for(ConnectedSystem.objects.get(slug="netsuite"), correlation_id="demo-month-end")


def cancel_billing_schedule(project) -> None:
    """Someone cancels the project's billing schedule in the billing platform (the console is not told)."""
    schedule = project.billing_schedules.order_by("-revision").first()
    if schedule is None:
        return
    path = f"billing_schedules/{schedule_id_for(schedule)}"
    _billing().http.request("POST", path, data=to_form({"status": "cancelled"}), action="cancel a billing schedule")


def set_erp_customer_active(customer, active: bool) -> None:
    """Switch a customer record on or off in the ERP."""
    erp_id = external_id_for(system=ConnectedSystem.objects.get(slug="netsuite"), obj=customer)
    if erp_id:
        _erp().http.request("PATCH", f"customer/{erp_id}", json={"isInactive": not active}, action="toggle customer")


def invoice_one_off_fee(project, amount: Decimal) -> list:
    """The billing team adds a one-off fee for the project's customer and invoices it at once."""
    chargebee = ConnectedSystem.objects.get(slug="chargebee")
    customer = project.contract.invoice_recipient() if project.contract else project.customer
    customer_id = external_id_for(system=chargebee, obj=customer)
    if not customer_id:
        return []
    today = timezone.localdate()
    billing = _billing()
    charge = Charge(
        reference=f"FEE-{project.code}-{today:%Y%m}",
        description=f"{project.name}: steering committee workshop (one-off fee)",
        amount=amount,
        currency=project.currency,
        date_from=today,
        date_to=today,
    )
    key = f"demo-fee-{project.code}-{today:%Y%m}"
    billing.post_charges(
        customer_billing_id=customer_id, currency=project.currency, charges=[charge], idempotency_key=key
    )
    return billing.invoice_charges(customer_billing_id=customer_id, idempotency_key=f"{key}-invoice")


def upload_late_time(world: World, project, *, day: datetime.date, hours: str = "6") -> dict:
    """Time approved after the billing run: Kantata sends it in a second month-end export."""
    kantata = ConnectedSystem.objects.get(slug="kantata")
    workspace_id = external_id_for(system=kantata, obj=project)
    people = [r for r in resources_known_to_psa().items() if r[1].legal_entity_id == project.legal_entity_id][:2]
    lines = [
        json.dumps(
            {
                "time_entry_external_id": f"TE-{workspace_id}-{user_id}-{day.isoformat()}-late",
                "resource_external_id": user_id,
                "project_external_id": workspace_id,
                "work_date": day.isoformat(),
                "hours": hours,
                "role": resource.role,
                "billable": True,
                "description": "Cut-over weekend support (approved late)",
            }
        )
        for user_id, resource in people
    ]
    token = secrets.resolve({"env": "IC_SECRET_DEMO_KANTATA_WEBHOOK_TOKEN"})
    response = requests.post(
        world.url("/api/v1/inbound/kantata/bulk?record_type=time_entry"),
        data="\n".join(lines).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def inject_reconciliation_faults(world: World, *, inline: bool = False) -> None:
    """The month's faults that only a reconciliation notices, driven through the sandboxes."""
    say = world.say
    globex, initech = project_for(world, DEALS[0]), project_for(world, DEALS[1])
    if globex is not None and globex.status == globex.Status.ACTIVE:
        say(f"Late-approved time for {globex.code} reaches Chargebee after its invoicing run...")
        upload_late_time(world, globex, day=timezone.localdate().replace(day=1))
        drain(inline=inline)
    if initech is not None and initech.status == initech.Status.ACTIVE:
        say(f"Someone cancels the billing schedule of {initech.code} in Chargebee...")
        cancel_billing_schedule(initech)
        say(f"{initech.customer.name} is switched off in NetSuite just before Chargebee invoices a one-off fee...")
        set_erp_customer_active(initech.customer, active=False)
        invoice_one_off_fee(initech, ONE_OFF_FEE)
        drain(inline=inline)


def reconcile_month(world: World, period: datetime.date | None = None) -> ReconciliationRun:
    """Reconcile the month across billing, ERP and the console, and say what it found."""
    period = f"{(period or timezone.localdate()):%Y-%m}"
    with system_context(f"Demo: month-end reconciliation of {period}"):
        run = reconciliation_run_request(period=period, trigger=ReconciliationRun.Trigger.DEMO, actor=None)
    run = reconciliation_run_execute(run_id=run.pk)
    summary = run.summary
    world.say(
        f"Reconciliation of {period}: {summary.get('open', 0)} open discrepancies, "
        f"{summary.get('value_at_risk')} {summary.get('reporting_currency')} at risk "
        f"(GET /api/v1/reconciliation/discrepancies/)."
    )
    return run
