"""In a real browser: a steward imports a value-map change; an auditor finds it by its request id and its author."""

import re

import pytest

from apps.core.context import audit_context
from apps.mapping.models import ValueMap, ValueMapEntry
from tests import factories

from .conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser
CSV = (
    "value_map,source_value,target_value,effective_from,effective_to,note\n"
    "region-subsidiary,EMEA,ACME-UK,2026-01-01,2026-06-30,ends when the Irish entity starts\n"
    "region-subsidiary,EMEA,ACME-IE,2026-07-01,,Irish entity\n"
)


def shot(tab, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_auditor_finds_a_stewards_change_by_its_request_id_and_its_author(console_page, steward, auditor, tmp_path):
    console = console_page
    with audit_context(actor=steward, reason="Regions as agreed with finance"):
        value_map = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
        ValueMapEntry.objects.create(
            value_map=value_map, source_value="EMEA", target_value="ACME-UK", effective_from="2026-01-01"
        )
    crm, erp = (
        factories.system("salesforce", "crm", name="Salesforce"),
        factories.system("netsuite", "erp", name="NetSuite"),
    )
    factories.ownership_rule("customer", crm, may_update=[erp])
    factories.ownership_rule("customer", erp, field="credit_status")
    factories.ownership_rule("invoice", erp, may_create=[crm])
    upload = tmp_path / "regions.csv"
    upload.write_text(CSV)

    sign_in(console, steward.username)
    console.goto("/stewarding/")
    assert "credit_status" in console.inner_text("table.matrix")
    shot(console, "steward-home")
    console.set_input_files("input[name=file]", str(upload))
    console.click("text=Preview the import")
    console.wait_for_selector("table.preview")
    assert "1 to add" in console.inner_text("p.summary") and "1 to change" in console.inner_text("p.summary")
    shot(console, "steward-import-preview")
    console.fill("input[name=reason]", "Irish entity live from July (FIN-311)")
    console.click("text=Apply 2 lines")
    console.wait_for_selector(".messages li.success")
    added = ValueMapEntry.objects.get(target_value="ACME-IE")
    request_id = added.history.get().history_correlation_id

    sign_in(console, auditor.username)
    console.goto("/audit/")
    everything = console.inner_text("table.audit")  # every kind of record on one page: rules, systems, value maps
    assert "Ownership rule" in everything and "Connected system" in everything and "Value map entry" in everything
    assert "Irish entity live from July (FIN-311)" in everything and "effective_to: — → June 30, 2026" in everything
    assert "may_update: [] → [" in everything and "may_create: [] → [" in everything  # the grants of each rule
    shot(console, "audit-all")
    console.fill("input[name=correlation_id]", request_id)
    console.click("form.filters button[type=submit]")
    console.wait_for_selector("table.audit tbody tr")
    rows = console.locator("table.audit tbody tr")
    assert rows.count() == 2  # the entry it ended and the entry it added, nothing else
    text = console.inner_text("table.audit")
    assert "Irish entity live from July (FIN-311)" in text and "sam.steward" in text
    assert "Regions as agreed with finance" not in text
    shot(console, "audit-by-request")
    width = console.evaluate("document.querySelector('table.audit').getBoundingClientRect().right")
    assert width <= 1400, "the audit table is cut at 1400 px"

    console.click("table.audit >> text=sam.steward >> nth=0")
    console.wait_for_url(re.compile(r".*user=sam.steward.*"))
    assert console.locator("table.audit tbody tr").count() >= 4  # the import and the original set-up
    console.click("table.audit tbody tr >> nth=0 >> td.num a")
    console.wait_for_selector("text=Who, why, which request")
    assert "Read-only" in console.inner_text("main")  # the auditor cannot revert
    shot(console, "audit-change-detail")
