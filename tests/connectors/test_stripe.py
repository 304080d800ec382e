"""The Stripe connector against the Stripe sandbox over real HTTP (live server)."""

import datetime
from decimal import Decimal

import pytest
import requests

from apps.canonical.models import Customer
from apps.connectors.errors import ConcurrencyError, PermanentError, TargetRejected, TransientError
from apps.connectors.interfaces import Charge
from apps.connectors.registry import adapter_for
from apps.core.errors import BusinessError
from apps.sandbox.services import sandbox_calls, sandbox_faults_set, sandbox_reset
from apps.sync.workflows.existing import AmbiguousMatch, existing_customer

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


# --- match before create -------------------------------------------------------------------------------


def someone_creates_in_stripe(stripe, **fields):
    """A customer made in Stripe's dashboard (form-encoded, as Stripe takes it), not through the connector."""
    response = requests.post(
        stripe.system.base_url + "customers", data=fields, auth=("sk_test_sandbox0042", ""), timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["id"]


def test_stripe_search_answers_its_query_language(stripe):
    first = someone_creates_in_stripe(stripe, name="Globex Corporation", email="ap@globex.example")
    someone_creates_in_stripe(stripe, name="Initech", email="ap@initech.example")
    url = stripe.system.base_url + "customers/search"
    auth = ("sk_test_sandbox0042", "")
    found = requests.get(url, params={"query": "name:'globex corporation' OR email:'nobody@x.example'"}, auth=auth)
    assert found.status_code == 200
    assert found.json()["object"] == "search_result"
    assert [row["id"] for row in found.json()["data"]] == [first]
    by_domain = requests.get(url, params={"query": "email~'@globex.example'"}, auth=auth).json()["data"]
    assert [row["id"] for row in by_domain] == [first]
    mixed = requests.get(url, params={"query": "name:'a' AND email:'b' OR name:'c'"}, auth=auth)
    assert mixed.status_code == 400
    assert mixed.json()["error"]["param"] == "query"


def test_a_customer_already_in_stripe_is_found_by_the_firms_rules_and_linked(stripe):
    existing = someone_creates_in_stripe(stripe, name="Globex Corporation", email="AP@globex.example")
    someone_creates_in_stripe(stripe, name="Globex Holdings", email="treasury@globex.example")
    customer = factories.customer(name="Globex Corporation", billing_email="ap@globex.example")
    stripe.system.match_customers_by = ["external_id", "email", "name"]

    match = existing_customer(stripe.system, stripe, customer)

    assert match.rule == "email" and match.unique.id == existing
    paths = [(call.path, call.query) for call in sandbox_calls("stripe", method="GET")]
    assert any(path.endswith("/customers/search") for path, _ in paths)


def test_our_own_customer_is_found_by_the_number_in_its_metadata(stripe):
    ours = customer_in(stripe)
    customer = Customer.objects.get(name="Globex Corporation")
    stripe.system.match_customers_by = ["external_id"]

    match = existing_customer(stripe.system, stripe, customer)

    assert match.unique.id == ours.id and match.unique.external_id == customer.number


def test_two_stripe_customers_with_the_name_are_an_exception_listing_both(stripe):
    first = someone_creates_in_stripe(stripe, name="Globex Corporation", email="ap@globex.example")
    second = someone_creates_in_stripe(stripe, name="Globex Corporation", email="finance@globex.example")
    customer = factories.customer(name="Globex Corporation")
    stripe.system.match_customers_by = ["name"]

    with pytest.raises(AmbiguousMatch) as caught:
        existing_customer(stripe.system, stripe, customer)

    assert "may already exist in Stripe: 2 customers there match by exact name" in caught.value.message
    assert f"{first} “Globex Corporation” (ap@globex.example)" in caught.value.message
    assert f"{second} “Globex Corporation” (finance@globex.example)" in caught.value.message


def test_no_stripe_customer_matching_means_a_new_one(stripe):
    someone_creates_in_stripe(stripe, name="Initech", email="ap@initech.example")
    customer = factories.customer(name="Globex Corporation", billing_email="ap@globex.example")
    stripe.system.match_customers_by = ["external_id", "tax_id", "email", "email_domain", "name"]

    assert existing_customer(stripe.system, stripe, customer) is None
