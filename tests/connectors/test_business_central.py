"""The Business Central connector against the BC sandbox over real HTTP (live server)."""

import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
import requests

from apps.canonical.models import Invoice
from apps.connectors.errors import ConcurrencyError, PermanentError, TargetRejected
from apps.connectors.interfaces import InvoiceLineSpec
from apps.connectors.registry import adapter_for
from apps.core.context import system_context
from apps.inbound.models import InboundEvent
from apps.mapping.services import builtin_profiles_install, cross_reference_record
from apps.sandbox.seeds import BC_COMPANY_ID
from apps.sandbox.services import sandbox_faults_set, sandbox_reset, sandbox_webhooks_wait
from apps.sync.engine import run_due_steps
from apps.sync.workflows.existing import AmbiguousMatch, existing_customer
from apps.systems.models import SigningSecret

from .. import factories

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "bc-sandbox-token-0042"


@pytest.fixture
def bc(live_server, monkeypatch):
    monkeypatch.setenv("IC_SECRET_BC_TOKEN", TOKEN)
    sandbox_reset("business-central")
    system = factories.system(
        "business-central",
        "erp",
        name="Business Central",
        vendor="business-central",
        base_url=f"{live_server.url}/sandbox/business-central/api/v2.0/companies({BC_COMPANY_ID})/",
        outbound_auth="bearer",
        outbound_credentials={"env": "IC_SECRET_BC_TOKEN"},
        read_timeout_seconds=Decimal("5"),
        rate_limit_per_minute=None,
    )
    return adapter_for(system, correlation_id="corr-bc")


def test_a_customer_is_created_then_updated_with_its_etag(bc):
    customer = factories.customer(name="Initech Ltd", billing_email="ap@initech.example", currency="GBP")
    first = bc.upsert_customer(customer=customer, subsidiary_id="", currency_id="GBP", idempotency_key="k")
    customer.name = "Initech UK Ltd"
    second = bc.upsert_customer(customer=customer, subsidiary_id="", currency_id="GBP", idempotency_key="k")
    assert first.created and not second.created and second.id == first.id
    assert bc.fetch("customer", first.id)["displayName"] == "Initech UK Ltd"


def test_a_stale_etag_is_a_concurrency_error(bc):
    customer = factories.customer(name="Initech Ltd", currency="GBP")
    record = bc.upsert_customer(customer=customer, subsidiary_id="", currency_id="GBP", idempotency_key="k")
    url = bc.system.base_url + f"customers({record.id})"
    stale = record.data["@odata.etag"]
    headers = {"Authorization": f"Bearer {TOKEN}", "If-Match": stale}
    assert requests.patch(url, json={"email": "x@initech.example"}, headers=headers, timeout=5).status_code == 200
    with pytest.raises(ConcurrencyError) as caught:
        bc.update("customer", record.id, {"email": "y@initech.example"}, etag=stale)
    assert caught.value.status == 412
    assert "Someone changed the record in Business Central after we read it" in caught.value.message
    assert bc.fetch("customer", record.id)["email"] == "x@initech.example"


def test_an_invoice_is_posted_once_and_paid(bc):
    customer = factories.customer(name="Initech Ltd", currency="GBP")
    erp_customer = bc.upsert_customer(customer=customer, subsidiary_id="", currency_id="GBP", idempotency_key="k")
    invoice = SimpleNamespace(
        number="INV-9001", issue_date=datetime.date(2026, 1, 31), due_date=datetime.date(2026, 3, 2)
    )
    lines = [InvoiceLineSpec("Consulting January", "SVC-CONSULTING", Decimal("10"), Decimal("1000.00"), "VAT20")]
    posted = bc.post_invoice(invoice=invoice, customer_erp_id=erp_customer.id, lines=lines, idempotency_key="i")
    again = bc.post_invoice(invoice=invoice, customer_erp_id=erp_customer.id, lines=lines, idempotency_key="i")
    assert posted.data["status"] == "Open" and posted.data["totalAmountIncludingTax"] == 1200
    assert again.id == posted.id and not again.created
    payment = SimpleNamespace(
        reference="PAY-1", amount=Decimal("1200.00"), currency="GBP", received_on=datetime.date(2026, 2, 10)
    )
    bc.apply_payment(payment=payment, customer_erp_id=erp_customer.id, invoice_erp_id=posted.id, idempotency_key="p")
    assert bc.fetch("salesInvoice", posted.id)["status"] == "Paid"


def test_lists_follow_the_odata_next_link(bc):
    for n in range(5):
        customer = factories.customer(name=f"Customer {n}", currency="GBP")
        bc.upsert_customer(customer=customer, subsidiary_id="", currency_id="GBP", idempotency_key=f"k{n}")
    rows = list(bc._list("customers", "list customers", page_size=2))
    assert len(rows) == 5
    assert [row["code"] for row in bc.reference_data("tax_code")] == ["VAT20", "VAT0", "NONTAXABLE"]


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
def test_each_documented_bc_error_becomes_its_error_class(bc, rejection, error_class):
    sandbox_faults_set("business-central", reject_next=1, reject_with=rejection)
    with pytest.raises(error_class) as caught:
        bc.reference_data("currency")
    assert "Business Central" in caught.value.message


def test_a_subscription_needs_the_validation_handshake(bc, live_server):
    factories.system("bc-inbound", "erp", vendor="business-central", inbound_scheme="client-state")
    record = bc.subscribe(
        notification_url=f"{live_server.url}/api/v1/inbound/bc-inbound/",
        resource=f"/api/v2.0/companies({BC_COMPANY_ID})/salesInvoices",
        client_state="s3cret",
    )
    assert record.data["clientState"] == "s3cret"
    with pytest.raises(TargetRejected) as caught:
        bc.subscribe(
            notification_url=f"{live_server.url}/api/v1/inbound/nobody/",
            resource=f"/api/v2.0/companies({BC_COMPANY_ID})/salesInvoices",
            client_state="s3cret",
        )
    assert "handshake" in caught.value.message


def test_a_posted_invoice_comes_back_through_the_webhook_subscription(bc, live_server, monkeypatch):
    """BC's notification (clientState checked) makes the console fetch the invoice and its lines, and record it."""
    with system_context("Install built-in source profiles"):
        builtin_profiles_install()  # a transactional test may run on a flushed database
    monkeypatch.setenv("IC_SECRET_BC_CLIENT_STATE", "client-state-0042")
    system = bc.system
    system.inbound_scheme = "client-state"
    system.save()
    SigningSecret.objects.create(system=system, label="primary", reference={"env": "IC_SECRET_BC_CLIENT_STATE"})
    customer = factories.customer(name="Initech Ltd", currency="USD")
    erp_customer = bc.upsert_customer(customer=customer, subsidiary_id="", currency_id="", idempotency_key="k")
    with system_context("Initech is a Business Central customer"):
        cross_reference_record(system=system, obj=customer, external_id=erp_customer.id)
    bc.subscribe(
        notification_url=f"{live_server.url}/api/v1/inbound/business-central/",
        resource=f"/api/v2.0/companies({BC_COMPANY_ID})/salesInvoices",
        client_state="client-state-0042",
    )
    invoice = SimpleNamespace(number="INV-9002", issue_date=datetime.date(2026, 1, 31), due_date=None)
    lines = [InvoiceLineSpec("Consulting January", "SVC-CONSULTING", Decimal("2"), Decimal("500.00"), "VAT20")]
    posted = bc.post_invoice(invoice=invoice, customer_erp_id=erp_customer.id, lines=lines, idempotency_key="i")

    assert sandbox_webhooks_wait(15)
    run_due_steps()
    recorded = Invoice.objects.get(customer=customer)
    assert recorded.number == posted.data["number"]
    assert recorded.total == Decimal("600.00") and recorded.tax_total == Decimal("100.00")
    event = InboundEvent.objects.get(system=system)
    assert event.event_type == "salesInvoices.updated"


# --- match before create -------------------------------------------------------------------------------


def someone_creates_in_bc(bc, **fields) -> dict:
    """A customer made in Business Central itself (its own number series), not through the connector."""
    response = requests.post(
        bc.system.base_url + "customers", json=fields, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 201, response.text
    return response.json()


def bc_customers(bc, **params) -> list[dict]:
    response = requests.get(
        bc.system.base_url + "customers", params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["value"]


def test_bc_filters_customers_with_odata_eq_joined_by_or(bc):
    someone_creates_in_bc(bc, number="10000", displayName="Initech Ltd", email="ap@initech.example")
    someone_creates_in_bc(bc, number="20000", displayName="O'Brien & Sons", email="ap@obrien.example")
    someone_creates_in_bc(bc, number="30000", displayName="Globex", email="ap@globex.example")
    found = bc_customers(bc, **{"$filter": "displayName eq 'O''Brien & Sons' or email eq 'ap@initech.example'"})
    assert sorted(row["number"] for row in found) == ["10000", "20000"]
    both = bc_customers(bc, **{"$filter": "number eq '10000' and email eq 'ap@globex.example'"})
    assert both == []
    refused = requests.get(
        bc.system.base_url + "customers",
        params={"$filter": "contains(displayName,'Init')"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "BadRequest"


def test_a_customer_already_in_bc_is_matched_and_updated_not_duplicated(bc):
    there = someone_creates_in_bc(bc, number="10000", displayName="Initech Ltd", email="ap@initech.example")
    someone_creates_in_bc(bc, number="20000", displayName="Initech Holdings", email="hq@initech.example")
    customer = factories.customer(
        name="Initech Ltd", billing_email="ap@initech.example", tax_id="GB123456789", currency="GBP"
    )
    bc.system.match_customers_by = ["external_id", "tax_id", "name"]

    match = existing_customer(bc.system, bc, customer)
    assert match.rule == "name" and match.unique.id == there["id"] and match.unique.external_id == "10000"
    record = bc.upsert_customer(
        customer=customer, subsidiary_id="", currency_id="GBP", idempotency_key="k", record_id=match.unique.id
    )

    assert record.id == there["id"] and not record.created
    assert len(bc_customers(bc)) == 2  # no third one
    updated = bc.fetch("customer", there["id"])
    assert updated["number"] == "10000"  # Business Central keeps its own number
    assert updated["taxRegistrationNumber"] == "GB123456789"


def test_two_bc_customers_with_the_name_are_an_exception_listing_both(bc):
    first = someone_creates_in_bc(bc, number="10000", displayName="Initech Ltd", email="ap@initech.example")
    second = someone_creates_in_bc(bc, number="20000", displayName="Initech Ltd", email="uk@initech.example")
    customer = factories.customer(name="Initech Ltd", currency="GBP")
    bc.system.match_customers_by = ["name"]

    with pytest.raises(AmbiguousMatch) as caught:
        existing_customer(bc.system, bc, customer)

    assert "may already exist in Business Central: 2 customers there match by exact name" in caught.value.message
    assert f"{first['id']} “Initech Ltd” (ap@initech.example)" in caught.value.message
    assert f"{second['id']} “Initech Ltd” (uk@initech.example)" in caught.value.message


def test_a_customer_we_created_in_bc_is_found_by_our_number(bc):
    customer = factories.customer(name="Initech Ltd", currency="GBP")
    ours = bc.upsert_customer(customer=customer, subsidiary_id="", currency_id="GBP", idempotency_key="k")
    bc.system.match_customers_by = ["external_id"]

    match = existing_customer(bc.system, bc, customer)

    assert match.unique.id == ours.id and match.unique.external_id == customer.number
