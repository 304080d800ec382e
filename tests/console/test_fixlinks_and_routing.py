"""Fix links come from current data; the team an exception is routed to can act on it, others are told who can."""

import datetime
import json

import pytest
from django.urls import reverse

from apps.canonical.models import RateCardVersion
from apps.mapping.models import ValueMapEntry
from apps.sync.fixlinks import fix_links
from apps.sync.models import ExceptionGroup
from tests import factories

pytestmark = pytest.mark.django_db
APPROVED = RateCardVersion.Status.APPROVED


def staff(user):
    """Role users reach the admin's trace page as staff, as the demo's users do."""
    user.is_staff = True
    user.save()
    return user


def test_a_value_map_miss_links_to_a_new_entry_with_the_missing_key_prefilled(failing_deal, region_map):
    failing_deal(1)
    group = ExceptionGroup.objects.get()
    [link] = fix_links(group.context)
    assert link.label == "Add 'LATAM' to value map 'region-subsidiary' from 01 Dec 2026"
    assert link.url.startswith(reverse("admin:mapping_valuemapentry_add"))
    assert f"value_map={region_map.pk}" in link.url and "source_value=LATAM" in link.url
    assert "effective_from=2026-12-01" in link.url


def test_once_the_entry_exists_the_link_says_so_and_opens_it(failing_deal, region_map):
    failing_deal(1)
    entry = ValueMapEntry.objects.create(
        value_map=region_map, source_value="LATAM", target_value="NW-BR", effective_from=datetime.date(2026, 1, 1)
    )
    [link] = fix_links(ExceptionGroup.objects.get().context)
    assert "now maps 'LATAM' → 'NW-BR'" in link.label
    assert link.url == reverse("admin:mapping_valuemapentry_change", args=[entry.pk])


def test_a_missing_rate_links_to_the_rate_card_the_project_uses_today():
    on = datetime.date(2026, 12, 3)
    standard = factories.rate_card("STD-US", versions=[(datetime.date(2026, 1, 1), None, APPROVED, {"Partner": 400})])
    project = factories.project(rate_card=standard)
    context = {"project": project.code, "role": "Solution Architect", "on": on.isoformat()}
    [before] = fix_links(context)
    assert "rate card STD-US v1" in before.label
    own = factories.rate_card("P-OWN", versions=[(datetime.date(2026, 12, 1), None, APPROVED, {"Partner": 410})])
    project.rate_card = own
    project.save()
    [after] = fix_links(context)
    assert after.label == "Add 'Solution Architect' to rate card P-OWN v1 on 03 Dec 2026"
    assert after.url == reverse("admin:canonical_ratecardversion_change", args=[own.versions.get().pk])


def test_the_steward_team_can_act_on_mapping_exceptions_routed_to_it(client, steward, failing_deal):
    txn = failing_deal(1)
    group = ExceptionGroup.objects.get()
    client.force_login(staff(steward))
    trace = client.get(reverse("admin:sync_transaction_change", args=[txn.pk])).content.decode()
    assert "Act on it" in trace
    page = client.get(reverse("console:exception-group", args=[group.pk])).content.decode()
    assert "Re-run all in this group" in page and "routed to your team (Mapping steward)" in page
    answer = client.post(reverse("console:exception-group-rerun", args=[group.pk]), {"reason": "added LATAM"})
    assert answer.status_code == 302 and "/exceptions/reruns/" in answer["Location"]


def test_an_auditor_is_told_who_can_act_and_cannot_rerun(client, auditor, failing_deal):
    txn = failing_deal(1)
    group = ExceptionGroup.objects.get()
    client.force_login(staff(auditor))
    page = client.get(reverse("console:exception-group", args=[group.pk])).content.decode()
    assert "Re-run all in this group" not in page
    assert "may read it but not act on it. Ask someone in Mapping steward, Finance ops" in page
    trace = client.get(reverse("admin:sync_transaction_change", args=[txn.pk])).content.decode()
    assert "Who can act on it" in trace and "Act on it</h2>" not in trace
    assert client.post(reverse("console:exception-group-rerun", args=[group.pk]), {"reason": "x"}).status_code == 403


def test_the_trace_links_the_fix_instead_of_repeating_the_stored_hint(client, finance_user, failing_deal):
    txn = failing_deal(1)
    client.force_login(staff(finance_user))
    trace = client.get(reverse("admin:sync_transaction_change", args=[txn.pk])).content.decode()
    assert reverse("admin:mapping_valuemapentry_add") in trace


def test_edit_and_rerun_shows_the_diff_before_anything_runs(client, finance_user, failing_deal):
    txn = failing_deal(1)
    client.force_login(staff(finance_user))
    url = reverse("admin:sync_transaction_edit_input", args=[txn.pk])
    edited = {**txn.input, "region": "EMEA"}
    page = client.post(
        url, {"scope": "transaction", "data": json.dumps(edited), "reason": "EMEA deal", "preview": "1"}
    ).content.decode()
    assert 'class="sync-diff-remove">-  &quot;region&quot;: &quot;LATAM&quot;' in page
    assert 'class="sync-diff-add">+  &quot;region&quot;: &quot;EMEA&quot;' in page
    txn.refresh_from_db()
    assert txn.input_override is None and txn.status == "exception"


def test_the_history_names_the_failed_step_by_its_sequence(failing_deal):
    txn = failing_deal(1)
    reasons = list(txn.history.values_list("history_change_reason", flat=True))
    assert any(reason.startswith("Step 1 (Map the region) failed:") for reason in reasons)


def test_exception_groups_are_listed_in_the_api_with_money_per_currency(api_as, finance_user, failing_deal):
    failing_deal(1, amount="72000", currency="USD")
    failing_deal(2, amount="100", currency="EUR")
    answer = api_as(finance_user).get("/api/v1/exception-groups/?status=open")
    assert answer.status_code == 200
    [row] = answer.json()["results"]
    assert row["open_count"] == 2 and row["missing_key"] == "value_map:region-subsidiary=latam"
    assert {(m["currency"], m["amount"]) for m in row["value_at_risk"]} == {("USD", "72000.00"), ("EUR", "100.00")}


def test_the_routed_team_can_rerun_its_exception_through_the_api_but_not_others(
    api_as, steward, auditor, failing_deal, region_map
):
    from apps.sync.models import Transaction

    txn = failing_deal(1)
    other = failing_deal(2)
    Transaction.objects.filter(pk=other.pk).update(owner_role="finance_ops")  # history-ok: test setup
    url = f"/api/v1/transactions/{txn.pk}/replay/"
    headers = {"HTTP_X_CHANGE_REASON": "LATAM added"}
    assert api_as(auditor).post(url, {"reason": "x"}, format="json", **headers).status_code == 403
    assert (
        api_as(steward).post(f"/api/v1/transactions/{other.pk}/replay/", {"reason": "x"}, format="json").status_code
        == 403
    )
    answer = api_as(steward).post(url, {"reason": "LATAM added"}, format="json", **headers)
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "pending"


def test_the_admin_queue_total_counts_only_money_still_at_risk(client, finance_user, failing_deal):
    failing_deal(1, amount="72000", currency="USD")
    failing_deal(2, region="EMEA", amount="999", currency="USD")  # completes
    client.force_login(staff(finance_user))
    answer = client.get(reverse("admin:sync_transaction_changelist") + "?queue=all")
    assert answer.context["queue_summary"]["at_risk"] == ["USD 72,000.00"]


def test_comments_and_status_changes_are_recorded_with_who_and_why(client, steward, outsider, failing_deal):
    failing_deal(1)
    group = ExceptionGroup.objects.get()
    url = reverse("console:exception-group-update", args=[group.pk])
    client.force_login(outsider)
    assert client.post(url, {"action": "comment", "text": "hello"}).status_code == 403
    client.force_login(steward)
    client.post(url, {"action": "comment", "text": "Asked sales ops about LATAM"})
    client.post(url, {"action": "status", "status": "acknowledged", "reason": "Waiting for sales ops"})
    group.refresh_from_db()
    assert group.status == ExceptionGroup.Status.ACKNOWLEDGED
    assert group.comments.get().author == steward
    latest = group.history.first()
    assert (latest.history_user, latest.history_change_reason) == (steward, "Waiting for sales ops")
