"""In a real browser at 1400×900: finance ops sees the money stuck on the console home, opens the largest
exception group, follows its fix link; the steward adds the missing value map entry, re-runs the whole group
and watches it complete."""

import pytest

from apps.sync.batches import rerun_batch_process
from apps.sync.engine import run_due_steps
from apps.sync.models import ExceptionGroup, RerunBatch, Transaction
from tests.browser.conftest import sign_in
from tests.console.conftest import RegionFlow, failing_deal, region_map  # noqa: F401  (workflow and fixtures)

pytestmark = pytest.mark.browser


def test_finance_sees_money_stuck_and_the_steward_fixes_the_whole_group(
    console_page,
    screenshot_dir,
    make_user,
    failing_deal,  # noqa: F811
):
    page = console_page
    make_user("fiona.finance", "finance_ops")
    make_user("sam.steward", "mapping_steward", is_staff=True)
    for n in range(1, 4):
        failing_deal(n, region="LATAM", amount=str(24000 * n), currency="USD")
    failing_deal(4, region="APAC", amount="5000", currency="GBP")

    sign_in(page, "fiona.finance")
    page.goto("/")
    stuck = page.locator("#money-stuck").inner_text()
    assert "USD 144,000.00" in stuck and "4 open exceptions" in stuck
    assert "GBP 5,000.00" in page.locator('section[aria-label="Money stuck"]').inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    page.screenshot(path=str(screenshot_dir / "console-home-finance.png"), full_page=True)

    page.locator("a.money-line", has_text="GBP").click()
    assert "GBP 5,000.00" in page.locator("table.list").inner_text()
    assert "USD" not in page.locator("table.list").inner_text()
    page.screenshot(path=str(screenshot_dir / "console-transactions-gbp.png"), full_page=True)
    page.goto("/exceptions/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    page.screenshot(path=str(screenshot_dir / "console-exception-groups.png"), full_page=True)
    page.goto("/")

    page.locator("a.group-link").first.click()
    page.wait_for_selector("text=How to fix it")
    assert "Value map 'region-subsidiary' has no entry for 'LATAM'" in page.locator("h1").inner_text()
    assert "USD 144,000.00" in page.locator(".figure").nth(1).inner_text()
    page.screenshot(path=str(screenshot_dir / "console-group-finance.png"), full_page=True)
    fix_url = page.locator("a.fix-link").first.get_attribute("href")
    assert "source_value=LATAM" in fix_url

    sign_in(page, "sam.steward")
    page.goto(fix_url)
    assert page.input_value("#id_source_value") == "LATAM"
    page.fill("#id_target_value", "NW-BR")
    page.fill("#id_change_reason", "LATAM deals contract through Northwind Brazil (MAP-12)")
    page.screenshot(path=str(screenshot_dir / "console-fix-value-map.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")

    group = ExceptionGroup.objects.get(missing_key="value_map:region-subsidiary=latam")
    page.goto(f"/exceptions/{group.pk}/")
    assert "now maps 'LATAM' → 'NW-BR'" in page.locator(".fix-links").inner_text()
    page.fill("#id_reason", "LATAM entry added (MAP-12)")
    page.click("button[name=start]")
    page.wait_for_selector("#progress[data-poll]")
    page.screenshot(path=str(screenshot_dir / "console-rerun-started.png"), full_page=True)

    batch = RerunBatch.objects.get(group=group)
    rerun_batch_process(batch_id=batch.pk)
    run_due_steps()
    # The page polls the run's progress, then reloads once to show every row as it ended.
    page.wait_for_selector("#progress[data-finished='1']:not([data-poll])")
    assert page.locator("[data-field=completed]").inner_text() == "3"
    assert page.locator("table.list .badge.completed").count() == 3
    page.screenshot(path=str(screenshot_dir / "console-rerun-finished.png"), full_page=True)
    assert Transaction.objects.filter(workflow="console_region_test", status="completed").count() == 3
    group.refresh_from_db()
    assert group.status == ExceptionGroup.Status.RESOLVED

    page.goto(f"/exceptions/{group.pk}/")
    assert "Resolved" in page.locator(".figure").nth(3).inner_text()
    page.screenshot(path=str(screenshot_dir / "console-group-resolved.png"), full_page=True)


@pytest.fixture
def screenshot_dir():
    from tests.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
