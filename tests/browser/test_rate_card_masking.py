"""In a real browser: a steward sees the rates of a rate card version; delivery ops sees "•••"."""

import datetime
from decimal import Decimal

import pytest

from apps.core.context import audit_context
from apps.core.masking import MASK
from tests import factories

pytestmark = pytest.mark.browser


def test_a_steward_sees_the_rates_and_delivery_ops_sees_dots(page, log_in, screenshot, make_user):
    steward = make_user("sam.steward", "mapping_steward", is_staff=True)
    make_user("dan.delivery", "delivery_ops", is_staff=True)
    card = factories.rate_card(
        code="STD-US-2026",
        name="Standard US 2026",
        versions=[
            (datetime.date(2026, 1, 1), None, "draft", {"Senior Consultant": "187.50", "Architect": "230.00"}),
        ],
    )
    version = card.versions.get()
    architect = version.lines.get(role="Architect")
    with audit_context(actor=steward, reason="Architect rate raised per PRICE-12"):
        architect.bill_rate = Decimal("245.00")
        architect.cost_rate = Decimal("131.25")
        architect.save()
    url = f"/admin/canonical/ratecardversion/{version.pk}/change/"

    log_in("sam.steward")
    page.goto(url)
    lines = page.locator("#lines-group")
    rates = sorted(
        lines.locator("tr.has_original input[name$='-bill_rate']").evaluate_all("inputs => inputs.map(i => i.value)")
    )
    assert rates == ["187.5000", "245.0000"]
    assert MASK not in lines.inner_text()
    screenshot("rate-card-version-steward")

    log_in("dan.delivery")
    page.goto(url)
    lines = page.locator("#lines-group")
    assert lines.locator("input[name$='-bill_rate']").count() == 0
    assert lines.get_by_text(MASK).count() == 4  # bill and cost rate of both lines
    assert "Senior Consultant" in lines.inner_text()
    html = page.content()
    assert not any(rate in html for rate in ("187.5", "93.75", "245.0", "131.25"))
    screenshot("rate-card-version-delivery-ops")

    page.goto(f"/admin/canonical/ratecardline/{architect.pk}/history/")
    history = page.locator("#change-history")
    assert "Architect rate raised per PRICE-12" in history.inner_text()
    bill_change = history.locator("li", has_text="Bill rate:").inner_text()
    assert bill_change.count(MASK) == 2  # old and new both hidden
    assert "230.0" not in page.content() and "131.25" not in page.content()
    screenshot("rate-card-line-history-delivery-ops")
