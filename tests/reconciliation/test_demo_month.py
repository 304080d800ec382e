"""The demo month end to end: injected faults become discrepancies; a second run ages them; a re-run closes one."""

from decimal import Decimal

import pytest

from apps.demo.month_end import ONE_OFF_FEE, inject_reconciliation_faults, reconcile_month, set_erp_customer_active
from apps.demo.scenario import DEALS, drain, project_for, run
from apps.reconciliation.models import Check, Discrepancy
from apps.reconciliation.services import discrepancy_rerun

from ..e2e.conftest import world  # noqa: F401  (the demo firm wired to the sandboxes)

pytestmark = pytest.mark.django_db(transaction=True)


def open_rows() -> dict:
    return {(row.check_type, row.business_key): row for row in Discrepancy.objects.filter(status="open")}


def test_the_months_faults_are_found_age_and_one_closes_after_its_transaction_is_rerun(world, make_user):  # noqa: F811
    finance = make_user("fiona.finance", "finance_ops")
    run(world, inline=True, faults=False)
    inject_reconciliation_faults(world, inline=True)
    first = reconcile_month(world)
    assert first.status == "succeeded", (first.error, first.not_compared)
    globex, initech = project_for(world, DEALS[0]), project_for(world, DEALS[1])
    rows = open_rows()
    by_check = {}
    for (check, key), row in rows.items():
        by_check.setdefault(check, {})[key] = row

    [missing] = by_check[Check.INVOICE_MISSING_IN_ERP].values()
    assert missing.currency == "EUR" and missing.left_amount == ONE_OFF_FEE * Decimal("1.19")  # 19 % German VAT
    assert missing.right_amount is None and missing.legal_entity.code == initech.legal_entity.code

    [tax] = by_check[Check.INVOICE_TAX].values()
    globex_invoice = globex.customer.invoices.get(number=tax.business_key)
    assert (tax.left_amount, tax.right_amount) == (globex_invoice.tax_total, Decimal("0.00"))
    assert tax.left_amount == (globex_invoice.subtotal * Decimal("0.08")).quantize(Decimal("0.01"))

    unbilled = by_check[Check.TIME_UNBILLED][f"{globex.code}:{first.period}"]
    late = globex.time_entries.filter(description__contains="approved late")
    late_value = sum(entry.hours * entry.bill_rate for entry in late)
    assert late.count() == 2 and unbilled.difference == late_value.quantize(Decimal("0.01"))

    no_schedule = by_check[Check.PROJECT_NO_SCHEDULE][initech.code]
    assert no_schedule.detail["missing_in"] == ["billing"] and no_schedule.currency == "EUR"
    assert set(by_check[Check.PROJECT_NO_SCHEDULE]) == {initech.code}  # the demo firm's older projects are fine

    second = reconcile_month(world)
    aged = Discrepancy.objects.get(pk=missing.pk)
    assert (aged.first_seen_run, aged.last_seen_run, aged.status) == (first, second, "open")

    set_erp_customer_active(initech.customer, active=True)  # finance has the customer switched back on
    [txn] = discrepancy_rerun(discrepancy=aged, actor=finance, reason="Customer reactivated in NetSuite")
    assert drain(inline=True, timeout=60)
    txn.refresh_from_db()
    assert txn.status == "completed", txn.error_message
    third = reconcile_month(world)
    closed = Discrepancy.objects.get(pk=missing.pk)
    assert (closed.status, closed.closed_by_run) == ("closed", third)
    assert closed.history.filter(history_change_reason__contains="Customer reactivated").exists()
    assert Discrepancy.objects.get(pk=tax.pk).status == "open"
