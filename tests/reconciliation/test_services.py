"""Runs over time: discrepancies age, close and reopen; partial pulls close nothing; sign-off with four eyes."""

from decimal import Decimal

import pytest

from apps.core.errors import BusinessError
from apps.reconciliation.models import Check, Discrepancy, PeriodSignOff
from apps.reconciliation.services import (
    discrepancy_explain,
    reconciliation_run_request,
    sign_off_approve,
    sign_off_prepare,
)
from apps.sandbox import records
from apps.sandbox.models import SandboxRecord
from apps.sandbox.services import sandbox_faults_set

from .conftest import PERIOD
from .test_checks import reconcile

pytestmark = pytest.mark.django_db(transaction=True)


def erp_tax(number: str, tax: str) -> None:
    record = SandboxRecord.objects.get(kind="erp", object_type="invoice", external_id=number)
    data = dict(record.data)
    data["taxTotal"] = tax
    data["total"] = str(Decimal(data["subtotal"]) + Decimal(tax))
    records.update(record, data)


def test_a_discrepancy_that_persists_ages_then_closes_with_the_run_that_no_longer_finds_it_and_can_reopen(books):
    books.both("INV-1", "EUR", [("1000.00", "190.00")])
    erp_tax("INV-1", "160.00")
    first = reconcile()
    row = Discrepancy.objects.get(check_type=Check.INVOICE_TAX, business_key="INV-1")
    assert row.status == "open" and row.first_seen_run == first and first.summary["opened"] >= 1

    second = reconcile()
    again = Discrepancy.objects.get(pk=row.pk)
    assert again.first_seen_at == row.first_seen_at and again.first_seen_run == first
    assert again.last_seen_run == second and again.last_seen_at > row.last_seen_at
    assert again.days_open == 0 and again.days_past_close > 0
    assert second.summary["still_open"] >= 1 and second.summary["opened"] == 0

    erp_tax("INV-1", "190.00")
    third = reconcile()
    closed = Discrepancy.objects.get(pk=row.pk)
    assert (closed.status, closed.closed_by_run) == ("closed", third)
    assert third.summary["closed"] >= 1

    erp_tax("INV-1", "150.00")
    reconcile()
    reopened = Discrepancy.objects.get(pk=row.pk)
    assert reopened.status == "open" and reopened.times_reopened == 1 and reopened.closed_by_run is None
    assert reopened.right_amount == Decimal("150.00")
    assert Discrepancy.objects.filter(check_type=Check.INVOICE_TAX, business_key="INV-1").count() == 1
    assert reopened.history.count() >= 4


@pytest.mark.parametrize(
    "fault",
    [{"fail_next": 3}, {"throttle_next": 1, "retry_after_seconds": 300}],
    ids=["erp-answers-503", "rate-limit-outlasts-the-run"],
)
def test_a_failed_pull_marks_the_run_partial_raises_nothing_from_it_and_closes_nothing_it_could_not_check(books, fault):
    books.both("INV-1", "EUR", [("1000.00", "190.00")])
    erp_tax("INV-1", "160.00")
    reconcile()
    assert Discrepancy.objects.get(business_key="INV-1").status == "open"

    erp_tax("INV-1", "190.00")  # fixed in ERP, but this time ERP cannot be listed
    books.billing_invoice("INV-2", "USD", [("50.00", "0")])  # would look "missing in ERP"
    sandbox_faults_set("erp", **fault)
    run = reconcile()
    assert run.status == "partial"
    assert [entry["system"] for entry in run.not_compared] == ["netsuite"]
    assert run.not_compared[0]["period"] == PERIOD
    assert Check.INVOICE_TAX in run.not_compared[0]["checks"]
    assert run.not_compared[0]["reason"]
    assert Discrepancy.objects.get(business_key="INV-1").status == "open"
    assert not Discrepancy.objects.filter(business_key="INV-2").exists()


def test_a_listing_with_a_page_missing_is_not_compared(books, monkeypatch):
    from apps.sandbox import erp

    books.both("INV-1", "USD", [("10.00", "0")])
    books.both("INV-2", "USD", [("20.00", "0")])
    real_page = erp.records.page

    def short_page(queryset, *, offset, limit):
        rows, total = real_page(queryset, offset=offset, limit=limit)
        return (
            (rows[1:], total)
            if queryset.model is SandboxRecord and rows and rows[0].object_type == "invoice"
            else (rows, total)
        )

    monkeypatch.setattr(erp.records, "page", short_page)
    run = reconcile()
    assert run.status == "partial"
    assert "page is missing" in run.not_compared[0]["reason"]
    assert not Discrepancy.objects.filter(check_type=Check.INVOICE_MISSING_IN_ERP).exists()


def test_the_preparer_cannot_approve_their_own_period_and_another_person_can(books, make_user):
    preparer = make_user("pat.preparer", "finance_ops")
    approver = make_user("alex.approver", "finance_ops")
    books.both("INV-1", "GBP", [("100.00", "20.00")])
    reconcile()
    sign_off = sign_off_prepare(period=PERIOD, actor=preparer)
    assert sign_off.status == "prepared"
    with pytest.raises(BusinessError, match="another person must approve"):
        sign_off_approve(sign_off=sign_off, actor=preparer)
    approved = sign_off_approve(sign_off=sign_off, actor=approver)
    assert (approved.status, approved.approved_by) == ("approved", approver)
    assert approved.history.first().history_user == approver

    reconcile()  # same figures: the approval stands
    assert PeriodSignOff.objects.get(pk=sign_off.pk).status == "approved"


def test_an_approval_is_voided_when_a_later_run_changes_the_figures(books, make_user):
    preparer = make_user("pat.preparer", "finance_ops")
    approver = make_user("alex.approver", "finance_ops")
    books.both("INV-1", "EUR", [("1000.00", "190.00")])
    reconcile()
    sign_off = sign_off_approve(sign_off=sign_off_prepare(period=PERIOD, actor=preparer), actor=approver)
    erp_tax("INV-1", "100.00")
    later = reconcile()
    voided = PeriodSignOff.objects.get(pk=sign_off.pk)
    assert (voided.status, voided.voided_by_run) == ("voided", later)
    with pytest.raises(BusinessError, match="only a prepared one"):
        sign_off_approve(sign_off=voided, actor=approver)
    assert sign_off_prepare(period=PERIOD, actor=preparer).figures_digest == later.figures_digest


def test_a_partial_run_cannot_be_signed_off(books, make_user):
    books.both("INV-1", "USD", [("10.00", "0")])
    sandbox_faults_set("billing", fail_next=3)
    reconcile()
    with pytest.raises(BusinessError, match="partial reconciliation cannot be signed off"):
        sign_off_prepare(period=PERIOD, actor=make_user("pat.preparer", "finance_ops"))


def test_explaining_a_discrepancy_keeps_it_out_of_the_open_list_until_its_figures_change(books, make_user):
    person = make_user("pat.preparer", "finance_ops")
    books.both("INV-1", "EUR", [("1000.00", "190.00")])
    erp_tax("INV-1", "189.00")
    reconcile()
    row = Discrepancy.objects.get(check_type=Check.INVOICE_TAX)
    with pytest.raises(BusinessError, match="Say why"):
        discrepancy_explain(discrepancy=row, reason=" ", actor=person)
    explained = discrepancy_explain(discrepancy=row, reason="Rounding agreed with the auditors", actor=person)
    assert explained.history.first().history_change_reason == "Explained: Rounding agreed with the auditors"
    reconcile()
    assert Discrepancy.objects.get(pk=row.pk).status == "explained"
    erp_tax("INV-1", "150.00")
    reconcile()
    assert Discrepancy.objects.get(pk=row.pk).status == "open"


def test_a_second_run_of_the_same_scope_is_refused_while_one_is_queued(books):
    reconciliation_run_request(period=PERIOD, trigger="api", actor=None)
    with pytest.raises(BusinessError, match="already queued"):
        reconciliation_run_request(period=PERIOD, trigger="api", actor=None)
    with pytest.raises(BusinessError, match="not an accounting period"):
        reconciliation_run_request(period="2026-13", trigger="api", actor=None)
    with pytest.raises(BusinessError, match="no legal entity 'XX'"):
        reconciliation_run_request(period=PERIOD, legal_entity_code="XX", trigger="api", actor=None)
