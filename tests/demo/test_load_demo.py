"""`manage.py load_demo` brings the demo firm into a migrated database, and running it again changes nothing."""

import datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError
from django.test import Client

from apps.canonical.models import (
    Contract,
    ContractAmendment,
    Customer,
    Expense,
    Invoice,
    LegalEntity,
    Opportunity,
    Payment,
    Project,
    Resource,
    TimeEntry,
)
from apps.core.users import system_user
from apps.demo.services import DEMO_PASSWORD, DEMO_USERS, DemoDataError, demo_data_load

pytestmark = pytest.mark.django_db


DEMO_APPS = {"canonical", "systems", "mapping", "auth"}  # the apps the demo writes to


def _row_counts() -> dict[str, int]:
    """Rows per model of the apps the demo writes to, history models included."""
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.app_label in DEMO_APPS
    }


def _history_rows() -> int:
    return sum(
        model._default_manager.count()
        for model in apps.get_models()
        if model._meta.app_label in DEMO_APPS and model._meta.model_name.startswith("historical")
    )


def test_loading_the_demo_twice_changes_nothing_the_second_time(load_demo):
    first_output = load_demo()
    counts, history = _row_counts(), _history_rows()

    second_output = load_demo()

    assert _row_counts() == counts
    assert _history_rows() == history
    assert "created or changed" in first_output
    assert "already loaded, nothing changed" in second_output


def test_the_demo_firm_has_three_entities_each_with_customers_and_consultants(demo):
    entities = {entity.code: entity for entity in LegalEntity.objects.all()}
    assert {code: entity.currency for code, entity in entities.items()} == {
        "NW-US": "USD",
        "NW-UK": "GBP",
        "NW-DE": "EUR",
    }
    assert entities["NW-US"].tax_region == "US-NY"
    for entity in entities.values():
        assert Customer.objects.filter(legal_entity=entity).exists()
        assert Resource.objects.filter(legal_entity=entity).exists()


def test_the_fabrikam_group_signs_with_one_account_and_is_billed_at_another(demo):
    sold_to = Customer.objects.get(number="C-1001")
    assert sold_to.parent.name == "Fabrikam Group"
    assert sold_to.is_sold_to and not sold_to.is_bill_to
    assert sold_to.invoice_recipient().number == "C-1002"
    invoice = Invoice.objects.get(number="INV-US-2026-0001")
    assert invoice.customer == sold_to.invoice_recipient()
    assert invoice.contract.customer == sold_to


def test_the_demo_covers_every_kind_of_contract_and_one_amendment(demo):
    assert set(Contract.objects.values_list("contract_type", flat=True)) >= {
        "time_and_materials",
        "fixed_fee",
        "milestone",
        "retainer",
    }
    amended = Contract.objects.get(number="K-1001")
    amendment = ContractAmendment.objects.get(contract=amended)
    assert amended.version == amendment.version == 2
    assert amended.total_value == amendment.new_total_value == Decimal("560000.00")
    assert amended.lines.filter(introduced_by=amendment).count() == 1
    assert amended.opportunity.stage == Opportunity.Stage.CLOSED_WON


def test_the_demo_has_work_in_every_state_finance_and_delivery_look_at(demo):
    statuses = set(TimeEntry.objects.values_list("status", flat=True))
    assert {"submitted", "approved", "billed"} <= statuses
    assert Expense.objects.filter(status="approved").exists()
    assert Project.objects.get(code="P-2001").milestones.filter(status="billed").count() == 1


def test_the_uk_invoice_carries_vat_and_is_paid_in_full(demo):
    invoice = Invoice.objects.get(number="INV-UK-2026-0001")
    line = invoice.lines.get()
    assert (line.tax_code, line.tax_rate, line.tax_amount) == ("UK-VAT-S", Decimal("0.2000"), Decimal("9000.00"))
    assert invoice.subtotal + invoice.tax_total == invoice.total == Decimal("54000.00")
    payment = Payment.objects.get(invoice=invoice)
    assert payment.amount == invoice.total
    assert invoice.balance_due == 0


def test_the_invoice_lines_add_up_to_the_billed_time(demo):
    invoice = Invoice.objects.get(number="INV-US-2026-0001")
    billed = TimeEntry.objects.filter(billing_event__invoice=invoice)
    assert sum(entry.hours * entry.bill_rate for entry in billed) == invoice.subtotal
    assert sum(line.amount for line in invoice.lines.all()) == invoice.subtotal


def test_every_demo_record_is_written_by_the_system_user_with_the_load_as_reason(demo):
    row = Customer.objects.get(number="C-1001").history.get()
    assert row.history_user == system_user()
    assert row.history_change_reason == "Demo data load"
    assert row.history_correlation_id


def test_a_record_someone_changed_is_put_back_by_the_next_load(demo, load_demo):
    customer = Customer.objects.get(number="C-2001")
    customer.name = "Renamed by hand"
    customer.save()

    summary = demo_data_load()

    customer.refresh_from_db()
    assert customer.name == "Contoso Pharmaceuticals plc"
    assert summary.changes == 1
    assert customer.history.count() == 3


def test_each_role_has_a_staff_login_with_the_demo_password(demo):
    User = get_user_model()
    for spec in DEMO_USERS:
        user = User.objects.get(username=spec.username)
        assert user.is_staff and user.is_active
        assert user.is_superuser == (spec.username == "admin")
        assert list(user.groups.values_list("name", flat=True)) == ([spec.role] if spec.role else [])
        assert Client().login(username=spec.username, password=DEMO_PASSWORD)


def test_a_demo_login_whose_password_was_changed_gets_the_demo_password_back(demo, load_demo):
    user = get_user_model().objects.get(username="finance")
    user.set_password("something-else")
    user.save()

    load_demo()

    assert Client().login(username="finance", password=DEMO_PASSWORD)


def test_it_refuses_to_load_published_logins_on_a_server_unless_forced(db, load_demo, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only loaded on a developer machine"):
        load_demo()
    assert not Customer.objects.exists()

    load_demo(force=True)
    assert Customer.objects.filter(number="C-1001").exists()


def test_a_reference_to_a_record_that_does_not_exist_is_named(db, tmp_path):
    records = tmp_path / "records.yaml"
    records.write_text(
        "customers:\n  - {number: C-9, name: Lost Ltd, currency: USD, legal_entity: NW-XX}\n",
        encoding="utf-8",
    )
    with pytest.raises(DemoDataError, match="customer C-9 refers to legal entity 'NW-XX', which does not exist"):
        demo_data_load(path=records)
    assert not Customer.objects.exists()


def test_an_invalid_record_is_refused_with_the_models_own_message_and_nothing_is_kept(db, tmp_path):
    records = tmp_path / "records.yaml"
    records.write_text(
        "legal_entities:\n"
        "  - {code: NW-US, name: Northwind, country: US, currency: USD}\n"
        "customers:\n"
        "  - {number: C-1, name: Acme, currency: USD, legal_entity: NW-US}\n"
        "contracts:\n"
        "  - {number: K-1, name: Backwards, customer: C-1, legal_entity: NW-US, contract_type: fixed_fee,\n"
        "     currency: USD, start_date: 2026-05-01, end_date: 2026-04-01}\n",
        encoding="utf-8",
    )
    with pytest.raises(DemoDataError, match="contract K-1 is not valid: end_date: The contract cannot end before"):
        demo_data_load(path=records)
    assert not LegalEntity.objects.exists()


def test_dates_in_the_data_file_become_real_dates(demo):
    entry = TimeEntry.objects.filter(work_date=datetime.date(2026, 2, 3), resource__employee_number="E-1001").get()
    assert entry.hours == Decimal("4")
    assert entry.approved_at.tzinfo is not None
