"""The opportunity-to-project workflow's first step refuses a deal that breaks a business rule, with a message
a person can act on, and records the customer, contract and project of a deal that passes every check."""

import datetime

import pytest

from apps.canonical.models import Contract, Customer, Opportunity, Project
from apps.mapping.services import cross_reference_record
from apps.sync.engine import run_due_steps
from apps.sync.models import Transaction
from apps.sync.services import transaction_start
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def firm(systems):
    factories.legal_entity("NW-US", name="Northwind Advisory Inc.", country="US")
    factories.legal_entity("NW-UK", name="Northwind Advisory UK Ltd", country="GB", currency="GBP", tax_region="GB")
    factories.rate_card("STD-US", versions=[(datetime.date(2020, 1, 1), None, "approved", {"Consultant": 200})])
    factories.rate_card("OLD-US", versions=[(datetime.date(2020, 1, 1), datetime.date(2020, 12, 31), "approved", {})])
    return systems


def deal(**changes):
    values = {
        "opportunity_external_id": "006TEST",
        "opportunity_name": "Northwind rollout",
        "customer_external_id": "001NW",
        "customer_name": "Northwind Corp",
        "currency": "USD",
        "contract_type": "time_and_materials",
        "amount": "120000",
        "legal_entity": "NW-US",
        "rate_card": "STD-US",
        "close_date": "2026-03-01",
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def validate(data) -> Transaction:
    txn = transaction_start(
        workflow="opportunity_to_project", data={"source_system": "salesforce", "data": data}, reason="test"
    )
    run_due_steps()
    txn.refresh_from_db()
    return txn


def known_customer(crm, **fields) -> Customer:
    customer = factories.customer(name="Northwind Corp", **fields)
    cross_reference_record(system=crm, obj=customer, external_id="001NW")
    return customer


def refused(txn: Transaction) -> str:
    assert txn.status == Transaction.Status.EXCEPTION
    assert txn.steps.get(name="validate").status != "succeeded"
    return txn.error_message


def test_a_deal_that_passes_every_check_records_customer_opportunity_contract_and_project(firm):
    txn = validate(deal())

    assert txn.steps.get(name="validate").status == "succeeded"
    opportunity = Opportunity.objects.get(number="006TEST")
    assert opportunity.stage == Opportunity.Stage.CLOSED_WON and opportunity.rate_card.code == "STD-US"
    contract = Contract.objects.get(opportunity=opportunity)
    assert contract.customer.name == "Northwind Corp"
    assert Project.objects.get(contract=contract).budget_amount == 120000


def test_a_deal_with_a_missing_field_names_every_missing_field(firm):
    message = refused(validate(deal(currency="", customer_name=None)))
    assert message == "The closed-won deal is missing customer_name, currency."


def test_an_unknown_contract_type_is_refused_with_the_known_ones(firm):
    message = refused(validate(deal(contract_type="barter")))
    assert message.startswith("Deal Northwind rollout has contract type 'barter', which the console does not know.")
    assert "time_and_materials" in message


def test_a_currency_the_console_does_not_support_is_refused(firm):
    message = refused(validate(deal(currency="XYZ")))
    assert message == (
        "Deal Northwind rollout is in currency 'XYZ', which is not an ISO 4217 code the console supports."
    )


def test_a_legal_entity_that_is_not_set_up_is_refused(firm):
    txn = validate(deal(legal_entity="NW-XX"))
    assert refused(txn) == "Legal entity 'NW-XX' on deal Northwind rollout is not an active legal entity."
    assert "region→legal entity value map" in txn.error_fix


def test_a_uk_entity_cannot_take_a_customer_without_a_vat_id(firm):
    message = refused(validate(deal(legal_entity="NW-UK", currency="GBP")))
    assert message == (
        "Customer Northwind Corp has no VAT/tax ID, and Northwind Advisory UK Ltd (GB) cannot invoice a business "
        "customer without one."
    )


def test_a_known_customers_tax_id_satisfies_the_vat_rule(firm):
    known_customer(firm["crm"], tax_id="GB123456789")
    txn = validate(deal(legal_entity="NW-UK", currency="GBP"))
    assert txn.steps.get(name="validate").status == "succeeded"


def test_a_customer_on_credit_hold_cannot_start_a_project(firm):
    known_customer(firm["crm"], status=Customer.Status.ON_HOLD)
    txn = validate(deal())
    assert "is on credit hold; finance must release it before a project starts." in refused(txn)
    assert txn.error_fix == "Release the credit hold in ERP, then re-run."


def test_a_customer_of_an_inactive_group_cannot_start_a_project(firm):
    group = factories.customer(name="Old Group", status=Customer.Status.INACTIVE)
    known_customer(firm["crm"], parent=group)
    assert "belongs to inactive group" in refused(validate(deal()))


def test_a_fixed_fee_deal_needs_an_amount(firm):
    message = refused(validate(deal(contract_type="fixed_fee", amount=None)))
    assert message == "Deal Northwind rollout is fixed fee but has no amount."


def test_time_and_materials_needs_a_rate_card_to_price_the_time(firm):
    message = refused(validate(deal(rate_card=None)))
    assert message == (
        "Deal Northwind rollout is time & materials but names no rate card, so its time cannot be priced."
    )


def test_a_rate_card_that_does_not_exist_is_named(firm):
    message = refused(validate(deal(rate_card="NOPE")))
    assert message == "Deal Northwind rollout names rate card 'NOPE', which does not exist."


def test_a_rate_card_with_no_approved_version_at_the_project_start_is_refused(firm):
    txn = validate(deal(rate_card="OLD-US", start_date="2026-04-01"))
    assert refused(txn) == "Rate card OLD-US has no approved version in force on 2026-04-01, the project start."
    assert txn.error_fix == "Approve a version of OLD-US that covers 2026-04-01, then re-run."


def test_the_checks_run_in_order_and_the_first_problem_is_reported(firm):
    known_customer(firm["crm"], status=Customer.Status.ON_HOLD)
    message = refused(validate(deal(contract_type="fixed_fee", amount=None, rate_card="NOPE")))
    assert "is on credit hold" in message
