"""The Stripe connector against the Stripe sandbox over real HTTP (live server)."""

import datetime
from decimal import Decimal

import pytest

from apps.connectors.errors import ConcurrencyError, PermanentError, TargetRejected, TransientError
from apps.connectors.interfaces import Charge
from apps.connectors.registry import adapter_for
from apps.core.errors import BusinessError
from apps.sandbox.services import sandbox_calls, sandbox_faults_set, sandbox_reset

from .. import factories

pytestmark = pytest.mark.django_db(transaction=True)
JAN_1 = datetime.date(2026, 1, 1)


@pytest.fixture
def stripe(live_server, monkeypatch):
    monkeypatch.setenv("IC_SECRET_STRIPE_KEY", "sk_test_sandbox0042")
    sandbox_reset("stripe")
    system = factories.system(
        "stripe",
        "billing",
        name="Stripe",
        vendor="stripe",
        base_url=live_server.url + "/sandbox/stripe/v1/",
        outbound_auth="bearer",
        outbound_credentials={"env": "IC_SECRET_STRIPE_KEY"},
        read_timeout_seconds=Decimal("5"),
        rate_limit_per_minute=None,
    )
    return adapter_for(system, correlation_id="corr-stripe")


def customer_in(stripe):
    customer = factories.customer(name="Globex Corporation", billing_email="ap@globex.example")
    return stripe.upsert_customer(customer=customer, erp_customer_id="C10010", idempotency_key="cust-1")


def charge(reference, amount):
    return Charge(reference, f"Consulting {reference}", Decimal(amount), "USD", JAN_1, datetime.date(2026, 1, 31))


def test_charges_become_one_finalized_invoice_and_a_payment_settles_it(stripe):
    customer = customer_in(stripe)
    items = stripe.post_charges(
        customer_billing_id=customer.id,
        currency="USD",
        charges=[charge("BE-1", "1500.00"), charge("BE-2", "250.25")],
        idempotency_key="ch-1",
    )
    assert [item.data["amount"] for item in items] == [150000, 25025]
    [invoice] = stripe.invoice_charges(customer_billing_id=customer.id, idempotency_key="inv-1")
    assert invoice.data["status"] == "open" and invoice.data["total"] == 175025
    paid = stripe.record_payment(
        invoice.id, amount=Decimal("1750.25"), method="wire", paid_on=JAN_1, idempotency_key="pay-1"
    )
    assert paid.data["status"] == "paid"
    assert [row["id"] for row in stripe.list_invoices(page_size=1)] == [invoice.id]


def test_a_repeated_call_is_answered_from_stripes_idempotency_store(stripe):
    first = customer_in(stripe)
    again = customer_in(stripe)
    assert again.id == first.id and first.created and not again.created
    assert sandbox_calls("stripe", method="POST", replayed=True).count() == 1


def test_a_partial_payment_is_refused_in_business_words(stripe):
    customer = customer_in(stripe)
    stripe.post_charges(
        customer_billing_id=customer.id, currency="USD", charges=[charge("BE-1", "100.00")], idempotency_key="ch-1"
    )
    [invoice] = stripe.invoice_charges(customer_billing_id=customer.id, idempotency_key="inv-1")
    with pytest.raises(BusinessError) as caught:
        stripe.record_payment(invoice.id, amount=Decimal("40.00"), method="wire", paid_on=JAN_1, idempotency_key="p")
    assert "whole remaining 100.00 USD" in caught.value.message


@pytest.mark.parametrize(
    ("rejection", "error_class"),
    [
        ("validation", TargetRejected),
        ("duplicate", TargetRejected),
        ("concurrency", ConcurrencyError),
        ("auth", PermanentError),
        ("not_found", PermanentError),
    ],
)
def test_each_documented_stripe_error_becomes_its_error_class(stripe, rejection, error_class):
    sandbox_faults_set("stripe", reject_next=1, reject_with=rejection)
    with pytest.raises(error_class) as caught:
        customer_in(stripe)
    assert "Stripe" in caught.value.message


def test_a_429_and_a_5xx_are_transient(stripe):
    sandbox_faults_set("stripe", throttle_next=1, retry_after_seconds=3)
    with pytest.raises(TransientError) as caught:
        customer_in(stripe)
    assert caught.value.retry_at is not None
    sandbox_faults_set("stripe", fail_next=1, throttled_until=None)
    with pytest.raises(TransientError):
        customer_in(stripe)


def test_a_reused_idempotency_key_is_a_permanent_error_for_the_integration_team(stripe):
    customer = customer_in(stripe)
    with pytest.raises(PermanentError) as caught:
        stripe.post_charges(customer_billing_id=customer.id, currency="USD", charges=[], idempotency_key="x")
        stripe.invoice_charges(customer_billing_id=customer.id, idempotency_key="cust-1")
    assert "idempotency key was already used for a different request" in caught.value.message
