"""In a real browser: finance ops pastes a Salesforce opportunity id and reads the deal's whole trail."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.demo.scenario import DEALS, announce_closed_won, crm_create_deal, drain, project_for, sign_change_order
from tests.e2e.conftest import world  # noqa: F401  (the demo firm wired to the sandbox, on the live server)

from .conftest import PASSWORD, SCREENSHOTS

pytestmark = pytest.mark.browser
GLOBEX = DEALS[0]


@pytest.fixture
def console(browser, site_url):
    context = browser.new_context(base_url=site_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    context.close()


def test_searching_a_salesforce_opportunity_id_shows_the_deals_whole_trail(console, world, finance_user):  # noqa: F811
    crm_create_deal(world, GLOBEX)
    answer = announce_closed_won(world, GLOBEX)
    assert drain(inline=True, timeout=90)
    effective = (timezone.localdate().replace(day=1) + datetime.timedelta(days=32)).replace(day=1)
    sign_change_order(
        world,
        GLOBEX,
        version=2,
        effective_from=effective,
        new_total=Decimal("240000"),
        new_end=effective + datetime.timedelta(days=180),
        rates={"Senior Consultant": Decimal("265.00")},
    )
    assert drain(inline=True, timeout=90)
    project = project_for(world, GLOBEX)
    opportunity_id = world.opportunities[GLOBEX.name]

    console.goto("/login/")
    console.fill("#id_username", finance_user.username)
    console.fill("#id_password", PASSWORD)
    console.click("main button[type=submit]")
    console.wait_for_selector("header .who .user")
    console.fill("header form.search input[name=q]", opportunity_id)
    console.click("header form.search button")
    console.wait_for_selector("table.timeline")
    heading = console.inner_text("h1")
    assert "Opportunity" in heading and GLOBEX.name in heading
    trail = console.inner_text("table.timeline")
    for expected in (
        "Webhook received from Salesforce",  # the closed-won event as it arrived
        "Opportunity to project",  # the workflow and its steps
        "Contract amendment",  # the change order signed later in PandaDoc
        "Webhook received from PandaDoc",
        project.code,  # the canonical project it created
        "/sandbox/erp/",  # outbound calls to NetSuite, Kantata and Chargebee
        "/sandbox/psa/",
        "/sandbox/billing/",
    ):
        assert expected in trail, expected
    assert console.locator("table.timeline tr.kind-call").count() >= 5
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console.screenshot(path=str(SCREENSHOTS / "timeline-opportunity.png"))
    console.locator("table.timeline tr.kind-change:has(.diff)").last.scroll_into_view_if_needed()
    console.screenshot(path=str(SCREENSHOTS / "timeline-opportunity-changes.png"))
    right = console.evaluate("document.querySelector('table.timeline').getBoundingClientRect().right")
    assert right <= 1400, "the timeline is cut at 1400 px"

    console.fill("header form.search input[name=q]", answer["correlation_id"])  # the 202 answer's id
    console.click("header form.search button")
    console.wait_for_selector("table.timeline")
    assert "Delivery from Salesforce" in console.inner_text("h1")
    assert "Opportunity to project" in console.inner_text("table.timeline")
