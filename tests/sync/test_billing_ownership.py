"""Time, expenses and milestones obey ownership rules: a system that does not own them cannot bill or change them."""

import datetime
from decimal import Decimal

import pytest

from apps.canonical.models import BillingEvent, Milestone, TimeEntry
from apps.mapping.services import cross_reference_record
from apps.sync.engine import run_step
from apps.sync.models import Step, Transaction
from apps.sync.services import transaction_start
from tests import factories

pytestmark = pytest.mark.django_db

OCT_31 = "2026-10-31"


@pytest.fixture
def engagement(systems):
    card = factories.rate_card(versions=[(datetime.date(2026, 1, 1), None, "approved", {"Consultant": 150})])
    contract = factories.contract(contract_type="time_and_materials", rate_card=card)
    project = factories.project(contract=contract)
    resource = factories.resource(role="Consultant")
    cross_reference_record(system=systems["psa"], obj=project, external_id="W-42")
    cross_reference_record(system=systems["psa"], obj=resource, external_id="U-7")
    milestone_contract = factories.contract(contract_type="milestone")
    milestone_project = factories.project(contract=milestone_contract)
    cross_reference_record(system=systems["psa"], obj=milestone_project, external_id="W-77")
    return {"project": project, "resource": resource, "milestone_project": milestone_project}


def time_entry(external_id="TE-1", hours="7.5", **more) -> dict:
    data = {
        "time_entry_external_id": external_id,
        "resource_external_id": "U-7",
        "project_external_id": "W-42",
        "work_date": OCT_31,
        "hours": hours,
        **more,
    }
    return {"type": "time_entry.approved", "data": data}


def run(workflow: str, data: dict) -> Transaction:
    txn = transaction_start(workflow=workflow, data=data, reason="test")
    step = Step.objects.filter(transaction=txn).order_by("sequence").first()
    run_step(step.pk)
    txn.refresh_from_db()
    return txn


def test_a_system_without_the_create_right_cannot_bill_time(systems, engagement):
    factories.ownership_rule("time_entry", systems["erp"])  # the ERP is the system of record for time
    txn = run("time_to_bill", {"source_system": "kantata", "entries": [time_entry()]})
    assert txn.status == "exception"
    assert txn.error_class == "ownership_conflict"
    assert "Kantata may not create a time entry: NetSuite is the system of record" in txn.error_message
    assert "Time entry TE-1 was not recorded." in txn.error_message
    assert not TimeEntry.objects.exists()
    assert not BillingEvent.objects.exists()


def test_the_owner_bills_time_as_before(systems, engagement):
    factories.ownership_rule("time_entry", systems["psa"])
    txn = run("time_to_bill", {"source_system": "kantata", "entries": [time_entry()]})
    assert txn.status != "exception", txn.error_message
    assert TimeEntry.objects.get().hours == Decimal("7.5")
    assert BillingEvent.objects.get().amount == Decimal("1125.00")


def test_changing_billed_hours_without_the_right_is_a_conflict_naming_both_values(systems, engagement):
    factories.ownership_rule("time_entry", systems["psa"])
    factories.ownership_rule("time_entry", systems["erp"], field="hours")  # corrections happen in the ERP
    first = run("time_to_bill", {"source_system": "kantata", "entries": [time_entry(hours="7.5")]})
    assert first.status != "exception", first.error_message
    again = run("time_to_bill", {"source_system": "kantata", "entries": [time_entry(hours="10")]})
    assert again.status == "exception"
    assert again.error_class == "ownership_conflict"
    assert "Kantata may not change hours of" in again.error_message
    assert "hours: Kantata sent 10, the record has 7.5" in again.error_message
    assert "(owned by NetSuite)" in again.error_message
    assert TimeEntry.objects.get().hours == Decimal("7.5")
    assert BillingEvent.objects.count() == 1


def test_an_expense_from_a_system_that_may_not_create_expenses_is_refused(systems, engagement):
    factories.ownership_rule("expense", systems["erp"])
    expense = {
        "type": "expense.approved",
        "data": {
            "expense_external_id": "EX-1",
            "resource_external_id": "U-7",
            "project_external_id": "W-42",
            "incurred_on": OCT_31,
            "amount": "120.00",
            "currency": "USD",
        },
    }
    txn = run("time_to_bill", {"source_system": "kantata", "entries": [expense]})
    assert txn.status == "exception"
    assert "Kantata may not create a expense" in txn.error_message or "Kantata may not create an expense" in (
        txn.error_message
    )


def test_a_milestone_amount_changed_by_a_system_that_does_not_own_it_is_a_conflict(systems, engagement):
    factories.ownership_rule("milestone", systems["psa"])
    factories.ownership_rule("milestone", systems["erp"], field="amount")
    milestone = Milestone.objects.create(
        project=engagement["milestone_project"], code="M-1", name="Go-live", amount=Decimal("5000"), currency="USD"
    )
    cross_reference_record(system=systems["psa"], obj=milestone, external_id="M-1")
    data = {
        "milestone_external_id": "M-1",
        "project_external_id": "W-77",
        "name": "Go-live",
        "amount": "9000",
        "currency": "USD",
        "completed_on": OCT_31,
    }
    txn = run("milestone_to_bill", {"source_system": "kantata", "data": data})
    assert txn.status == "exception"
    assert txn.error_class == "ownership_conflict"
    assert "amount: Kantata sent 9000, the record has 5000" in txn.error_message
    milestone.refresh_from_db()
    assert milestone.amount == Decimal("5000")
    assert not BillingEvent.objects.exists()
