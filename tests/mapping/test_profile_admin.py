"""The source profile admin: pretty JSON, readable spec errors, edits that start drafts, publish, preview."""

import datetime
import json
from html import unescape

import pytest
from django.urls import reverse

from apps.mapping.models import SourceProfile, ValueMap, ValueMapEntry

pytestmark = pytest.mark.django_db


def active(name: str) -> SourceProfile:
    return SourceProfile.objects.get(name=name, status=SourceProfile.Status.ACTIVE)


def change_url(profile) -> str:
    return reverse("admin:mapping_sourceprofile_change", args=[profile.pk])


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return unescape(response.content.decode())


@pytest.fixture
def steward_client(client, steward):
    steward.is_staff = True
    steward.save()
    client.force_login(steward)
    return client


@pytest.fixture
def auditor_client(client, auditor):
    client.force_login(auditor)
    return client


def edit(profile, **changes) -> dict:
    """The change form's fields as a steward would send them."""
    data = {
        "spec": json.dumps(profile.spec),
        "sample_payload": json.dumps(profile.sample_payload),
        "description": profile.description,
        "documentation_url": profile.documentation_url,
        "change_reason": "",
    }
    data.update(changes)
    return data


def test_the_list_shows_versions_by_vendor_with_filters_and_search(steward_client):
    html = page(steward_client.get(reverse("admin:mapping_sourceprofile_changelist") + "?q=stripe"))

    assert "stripe-invoice-paid" in html
    assert "hubspot-deal-closedwon" not in html
    assert "invoice.paid" in html  # the event types column
    assert "By status" in html and "By builtin" in html


def test_an_active_profile_shows_its_spec_as_pretty_editable_json(steward_client):
    profile = active("stripe-invoice-paid")

    html = page(steward_client.get(change_url(profile)))

    assert '<textarea name="spec"' in html
    assert '{\n  "spec_version": 1,\n  "vendor": "stripe",' in html
    assert f"Version {profile.version} is built-in and is never changed." in html
    assert "This is the active version." in html
    assert f"v{profile.version} (this page)" in html
    assert "Publish this version" not in html
    assert reverse("admin:mapping_sourceprofile_preview", args=[profile.pk]) in html


def test_editing_an_active_profile_starts_the_next_version_as_a_draft(steward_client, steward):
    profile = active("stripe-invoice-paid")
    spec = {**profile.spec, "description": "Paid invoices, reviewed by finance"}

    response = steward_client.post(
        change_url(profile), edit(profile, spec=json.dumps(spec), change_reason="Clarify the description (MAP-3)")
    )

    draft = SourceProfile.objects.get(name="stripe-invoice-paid", version=profile.version + 1)
    assert response.status_code == 302 and response["Location"] == change_url(draft)
    assert (draft.status, draft.builtin, draft.spec["description"]) == ("draft", False, spec["description"])
    assert draft.history.get().history_user == steward
    assert draft.history.get().history_change_reason == "Clarify the description (MAP-3)"
    profile.refresh_from_db()
    assert profile.status == "active" and profile.spec != spec
    html = page(steward_client.get(change_url(draft)))
    assert f"saved as draft version {draft.version}" in html
    assert "Publish this version" in html
    assert '+  "description": "Paid invoices, reviewed by finance",' in html  # the diff against the active one


def test_an_edit_of_a_published_version_needs_a_reason(steward_client):
    profile = active("stripe-invoice-paid")
    spec = {**profile.spec, "description": "x"}

    html = page(steward_client.post(change_url(profile), edit(profile, spec=json.dumps(spec))))

    assert "Say why you are changing this record" in html
    assert SourceProfile.objects.filter(name="stripe-invoice-paid").count() == 1


def test_a_draft_is_edited_in_place_and_its_event_types_follow_the_spec(steward_client):
    profile = active("stripe-invoice-paid")
    steward_client.post(change_url(profile), edit(profile, change_reason="Start a draft"))
    assert SourceProfile.objects.filter(name="stripe-invoice-paid").count() == 1  # nothing changed: no draft
    spec = {**profile.spec, "event_types": ["invoice.paid", "invoice.payment_succeeded"]}
    steward_client.post(change_url(profile), edit(profile, spec=json.dumps(spec), change_reason="Start a draft"))
    draft = SourceProfile.objects.get(name="stripe-invoice-paid", status="draft")
    spec["event_types"] = ["invoice.paid"]

    response = steward_client.post(change_url(draft), edit(draft, spec=json.dumps(spec), change_reason="Narrow it"))

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.event_types == ["invoice.paid"]
    assert SourceProfile.objects.filter(name="stripe-invoice-paid").count() == 2


def test_text_that_is_not_json_is_refused_saying_where(steward_client):
    profile = active("stripe-invoice-paid")

    html = page(
        steward_client.post(change_url(profile), edit(profile, spec='{"vendor": "stripe",}', change_reason="x"))
    )

    assert "This is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 21." in html
    assert SourceProfile.objects.filter(name="stripe-invoice-paid").count() == 1


def test_every_problem_of_the_spec_is_a_readable_form_error(steward_client):
    profile = active("stripe-invoice-paid")
    spec = json.loads(json.dumps(profile.spec))
    spec["commands"][0]["fields"]["amount"]["type"] = "string"
    del spec["commands"][0]["fields"]["currency"]
    spec["vendor"] = "chargebee"

    html = page(steward_client.post(change_url(profile), edit(profile, spec=json.dumps(spec), change_reason="x")))

    assert "commands[0].fields.amount.type: this field holds a decimal" in html
    assert "commands[0].fields: payment.received needs 'currency', but the profile does not map it." in html
    assert SourceProfile.objects.filter(name="stripe-invoice-paid").count() == 1


def test_a_new_profile_starts_as_a_draft_reading_its_vendor_from_the_spec(steward_client):
    spec = {**active("stripe-invoice-paid").spec}
    add_url = reverse("admin:mapping_sourceprofile_add")

    response = steward_client.post(add_url, {"name": "stripe-invoice-paid-eu", "spec": json.dumps(spec)})

    assert response.status_code == 302
    created = SourceProfile.objects.get(name="stripe-invoice-paid-eu")
    assert (created.version, created.status, created.vendor, created.event_types) == (
        1,
        "draft",
        "stripe",
        spec["event_types"],
    )
    again = page(steward_client.post(add_url, {"name": "stripe-invoice-paid-eu", "spec": json.dumps(spec)}))
    assert "There is already a profile called 'stripe-invoice-paid-eu'." in again


def test_publishing_asks_why_then_retires_the_previous_version(steward_client, steward):
    profile = active("stripe-invoice-paid")
    spec = {**profile.spec, "description": "Edition 2"}
    steward_client.post(change_url(profile), edit(profile, spec=json.dumps(spec), change_reason="Edition 2"))
    draft = SourceProfile.objects.get(name="stripe-invoice-paid", status="draft")
    publish_url = reverse("admin:mapping_sourceprofile_publish", args=[draft.pk])

    html = page(steward_client.get(publish_url))
    assert f"Version {profile.version}, active now, will be retired" in html
    assert '+  "description": "Edition 2",' in html
    html = page(steward_client.post(publish_url, {"reason": ""}))
    assert "Say why you publish this version" in html
    assert SourceProfile.objects.get(pk=draft.pk).status == "draft"

    response = steward_client.post(publish_url, {"reason": "Finance signed off (MAP-4)"})

    assert response.status_code == 302
    assert active("stripe-invoice-paid").pk == draft.pk
    profile.refresh_from_db()
    assert profile.status == "retired"
    latest = draft.history.order_by("-history_date", "-history_id").first()
    assert (latest.history_user, latest.history_change_reason) == (steward, "Finance signed off (MAP-4)")
    html = page(steward_client.get(change_url(draft)))
    assert f"is now active; version {profile.version} was retired." in html
    assert "Finance signed off (MAP-4)" in html  # the versions table shows the last change and why


def test_the_preview_page_runs_the_sample_and_shows_each_command(steward_client):
    profile = active("chargebee-invoice-generated")
    url = reverse("admin:mapping_sourceprofile_preview", args=[profile.pk])

    html = page(steward_client.get(url))
    assert '"event_type": "invoice_generated"' in html  # the sample, pre-filled
    html = page(
        steward_client.post(url, {"payload": json.dumps(profile.sample_payload), "fetched": "", "on": "2026-04-15"})
    )

    assert "Command 1: invoice.posted" in html
    assert '<td class="field">lines[0].amount</td>' in html
    assert "Event 1 of 1 · invoice_generated" in html
    assert SourceProfile.objects.filter(name="chargebee-invoice-generated").count() == 1


def test_the_preview_page_shows_a_value_map_miss_with_its_fix(steward_client):
    regions = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
    ValueMapEntry.objects.create(
        value_map=regions, source_value="EMEA", target_value="ACME-DE", effective_from=datetime.date(2026, 1, 1)
    )
    profile = active("salesforce-opportunity-won-platform-event")
    url = reverse("admin:mapping_sourceprofile_preview", args=[profile.pk])

    html = page(
        steward_client.post(url, {"payload": json.dumps(profile.sample_payload), "fetched": "", "on": "2026-04-15"})
    )

    assert "value map region→subsidiary has no entry for 'North America'" in html
    assert "Fix: Add an entry for 'North America' to value map 'region-subsidiary'" in html


def test_an_auditor_reads_profiles_and_previews_but_changes_nothing(auditor_client):
    profile = active("stripe-invoice-paid")

    html = page(auditor_client.get(change_url(profile)))
    assert '<textarea name="spec"' not in html
    assert '<pre class="json-view">{\n  "spec_version": 1,\n  "vendor": "stripe",' in html
    assert "Publish this version" not in html and 'name="_save"' not in html
    assert auditor_client.post(change_url(profile), edit(profile, change_reason="x")).status_code == 403
    assert auditor_client.get(reverse("admin:mapping_sourceprofile_publish", args=[profile.pk])).status_code == 403
    preview_url = reverse("admin:mapping_sourceprofile_preview", args=[profile.pk])
    html = page(auditor_client.post(preview_url, {"payload": json.dumps(profile.sample_payload), "fetched": ""}))
    assert "Command 1: payment.received" in html
    assert SourceProfile.objects.filter(name="stripe-invoice-paid").count() == 1


def test_published_versions_cannot_be_deleted(steward_client):
    profile = active("stripe-invoice-paid")

    response = steward_client.get(reverse("admin:mapping_sourceprofile_delete", args=[profile.pk]))

    assert response.status_code == 403
