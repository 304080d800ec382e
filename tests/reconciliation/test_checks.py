"""Each check against the sandbox billing platform and ERP, in several currencies, with tolerances."""

import datetime
from decimal import Decimal

import pytest

from apps.canonical.models import BillingEvent, BillingSchedule, TimeEntry
from apps.mapping.models import CrossReference
from apps.reconciliation.models import Check, Discrepancy, ReconciliationRun
from apps.reconciliation.services import reconciliation_run_execute, reconciliation_run_request
from apps.sandbox import records

from .. import factories
from .conftest import DAY, PERIOD

pytestmark = pytest.mark.django_db(transaction=True)


def reconcile(period=PERIOD, entity=None) -> ReconciliationRun:
    run = reconciliation_run_request(period=period, legal_entity_code=entity, trigger="command", actor=None)
    return reconciliation_run_execute(run_id=run.pk)


def found(check=None) -> dict:
    rows = Discrepancy.objects.filter(status="open")
    if check:
        rows = rows.filter(check_type=check)
    return {row.business_key: row for row in rows}


def test_books_that_agree_in_three_currencies_raise_nothing(books):
    books.both("INV-1", "USD", [("1000.00", "80.00"), ("250.00", "20.00")])
    books.both("INV-2", "GBP", [("5000.00", "1000.00")], payments=[("txn_a", "6000.00")])
    books.both("INV-3", "EUR", [("20000.00", "3800.00")])
    run = reconcile()
    assert run.status == "succeeded", run.error
    assert found() == {}
    assert run.pulled["chargebee"]["invoices"] == 3 and run.pulled["netsuite"]["lines"] == 4
    assert run.progress == 100 and run.duration is not None


def test_an_invoice_missing_on_either_side_is_raised_with_its_amount_and_value_at_risk(books):
    books.billing_invoice("INV-10", "GBP", [("1000.00", "200.00")])
    books.erp_invoice("INV-11", "EUR", [("500.00", "95.00")])
    books.both("INV-12", "USD", [("10.00", "0.80")])
    reconcile()
    missing_in_erp = found(Check.INVOICE_MISSING_IN_ERP)["INV-10"]
    assert (missing_in_erp.left_amount, missing_in_erp.right_amount) == (Decimal("1200.00"), None)
    assert missing_in_erp.currency == "GBP" and missing_in_erp.difference == Decimal("1200.00")
    assert missing_in_erp.value_at_risk == Decimal("1512.00")  # 1,200 GBP at 1.26
    assert missing_in_erp.reporting_currency == "USD"
    assert missing_in_erp.legal_entity.code == "NW-UK" and missing_in_erp.period == PERIOD
    missing_in_billing = found(Check.INVOICE_MISSING_IN_BILLING)["INV-11"]
    assert (missing_in_billing.left_amount, missing_in_billing.right_amount) == (None, Decimal("595.00"))
    assert missing_in_billing.difference == Decimal("-595.00")
    assert missing_in_billing.value_at_risk == Decimal("648.55")  # 595 EUR at 1.09
    assert "INV-12" not in found()


def test_tax_and_net_differences_count_only_beyond_the_currency_tolerance(books, settings):
    settings.RECONCILIATION_TOLERANCES = {
        "*": {"line": "0.01", "document": "0.05"},
        "JPY": {"line": "1", "document": "5"},
    }
    books.billing_invoice("INV-20", "EUR", [("1000.00", "190.00")])
    books.erp_invoice("INV-20", "EUR", [("1000.00", "160.00")])  # ERP used another tax code
    books.billing_invoice("INV-21", "USD", [("100.00", "8.05")])
    books.erp_invoice("INV-21", "USD", [("100.00", "8.00")])  # 0.05: within the document tolerance
    books.billing_invoice("INV-22", "JPY", [("120000", "12000")])
    books.erp_invoice("INV-22", "JPY", [("120004", "12000")])  # 4 yen: within JPY's tolerance
    books.billing_invoice("INV-23", "GBP", [("700.00", "140.00")])
    books.erp_invoice("INV-23", "GBP", [("690.00", "140.00")])
    reconcile()
    tax = found(Check.INVOICE_TAX)
    assert set(tax) == {"INV-20"}
    assert (tax["INV-20"].left_amount, tax["INV-20"].right_amount, tax["INV-20"].difference) == (
        Decimal("190.00"),
        Decimal("160.00"),
        Decimal("30.00"),
    )
    assert tax["INV-20"].value_at_risk == Decimal("32.70")
    net = found(Check.INVOICE_TOTAL)
    assert set(net) == {"INV-23"} and net["INV-23"].difference == Decimal("10.00")

    settings.RECONCILIATION_TOLERANCES = {"*": {"line": "0.01", "document": "0.01"}}
    reconcile()
    assert set(found(Check.INVOICE_TAX)) == {"INV-20", "INV-21"}
    assert "INV-22/1" in found(Check.INVOICE_LINE)


def test_lines_that_offset_each_other_are_raised_per_line_not_per_document(books):
    books.billing_invoice("INV-30", "USD", [("500.00", "0"), ("300.00", "0")])
    books.erp_invoice("INV-30", "USD", [("505.00", "0"), ("295.00", "0")])
    reconcile()
    lines = found(Check.INVOICE_LINE)
    assert {key: row.difference for key, row in lines.items()} == {
        "INV-30/1": Decimal("-5.00"),
        "INV-30/2": Decimal("5.00"),
    }
    assert found(Check.INVOICE_TOTAL) == {}


def test_period_totals_per_legal_entity_and_currency(books):
    books.both("INV-40", "USD", [("1000.00", "0")])
    books.billing_invoice("INV-41", "USD", [("400.00", "0")])
    books.erp_invoice("INV-42", "GBP", [("250.00", "50.00")])
    reconcile()
    totals = found(Check.PERIOD_TOTAL)
    assert totals[f"NW-US:{PERIOD}:USD"].left_amount == Decimal("1400.00")
    assert totals[f"NW-US:{PERIOD}:USD"].right_amount == Decimal("1000.00")
    assert (totals[f"NW-UK:{PERIOD}:GBP"].left_amount, totals[f"NW-UK:{PERIOD}:GBP"].right_amount) == (
        Decimal("0.00"),
        Decimal("300.00"),
    )


def test_ar_open_balance_per_customer_compares_erp_with_billing_and_with_the_console(books):
    books.both("INV-50", "USD", [("1000.00", "80.00")])
    books.billing_invoice("INV-51", "EUR", [("200.00", "38.00")])
    books.erp_invoice("INV-51", "EUR", [("200.00", "38.00")], paid=Decimal("100.00"))
    books.console_invoice("INV-51", "EUR", "238.00", paid=Decimal("100.00"), status="partially_paid")
    books.console_invoice("INV-52", "USD", "99.00")  # the console thinks it is owed, ERP never got it
    reconcile()
    ar = found(Check.AR_BALANCE)
    eur = books.customers["EUR"].number
    usd = books.customers["USD"].number
    assert (ar[f"{eur}:EUR:erp-vs-billing"].left_amount, ar[f"{eur}:EUR:erp-vs-billing"].right_amount) == (
        Decimal("138.00"),
        Decimal("238.00"),
    )
    assert f"{eur}:EUR:erp-vs-console" not in ar
    assert ar[f"{usd}:USD:erp-vs-console"].difference == Decimal("-99.00")
    assert f"{usd}:USD:erp-vs-billing" not in ar


def test_one_payment_settling_several_invoices_and_instalments_are_compared_per_invoice(books):
    # One bank payment settles two GBP invoices, in billing and in ERP alike.
    a = books.erp_invoice("INV-60", "GBP", [("100.00", "20.00")], paid=Decimal("120.00"))
    b = books.erp_invoice("INV-61", "GBP", [("200.00", "40.00")], paid=Decimal("240.00"))
    books.billing_invoice("INV-60", "GBP", [("100.00", "20.00")], payments=[("txn_one", "120.00")])
    books.billing_invoice("INV-61", "GBP", [("200.00", "40.00")], payments=[("txn_one", "240.00")])
    books.erp_payment([(a, "120.00"), (b, "240.00")])
    # An EUR invoice paid in three instalments in billing; ERP received only two of them.
    c = books.erp_invoice("INV-62", "EUR", [("900.00", "0")], paid=Decimal("600.00"))
    books.billing_invoice(
        "INV-62", "EUR", [("900.00", "0")], payments=[("txn_i1", "300.00"), ("txn_i2", "300.00"), ("txn_i3", "300.00")]
    )
    books.erp_payment([(c, "300.00")])
    books.erp_payment([(c, "300.00")])
    reconcile()
    payments = found(Check.PAYMENT_APPLIED)
    assert set(payments) == {"INV-62"}
    row = payments["INV-62"]
    assert (row.left_amount, row.right_amount, row.difference) == (
        Decimal("900.00"),
        Decimal("600.00"),
        Decimal("300.00"),
    )
    assert row.value_at_risk == Decimal("327.00")
    assert len(row.detail["applications"]) == 5


def test_unbilled_and_twice_billed_time_per_project_and_period(books):
    entity = factories.legal_entity("NW-US", currency="USD")

    def project(code, currency="USD", kind="time_and_materials"):
        customer = books.customer(currency)
        contract = factories.contract(currency=currency, customer=customer, contract_type=kind)
        return factories.project(code=code, contract=contract, currency=currency)

    unbilled, twice, gbp, fixed = (
        project("P-UNBILLED"),
        project("P-TWICE"),
        project("P-GBP", "GBP"),
        project("P-FIXED", kind="fixed_fee"),
    )
    person = factories.resource(legal_entity=entity)
    for item, hours, rate in ((unbilled, "10", "200"), (twice, "5", "150"), (gbp, "8", "180"), (fixed, "9", "100")):
        TimeEntry.objects.create(
            resource=person,
            project=item,
            work_date=DAY,
            hours=Decimal(hours),
            status="approved",
            bill_rate=Decimal(rate),
            currency=item.currency,
        )

    def charge(item, amount) -> str:
        event = BillingEvent.objects.create(
            project=item,
            source="time",
            event_date=DAY,
            description="time",
            unit_price=Decimal(amount),
            amount=Decimal(amount),
            currency=item.currency,
            status="sent",
        )
        return f"BE-{event.pk}"

    first_half = charge(unbilled, "500.00")
    charge(unbilled, "1500.00")  # sent to billing, never invoiced
    twice_ref = charge(twice, "750.00")
    gbp_ref = charge(gbp, "1440.00")
    books.billing_invoice("INV-T1", "USD", [("500.00", "40.00", first_half), ("750.00", "60.00", twice_ref)])
    books.billing_invoice("INV-T2", "USD", [("750.00", "60.00", twice_ref)])  # the same charge invoiced again
    books.billing_invoice("INV-T3", "GBP", [("1440.00", "288.00", gbp_ref)])
    reconcile()
    unbilled_rows = found(Check.TIME_UNBILLED)
    assert set(unbilled_rows) == {f"P-UNBILLED:{PERIOD}"}
    row = unbilled_rows[f"P-UNBILLED:{PERIOD}"]
    assert (row.left_amount, row.right_amount, row.difference) == (
        Decimal("2000.00"),
        Decimal("500.00"),
        Decimal("1500.00"),
    )
    assert row.left_system == "psa" and row.right_system == "billing"
    twice_rows = found(Check.TIME_BILLED_TWICE)
    assert set(twice_rows) == {f"P-TWICE:{PERIOD}"}
    assert (twice_rows[f"P-TWICE:{PERIOD}"].right_amount, twice_rows[f"P-TWICE:{PERIOD}"].difference) == (
        Decimal("1500.00"),
        Decimal("-750.00"),
    )


def test_active_projects_without_schedule_and_invoices_never_posted(books):
    entity = factories.legal_entity("NW-US", currency="USD")
    project = factories.project(code="P-NOSCHED", legal_entity=entity, budget_amount=Decimal("48000"))
    for code, status in (("P-OK", "active"), ("P-CANCELLED", "cancelled"), ("P-LEGACY", None)):
        scheduled = factories.project(code=code, legal_entity=entity, budget_amount=Decimal("1000"))
        schedule = BillingSchedule.objects.create(
            project=scheduled, billing_method="fixed_fee", start_date=DAY, currency="USD", status="active"
        )
        if status is None:
            continue  # set up before the console: billing is not expected to have it
        data = {"project_ref": code, "status": status, "currency_code": "USD"}
        records.create("billing", "billing_schedule", data, internal_id=f"BS-{code}")
        CrossReference.objects.create(
            system=books.billing, object_type="billing_schedule", object_id=schedule.pk, external_id=f"BS-{code}"
        )
    books.console_invoice("INV-70", "USD", "640.00", status="draft")
    books.billing_invoice("INV-71", "GBP", [("80.00", "16.00")], status="pending")
    reconcile()
    no_schedule = found(Check.PROJECT_NO_SCHEDULE)
    assert set(no_schedule) == {project.code, "P-CANCELLED"}
    assert no_schedule[project.code].left_amount == Decimal("48000.00")
    assert no_schedule[project.code].detail["missing_in"] == ["the console", "billing"]
    assert no_schedule["P-CANCELLED"].detail["missing_in"] == ["billing"]
    assert "billing shows it cancelled" in no_schedule["P-CANCELLED"].description
    not_posted = found(Check.INVOICE_NOT_POSTED)
    assert set(not_posted) == {"INV-70", "INV-71"}
    assert not_posted["INV-71"].value_at_risk == Decimal("120.96")
    assert "INV-71" not in found(Check.INVOICE_MISSING_IN_ERP)


def test_a_cross_reference_to_an_invoice_the_erp_does_not_have_is_raised(books):
    books.both("INV-80", "USD", [("100.00", "0")])
    invoice = books.console_invoice("INV-81", "USD", "55.00")
    CrossReference.objects.create(system=books.erp, object_type="invoice", object_id=invoice.pk, external_id="99999")
    reconcile()
    dangling = found(Check.DANGLING_XREF)
    assert set(dangling) == {"netsuite:invoice:99999"}
    assert dangling["netsuite:invoice:99999"].left_amount == Decimal("55.00")


def test_a_run_for_one_legal_entity_compares_only_that_entity(books):
    books.billing_invoice("INV-90", "GBP", [("10.00", "2.00")])
    books.billing_invoice("INV-91", "USD", [("10.00", "0")])
    run = reconcile(entity="NW-UK")
    assert run.legal_entity.code == "NW-UK"
    assert set(found(Check.INVOICE_MISSING_IN_ERP)) == {"INV-90"}
    assert datetime.date(2026, 11, 30) == Discrepancy.objects.get(business_key="INV-90").period_close_date
