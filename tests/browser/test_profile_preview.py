"""In a real browser: a steward previews built-in profiles on their samples, then edits one into a draft."""

import datetime
import json
from pathlib import Path

import pytest

from apps.core.context import system_context
from apps.mapping.models import SourceProfile, ValueMap, ValueMapEntry
from apps.mapping.services import builtin_profiles_install

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"


@pytest.fixture
def steward_in_browser(make_user, log_in):
    # Browser tests run on a flushed database: install the shipped profiles as migrate does.
    with system_context("Install built-in source profiles"):
        builtin_profiles_install()
    regions = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
    ValueMapEntry.objects.create(
        value_map=regions,
        source_value="North America",
        target_value="ACME-US",
        effective_from=datetime.date(2026, 1, 1),
    )
    make_user("sam.steward", "mapping_steward", is_staff=True)
    log_in("sam.steward")


def active(name: str) -> SourceProfile:
    return SourceProfile.objects.get(name=name, status=SourceProfile.Status.ACTIVE)


def test_a_steward_previews_a_builtin_profile_on_its_sample(page, steward_in_browser, screenshot):
    profile = active("chargebee-invoice-generated")

    page.goto(f"/admin/mapping/sourceprofile/{profile.pk}/change/")
    page.click("text=Preview")
    assert json.loads(page.input_value("#id_payload")) == profile.sample_payload
    page.fill("#id_on", "2026-04-15")
    page.click("input[name=_preview]")

    results = page.locator("#preview-results")
    assert "1 event" in results.locator(".preview-summary").inner_text()
    assert "1 command" in results.locator(".preview-summary").inner_text()
    command = results.locator("table.command")
    assert command.locator("td.field", has_text="invoice_external_id").count() == 1
    assert command.locator("tr", has_text="lines[0].amount").count() == 1
    assert page.locator(".errornote").count() == 0
    screenshot("profile-preview-chargebee")


def test_a_thin_notification_is_previewed_with_a_pasted_record_and_a_value_map_miss_explained(
    page, steward_in_browser, screenshot
):
    profile = active("hubspot-deal-closedwon")
    fetched = json.loads((FIXTURES / "hubspot" / "deal-fetched.json").read_text())
    fetched["company"]["properties"]["region"] = "LATAM"

    page.goto(f"/admin/mapping/sourceprofile/{profile.pk}/preview/")
    page.click("input[name=_preview]")
    assert page.locator("table.fetch td.path", has_text="deal:18334623104").count() == 1
    page.fill("#id_fetched", json.dumps(fetched, indent=2))
    page.fill("#id_on", "2026-04-15")
    page.click("input[name=_preview]")

    errors = page.locator("table.errors")
    assert errors.count() == 1
    message = errors.locator("td.message").inner_text()
    assert "Legal entity: value map region→subsidiary has no entry for 'LATAM'" in message
    assert "Fix: Add an entry for 'LATAM' to value map 'region-subsidiary'" in message
    assert errors.locator("td.path", has_text="$fetched.company.properties.region").count() == 1
    screenshot("profile-preview-hubspot-value-map-miss")


def test_a_steward_edits_an_active_profile_into_a_draft_and_sees_the_diff(page, steward_in_browser, screenshot):
    profile = active("stripe-invoice-paid")

    page.goto(f"/admin/mapping/sourceprofile/{profile.pk}/change/")
    assert page.locator(".profile-note").count() == 1
    page.fill("#id_spec", page.input_value("#id_spec").replace('"vendor": "stripe"', '"vendor": "stripe",,'))
    assert "Not valid JSON" in page.locator(".json-status").first.inner_text()
    spec = {**profile.spec, "description": "Paid invoices, as finance reads them"}
    page.fill("#id_spec", json.dumps(spec, indent=2))
    assert page.locator(".json-status").first.inner_text() == "Valid JSON"
    page.fill("#id_change_reason", "Describe the profile for finance (MAP-21)")
    page.click("input[name=_continue]")

    assert "saved as draft version 2" in page.locator(".messagelist").inner_text()
    diff = page.locator(".spec-diff")
    assert diff.locator(".added", has_text="Paid invoices, as finance reads them").count() == 1
    assert page.locator(".profile-versions tr.current").inner_text().startswith("v2 (this page)")
    screenshot("profile-draft-diff")
