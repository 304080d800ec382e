"""Each metric's figure on hand-built data with two legal entities and several currencies."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.canonical.models import Opportunity, Project
from apps.core.context import system_context
from apps.core.errors import BusinessError
from apps.metrics import selectors
from apps.metrics.models import MetricValue
from apps.metrics.periods import Period
from apps.metrics.services import metric_values_compute
from tests import factories

from . import builders as b

pytestmark = pytest.mark.django_db
D = Decimal
days = datetime.timedelta


def compute(period: Period, *metrics):
    with system_context("test"):
        metric_values_compute(periods=[period], metrics=list(metrics) or None, reason="test computation")


def figures(metric: str, period: Period) -> dict:
    """{(entity code or 'firm', currency): (value, sample size)} of the current figures."""
    return {
        (v.legal_entity.code if v.legal_entity_id else "firm", v.currency): (v.value, v.sample_size)
        for v in selectors.metric_value_list().filter(metric=metric, period=period.start)
    }


def test_wip_is_approved_unbilled_time_and_expenses_per_entity_and_currency():
    uk, us = b.entities()
    p = b.last_month()
    uk_project = b.project_in(uk, "GBP")
    us_project = b.project_in(us, "USD")
    b.time_entry(uk_project, hours=10, rate=150, work_date=p.start + days(2))  # 1500 GBP unbilled
    later = b.time_entry(uk_project, hours=5, rate=100, work_date=p.start + days(3))
    b.billed(later, b.invoice(uk_project, issued=p.end + days(3), subtotal=500))  # invoiced after the month: still WIP
    inside = b.time_entry(uk_project, hours=4, rate=100, work_date=p.start + days(3))
    b.billed(inside, b.invoice(uk_project, issued=p.end, subtotal=400))  # invoiced within the month: not WIP
    voided = b.time_entry(uk_project, hours=1, rate=100, work_date=p.start)
    b.billed(voided, b.invoice(uk_project, issued=p.start, subtotal=100, status="void"))  # void invoice: WIP again
    b.time_entry(uk_project, hours=3, rate=100, work_date=p.start, status="submitted")  # not approved
    b.time_entry(uk_project, hours=3, rate=100, work_date=p.start, billable=False)  # not billable
    b.time_entry(uk_project, hours=3, rate=100, work_date=p.end + days(1))  # worked after the month
    b.expense(uk_project, amount="120.00", currency="GBP", incurred_on=p.start + days(4))
    b.time_entry(uk_project, hours=2, rate=200, currency="EUR", work_date=p.start)  # a EUR-priced entry
    b.time_entry(us_project, hours=8, rate="125.50", work_date=p.start + days(1))

    compute(p, "wip")

    assert figures("wip", p) == {
        ("NW-UK", "GBP"): (D("2220.0000"), 4),  # 1500 + 500 + 100 + 120
        ("NW-UK", "EUR"): (D("400.0000"), 1),
        ("NW-US", "USD"): (D("1004.0000"), 1),
    }


def test_backlog_is_contracted_value_not_yet_billed_never_below_zero():
    uk, us = b.entities()
    p = b.last_month()
    uk_project = b.project_in(uk, "GBP", contract_fields={"total_value": D("10000"), "status": "active"})
    b.invoice(uk_project, issued=p.start + days(5), subtotal=2500, tax=500)
    b.invoice(uk_project, issued=p.end + days(1), subtotal=1000)  # after the month
    b.invoice(uk_project, issued=p.start, subtotal=500, status="void")
    over = b.project_in(us, "USD", contract_fields={"total_value": D("5000"), "status": "active"})
    b.invoice(over, issued=p.start, subtotal=6000)  # over-billed: counts as zero, not minus 1000
    b.project_in(us, "USD", contract_fields={"total_value": D("3000"), "status": "active"})
    b.project_in(us, "USD", contract_fields={"total_value": D("9999"), "status": "draft"})  # not active
    b.project_in(
        us, "USD", contract_fields={"total_value": D("7777"), "status": "active", "start_date": p.end + days(5)}
    )

    compute(p, "backlog")

    assert figures("backlog", p) == {
        ("NW-UK", "GBP"): (D("7500.0000"), 1),
        ("NW-US", "USD"): (D("3000.0000"), 2),
    }


def test_dso_is_receivables_over_the_months_sales_times_its_days():
    uk, us = b.entities()
    p = b.last_month()
    uk_project = b.project_in(uk, "GBP")
    in_month = b.invoice(uk_project, issued=p.start + days(2), subtotal=2500, tax=500)  # 3000 sold in the month
    earlier = b.invoice(uk_project, issued=p.previous().start, subtotal=1200)
    b.payment(earlier, amount=1200, received_on=p.start + days(1))
    b.payment(in_month, amount=1000, received_on=p.start + days(10))
    b.payment(in_month, amount=500, received_on=p.end + days(2))  # after the month: still receivable then
    b.payment(in_month, amount=700, received_on=p.start + days(3), status="reversed")
    b.invoice(uk_project, issued=p.start, subtotal=9000, status="void")
    eur = b.invoice(uk_project, issued=p.start, subtotal=400, currency="EUR")
    b.payment(eur, amount=100, received_on=p.start)
    us_project = b.project_in(us, "USD")
    b.invoice(us_project, issued=p.start, subtotal=10000)

    compute(p, "dso")

    month_days = (p.end - p.start).days + 1
    result = figures("dso", p)
    # receivable 3000 + 1200 - 1200 - 1000 = 2000 of 3000 sold
    assert result[("NW-UK", "GBP")] == ((D(2000) / D(3000) * month_days).quantize(D("0.0001")), 1)
    assert result[("NW-UK", "EUR")] == ((D(300) / D(400) * month_days).quantize(D("0.0001")), 1)
    assert result[("NW-US", "USD")] == (D(month_days), 1)


def test_invoice_lag_averages_days_from_billing_event_to_invoice_per_entity():
    uk, us = b.entities()
    p = b.last_month()
    uk_project, us_project = b.project_in(uk, "GBP"), b.project_in(us, "USD")
    uk_invoice = b.invoice(uk_project, issued=p.start + days(11), subtotal=300)
    b.billing_event(uk_project, event_date=p.start + days(1), amount=100, inv=uk_invoice)  # 10 days
    b.billing_event(uk_project, event_date=p.start + days(5), amount=200, inv=uk_invoice)  # 6 days
    b.billing_event(uk_project, event_date=p.start, amount=50)  # not invoiced
    void = b.invoice(uk_project, issued=p.start + days(20), subtotal=50, status="void")
    b.billing_event(uk_project, event_date=p.start, amount=50, inv=void)
    us_invoice = b.invoice(us_project, issued=p.start + days(6), subtotal=100)
    b.billing_event(us_project, event_date=p.start + days(2), amount=100, inv=us_invoice)

    compute(p, "invoice_lag")

    assert figures("invoice_lag", p) == {("NW-UK", ""): (D("8.0000"), 2), ("NW-US", ""): (D("4.0000"), 1)}


def test_time_to_bill_averages_days_from_approval_to_invoice():
    uk, us = b.entities()
    p = b.last_month()
    uk_project = b.project_in(uk, "GBP")
    invoice = b.invoice(uk_project, issued=p.start + days(8), subtotal=100)
    approved_before = p.start_at() - days(2) + datetime.timedelta(hours=10)
    first = b.time_entry(uk_project, hours=1, rate=50, work_date=p.start - days(3), approved_at=approved_before)
    second = b.time_entry(uk_project, hours=1, rate=50, work_date=p.start, approved_at=p.start_at() + days(1))
    b.billed(first, invoice)  # 10 days
    b.billed(second, invoice)  # 7 days
    b.time_entry(uk_project, hours=1, rate=50, work_date=p.start, approved_at=p.start_at())  # not billed yet

    compute(p, "time_to_bill")

    assert figures("time_to_bill", p) == {("NW-UK", ""): (D("8.5000"), 2)}


def test_project_activation_time_counts_from_closed_won_to_first_active():
    uk, us = b.entities()
    today = timezone.localdate()
    period = Period.of(today)

    def won_project(entity, closed_days_ago, **fields):
        customer = factories.customer(legal_entity=entity)
        opportunity = Opportunity.objects.create(
            number=f"OPP-{customer.number}",
            name="Deal",
            customer=customer,
            legal_entity=entity,
            stage=fields.pop("stage", Opportunity.Stage.CLOSED_WON),
            close_date=today - days(closed_days_ago),
            currency="USD",
        )
        contract = factories.contract(customer=customer, opportunity=opportunity)
        return factories.project(contract=contract, **fields)

    won_project(uk, 12)
    planned = won_project(uk, 4, status=Project.Status.PLANNED)
    planned.status = Project.Status.ACTIVE
    planned.save()
    won_project(us, 20)
    won_project(us, 50, stage=Opportunity.Stage.OPEN)  # not closed won
    won_project(us, 30, status=Project.Status.PLANNED)  # never active

    compute(period, "project_activation_time")

    assert figures("project_activation_time", period) == {
        ("NW-UK", ""): (D("8.0000"), 2),
        ("NW-US", ""): (D("20.0000"), 1),
    }


def test_sync_failure_rate_is_the_share_of_transactions_that_became_exceptions():
    uk, us = b.entities()
    now = timezone.now()
    uk_project = b.project_in(uk, "GBP")
    us_invoice = b.invoice(b.project_in(us, "USD"), issued=timezone.localdate(), subtotal=100)
    about_uk = {"subject_type": "project", "subject_id": uk_project.pk}
    b.ledger_transaction(status="completed", **about_uk)
    b.ledger_transaction(status="resolved", exception_at=now, resolved_at=now, **about_uk)  # a failure, fixed since
    b.ledger_transaction(status="completed", subject_type="invoice", subject_id=us_invoice.pk)
    b.ledger_transaction(status="completed", subject_type="time_entry", subject_id=999_999)  # subject unknown
    b.ledger_transaction(status="pending")
    period = Period.of(timezone.localdate())

    compute(period, "sync_failure_rate")

    assert figures("sync_failure_rate", period) == {
        ("NW-UK", ""): (D("50.0000"), 2),
        ("NW-US", ""): (D("0.0000"), 1),
        ("firm", ""): (D("20.0000"), 5),
    }


def test_exception_aging_averages_the_age_of_exceptions_open_at_the_months_end():
    uk, _ = b.entities()
    customer = factories.customer(legal_entity=uk)
    p = b.last_month()
    end = p.end_at()
    b.ledger_transaction(
        status="exception", exception_at=end - days(4), subject_type="customer", subject_id=customer.pk
    )
    b.ledger_transaction(status="resolved", exception_at=end - days(2), resolved_at=end - days(1))  # fixed in time
    b.ledger_transaction(status="resolved", exception_at=end - days(6), resolved_at=timezone.now())  # fixed later
    b.ledger_transaction(status="exception", exception_at=end + days(1))  # not yet an exception then

    compute(p, "exception_aging")

    assert figures("exception_aging", p) == {("NW-UK", ""): (D("4.0000"), 1), ("firm", ""): (D("5.0000"), 2)}


def test_unreconciled_value_sums_open_discrepancies_value_at_risk_per_entity():
    uk, us = b.entities()
    p = b.last_month()
    b.discrepancy(entity=uk, period=p, value_at_risk="1200.50")
    b.discrepancy(entity=uk, period=p, value_at_risk="300.25")
    b.discrepancy(entity=uk, period=p, value_at_risk="999", status="explained")
    b.discrepancy(entity=us, period=p, value_at_risk="80")
    b.discrepancy(entity=us, period=p.previous(), value_at_risk="5000")  # another month
    b.discrepancy(entity=uk, period=p, value_at_risk="1500.75", check="period_total")  # restates the two above

    compute(p, "unreconciled_value")

    assert figures("unreconciled_value", p) == {
        ("NW-UK", "USD"): (D("1500.7500"), 2),
        ("NW-US", "USD"): (D("80.0000"), 1),
    }


def test_a_new_computation_is_a_new_snapshot_and_a_figure_that_fell_away_disappears():
    uk, _ = b.entities()
    p = b.last_month()
    project = b.project_in(uk, "GBP")
    entry = b.time_entry(project, hours=1, rate=100, work_date=p.start)
    compute(p, "wip")
    assert figures("wip", p) == {("NW-UK", "GBP"): (D("100.0000"), 1)}

    b.billed(entry, b.invoice(project, issued=p.start + days(1), subtotal=100))
    compute(p, "wip")

    assert figures("wip", p) == {}
    assert MetricValue.objects.filter(metric="wip").count() == 1  # the old figure is kept as history
    history = MetricValue.history.get()
    assert history.history_user.username == "integration-system"
    assert history.history_change_reason == "test computation"


def test_period_rejects_what_is_not_a_month():
    with pytest.raises(BusinessError, match="not a month"):
        Period.parse("November")


def test_computing_costs_the_same_queries_for_ten_records_or_fifty():
    """The database aggregates: the query count does not grow with the records behind the figures."""
    uk, us = b.entities()
    p = b.last_month()

    def month_of_work(count):
        for entity, currency in ((uk, "GBP"), (us, "USD")):
            project = b.project_in(entity, currency, contract_fields={"total_value": D("100000"), "status": "active"})
            resource = factories.resource(legal_entity=entity)
            inv = b.invoice(project, issued=p.start + days(9), subtotal=100)
            for n in range(count):
                entry = b.time_entry(project, hours=1, rate=100, work_date=p.start, resource=resource)
                if n % 2:
                    b.billed(entry, inv)

    def queries_for_a_computation() -> int:
        with CaptureQueriesContext(connection) as captured:
            compute(p)
        return len(captured.captured_queries)

    month_of_work(5)
    small = queries_for_a_computation()
    month_of_work(20)
    large = queries_for_a_computation()

    assert large == small
