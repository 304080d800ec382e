"""Each check against the sandbox billing platform and ERP, in several currencies, with tolerances."""

from decimal import Decimal

import pytest

from apps.reconciliation.models import Check, Discrepancy, ReconciliationRun
from apps.reconciliation.services import reconciliation_run_execute, reconciliation_run_request

from .conftest import PERIOD

pytestmark = pytest.mark.django_db(transaction=True)


def reconcile(period=PERIOD, entity=None) -> ReconciliationRun:
    run = reconciliation_run_request(period=period, legal_entity_code=entity, trigger="command", actor=None)
    return reconciliation_run_execute(run_id=run.pk)


def open_discrepancies(check=None):
    rows = Discrepancy.objects.filter(status="open")
    return rows.filter(check_type=check) if check else rows


def test_books_that_agree_in_three_currencies_raise_nothing(books):
    books.both("INV-1", "USD", [("1000.00", "80.00"), ("250.00", "20.00")])
    books.both("INV-2", "GBP", [("5000.00", "1000.00")], payments=[("txn_a", "6000.00")])
    books.both("INV-3", "EUR", [("20000.00", "3800.00")])
    run = reconcile()
    assert run.status == "succeeded", run.error
    assert list(open_discrepancies().values_list("check_type", "business_key")) == []
    assert run.pulled["chargebee"]["invoices"] == 3 and run.pulled["netsuite"]["lines"] == 4
