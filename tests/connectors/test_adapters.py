"""The four vendor adapters against the built-in sandbox systems, over real HTTP (live server)."""

import datetime
from decimal import Decimal

import pytest

from apps.canonical.models import BillingSchedule, ContractAmendment, Invoice, Payment
from apps.connectors.adapters.chargebee import ChargebeeBilling
from apps.connectors.adapters.kantata import KantataPSA
from apps.connectors.adapters.netsuite import NetSuiteERP
from apps.connectors.adapters.salesforce import SalesforceCRM
from apps.connectors.errors import PermanentError, TargetRejected, TransientError
from apps.connectors.interfaces import Charge, InvoiceLineSpec
from apps.connectors.models import RateLimitState
from apps.connectors.registry import adapter_for
from apps.core.errors import BusinessError
from apps.sandbox.services import sandbox_calls, sandbox_faults_set, sandbox_records, sandbox_system_configure

from .. import factories

pytestmark = pytest.mark.django_db(transaction=True)

JAN_1 = datetime.date(2026, 1, 1)
BASE_PATHS = {
    "crm": "/sandbox/crm/services/data/v60.0/",
    "psa": "/sandbox/psa/api/v1/",
    "erp": "/sandbox/erp/services/rest/record/v1/",
    "billing": "/sandbox/billing/api/v2/",
}


@pytest.fixture
def sandbox(live_server, systems, monkeypatch):
    """The demo systems pointed at the sandbox: bearer tokens for CRM/PSA/ERP, an API key for billing."""
    monkeypatch.setenv("IC_SECRET_SANDBOX_TOKEN", "sandbox-Token-0042")
    monkeypatch.setenv("IC_SECRET_SANDBOX_BILLING_KEY", "test_SandboxKey0042")
    for kind, path in BASE_PATHS.items():
        system = systems[kind]
        system.base_url = live_server.url + path
        system.read_timeout_seconds = Decimal("5")
        if kind == "billing":
            system.outbound_auth = "basic"
            system.outbound_credentials = {"username": {"env": "IC_SECRET_SANDBOX_BILLING_KEY"}}
        else:
            system.outbound_auth = "bearer"
            system.outbound_credentials = {"env": "IC_SECRET_SANDBOX_TOKEN"}
        system.save()
    return systems


@pytest.fixture
def calls():
    return []


def adapter(systems, kind, calls=None, correlation_id="corr-adapters"):
    recorder = calls.append if calls is not None else None
    return adapter_for(systems[kind], correlation_id=correlation_id, recorder=recorder)


@pytest.fixture
def engagement(db):
    """A US customer with a fixed-fee contract and its project."""
    customer = factories.customer(name="Globex Corporation", billing_email="ap@globex.example", tax_id="US-99-1234567")
    contract = factories.contract(
        customer=customer, total_value=Decimal("120000.00"), end_date=datetime.date(2026, 6, 30)
    )
    project = factories.project(
        contract=contract, name="Globex ERP rollout", start_date=JAN_1, end_date=datetime.date(2026, 6, 30)
    )
    return customer, contract, project


# --- registry -------------------------------------------------------------------------------------------


def test_the_registry_picks_the_adapter_for_each_kind_and_vendor(sandbox):
    assert isinstance(adapter(sandbox, "crm"), SalesforceCRM)
    assert isinstance(adapter(sandbox, "psa"), KantataPSA)
    assert isinstance(adapter(sandbox, "erp"), NetSuiteERP)
    assert isinstance(adapter(sandbox, "billing"), ChargebeeBilling)


def test_the_registry_refuses_a_system_it_has_no_connector_for(sandbox):
    with pytest.raises(PermanentError) as raised:
        adapter(sandbox, "hris")

    assert raised.value.message.startswith(
        "The console has no connector for BambooHR: vendor 'bamboohr' as a HR system"
    )


# --- Salesforce -----------------------------------------------------------------------------------------


def test_salesforce_creates_reads_and_updates_records(sandbox, calls):
    crm = adapter(sandbox, "crm", calls)
    account = crm.create("Account", {"Name": "Globex", "CurrencyIsoCode": "USD"}, idempotency_key="acc-1")
    opportunity = crm.create(
        "Opportunity",
        {"Name": "Globex rollout", "AccountId": account.id, "StageName": "Closed Won", "CloseDate": "2026-01-15",
         "Amount": Decimal("120000.00")},
        idempotency_key="opp-1",
    )  # fmt: skip

    crm.update_opportunity(opportunity.id, {"Project_Status__c": "Active", "ERP_Project_Id__c": "2001"})
    crm.update_account(account.id, {"Credit_Status__c": "Good", "AR_Balance__c": Decimal("1500.50")})

    assert account.id.startswith("001") and len(account.id) == 18
    assert opportunity.id.startswith("006")
    fetched = crm.fetch("Opportunity", opportunity.id)
    assert fetched["Project_Status__c"] == "Active"
    assert fetched["ERP_Project_Id__c"] == "2001"
    assert fetched["Amount"] == 120000
    assert crm.fetch("Account", account.id)["AR_Balance__c"] == 1500.5
    assert all(call["request_headers"]["X-Correlation-ID"] == "corr-adapters" for call in calls)
    assert {call.correlation_id for call in sandbox_calls("crm")} == {"corr-adapters"}


def test_salesforce_create_replayed_with_its_key_makes_no_second_record(sandbox):
    crm = adapter(sandbox, "crm")
    first = crm.create("Account", {"Name": "Initech"}, idempotency_key="acc-once")
    again = crm.create("Account", {"Name": "Initech"}, idempotency_key="acc-once")

    assert again.id == first.id
    assert first.created is True
    assert again.created is False
    assert sandbox_records("crm", "Account").count() == 1


def test_salesforce_refusing_a_field_says_which_field(sandbox):
    crm = adapter(sandbox, "crm")
    account = crm.create("Account", {"Name": "Initech"}, idempotency_key="acc-2")

    with pytest.raises(TargetRejected) as raised:
        crm.update_account(account.id, {"Favourite_Colour__c": "blue"})

    assert raised.value.message == (
        f"Salesforce refused to update Favourite_Colour__c of Account {account.id}: No such column "
        "'Favourite_Colour__c' on sobject of type Account (field Favourite_Colour__c)."
    )
    assert raised.value.vendor_code == "INVALID_FIELD"


def test_salesforce_reading_an_unknown_record_is_permanent(sandbox):
    with pytest.raises(PermanentError) as raised:
        adapter(sandbox, "crm").fetch("Opportunity", "006000000000000AAA")

    assert raised.value.status == 404
    assert "has no such record" in raised.value.message


def test_a_wrong_credential_is_refused_as_permanent_and_names_the_reference(sandbox, monkeypatch):
    monkeypatch.setenv("IC_SECRET_SANDBOX_EXPECTED", "the-right-token")
    sandbox_system_configure("crm", required_credential={"env": "IC_SECRET_SANDBOX_EXPECTED"})

    with pytest.raises(PermanentError) as raised:
        adapter(sandbox, "crm").fetch("Account", "001000000000000AAA")

    assert raised.value.status == 401
    assert "Salesforce refused our credentials" in raised.value.message
    assert "environment variable IC_SECRET_SANDBOX_TOKEN" in raised.value.fix


# --- Kantata --------------------------------------------------------------------------------------------


def test_kantata_creates_a_project_once_and_finds_it_again(sandbox, engagement, calls):
    customer, contract, project = engagement
    psa = adapter(sandbox, "psa", calls)

    created = psa.create_project(project=project, contract=contract, customer=customer, idempotency_key="ws-1")
    again = psa.create_project(project=project, contract=contract, customer=customer, idempotency_key="ws-2")

    assert created.created is True
    assert again.created is False
    assert again.id == created.id
    workspace = psa.fetch("workspaces", created.id)
    assert workspace["external_reference"] == project.code
    assert workspace["price_in_cents"] == 12_000_000
    assert workspace["title"] == "Globex ERP rollout"
    assert workspace["account_name"] == "Globex Corporation"
    assert workspace["due_date"] == "2026-06-30"
    assert sandbox_records("psa", "workspaces").count() == 1
    assert psa.find_project("P-does-not-exist") is None


def test_kantata_create_racing_another_worker_returns_the_winners_workspace(sandbox, engagement):
    customer, contract, project = engagement
    other_worker = adapter(sandbox, "psa", correlation_id="other-worker")

    def create_meanwhile(call):
        # Right after our lookup found nothing, another worker creates the same project.
        if call["method"] == "GET" and not sandbox_records("psa", "workspaces").exists():
            other_worker.create_project(project=project, contract=contract, customer=customer, idempotency_key="ws-b")

    psa = adapter_for(sandbox["psa"], correlation_id="this-worker", recorder=create_meanwhile)
    result = psa.create_project(project=project, contract=contract, customer=customer, idempotency_key="ws-a")

    assert result.created is False
    assert sandbox_records("psa", "workspaces").count() == 1
    assert result.id == sandbox_records("psa", "workspaces").get().internal_id
    refused = sandbox_calls("psa", method="POST", correlation_id="this-worker").get()
    assert refused.response_status == 422


def test_kantata_rebaselines_a_project_to_the_amended_contract(sandbox, engagement):
    customer, contract, project = engagement
    psa = adapter(sandbox, "psa")
    workspace = psa.create_project(project=project, contract=contract, customer=customer, idempotency_key="ws-3")
    amendment = ContractAmendment.objects.create(
        contract=contract,
        version=2,
        effective_from=datetime.date(2026, 4, 1),
        description="Phase 2 added",
        new_total_value=Decimal("150000.00"),
        new_end_date=datetime.date(2026, 9, 30),
    )

    psa.rebaseline_project(
        workspace.id, project=project, contract=contract, amendment=amendment, idempotency_key="rb-1"
    )

    rebaselined = psa.fetch("workspace", workspace.id)
    assert rebaselined["due_date"] == "2026-09-30"
    assert rebaselined["price_in_cents"] == 15_000_000
    assert rebaselined["baseline_version"] == 2


def test_kantata_refuses_a_project_that_ends_before_it_starts(sandbox, engagement):
    customer, contract, project = engagement
    project.end_date = datetime.date(2025, 12, 1)

    with pytest.raises(TargetRejected) as raised:
        adapter(sandbox, "psa").create_project(
            project=project, contract=contract, customer=customer, idempotency_key="ws-4"
        )

    assert raised.value.message == (
        f"Kantata refused to create project {project.code}: due_date 2025-12-01 is before start_date 2026-01-01."
    )


def test_kantata_reads_a_time_entry_for_a_thin_notification(sandbox, engagement):
    customer, contract, project = engagement
    psa = adapter(sandbox, "psa")
    workspace = psa.create_project(project=project, contract=contract, customer=customer, idempotency_key="ws-5")
    seeded = psa.http.json(
        psa.http.request(
            "POST",
            "time_entries.json",
            json={"time_entry": {"workspace_id": workspace.id, "date_performed": "2026-01-12", "time_in_minutes": 90}},
        )
    )
    entry_id = seeded["results"][0]["id"]

    entry = psa.fetch("time_entries", entry_id)

    assert entry["id"] == entry_id
    assert entry["time_in_minutes"] == 90
    assert entry["workspace_id"] == workspace.id


# --- NetSuite -------------------------------------------------------------------------------------------


@pytest.fixture
def erp_customer(sandbox, engagement):
    customer = engagement[0]
    return adapter(sandbox, "erp").upsert_customer(
        customer=customer, subsidiary_id="1", currency_id="1", idempotency_key="cust-1"
    )


def make_invoice(customer, project, number="INV-1001", total=Decimal("10000.00")):
    return Invoice.objects.create(
        number=number,
        customer=customer,
        project=project,
        legal_entity=customer.legal_entity,
        issue_date=datetime.date(2026, 1, 31),
        due_date=datetime.date(2026, 3, 2),
        currency="USD",
        subtotal=total,
        total=total,
    )


def post_invoice(erp, invoice, erp_customer, key):
    return erp.post_invoice(
        invoice=invoice, customer_erp_id=erp_customer.id, lines=invoice_lines(), idempotency_key=key
    )


def invoice_lines(amount=Decimal("10000.00")):
    return [InvoiceLineSpec(description="January consulting", item_id="100", quantity=Decimal("40"),
                            amount=amount, tax_code_id="11")]  # fmt: skip


def test_netsuite_upserts_a_customer_by_our_customer_number(sandbox, engagement, erp_customer):
    customer = engagement[0]
    customer.name = "Globex Corporation (US)"
    again = adapter(sandbox, "erp").upsert_customer(
        customer=customer, subsidiary_id="1", currency_id="1", idempotency_key="cust-2"
    )

    assert erp_customer.created is True
    assert erp_customer.id == "1001"
    assert erp_customer.data["externalId"] == customer.number
    assert again.created is False
    assert again.id == erp_customer.id
    assert again.data["companyName"] == "Globex Corporation (US)"
    assert sandbox_records("erp", "customer").count() == 1
    put = sandbox_calls("erp", method="PUT").first()
    assert put.path.endswith(f"/customer/eid:{customer.number}")
    assert put.idempotency_key == "cust-1"


def test_netsuite_refuses_an_unknown_subsidiary_and_says_so(sandbox, engagement):
    with pytest.raises(TargetRejected) as raised:
        adapter(sandbox, "erp").upsert_customer(
            customer=engagement[0], subsidiary_id="99", currency_id="1", idempotency_key="cust-3"
        )

    assert raised.value.message == (
        f"NetSuite refused to upsert customer {engagement[0].number}: Invalid subsidiary reference key 99."
    )


def test_netsuite_creates_the_financial_project_under_its_customer(sandbox, engagement, erp_customer):
    project = engagement[2]
    job = adapter(sandbox, "erp").upsert_financial_project(
        project=project, customer_erp_id=erp_customer.id, subsidiary_id="1", idempotency_key="job-1"
    )

    assert job.created is True
    assert job.data["parent"]["id"] == erp_customer.id
    assert job.data["externalId"] == project.code
    assert job.data["startDate"] == "2026-01-01"


def test_netsuite_posts_an_invoice_once_with_the_tax_it_computes(sandbox, engagement, erp_customer):
    customer, _, project = engagement
    invoice = make_invoice(customer, project)
    erp = adapter(sandbox, "erp")

    posted = post_invoice(erp, invoice, erp_customer, "inv-1")
    again = post_invoice(erp, invoice, erp_customer, "inv-2")

    assert posted.created is True
    assert Decimal(str(posted.data["subtotal"])) == Decimal("10000.00")
    assert Decimal(str(posted.data["taxTotal"])) == Decimal("887.50")
    assert Decimal(str(posted.data["total"])) == Decimal("10887.50")
    assert posted.data["tranId"] == "INV-1001"
    assert again.created is False
    assert again.id == posted.id
    assert sandbox_calls("erp", method="PUT", path__contains="/invoice/").count() == 1


def test_netsuite_applies_a_payment_and_refuses_an_overpayment(sandbox, engagement, erp_customer):
    customer, _, project = engagement
    invoice = make_invoice(customer, project, total=Decimal("1000.00"))
    erp = adapter(sandbox, "erp")
    posted = erp.post_invoice(
        invoice=invoice, customer_erp_id=erp_customer.id, lines=invoice_lines(Decimal("1000.00")), idempotency_key="i"
    )
    payment = Payment.objects.create(
        reference="WIRE-2026-0001", customer=customer, invoice=invoice, received_on=datetime.date(2026, 2, 10),
        amount=Decimal("600.00"), currency="USD",
    )  # fmt: skip

    applied = erp.apply_payment(
        payment=payment, customer_erp_id=erp_customer.id, invoice_erp_id=posted.id, idempotency_key="pay-1"
    )

    assert applied.created is True
    assert Decimal(str(erp.fetch("invoice", posted.id)["amountRemaining"])) == Decimal("488.75")
    overpayment = Payment(reference="WIRE-2026-0002", customer=customer, invoice=invoice,
                          received_on=datetime.date(2026, 2, 11), amount=Decimal("500.00"), currency="USD")  # fmt: skip
    with pytest.raises(TargetRejected) as raised:
        erp.apply_payment(
            payment=overpayment, customer_erp_id=erp_customer.id, invoice_erp_id=posted.id, idempotency_key="pay-2"
        )
    assert "only 488.75 is still open" in raised.value.message
    assert raised.value.message.startswith("NetSuite refused to apply payment WIRE-2026-0002 of 500.00 USD")


def test_netsuite_lists_every_invoice_page_by_page(sandbox, engagement, erp_customer):
    customer, _, project = engagement
    erp = adapter(sandbox, "erp")
    for n in range(3):
        invoice = make_invoice(customer, project, number=f"INV-20{n}")
        post_invoice(erp, invoice, erp_customer, f"l{n}")

    invoices = list(erp.list_invoices(page_size=2))

    assert [invoice["tranId"] for invoice in invoices] == ["INV-200", "INV-201", "INV-202"]
    assert all("total" in invoice for invoice in invoices)
    assert sandbox_calls("erp", method="GET", path__endswith="/invoice").count() == 2


def test_netsuite_reference_data_comes_with_its_fields(sandbox):
    erp = adapter(sandbox, "erp")

    tax_codes = {row["itemId"]: row for row in erp.reference_data("tax_code")}
    rates = erp.reference_data("exchange_rate")

    assert tax_codes["US-NY"]["rate"] == 8.875
    assert {row["name"] for row in erp.reference_data("subsidiary")} >= {"Acme Consulting Inc.", "Acme Consulting Ltd"}
    assert len(rates) == 12
    assert {"baseCurrency", "transactionCurrency", "exchangeRate", "effectiveDate"} <= set(rates[0])
    with pytest.raises(ValueError):
        erp.reference_data("planets")


def test_netsuite_answer_lost_after_commit_is_recovered_without_a_second_invoice(sandbox, engagement, erp_customer):
    customer, _, project = engagement
    sandbox["erp"].read_timeout_seconds = Decimal("0.5")
    sandbox["erp"].save()
    sandbox_faults_set("erp", drop_next=1, drop_seconds=2)
    invoice = make_invoice(customer, project)
    erp = adapter(sandbox, "erp")

    with pytest.raises(TransientError) as raised:
        post_invoice(erp, invoice, erp_customer, "d-1")
    retried = post_invoice(erp, invoice, erp_customer, "d-1")

    assert raised.value.maybe_committed is True
    assert "did not answer within 0.5 s" in raised.value.message
    assert retried.created is False
    assert retried.data["tranId"] == invoice.number
    assert sandbox_records("erp", "invoice").count() == 1


def test_netsuite_throttling_blocks_every_worker_until_retry_after(sandbox):
    sandbox_faults_set("erp", throttle_next=1, retry_after_seconds=30)
    erp = adapter(sandbox, "erp")

    with pytest.raises(TransientError) as first:
        erp.fetch("subsidiary", "1")
    with pytest.raises(TransientError) as second:
        adapter(sandbox, "erp", correlation_id="another-worker").fetch("subsidiary", "1")

    assert first.value.retry_at is not None
    assert second.value.retry_at == first.value.retry_at
    assert RateLimitState.objects.get(system=sandbox["erp"]).blocked_until == first.value.retry_at
    assert sandbox_calls("erp").count() == 1


def test_netsuite_unavailable_is_transient(sandbox):
    sandbox_faults_set("erp", fail_next=1)

    with pytest.raises(TransientError) as raised:
        adapter(sandbox, "erp").fetch("subsidiary", "1")

    assert raised.value.status == 503
    assert raised.value.message == "NetSuite had a problem of its own (HTTP 503) while we tried to read subsidiary 1."


# --- Chargebee ------------------------------------------------------------------------------------------


def test_chargebee_creates_a_customer_with_our_number_and_finds_it_on_duplicate(sandbox, engagement, calls):
    customer = engagement[0]
    billing = adapter(sandbox, "billing", calls)

    created = billing.upsert_customer(customer=customer, erp_customer_id=None, idempotency_key="cb-1")
    again = billing.upsert_customer(customer=customer, erp_customer_id="1001", idempotency_key="cb-2")

    assert created.id == customer.number
    assert created.created is True
    assert created.data["company"] == "Globex Corporation"
    assert again.created is False
    assert again.data["cf_erp_customer_id"] == "1001"
    assert sandbox_records("billing", "customer").count() == 1
    first_post = sandbox_calls("billing", method="POST").first()
    assert first_post.idempotency_key == "cb-1"
    assert "Chargebee-Idempotency-Key" in calls[0]["request_headers"]
    assert "test_SandboxKey0042" not in str(calls)


def test_chargebee_replays_a_create_sent_twice_with_one_key(sandbox, engagement):
    customer = engagement[0]
    billing = adapter(sandbox, "billing")
    billing.upsert_customer(customer=customer, erp_customer_id=None, idempotency_key="cb-same")
    again = billing.upsert_customer(customer=customer, erp_customer_id=None, idempotency_key="cb-same")

    assert again.created is False
    assert sandbox_calls("billing", method="POST", replayed=True).count() == 1


def test_chargebee_billing_schedule_is_created_once_then_revised(sandbox, engagement):
    customer, contract, project = engagement
    billing = adapter(sandbox, "billing")
    account = billing.upsert_customer(customer=customer, erp_customer_id=None, idempotency_key="cb-3")
    schedule = BillingSchedule.objects.create(
        project=project, contract=contract, billing_method="fixed_fee", frequency="monthly", start_date=JAN_1,
        currency="USD",
    )  # fmt: skip

    created = billing.create_billing_schedule(
        schedule=schedule, customer_billing_id=account.id, project_ref="4100001", idempotency_key="bs-1"
    )
    duplicate = billing.create_billing_schedule(
        schedule=schedule, customer_billing_id=account.id, project_ref="4100001", idempotency_key="bs-2"
    )
    schedule.revision, schedule.frequency = 2, "quarterly"
    revised = billing.revise_billing_schedule(created.id, schedule=schedule, idempotency_key="bs-3")

    assert created.id == f"BS-{project.code}"
    assert created.data["start_date"] == 1767225600
    assert duplicate.created is False
    assert revised.data["revision"] == 2
    assert revised.data["frequency"] == "quarterly"


def test_chargebee_charges_go_in_minor_units_and_a_reference_is_never_charged_twice(sandbox, engagement):
    customer = engagement[0]
    billing = adapter(sandbox, "billing")
    account = billing.upsert_customer(customer=customer, erp_customer_id=None, idempotency_key="cb-4")
    charges = [
        Charge(reference="BE-1", description="January milestone", amount=Decimal("1500.00"), currency="USD",
               date_from=JAN_1, date_to=datetime.date(2026, 1, 31)),
        Charge(reference="BE-2", description="Expenses", amount=Decimal("99.99"), currency="USD",
               date_from=JAN_1, date_to=datetime.date(2026, 1, 31)),
    ]  # fmt: skip

    posted = billing.post_charges(customer_billing_id=account.id, currency="USD", charges=charges, idempotency_key="c1")
    billing.post_charges(customer_billing_id=account.id, currency="USD", charges=charges, idempotency_key="c2")

    assert [record.data["amount"] for record in posted] == [150000, 9999]
    assert [record.data["reference"] for record in posted] == ["BE-1", "BE-2"]
    assert posted[0].data["date_to"] == 1769903999
    assert sandbox_records("billing", "unbilled_charge").count() == 2
    body = sandbox_calls("billing", method="POST", path__endswith="/unbilled_charges").first().body
    assert "charges%5Bamount%5D%5B0%5D=150000" in body


def test_chargebee_sends_a_large_batch_of_charges_in_calls_of_a_hundred(sandbox, engagement):
    customer = engagement[0]
    billing = adapter(sandbox, "billing")
    account = billing.upsert_customer(customer=customer, erp_customer_id=None, idempotency_key="cb-6")
    charges = [
        Charge(reference=f"BE-T{n}", description=f"Time {n}", amount=Decimal("10.00"), currency="USD",
               date_from=JAN_1, date_to=JAN_1)
        for n in range(130)
    ]  # fmt: skip

    posted = billing.post_charges(customer_billing_id=account.id, currency="USD", charges=charges, idempotency_key="b")

    assert len(posted) == 130
    keys = list(sandbox_calls("billing", path__endswith="/unbilled_charges").values_list("idempotency_key", flat=True))
    assert keys == ["b:1", "b:2"]
    assert sandbox_records("billing", "unbilled_charge").count() == 130


def test_chargebee_refuses_charges_in_another_currency_before_calling(sandbox):
    charge = Charge(reference="BE-9", description="x", amount=Decimal("1"), currency="EUR", date_from=JAN_1,
                    date_to=JAN_1)  # fmt: skip
    with pytest.raises(BusinessError) as raised:
        adapter(sandbox, "billing").post_charges(
            customer_billing_id="C-1", currency="USD", charges=[charge], idempotency_key="c3"
        )

    assert "Charge BE-9 is in EUR but customer C-1 is billed in USD" in raised.value.message
    assert not sandbox_calls("billing").exists()


def test_chargebee_invoices_charges_records_a_payment_and_lists_invoices(sandbox, engagement):
    customer = engagement[0]
    billing = adapter(sandbox, "billing")
    account = billing.upsert_customer(customer=customer, erp_customer_id=None, idempotency_key="cb-5")
    billing.post_charges(
        customer_billing_id=account.id,
        currency="USD",
        charges=[Charge(reference="BE-10", description="Consulting", amount=Decimal("1000.00"), currency="USD",
                        date_from=JAN_1, date_to=datetime.date(2026, 1, 31))],
        idempotency_key="c4",
    )  # fmt: skip

    invoices = billing.invoice_charges(customer_billing_id=account.id, idempotency_key="inv-c1")
    payment = billing.record_payment(
        invoices[0].id, amount=Decimal("1080.00"), method="wire", paid_on=datetime.date(2026, 2, 5),
        idempotency_key="pay-c1",
    )  # fmt: skip
    listed = list(billing.list_invoices(page_size=1))

    assert len(invoices) == 1
    assert invoices[0].data["total"] == 108000
    assert payment.id.startswith("txn_")
    assert payment.data["transaction"]["amount"] == 108000
    assert payment.data["transaction"]["payment_method"] == "bank_transfer"
    assert payment.data["invoice"]["status"] == "paid"
    assert [invoice["id"] for invoice in listed] == [invoices[0].id]
