"""The console home: money stuck per currency and in the reporting currency, figures linking to their lists."""

import datetime
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.canonical.models import ExchangeRate
from apps.console import health
from apps.reconciliation.models import Check, Discrepancy, ReconciliationRun
from apps.sync.models import Transaction

pytestmark = pytest.mark.django_db


def test_money_stuck_counts_only_open_exceptions_and_converts_with_stored_rates(failing_deal, settings):
    settings.REPORTING_CURRENCY = "USD"
    failing_deal(1, amount="72000", currency="USD")
    failing_deal(2, amount="48000", currency="GBP")
    completed = failing_deal(3, region="EMEA", amount="999999", currency="USD")
    assert completed.status == Transaction.Status.COMPLETED
    ExchangeRate.objects.create(base="GBP", quote="USD", rate=Decimal("1.25"), effective_date=datetime.date(2026, 1, 1))
    stuck = health.money_stuck(today=datetime.date(2026, 12, 7))
    assert {(a.currency, a.amount) for a in stuck.amounts} == {("USD", Decimal("72000")), ("GBP", Decimal("48000"))}
    assert stuck.reported_total == Decimal("132000.00")
    assert stuck.exceptions == 2
    assert "currency=GBP" in next(a.url for a in stuck.amounts if a.currency == "GBP")


def test_a_currency_without_a_stored_rate_is_named_not_guessed(failing_deal, settings):
    settings.REPORTING_CURRENCY = "USD"
    failing_deal(1, amount="1000", currency="EUR")
    stuck = health.money_stuck()
    assert stuck.missing_rates == ["EUR"]
    assert stuck.reported_total == Decimal(0)


def test_finance_ops_home_shows_money_stuck_with_its_currency_and_links_to_the_list(client, finance_user, failing_deal):
    failing_deal(1, amount="72000", currency="USD")
    client.force_login(finance_user)
    body = client.get("/").content.decode()
    assert "USD 72,000.00" in body
    assert "/transactions/?queue=exception" in body
    assert "value map &#x27;region-subsidiary&#x27; has no entry for &#x27;LATAM&#x27;" in body
    assert "Reconciliation" in body


def test_the_home_page_query_count_does_not_grow_with_the_ledger(client, finance_user, failing_deal):
    client.force_login(finance_user)
    failing_deal(1)
    failing_deal(2, region="APAC", currency="GBP")
    cache.clear()  # both measurements compute the 30-day figures the cache keeps between refreshes
    with CaptureQueriesContext(connection) as few:
        client.get("/")
    for n in range(3, 13):
        failing_deal(n, region="APAC" if n % 2 else "LATAM", currency="GBP" if n % 3 else "USD")
    cache.clear()
    with CaptureQueriesContext(connection) as many:
        client.get("/")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_transaction_list_behind_a_figure_uses_the_api_filter(client, finance_user, failing_deal):
    failing_deal(1, amount="72000", currency="USD")
    failing_deal(2, amount="48000", currency="GBP")
    client.force_login(finance_user)
    body = client.get("/transactions/?queue=exception&currency=GBP").content.decode()
    assert "Deal 2" in body and "Deal 1" not in body
    assert "GBP 48,000.00" in body


def test_a_user_without_a_role_is_told_to_ask_for_one(client, outsider):
    client.force_login(outsider)
    assert "no console role yet" in client.get("/").content.decode()


def test_each_role_gets_its_own_first_section(client, integration_admin, steward):
    client.force_login(integration_admin)
    body = client.get("/").content.decode()
    assert body.index('aria-label="Connected systems"') < body.index('aria-label="Money stuck"')
    client.force_login(steward)
    body = client.get("/").content.decode()
    assert body.index('aria-label="Largest exception groups"') < body.index('aria-label="Money stuck"')


def test_the_list_behind_a_figure_shows_completed_transactions_too(client, finance_user, failing_deal):
    failing_deal(1, region="EMEA", amount="5000", currency="USD")
    client.force_login(finance_user)
    body = client.get("/transactions/?queue=completed").content.decode()
    assert "Deal 1" in body and "1 transaction match" in body
    assert "0 transactions of these can be re-run" in body


def test_the_30_day_figures_are_kept_and_refreshed_by_the_task(failing_deal):
    from apps.console.tasks import refresh_home_figures

    cache.clear()
    failing_deal(1)
    refresh_home_figures()
    assert health.history_figures()["failure"]["failed"] == 1
    failing_deal(2)
    assert health.history_figures()["failure"]["failed"] == 1  # kept until the next refresh
    refresh_home_figures()
    assert health.history_figures()["failure"]["failed"] == 2


def _reconciled_month(*, status="partial", not_compared=()):
    now = timezone.now()
    run = ReconciliationRun.objects.create(
        period="2026-11",
        period_start=datetime.date(2026, 11, 1),
        period_end=datetime.date(2026, 11, 30),
        status=status,
        not_compared=list(not_compared),
        started_at=now,
        finished_at=now,
    )
    common = {
        "period": "2026-11",
        "period_close_date": datetime.date(2026, 11, 30),
        "left_system": "billing",
        "right_system": "erp",
        "first_seen_run": run,
        "last_seen_run": run,
        "first_seen_at": now,
        "last_seen_at": now,
        "reporting_currency": "USD",
    }
    Discrepancy.objects.create(
        check_type=Check.INVOICE_MISSING_IN_ERP,
        business_key="INV-1",
        currency="GBP",
        left_amount=Decimal("1000"),
        difference=Decimal("1000"),
        value_at_risk=Decimal("1250.00"),
        description="Invoice INV-1 is in billing but not in ERP",
        **common,
    )
    # A roll-up repeats the same money: it must not be counted twice.
    Discrepancy.objects.create(
        check_type=Check.PERIOD_TOTAL,
        business_key="NW-UK 2026-11 GBP",
        currency="GBP",
        left_amount=Decimal("1000"),
        difference=Decimal("1000"),
        value_at_risk=Decimal("1250.00"),
        description="Period totals differ",
        **common,
    )
    return run


def test_the_home_page_shows_open_discrepancies_in_the_reporting_currency_without_roll_ups(
    client, finance_user, settings
):
    settings.REPORTING_CURRENCY = "USD"
    _reconciled_month(not_compared=[{"system": "erp", "period": "2026-11", "checks": [], "reason": "HTTP 503"}])
    client.force_login(finance_user)
    body = client.get("/").content.decode()
    assert "Open discrepancies" in body
    assert "USD 1,250.00 at risk" in body
    assert "not compared: erp" in body
    assert "Sign-off 2026-11" in body and "Not prepared" in body


def test_without_a_reconciliation_the_home_page_says_figures_come_once_it_runs(client, finance_user):
    client.force_login(finance_user)
    assert "appear here once reconciliation runs" in client.get("/").content.decode()


def test_a_discrepancy_ages_from_when_it_was_first_found_and_says_how_far_past_its_close(client, finance_user):
    run = _reconciled_month(status="succeeded")
    Discrepancy.objects.update(
        first_seen_at=timezone.now() - datetime.timedelta(days=10)
    )  # set-up only: no history wanted
    figures = {figure["label"]: figure for figure in health.reconciliation_figures(finance_user)}
    oldest = figures["Oldest open discrepancy"]
    assert oldest["value"] == "10 d"
    closed_days = (timezone.localdate() - datetime.date(2026, 11, 30)).days
    if closed_days > 0:
        assert f"{closed_days} d past the close of its period (2026-11-30)" in oldest["sub"]
    assert figures[f"Last reconciliation ({run.period})"]["value"] == "Succeeded"
