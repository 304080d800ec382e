"""The demo month exercises routing: the UK entity bills through Stripe, the others through Chargebee."""

from decimal import Decimal

import pytest

from apps.canonical.models import BillingSchedule, Invoice, Payment
from apps.demo.month_end import reconcile_month
from apps.demo.scenario import DEALS, UK_DEAL, project_for, run
from apps.mapping.services import external_id_for
from apps.reconciliation.models import Discrepancy
from apps.sandbox.models import SandboxRecord
from apps.sync.models import Transaction
from apps.systems.models import ConnectedSystem, Route

from ..e2e.conftest import world  # noqa: F401  (the demo firm wired to the sandboxes)

pytestmark = pytest.mark.django_db(transaction=True)


def stripe_records(object_type):
    return SandboxRecord.objects.filter(kind="stripe", object_type=object_type)


def test_the_uk_deal_is_billed_paid_and_reconciled_through_stripe_and_the_us_one_through_chargebee(world):  # noqa: F811
    summary = run(world, inline=True, faults=False)
    stripe, chargebee = ConnectedSystem.objects.get(slug="stripe"), ConnectedSystem.objects.get(slug="chargebee")
    netsuite = ConnectedSystem.objects.get(slug="netsuite")
    uk, globex = project_for(world, UK_DEAL), project_for(world, DEALS[0])
    assert uk.legal_entity.code == "NW-UK" and uk.status == "active"

    # Deal to project: the UK customer and schedule are in Stripe, and only there; Globex's only in Chargebee.
    [uk_deal] = Transaction.objects.filter(workflow="opportunity_to_project", subject__contains=uk.customer.name)
    assert uk_deal.status == "completed", (uk_deal.error_message, uk_deal.error_technical)
    customer_id = external_id_for(system=stripe, obj=uk.customer)
    assert stripe_records("customer").get(internal_id=customer_id).data["name"] == "Tailspin Toys Ireland DAC"
    assert external_id_for(system=chargebee, obj=uk.customer) is None
    assert stripe_records("product").get(internal_id=f"BS-{uk.code}").data["metadata"]["currency"] == "GBP"
    assert BillingSchedule.objects.get(project=uk).status == "active"
    assert external_id_for(system=chargebee, obj=globex.customer) and not external_id_for(
        system=stripe, obj=globex.customer
    )
    assert not SandboxRecord.objects.filter(kind="billing", data__company="Tailspin Toys Ireland DAC").exists()

    # The trace says which route chose Stripe, on every billing step; the ERP steps go to the one NetSuite.
    route = Route.objects.get(target_kind="billing", legal_entity="NW-UK")
    billing_steps = list(uk_deal.steps.filter(target_system__kind="billing"))
    assert billing_steps and {step.target_system for step in billing_steps} == {stripe}
    for step in billing_steps:
        assert step.output["route"]["route_id"] == route.pk
        assert "legal entity NW-UK → Stripe" in step.output["route"]["rule"]
    assert {step.target_system for step in uk_deal.steps.filter(target_system__kind="erp")} == {netsuite}
    globex_deal = Transaction.objects.get(workflow="opportunity_to_project", subject__contains=globex.customer.name)
    assert {s.target_system for s in globex_deal.steps.filter(target_system__kind="billing")} == {chargebee}

    # Milestone to cash: invoiced in Stripe (GBP), told back by Stripe's webhooks, posted to NetSuite, paid.
    milestone = Transaction.objects.get(workflow="milestone_to_bill", subject__contains="Diagnostic report")
    assert milestone.status == "completed", milestone.error_message
    assert {step.target_system for step in milestone.steps.exclude(target_system=None)} == {stripe}
    [stripe_invoice] = stripe_records("invoice").filter(data__customer=customer_id)
    assert stripe_invoice.data["status"] == "paid" and stripe_invoice.data["currency"] == "gbp"
    invoice = Invoice.objects.get(customer=uk.customer)
    assert external_id_for(system=stripe, obj=invoice) == stripe_invoice.internal_id
    assert (invoice.number, invoice.currency, invoice.total) == (stripe_invoice.data["number"], "GBP", Decimal("12000"))
    assert invoice.status == "paid" and Payment.objects.get(invoice=invoice).amount == invoice.total
    assert external_id_for(system=netsuite, obj=invoice)
    assert {wf for wf in summary["by_workflow"]} >= {"invoice_to_erp", "payment_to_crm"}
    uk_chain = Transaction.objects.filter(
        workflow__in=["invoice_to_erp", "payment_to_crm"], subject__contains=invoice.number
    )
    assert uk_chain.exists() and set(uk_chain.values_list("status", flat=True)) == {"completed"}

    # The month reconciles Stripe too: nothing is "missing" for the UK entity, and both platforms were pulled.
    reconciliation = reconcile_month(world)
    assert reconciliation.status == "succeeded", (reconciliation.error, reconciliation.not_compared)
    assert {"chargebee", "stripe", "netsuite"} <= set(reconciliation.pulled)
    assert reconciliation.pulled["stripe"]["invoices"] == 1 and reconciliation.pulled["stripe"]["payments"] == 1
    uk_open = Discrepancy.objects.filter(status="open", legal_entity__code="NW-UK")
    assert list(uk_open.values_list("check_type", "business_key")) == []
