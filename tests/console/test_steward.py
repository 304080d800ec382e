"""Steward pages: the ownership matrix, value maps out and in as CSV with a preview, bad files refused whole."""

import base64
import datetime
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.context import audit_context
from apps.mapping.models import ValueMap, ValueMapEntry
from tests import factories

pytestmark = pytest.mark.django_db
JAN_1 = datetime.date(2026, 1, 1)
HEADER = "value_map,source_value,target_value,effective_from,effective_to,note\n"


@pytest.fixture
def regions(steward):
    with audit_context(actor=steward, reason="Regions"):
        value_map = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
        ValueMapEntry.objects.create(
            value_map=value_map, source_value="EMEA", target_value="ACME-UK", effective_from=JAN_1
        )
        ValueMapEntry.objects.create(
            value_map=value_map, source_value="DACH", target_value="ACME-DE", effective_from=JAN_1
        )
    return value_map


def _upload(client, text: bytes | str, name="regions.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post("/stewarding/value-maps/import/", {"file": SimpleUploadedFile(name, data, "text/csv")})


def _apply(client, preview_page: str, reason="Irish entity live from July"):
    data = re.search(r'name="data" value="([^"]+)"', preview_page).group(1)
    return client.post("/stewarding/value-maps/import/", {"data": data, "reason": reason, "filename": "regions.csv"})


def test_the_ownership_matrix_shows_owner_and_grants_per_system_and_period(client, auditor, systems):
    factories.ownership_rule("customer", systems["crm"], may_update=[systems["erp"]])
    factories.ownership_rule(
        "customer", systems["erp"], field="credit_status", start=JAN_1, end=datetime.date(2026, 6, 30)
    )
    client.force_login(auditor)
    page = client.get("/stewarding/", {"on": "2026-03-01"}).content.decode()
    row = re.search(r"<tr class=\"\">\s*<td>Customer / account</td>\s*<td>whole record</td>(.*?)</tr>", page, re.S)
    assert row, page
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", page, re.S).group(1)
    names = re.findall(r"<th[^>]*>(.*?)</th>", header)[2:]
    by_system = dict(zip(names, re.findall(r"<td>(.*?)</td>", row.group(1)), strict=False))
    assert 'badge completed">owner' in by_system["Salesforce"]  # the CRM owns customers
    assert "update" in by_system["NetSuite"] and "owner" not in by_system["NetSuite"]
    assert by_system["Kantata"] == ""
    assert "credit_status" in page and "2026-06-30" in page and "in force" in page
    later = client.get("/stewarding/", {"on": "2026-08-01"}).content.decode()
    assert "ended" in later


def test_a_value_map_exports_as_csv_and_an_unchanged_file_imports_as_no_change(client, steward, regions):
    client.force_login(steward)
    exported = client.get("/stewarding/value-maps.csv", {"map": "region-subsidiary"}).content.decode()
    assert (
        exported
        == HEADER + "region-subsidiary,DACH,ACME-DE,2026-01-01,,\nregion-subsidiary,EMEA,ACME-UK,2026-01-01,,\n"
    )
    preview = _upload(client, exported).content.decode()
    assert "0 to add" in preview and "2 unchanged" in preview


def test_the_preview_shows_what_changes_and_nothing_is_written_until_it_is_applied(client, steward, regions):
    client.force_login(steward)
    text = HEADER + (
        "region-subsidiary,EMEA,ACME-UK,2026-01-01,2026-06-30,ends when the Irish entity starts\n"
        "region-subsidiary,EMEA,ACME-IE,2026-07-01,,\n"
        "region-subsidiary,DACH,ACME-DE,2026-01-01,,\n"
    )
    response = _upload(client, text)
    preview = response.content.decode()
    assert response.status_code == 200
    assert "1 to add" in preview and "1 to change" in preview and "1 unchanged" in preview
    assert ValueMapEntry.objects.count() == 2  # a preview writes nothing
    applied = _apply(client, preview)
    assert applied.status_code == 302
    emea = ValueMapEntry.objects.filter(source_value="EMEA").order_by("effective_from")
    assert [(e.target_value, e.effective_to) for e in emea] == [
        ("ACME-UK", datetime.date(2026, 6, 30)),
        ("ACME-IE", None),
    ]
    added = emea.last().history.get()
    assert added.history_user == steward and added.history_change_reason == "Irish entity live from July"


def test_a_file_with_bad_lines_is_refused_with_a_report_per_line_and_nothing_applied(client, steward, regions):
    client.force_login(steward)
    text = HEADER + (
        "region-subsidiary,EMEA,ACME-IE,2026-01-01,,\n"  # a fine change
        "region-currency,EMEA,EUR,2026-01-01,,\n"  # line 3: unknown value map
        "region-subsidiary,LATAM,ACME-BR,2026-01-01,,\n"  # line 4 and 5 overlap
        "region-subsidiary,LATAM,ACME-MX,2026-03-01,,\n"
        "region-subsidiary,APAC,ACME-SG,31/01/2026,,\n"  # line 6: not a date
    )
    response = _upload(client, text)
    report = response.content.decode()
    assert response.status_code == 422
    assert "Nothing was applied: 4 problems" in report
    assert "Line 3: there is no value map &#x27;region-currency&#x27; (unknown key)." in report
    assert "Line 4: the period 2026-01-01 to open-ended of &#x27;LATAM&#x27; overlaps line 5" in report
    assert "Line 5:" in report
    assert "Line 6: effective_from &#x27;31/01/2026&#x27; is not a date" in report
    assert 'name="data"' not in report  # no way to apply it
    assert ValueMapEntry.objects.get(source_value="EMEA").target_value == "ACME-UK"


def test_a_line_overlapping_an_entry_the_file_does_not_name_is_refused(client, steward, regions):
    client.force_login(steward)
    report = _upload(client, HEADER + "region-subsidiary,emea,ACME-IE,2026-03-01,,\n").content.decode()
    assert "Line 2: the period 2026-03-01 to open-ended of &#x27;emea&#x27; overlaps the existing entry EMEA" in report


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(client, steward, regions):
    client.force_login(steward)
    data = (
        HEADER + "region-subsidiary,EMEA,ACME-UK,2026-01-01,,\nregion-subsidiary,ÖSTERREICH,ACME-AT,2026-01-01,,\n"
    ).encode("latin-1")
    report = _upload(client, data).content.decode()
    assert "Line 3 is not UTF-8 text (byte 0xd6" in report
    assert ValueMapEntry.objects.count() == 2


def test_a_tampered_apply_is_checked_again_and_refused(client, steward, regions):
    client.force_login(steward)
    bad = base64.b64encode((HEADER + "nope,EMEA,X,2026-01-01,,\n").encode()).decode()
    response = client.post("/stewarding/value-maps/import/", {"data": bad, "reason": "sneaky"})
    assert response.status_code == 422
    assert "nothing was applied" in response.content.decode().lower()
    assert not ValueMapEntry.objects.filter(target_value="X").exists()


def test_other_roles_may_export_but_not_import(client, finance_user, auditor, regions):
    client.force_login(auditor)
    assert client.get("/stewarding/value-maps.csv").status_code == 200
    page = client.get("/stewarding/").content.decode()
    assert "Read-only: importing value maps needs the mapping steward role." in page
    assert _upload(client, HEADER + "region-subsidiary,APAC,ACME-SG,2026-01-01,,\n").status_code == 403
    client.force_login(finance_user)
    assert _upload(client, HEADER + "region-subsidiary,APAC,ACME-SG,2026-01-01,,\n").status_code == 403
    assert not ValueMapEntry.objects.filter(source_value="APAC").exists()
