"""End to end over real HTTP: signed webhooks in, the sandbox CRM, PSA, ERP and billing platform out."""

from decimal import Decimal

import pytest
from django.utils import timezone

from apps.canonical.models import BillingSchedule, Invoice, Payment, TimeEntry
from apps.demo.scenario import (
    DEALS,
    announce_closed_won,
    billing_month_end_run,
    complete_milestone,
    crm_create_deal,
    customer_pays,
    drain,
    project_for,
    upload_month_of_time,
)
from apps.mapping.services import external_id_for
from apps.sandbox.models import SandboxRecord
from apps.sandbox.services import sandbox_calls
from apps.sync.models import Step, Transaction
from apps.systems.models import ConnectedSystem

pytestmark = pytest.mark.django_db(transaction=True)


def records(kind, object_type):
    return SandboxRecord.objects.filter(kind=kind, object_type=object_type)


def test_a_closed_won_deal_ends_as_customer_two_projects_and_a_billing_schedule(world):
    deal = DEALS[0]
    crm_create_deal(world, deal)
    answer = announce_closed_won(world, deal)
    assert drain(inline=True, timeout=60)
    mapping = Transaction.objects.get(inbound_event_id=answer["event_id"], workflow="inbound_event")
    assert mapping.status == "completed"
    txn = Transaction.objects.get(parent=mapping)
    assert txn.workflow == "opportunity_to_project"
    assert txn.status == "completed", (txn.error_message, txn.error_technical)
    project = project_for(world, deal)
    assert project.status == "active"
    systems = {s.slug: s for s in ConnectedSystem.objects.all()}
    erp_customer = external_id_for(system=systems["netsuite"], obj=project.customer)
    assert records("erp", "customer").get(internal_id=erp_customer).data["companyName"] == "Globex Corporation"
    assert records("erp", "job").count() == 1
    assert records("psa", "workspaces").count() == 1
    assert records("billing", "billing_schedule").count() == 1
    assert external_id_for(system=systems["kantata"], obj=project)
    assert external_id_for(system=systems["netsuite"], obj=project)
    assert BillingSchedule.objects.get(project=project).status == "active"
    crm_opportunity = records("crm", "Opportunity").get(internal_id=world.opportunities[deal.name]).data
    assert crm_opportunity["Project_Status__c"] == "Project created"
    # The trace: every step succeeded, with its outbound call captured and the correlation ID sent along.
    steps = list(txn.steps.order_by("sequence"))
    assert [s.status for s in steps] == ["succeeded"] * 6
    assert all(s.request.get("url") for s in steps[1:])
    assert sandbox_calls("erp").filter(headers__icontains=txn.correlation_id).exists()


def test_approved_time_and_a_milestone_end_as_invoices_in_billing_and_ar_in_erp_and_payment_reaches_crm(world):
    for deal in DEALS[:2]:
        crm_create_deal(world, deal)
        announce_closed_won(world, deal)
    assert drain(inline=True, timeout=90)
    globex, initech = project_for(world, DEALS[0]), project_for(world, DEALS[1])

    answer = upload_month_of_time(world, globex, month=timezone.localdate(), odd_role="Solution Architect")
    assert answer["accepted"] > 10
    assert drain(inline=True, timeout=90)
    assert TimeEntry.objects.filter(project=globex, status="approved").count() == answer["accepted"] - 1
    odd = Transaction.objects.get(workflow="time_to_bill", status="exception")
    assert "has no approved rate card version for role 'Solution Architect'" in odd.error_message
    assert records("billing", "unbilled_charge").exists()

    billing_month_end_run(globex)
    complete_milestone(world, initech, title="Assessment sign-off", amount=Decimal("20000"))
    assert drain(inline=True, timeout=90)
    invoices = Invoice.objects.filter(customer__in=[globex.customer, initech.customer], status__in=["posted", "paid"])
    assert invoices.count() == 2
    assert records("erp", "invoice").count() == 2
    milestone_invoice = Invoice.objects.get(customer=initech.customer)
    assert milestone_invoice.total > Decimal("20000")  # 19 % German VAT on top

    chargebee = ConnectedSystem.objects.get(slug="chargebee")
    customer_pays(external_id_for(system=chargebee, obj=milestone_invoice), milestone_invoice.total)
    assert drain(inline=True, timeout=60)
    milestone_invoice.refresh_from_db()
    assert milestone_invoice.status == "paid"
    payment = Payment.objects.get(invoice=milestone_invoice)
    assert payment.status == "applied"
    account = records("crm", "Account").get(internal_id=world.accounts[DEALS[1].name]).data
    assert account["Last_Payment_Date__c"] == timezone.localdate().isoformat()
    assert Decimal(str(account["AR_Balance__c"])) == 0
    assert not Step.objects.filter(status="running").exists()


def test_reference_data_is_pulled_from_erp_into_code_lists_the_currency_map_and_rates(world):
    from apps.canonical.models import ExchangeRate
    from apps.mapping.models import ReferenceValue
    from apps.mapping.services import value_map_lookup
    from apps.sync.workflows.reference_data import start_scheduled_pull

    assert start_scheduled_pull()
    assert start_scheduled_pull() is None  # one pull at a time
    assert drain(inline=True, timeout=60)
    txn = Transaction.objects.get(workflow="reference_data")
    assert txn.status == "completed", txn.error_message
    netsuite = ConnectedSystem.objects.get(slug="netsuite")
    assert ReferenceValue.objects.filter(system=netsuite, kind="subsidiary").count() == 3
    assert ReferenceValue.objects.filter(system=netsuite, kind="tax_code").exists()
    assert value_map_lookup("currency-erp", "GBP", on=timezone.localdate()) == "2"
    assert ExchangeRate.objects.filter(base="USD").exists()
    # A second pull changes nothing, so it writes no history.
    before = ReferenceValue.history.count() + ExchangeRate.history.count()
    start_scheduled_pull()
    assert drain(inline=True, timeout=60)
    assert ReferenceValue.history.count() + ExchangeRate.history.count() == before


def test_a_contract_amendment_rebaselines_the_project_revises_the_schedule_and_prices_new_work(world):
    import datetime

    from apps.canonical.models import ContractAmendment, RateCard
    from apps.canonical.services import rate_for
    from apps.demo.scenario import sign_change_order

    deal = DEALS[0]
    crm_create_deal(world, deal)
    announce_closed_won(world, deal)
    assert drain(inline=True, timeout=60)
    project = project_for(world, deal)
    contract = project.contract
    effective = timezone.localdate().replace(day=1)
    answer = sign_change_order(
        world,
        deal,
        version=2,
        effective_from=effective,
        new_total=Decimal("240000.00"),
        new_end=effective + datetime.timedelta(days=180),
        rates={"Senior Consultant": Decimal("265.00")},
    )
    assert drain(inline=True, timeout=60)
    txn = Transaction.objects.get(workflow="contract_amendment", inbound_event_id=answer["event_id"])
    assert txn.status == "completed", txn.error_message
    contract.refresh_from_db()
    project.refresh_from_db()
    assert contract.version == 2 and contract.total_value == Decimal("240000.00")
    assert ContractAmendment.objects.get(contract=contract, version=2).status == "applied"
    assert project.baseline_version == 2
    workspace = records("psa", "workspaces").get().data
    assert workspace["baseline_version"] == 2
    schedules = BillingSchedule.objects.filter(project=project).order_by("revision")
    assert [(s.revision, s.status) for s in schedules] == [(1, "superseded"), (2, "active")]
    # STD-US is shared with other customers: the amendment prices only this contract, on its own copy.
    assert contract.rate_card.code == f"STD-US/{contract.number}"
    before = effective - datetime.timedelta(days=1)
    assert rate_for(card=contract.rate_card, role="Senior Consultant", on=effective).bill_rate == Decimal("265.00")
    assert (
        rate_for(card=contract.rate_card, role="Senior Consultant", on=before).bill_rate
        == rate_for(card="STD-US", role="Senior Consultant", on=before).bill_rate
    )
    shared = RateCard.objects.get(code="STD-US")
    assert rate_for(card=shared, role="Senior Consultant", on=effective).bill_rate != Decimal("265.00")


def test_an_amendment_from_a_system_that_may_not_amend_is_an_ownership_conflict(world):
    from apps.sync.services import transaction_start

    deal = DEALS[0]
    crm_create_deal(world, deal)
    announce_closed_won(world, deal)
    assert drain(inline=True, timeout=60)
    txn = transaction_start(
        workflow="contract_amendment",
        data={
            "source_system": "kantata",
            "type": "contract.amended",
            "data": {
                "contract_external_id": world.opportunities[deal.name],
                "version": 2,
                "effective_from": timezone.localdate().isoformat(),
                "description": "Scope change",
                "new_total_value": "1.00",
            },
        },
        reason="test",
    )
    assert drain(inline=True, timeout=60)
    txn.refresh_from_db()
    assert txn.status == "exception"
    assert txn.error_class == "ownership_conflict"
    assert txn.error_message.startswith("Kantata may not create a contract amendment: Salesforce is the system")
    assert project_for(world, deal).contract.version == 1
