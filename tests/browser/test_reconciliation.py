"""In a real browser: finance reads a discrepancy's amounts, explains one, prepares the period; a colleague approves."""

import pytest

from apps.reconciliation.models import Check, Discrepancy, PeriodSignOff
from tests import factories
from tests.console.test_reconciliation import discrepancy, finished_run

from .conftest import PASSWORD, SCREENSHOTS

pytestmark = pytest.mark.browser


@pytest.fixture
def console(browser, site_url):
    context = browser.new_context(base_url=site_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    context.close()


def log_in(tab, user):
    tab.context.clear_cookies()
    tab.goto("/login/")
    tab.fill("#id_username", user.username)
    tab.fill("#id_password", PASSWORD)
    tab.click("main button[type=submit]")
    tab.wait_for_selector("header .who .user")


def test_finance_explains_a_discrepancy_and_a_colleague_approves_the_sign_off(
    console, site_url, settings, finance_user, make_user
):
    settings.REPORTING_CURRENCY = "USD"
    entity = factories.legal_entity("NW-UK", currency="GBP", country="GB", name="Northwind UK Ltd")
    run = finished_run(entity)
    discrepancy(
        run,
        Check.INVOICE_MISSING_IN_ERP,
        "INV-2026-1107",
        left="12000.00",
        right=None,
        at_risk="15120.00",
        days_open=3,
        detail={"invoice": "INV-2026-1107", "customer": "C-00042"},
    )
    tax = discrepancy(run, Check.INVOICE_TAX, "INV-2026-1112", left="2400.00", right="2160.00", at_risk="302.40")
    discrepancy(run, Check.PERIOD_TOTAL, "NW-UK:2026-11:GBP", left="64400.00", right="52160.00", at_risk="15422.40")
    controller = make_user("carla.controller", "finance_ops", first_name="Carla", last_name="Controller")

    log_in(console, finance_user)
    console.click("nav.main >> text=Reconciliation")
    console.wait_for_selector("table.discrepancies")
    row = console.locator("table.discrepancies tr[data-key='INV-2026-1112']")
    text = row.inner_text()
    assert "GBP 2,400.00" in text and "GBP 2,160.00" in text and "GBP 240.00" in text and "USD 302.40" in text
    assert "USD 15,422.40" in console.inner_text("#by-check")  # 15,120.00 + 302.40; the period total not added
    console.screenshot(path=str(SCREENSHOTS / "reconciliation.png"), full_page=True)

    row.locator("summary", has_text="Explain").click()
    row.locator("input[name=reason]").first.fill("Tax rounding agreed with the auditors")
    row.locator("button", has_text="Mark explained").click()
    console.wait_for_selector("ul.messages >> text=marked explained")
    tax.refresh_from_db()
    assert tax.status == Discrepancy.Status.EXPLAINED
    assert console.locator("table.discrepancies tr[data-key='INV-2026-1112']").count() == 0  # open ones only

    form = console.locator("form[aria-label='Prepare sign-off']")
    form.locator("input[name=period]").fill("2026-11")
    form.locator("select[name=legal_entity]").select_option("NW-UK")
    form.locator("button").click()
    console.wait_for_selector("text=You prepared this reconciliation; another person must approve it.")

    log_in(console, controller)
    console.goto("/reconciliation/#sign-off")
    console.locator("table.sign-offs button", has_text="Approve").click()
    console.wait_for_selector("table.sign-offs .badge.approved")
    console.screenshot(path=str(SCREENSHOTS / "reconciliation-approved.png"), full_page=True)
    sign_off = PeriodSignOff.objects.get()
    assert sign_off.status == PeriodSignOff.Status.APPROVED and sign_off.approved_by == controller
    assert sign_off.prepared_by == finance_user
