"""The audit trail: the history endpoint without a query per row, and the console's audit browser."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.canonical.models import RateCardLine, RateCardVersion
from apps.console.selectors.audit_log import AuditFilter, audit_page
from apps.core.approvals import approval_approve
from apps.core.context import audit_context
from apps.core.models import ChangeRequest
from apps.mapping.models import ValueMap, ValueMapEntry
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_history_endpoint_reads_forty_rows_in_a_constant_number_of_queries(
    api_as, finance_user, steward, django_assert_max_num_queries
):
    customer = factories.customer(name="Globex")
    for n in range(40):
        with audit_context(actor=steward, reason=f"Rename {n}"):
            customer.name = f"Globex {n}"
            customer.save()
    with django_assert_max_num_queries(8):
        rows = api_as(finance_user).get(f"/api/v1/customers/{customer.pk}/history/?limit=40").json()["results"]
    assert len(rows) == 40
    assert rows[0]["changes"] == [{"field": "name", "old": "Globex 38", "new": "Globex 39", "masked": False}]
    assert rows[0]["history_change_reason"] == "Rename 39"
    assert rows[-1]["changes"] == [{"field": "name", "old": "Globex", "new": "Globex 0", "masked": False}]


def test_the_history_of_an_ownership_rule_shows_which_systems_were_granted(api_as, auditor, steward, systems):
    rule = factories.ownership_rule("customer", systems["crm"])
    with audit_context(actor=steward, reason="NetSuite keeps the AR status"):
        rule.may_update.add(systems["erp"])
        rule.save()
    rows = api_as(auditor).get(f"/api/v1/ownership-rules/{rule.pk}/history/").json()["results"]
    grants = [change for row in rows for change in row["changes"] if change["field"] == "may_update"]
    assert grants == [{"field": "may_update", "old": [], "new": [systems["erp"].pk], "masked": False}]


# --- the audit browser ----------------------------------------------------------------------------------

JAN_1 = datetime.date(2026, 1, 1)


@pytest.fixture
def region_map(steward):
    with audit_context(actor=steward, reason="Regions as agreed with finance", correlation_id="req-setup-1"):
        value_map = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
        entry = ValueMapEntry.objects.create(
            value_map=value_map, source_value="EMEA", target_value="ACME-UK", effective_from=JAN_1
        )
    return entry


def _change_entry(entry, actor, target, *, correlation_id, reason="Moved EMEA to the Irish entity"):
    with audit_context(actor=actor, reason=reason, correlation_id=correlation_id):
        entry.target_value = target
        entry.full_clean()
        entry.save()


def test_an_auditor_finds_everything_one_request_changed_and_nothing_else(client, auditor, steward, region_map):
    _change_entry(region_map, steward, "ACME-IE", correlation_id="req-42")
    with audit_context(actor=steward, reason="Same request", correlation_id="req-42"):
        customer = factories.customer(name="Globex")
    client.force_login(auditor)
    page = client.get("/audit/", {"correlation_id": "req-42"}).content.decode()
    assert "ACME-UK</del> → <ins>ACME-IE" in page
    assert f"Customer {customer.number}" in page
    assert "Regions as agreed with finance" not in page  # another request


def test_an_auditor_filters_by_author_model_object_and_date(client, auditor, steward, finance_user, region_map):
    _change_entry(region_map, steward, "ACME-IE", correlation_id="req-43")
    with audit_context(actor=finance_user, reason="Finance renamed it"):
        factories.customer(name="Initech")
    client.force_login(auditor)
    by_author = client.get("/audit/", {"user": "sam.steward"}).content.decode()
    assert "Moved EMEA to the Irish entity" in by_author and "Finance renamed it" not in by_author
    by_object = client.get("/audit/", {"model": "mapping.valuemapentry", "object_id": region_map.pk}).content.decode()
    assert by_object.count("<tr>") == 3  # header + created + changed
    tomorrow = datetime.date.today() + datetime.timedelta(days=2)
    assert "No change matches" in client.get("/audit/", {"date_from": tomorrow.isoformat()}).content.decode()


def test_rates_stay_masked_in_the_audit_browser_for_a_role_that_may_not_see_them(
    client, delivery_user, auditor, steward
):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Senior Consultant": 250})])
    line = RateCardLine.objects.get(version__rate_card=card)
    with audit_context(actor=steward, reason="Price rise", correlation_id="req-rates"):
        line.bill_rate = Decimal("275.00")
        line.save()
    client.force_login(delivery_user)
    page = client.get("/audit/", {"correlation_id": "req-rates"}).content.decode()
    assert "Price rise" in page and "bill_rate" in page
    assert "275" not in page and "250" not in page
    export = client.get("/audit/", {"correlation_id": "req-rates", "export": "csv"})
    assert b"275" not in b"".join(export.streaming_content)
    client.force_login(auditor)  # auditors may see rates
    assert "275.00" in client.get("/audit/", {"correlation_id": "req-rates"}).content.decode()


def test_the_csv_export_has_one_line_per_change_with_who_why_and_the_request(client, auditor, steward, region_map):
    _change_entry(region_map, steward, "ACME-IE", correlation_id="req-44")
    client.force_login(auditor)
    response = client.get("/audit/", {"model": "mapping.valuemapentry", "export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["changed", "created"]
    assert rows[0]["changed by"] == "sam.steward"
    assert rows[0]["correlation id"] == "req-44"
    assert rows[0]["changes"] == "target_value: ACME-UK -> ACME-IE"


def test_an_auditor_reads_but_cannot_revert(client, auditor, steward, region_map):
    _change_entry(region_map, steward, "ACME-IE", correlation_id="req-45")
    first = region_map.history.order_by("history_id").first()
    client.force_login(auditor)
    page = client.get(f"/audit/mapping.valuemapentry/{first.history_id}/").content.decode()
    assert "Read-only" in page and "Revert to this version</button>" not in page
    client.post(f"/audit/mapping.valuemapentry/{first.history_id}/", {"reason": "try"})
    region_map.refresh_from_db()
    assert region_map.target_value == "ACME-IE"


def test_a_steward_reverts_a_value_map_entry_as_a_new_audited_change(client, steward, region_map):
    _change_entry(region_map, steward, "ACME-IE", correlation_id="req-46")
    first = region_map.history.order_by("history_id").first()
    client.force_login(steward)
    page = client.get(f"/audit/mapping.valuemapentry/{first.history_id}/").content.decode()
    assert "Revert to this version</button>" in page
    response = client.post(
        f"/audit/mapping.valuemapentry/{first.history_id}/",
        {"reason": "Irish entity not live yet"},
        HTTP_X_CORRELATION_ID="req-revert-1",
    )
    assert response.status_code == 302
    region_map.refresh_from_db()
    assert region_map.target_value == "ACME-UK"
    latest = region_map.history.order_by("-history_id").first()
    assert latest.history_type == "~"
    assert latest.history_user == steward
    assert latest.history_correlation_id == "req-revert-1"
    assert "Irish entity not live yet" in latest.history_change_reason
    assert region_map.history.count() == 3  # nothing erased


def test_an_approved_rate_card_version_cannot_be_reverted(client, steward):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    version = RateCardVersion.objects.get(rate_card=card)
    with audit_context(actor=steward, reason="Approved by the CFO"):
        version.status = "approved"
        version.save()
    draft_row = version.history.order_by("history_id").first()
    client.force_login(steward)
    page = client.get(f"/audit/canonical.ratecardversion/{draft_row.history_id}/").content.decode()
    assert "Approved rate card versions cannot be reverted" in page
    client.post(f"/audit/canonical.ratecardversion/{draft_row.history_id}/", {"reason": "undo"})
    version.refresh_from_db()
    assert version.status == "approved"


@pytest.mark.usefixtures("four_eyes_off")
def test_an_unapproved_rate_card_version_and_an_ownership_rule_can_be_reverted(client, steward, systems):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    version = RateCardVersion.objects.get(rate_card=card)
    with audit_context(actor=steward, reason="Typo"):
        version.notes = "2026 list v2"
        version.save()
    client.force_login(steward)
    first = version.history.order_by("history_id").first()
    client.post(f"/audit/canonical.ratecardversion/{first.history_id}/", {"reason": "Back to the signed list"})
    version.refresh_from_db()
    assert version.notes == ""
    rule = factories.ownership_rule("customer", systems["crm"])
    before = rule.history.order_by("-history_id").first()
    with audit_context(actor=steward, reason="Let NetSuite update customers"):
        rule.may_update.add(systems["erp"])
        rule.save()
    client.post(f"/audit/systems.ownershiprule/{before.history_id}/", {"reason": "NetSuite must not"})
    assert list(rule.may_update.all()) == []


def test_a_page_of_the_audit_browser_costs_a_few_queries_whatever_its_length(
    client, auditor, steward, django_assert_max_num_queries
):
    for n in range(60):
        with audit_context(actor=steward, reason=f"Customer {n}"):
            factories.customer(name=f"Customer {n}")
    client.force_login(auditor)
    client.get("/audit/")  # warm the permission cache of the session user
    with django_assert_max_num_queries(25):
        page = client.get("/audit/").content.decode()
    assert page.count("new record") == 50
    assert "Older →" in page


def _statements(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


def test_a_page_of_the_audit_browser_costs_the_same_statements_whichever_models_it_holds(
    client, auditor, steward, systems, region_map
):
    for n in range(60):
        with audit_context(actor=steward, reason=f"Customer {n}"):
            factories.customer(name=f"Customer {n}")
    client.force_login(auditor)
    client.get("/audit/")  # warm the permission cache of the session user
    one_model, _page = _statements(client, "/audit/")
    rule = factories.ownership_rule("customer", systems["crm"])
    with audit_context(actor=steward, reason="NetSuite keeps the AR status", correlation_id="req-grant-7"):
        rule.may_update.add(systems["erp"])
        rule.save()
    _change_entry(region_map, steward, "ACME-IE", correlation_id="req-42")
    with audit_context(actor=steward, reason="Renamed by the CRM", correlation_id="req-43"):
        region_map.value_map.source_label = "sales region"
        region_map.value_map.save()
    many_models, page = _statements(client, "/audit/")
    assert many_models == one_model
    # Who, why, which request and the diff of each kind of record, the many-to-many grants included.
    assert "NetSuite keeps the AR status" in page and "req-grant-7" in page
    assert f"<b>may_update</b>: <del>[]</del> → <ins>[{systems['erp'].pk}]</ins>" in page
    assert "<b>target_value</b>: <del>ACME-UK</del> → <ins>ACME-IE</ins>" in page
    assert "<b>source_label</b>: <del>region</del> → <ins>sales region</ins>" in page
    assert page.count('href="?user=') == 50  # every row names its author (the steward, or the system user)
    assert page.count(f'href="?user={steward.username}"') >= 45


def test_the_audit_detail_shows_the_membership_a_change_granted(client, auditor, steward, systems):
    rule = factories.ownership_rule("customer", systems["crm"])
    with audit_context(actor=steward, reason="NetSuite keeps the AR status"):
        rule.may_update.add(systems["erp"])
        rule.save()
    entries = audit_page(auditor, AuditFilter(model="systems.ownershiprule")).entries
    granted = [entry for entry in entries if entry.changes]
    assert len(granted) == 1
    entry = granted[0]
    assert entry.user == steward.username and entry.row.history_change_reason == "NetSuite keeps the AR status"
    assert [(c.field, c.old, c.new) for c in entry.changes] == [("may_update", [], [systems["erp"].pk])]
    client.force_login(auditor)
    response = client.get(f"/audit/systems.ownershiprule/{entry.row.history_id}/")
    assert response.status_code == 200 and steward.username in response.content.decode()


def test_a_steward_reverts_a_source_profile_version_to_its_earlier_description(client, steward):
    from apps.mapping.models import SourceProfile
    from apps.mapping.services import builtin_profiles_install

    builtin_profiles_install()
    profile = SourceProfile.objects.filter(status="active").order_by("name").first()
    before = profile.history.order_by("-history_id").first()
    with audit_context(actor=steward, reason="Clearer wording"):
        profile.description = "Reads closed-won deals (edited)"
        profile.save()
    client.force_login(steward)
    client.post(f"/audit/mapping.sourceprofile/{before.history_id}/", {"reason": "The edit was wrong"})
    profile.refresh_from_db()
    assert profile.description == before.description
    assert profile.history.order_by("-history_id").first().history_user == steward


@pytest.mark.usefixtures("four_eyes_on")
def test_reverting_an_ownership_rule_waits_for_a_second_person(client, steward, make_user, systems):
    rule = factories.ownership_rule("customer", systems["crm"])
    before = rule.history.order_by("-history_id").first()
    with audit_context(actor=steward, reason="Let NetSuite update customers"):
        rule.may_update.add(systems["erp"])
        rule.save()
    client.force_login(steward)
    answer = client.post(
        f"/audit/systems.ownershiprule/{before.history_id}/", {"reason": "NetSuite must not"}, follow=True
    )
    assert "waits for a second person" in answer.content.decode()
    assert list(rule.may_update.all()) == [systems["erp"]]
    request = ChangeRequest.objects.get(status=ChangeRequest.Status.PENDING)
    checker = make_user("checker", "mapping_steward")
    approval_approve(change_request=request, actor=checker, reason="Agreed")
    assert list(rule.may_update.all()) == []
