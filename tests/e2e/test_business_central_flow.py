"""End to end over real HTTP: invoices and payments between Stripe, Business Central and HubSpot, both ways.

A firm bills through Stripe, keeps receivables in Business Central and its accounts in HubSpot, all three
played by the sandbox on pytest's live server. Stripe's `invoice.finalized` webhook brings an invoice in;
the console posts it to Business Central as a sales invoice and reports the balance to the HubSpot company.
A payment entered in Business Central comes back through its webhook subscription (`customerPayments`,
clientState checked), settles the canonical invoice and clears the balance in HubSpot. A payment made in
Stripe goes the other way: applied to the sales invoice in Business Central, whose notification of it
changes nothing.
"""

import datetime
import time
from decimal import Decimal

import pytest
import requests

from apps.canonical.models import Invoice, Payment
from apps.connectors.interfaces import Charge
from apps.connectors.registry import adapter_for
from apps.core.context import system_context
from apps.demo.scenario import drain
from apps.inbound.models import InboundEvent
from apps.mapping.models import ValueMap, ValueMapEntry
from apps.mapping.services import builtin_profiles_install, cross_reference_record, external_id_for
from apps.sandbox.models import SandboxRecord
from apps.sandbox.seeds import BC_COMPANY_ID
from apps.sandbox.services import sandbox_reset, sandbox_system_configure
from apps.sync.models import Transaction
from apps.systems.models import SigningSecret

from .. import factories

pytestmark = pytest.mark.django_db(transaction=True)

STRIPE_KEY = "whsec_stripe_e2e_secret"  # the sandbox takes any API key; the same value signs its webhooks
BC_TOKEN = "bc-sandbox-token-0042"
BC_CLIENT_STATE = "bc-client-state-0042"
HUBSPOT_TOKEN = "pat-na1-sandbox-0042"
JAN_1 = datetime.date(2026, 1, 1)


def hubspot_company(base_url: str, method: str, path: str, body=None) -> dict:
    response = requests.request(
        method, base_url + path, json=body, headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"}, timeout=10
    )
    assert response.status_code < 300, response.text
    return response.json()


def drain_until(condition, timeout: float = 90) -> None:
    """Run the chain until `condition` holds: a webhook's delivery may land after a quiet moment on a busy machine."""
    deadline = time.monotonic() + timeout
    while True:
        assert drain(inline=True, timeout=60)
        if condition() or time.monotonic() > deadline:
            return


@pytest.fixture
def firm(live_server, monkeypatch, settings):
    """Stripe (billing), Business Central (ERP) and HubSpot (CRM), with Initech known in all three."""
    settings.SYNC_BACKOFF_BASE_SECONDS = 0.3
    settings.SYNC_BACKOFF_CAP_SECONDS = 2
    for name, value in (
        ("IC_SECRET_E2E_STRIPE", STRIPE_KEY),
        ("IC_SECRET_E2E_BC_TOKEN", BC_TOKEN),
        ("IC_SECRET_E2E_BC_CLIENT_STATE", BC_CLIENT_STATE),
        ("IC_SECRET_E2E_HUBSPOT", HUBSPOT_TOKEN),
    ):
        monkeypatch.setenv(name, value)
    with system_context("test: a firm on Stripe, Business Central and HubSpot"):
        builtin_profiles_install()  # a transactional test may run on a flushed database
        for kind in ("stripe", "business-central", "hubspot"):
            sandbox_reset(kind)
        common = {"outbound_auth": "bearer", "read_timeout_seconds": Decimal("5"), "rate_limit_per_minute": None}
        stripe = factories.system(
            "stripe",
            "billing",
            name="Stripe",
            vendor="stripe",
            base_url=f"{live_server.url}/sandbox/stripe/v1/",
            outbound_credentials={"env": "IC_SECRET_E2E_STRIPE"},
            inbound_scheme="stripe",
            **common,
        )
        SigningSecret.objects.create(system=stripe, label="primary", reference={"env": "IC_SECRET_E2E_STRIPE"})
        sandbox_system_configure(
            "stripe",
            webhook_url=f"{live_server.url}/api/v1/inbound/stripe/",
            webhook_credentials={"env": "IC_SECRET_E2E_STRIPE"},
        )
        bc = factories.system(
            "business-central",
            "erp",
            name="Business Central",
            vendor="business-central",
            base_url=f"{live_server.url}/sandbox/business-central/api/v2.0/companies({BC_COMPANY_ID})/",
            outbound_credentials={"env": "IC_SECRET_E2E_BC_TOKEN"},
            inbound_scheme="client-state",
            **common,
        )
        SigningSecret.objects.create(system=bc, label="primary", reference={"env": "IC_SECRET_E2E_BC_CLIENT_STATE"})
        hubspot = factories.system(
            "hubspot",
            "crm",
            name="HubSpot",
            vendor="hubspot",
            base_url=f"{live_server.url}/sandbox/hubspot/crm/v3/",
            outbound_credentials={"env": "IC_SECRET_E2E_HUBSPOT"},
            **common,
        )
        for name, source, target in (
            ("service-item-erp-item", "professional-services", "SVC-CONSULTING"),
            ("tax-region-tax-code", "US-NY", "NONTAXABLE"),
        ):
            value_map = ValueMap.objects.create(name=name, source_label="ours", target_label="Business Central")
            ValueMapEntry.objects.create(
                value_map=value_map, source_value=source, target_value=target, effective_from=JAN_1
            )

        customer = factories.customer(
            name="Initech Inc.", billing_email="ap@initech.example", currency="USD", tax_region="US-NY"
        )
        company = hubspot_company(
            hubspot.base_url, "POST", "objects/companies", {"properties": {"name": "Initech Inc."}}
        )
        in_bc = adapter_for(bc, correlation_id="e2e-setup").upsert_customer(
            customer=customer, subsidiary_id="", currency_id="", idempotency_key="setup-bc"
        )
        in_stripe = adapter_for(stripe, correlation_id="e2e-setup").upsert_customer(
            customer=customer, erp_customer_id=in_bc.id, idempotency_key="setup-stripe"
        )
        for system, external_id in ((hubspot, company["id"]), (bc, in_bc.id), (stripe, in_stripe.id)):
            cross_reference_record(system=system, obj=customer, external_id=external_id)
    # Business Central tells the console about payments through a subscription (after the validation handshake).
    adapter_for(bc, correlation_id="e2e-setup").subscribe(
        notification_url=f"{live_server.url}/api/v1/inbound/business-central/",
        resource=f"/api/v2.0/companies({BC_COMPANY_ID})/customerPayments",
        client_state=BC_CLIENT_STATE,
    )
    return {"stripe": stripe, "bc": bc, "hubspot": hubspot, "customer": customer, "company": company}


def test_a_stripe_invoice_is_posted_to_business_central_and_a_bc_payment_settles_it_and_reaches_hubspot(firm):
    stripe, bc, hubspot, customer = firm["stripe"], firm["bc"], firm["hubspot"], firm["customer"]
    billing = adapter_for(stripe, correlation_id="e2e-billing-run")
    stripe_customer = external_id_for(system=stripe, obj=customer)
    charge = Charge("BE-77", "Consulting January", Decimal("2400.00"), "USD", JAN_1, datetime.date(2026, 1, 31))
    billing.post_charges(customer_billing_id=stripe_customer, currency="USD", charges=[charge], idempotency_key="ch")
    [stripe_invoice] = billing.invoice_charges(customer_billing_id=stripe_customer, idempotency_key="inv")

    assert drain(inline=True, timeout=60)

    # Stripe's invoice.finalized → the canonical invoice → a posted sales invoice in Business Central.
    invoice = Invoice.objects.get(customer=customer)
    incoming = Transaction.objects.get(workflow="invoice_to_erp")
    assert incoming.status == "completed", (incoming.error_message, incoming.error_technical)
    assert invoice.number == stripe_invoice.data["number"] and invoice.status == Invoice.Status.POSTED
    bc_invoice_id = external_id_for(system=bc, obj=invoice)
    sales_invoice = SandboxRecord.objects.get(kind="business-central", object_type="salesInvoice")
    assert sales_invoice.internal_id == bc_invoice_id
    assert sales_invoice.data["externalDocumentNumber"] == invoice.number
    assert sales_invoice.data["status"] == "Open" and sales_invoice.data["totalAmountIncludingTax"] == 2400
    # … and the open balance on the HubSpot company.
    company_path = f"objects/companies/{firm['company']['id']}?properties=ar_balance,credit_status"
    assert Decimal(hubspot_company(hubspot.base_url, "GET", company_path)["properties"]["ar_balance"]) == Decimal(
        "2400.00"
    )

    # Accounts receivable enters the customer's wire in Business Central; BC notifies the subscription.
    response = requests.post(
        bc.base_url + "customerPayments",
        json={
            "customerId": external_id_for(system=bc, obj=customer),
            "postingDate": "2026-02-10",
            "externalDocumentNumber": "WIRE-55120",
            "amount": 2400,
            "appliesToInvoiceId": bc_invoice_id,
            "description": "Wire transfer",
        },
        headers={"Authorization": f"Bearer {BC_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text

    drain_until(lambda: Payment.objects.filter(customer=customer).exists())

    settled = Transaction.objects.get(workflow="payment_to_crm")
    assert settled.status == "completed", (settled.error_message, settled.error_technical)
    event = settled.inbound_event or settled.parent.inbound_event
    assert (event.system, event.event_type) == (bc, "customerPayments.created")
    assert "/customerPayments(" in event.payload["resource"]
    payment = Payment.objects.get(customer=customer)
    assert payment.reference == "WIRE-55120" and payment.amount == Decimal("2400.00") and payment.invoice == invoice
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.amount_paid == Decimal("2400.00")
    steps = {step.name: step for step in settled.steps.all()}
    assert steps["apply_erp"].status == "skipped"  # it came from Business Central: nothing to apply there
    assert SandboxRecord.objects.filter(kind="business-central", object_type="customerPayment").count() == 1
    properties = hubspot_company(hubspot.base_url, "GET", company_path)["properties"]
    assert Decimal(properties["ar_balance"]) == 0 and properties["credit_status"] == "Current"


def test_a_stripe_payment_is_applied_in_business_central_once_and_reaches_hubspot(firm):
    stripe, bc, hubspot, customer = firm["stripe"], firm["bc"], firm["hubspot"], firm["customer"]
    billing = adapter_for(stripe, correlation_id="e2e-billing-run")
    stripe_customer = external_id_for(system=stripe, obj=customer)
    charge = Charge("BE-78", "Consulting February", Decimal("1500.00"), "USD", JAN_1, datetime.date(2026, 1, 31))
    billing.post_charges(customer_billing_id=stripe_customer, currency="USD", charges=[charge], idempotency_key="ch")
    [stripe_invoice] = billing.invoice_charges(customer_billing_id=stripe_customer, idempotency_key="inv")
    assert drain(inline=True, timeout=60)
    invoice = Invoice.objects.get(customer=customer)
    bc_invoice_id = external_id_for(system=bc, obj=invoice)
    assert bc_invoice_id

    # The customer pays in Stripe: invoice.paid comes in, the payment is applied in Business Central, and
    # Business Central's notification of that payment comes back to the console.
    billing.record_payment(
        stripe_invoice.id, amount=Decimal("1500.00"), method="card", paid_on=JAN_1, idempotency_key="pay"
    )
    drain_until(lambda: Transaction.objects.filter(workflow="payment_to_crm", status="completed").count() == 2)

    runs = Transaction.objects.filter(workflow="payment_to_crm").order_by("id")
    seen = list(InboundEvent.objects.values_list("system__slug", "event_type", "status", "error"))
    assert [(txn.status, txn.inbound_event.system.slug) for txn in runs] == [
        ("completed", "stripe"),
        ("completed", "business-central"),
    ], seen
    payment = Payment.objects.get()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.amount_paid == Decimal("1500.00")
    bc_payment = SandboxRecord.objects.get(kind="business-central", object_type="customerPayment")
    assert bc_payment.data["appliesToInvoiceId"] == bc_invoice_id
    assert bc_payment.data["externalDocumentNumber"] == payment.reference
    assert external_id_for(system=bc, obj=payment) == bc_payment.internal_id
    sales_invoice = SandboxRecord.objects.get(kind="business-central", object_type="salesInvoice")
    assert sales_invoice.data["status"] == "Paid"
    company_path = f"objects/companies/{firm['company']['id']}?properties=ar_balance,credit_status"
    properties = hubspot_company(hubspot.base_url, "GET", company_path)["properties"]
    assert Decimal(properties["ar_balance"]) == 0 and properties["credit_status"] == "Current"
