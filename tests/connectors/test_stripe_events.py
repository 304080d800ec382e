"""Stripe invoice events through the inbound endpoint: a payment settles the invoice Stripe finalized before."""

import datetime
import json
from decimal import Decimal

import pytest

from apps.canonical.models import Invoice, Payment
from apps.connectors.interfaces import Charge
from apps.connectors.registry import adapter_for
from apps.core.context import system_context
from apps.inbound.models import InboundEvent
from apps.mapping.services import builtin_profiles_install, cross_reference_record
from apps.sandbox.services import sandbox_reset, sandbox_system_configure, sandbox_webhooks, sandbox_webhooks_wait
from apps.sync.engine import run_due_steps
from apps.systems.models import SigningSecret

from .. import factories
from ..inbound.conftest import STRIPE_SECRET, sample, stripe_headers

pytestmark = pytest.mark.django_db(transaction=True)
JAN_1 = datetime.date(2026, 1, 1)


@pytest.fixture
def stripe(monkeypatch):
    monkeypatch.setenv("IC_SECRET_TEST_STRIPE_SECRET", STRIPE_SECRET)
    with system_context("Install built-in source profiles"):
        builtin_profiles_install()  # a transactional test may run on a flushed database
    system = factories.system("stripe", "billing", name="Stripe", vendor="stripe", inbound_scheme="stripe")
    SigningSecret.objects.create(system=system, label="primary", reference={"env": "IC_SECRET_TEST_STRIPE_SECRET"})
    customer = factories.customer(name="Globex Corporation", currency="USD")
    with system_context("Globex is a Stripe customer"):
        cross_reference_record(system=system, obj=customer, external_id="cus_QRx7N2bL0aZk1m")
    return system


def deliver(client, name: str) -> InboundEvent:
    body = sample("stripe", name)
    response = client.post(
        "/api/v1/inbound/stripe/", data=body, content_type="application/json", **stripe_headers(body)
    )
    assert response.status_code == 202, response.content
    run_due_steps()
    return InboundEvent.objects.get(vendor_event_id=json.loads(body)["id"])


def test_a_stripe_payment_settles_the_invoice_stripe_finalized(client, stripe):
    finalized = deliver(client, "invoice.finalized.json")
    assert finalized.status == InboundEvent.Status.MAPPED, finalized.error
    invoice = Invoice.objects.get(number="ACME-0042")
    assert invoice.total == Decimal("12500.00") and invoice.currency == "USD"

    paid = deliver(client, "invoice.paid.json")
    assert paid.status == InboundEvent.Status.MAPPED, paid.error
    invoice.refresh_from_db()
    assert invoice.amount_paid == Decimal("12500.00")
    payment = Payment.objects.get()
    assert payment.invoice == invoice


def test_payment_succeeded_and_paid_for_one_invoice_record_one_payment(client, stripe):
    deliver(client, "invoice.finalized.json")
    deliver(client, "invoice.paid.json")
    deliver(client, "invoice.payment_succeeded.json")
    assert Payment.objects.count() == 1
    assert Invoice.objects.get(number="ACME-0042").amount_paid == Decimal("12500.00")


def test_stripe_invoices_and_payments_flow_both_ways(live_server, stripe, settings):
    """Charges go to Stripe; Stripe's invoice.finalized and invoice.paid come back and settle the invoice."""
    stripe.base_url = live_server.url + "/sandbox/stripe/v1/"
    stripe.outbound_auth = "bearer"
    stripe.outbound_credentials = {"env": "IC_SECRET_TEST_STRIPE_SECRET"}  # any key: the sandbox checks none by default
    stripe.rate_limit_per_minute = None
    stripe.save()
    sandbox_reset("stripe")
    sandbox_system_configure(
        "stripe",
        webhook_url=live_server.url + "/api/v1/inbound/stripe/",
        webhook_credentials={"env": "IC_SECRET_TEST_STRIPE_SECRET"},
    )
    billing = adapter_for(stripe, correlation_id="corr-stripe-loop")
    customer = factories.customer(name="Initech Ltd", billing_email="ap@initech.example", currency="USD")
    remote = billing.upsert_customer(customer=customer, erp_customer_id=None, idempotency_key="cust")
    with system_context("Initech is billed through Stripe"):
        cross_reference_record(system=stripe, obj=customer, external_id=remote.id)
    charge = Charge("BE-77", "Consulting January", Decimal("2400.00"), "USD", JAN_1, datetime.date(2026, 1, 31))
    billing.post_charges(customer_billing_id=remote.id, currency="USD", charges=[charge], idempotency_key="ch")
    [stripe_invoice] = billing.invoice_charges(customer_billing_id=remote.id, idempotency_key="inv")

    assert sandbox_webhooks_wait(15)
    run_due_steps()
    invoice = Invoice.objects.get(customer=customer)
    assert invoice.number == stripe_invoice.data["number"] and invoice.total == Decimal("2400.00")

    billing.record_payment(
        stripe_invoice.id, amount=Decimal("2400.00"), method="wire", paid_on=JAN_1, idempotency_key="pay"
    )
    assert sandbox_webhooks_wait(15)
    run_due_steps()
    invoice.refresh_from_db()
    assert invoice.amount_paid == Decimal("2400.00")
    assert [hook.event_type for hook in sandbox_webhooks("stripe")] == ["invoice.finalized", "invoice.paid"]
