"""In a real browser at 1400×900: a steward asks (in the admin) to approve a rate card version; a second steward
sees it counted in the console, opens Approvals, reads who asked and the rates, and approves it."""

import datetime

import pytest

from apps.canonical.models import RateCardVersion
from apps.core.models import ChangeRequest
from tests import factories
from tests.browser.conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser


def test_a_second_steward_approves_a_rate_card_version_on_the_approvals_page(console_page, make_user):
    page = console_page
    make_user("sam.steward", "mapping_steward", is_staff=True)
    make_user("cleo.checker", "mapping_steward", is_staff=True)
    card = factories.rate_card(
        code="STD-UK-2026",
        versions=[(datetime.date(2026, 1, 1), None, "draft", {"Consultant": "150.00", "Architect": "230.00"})],
    )
    version = card.versions.get()

    sign_in(page, "sam.steward")
    page.goto("/admin/canonical/ratecardversion/")
    page.check(f"input[name=_selected_action][value='{version.pk}']")
    page.select_option("select[name=action]", "approve_versions")
    page.click("button[name=index]")
    assert "Waiting for a second person's approval" in page.locator("ul.messagelist").inner_text()
    page.goto("/approvals/")
    waiting = page.locator("#waiting")
    assert "You cannot decide this request yourself" in waiting.inner_text()
    assert page.locator("#nav-approvals").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "approvals-maker.png"), full_page=True)

    sign_in(page, "cleo.checker")
    assert page.locator("#nav-approvals").inner_text().strip() == "Approvals 1"
    page.click("#pending-approvals")
    request = page.locator("article.approval").first
    assert "Approve rate card STD-UK-2026 version 1" in request.inner_text()
    assert "sam.steward" in request.inner_text() and "230.0000" in request.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "approvals-checker.png"), full_page=True)
    request.locator("input[name=reason]").first.fill("Matches the 2026 price list")
    request.get_by_role("button", name="Approve and apply").click()

    assert "approved and applied" in page.locator("ul.messages").inner_text()
    assert "Nothing waits for your decision." in page.locator("#pending").inner_text()
    decided = page.locator("#decided").inner_text()
    assert "cleo.checker" in decided and "Matches the 2026 price list" in decided
    assert page.locator("#nav-approvals").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    page.screenshot(path=str(SCREENSHOTS / "approvals-decided.png"), full_page=True)
    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.APPROVED
    assert ChangeRequest.objects.get().decided_by.username == "cleo.checker"
