"""Source profiles over the API: read, preview a sample delivery, start a new version, publish it."""

import datetime
import json
from pathlib import Path

import pytest

from apps.mapping.builtin_profiles import builtin_profiles
from apps.mapping.models import SourceProfile, ValueMap, ValueMapEntry

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
ON = "2026-04-15"
BUILTIN_NAMES = [item["name"] for item in builtin_profiles()]
# Thin notifications: the record the source system would return when the sync layer fetches it.
FETCHED = {
    "salesforce-opportunity-cdc-cometd": "salesforce/Opportunity-fetched.json",
    "salesforce-opportunity-cdc-pubsub": "salesforce/Opportunity-fetched.json",
    "hubspot-deal-closedwon": "hubspot/deal-fetched.json",
    "business-central-sales-invoices": "business-central/salesInvoice-fetched.json",
    "business-central-customer-payments": "business-central/customerPayment-fetched.json",
}


def sample(relative: str):
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def active(name: str) -> SourceProfile:
    return SourceProfile.objects.get(name=name, status=SourceProfile.Status.ACTIVE)


@pytest.fixture
def value_maps(db):
    regions = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
    currencies = ValueMap.objects.create(name="netsuite-currency", source_label="currency ID", target_label="ISO code")
    for value_map, source, target in [
        (regions, "North America", "ACME-US"),
        (regions, "EMEA", "ACME-DE"),
        (currencies, "1", "USD"),
        (currencies, "2", "GBP"),
    ]:
        ValueMapEntry.objects.create(
            value_map=value_map, source_value=source, target_value=target, effective_from=datetime.date(2026, 1, 1)
        )


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_each_builtin_sample_previews_into_canonical_commands(api_as, steward, value_maps, name):
    profile = active(name)
    body = {"on": ON}
    if name in FETCHED:
        body["fetched"] = sample(FETCHED[name])

    response = api_as(steward).post(f"/api/v1/source-profiles/{profile.pk}/preview/", body)

    assert response.status_code == 200, response.content
    preview = response.json()
    assert preview["valid_profile"] and preview["delivery_problem"] is None
    assert preview["delivery"] == profile.spec["delivery"]
    assert preview["totals"]["commands"] >= 1
    assert preview["totals"]["errors"] == 0, [event["errors"] for event in preview["events"]]
    assert preview["totals"]["needs_fetch"] == 0
    produced = {command["type"] for event in preview["events"] for command in event["commands"]}
    assert produced <= {command["type"] for command in profile.spec["commands"]}


def test_a_preview_shows_amounts_and_dates_as_text_per_event(api_as, steward):
    profile = active("chargebee-invoice-generated")

    preview = api_as(steward).post(f"/api/v1/source-profiles/{profile.pk}/preview/", {"on": ON}).json()

    (event,) = preview["events"]
    assert event["event_type"] == "invoice_generated"
    assert event["idempotency_key"].startswith("chargebee:")
    (command,) = event["commands"]
    assert command["type"] == "invoice.posted"
    assert isinstance(command["data"]["total"], str) and "." in command["data"]["total"]
    assert datetime.date.fromisoformat(command["data"]["issue_date"])


def test_a_thin_notification_without_its_record_asks_for_a_fetch(api_as, steward, value_maps):
    profile = active("hubspot-deal-closedwon")

    preview = api_as(steward).post(f"/api/v1/source-profiles/{profile.pk}/preview/", {"on": ON}).json()

    requests = [request for event in preview["events"] for request in event["needs_fetch"]]
    assert [request["key"] for request in requests] == ["deal:18334623104"]
    assert requests[0]["message"] == "needs fetch of deal 18334623104 from the source system"
    assert requests[0]["include"] == ["company"]
    assert preview["totals"]["commands"] == 0


def test_a_value_map_miss_shows_the_business_message_and_its_fix(api_as, steward, value_maps):
    profile = active("hubspot-deal-closedwon")
    fetched = sample("hubspot/deal-fetched.json")
    fetched["company"]["properties"]["region"] = "LATAM"

    preview = (
        api_as(steward)
        .post(f"/api/v1/source-profiles/{profile.pk}/preview/", {"on": ON, "fetched": {"deal:18334623104": fetched}})
        .json()
    )

    errors = [error for event in preview["events"] for error in event["errors"]]
    assert len(errors) == 1
    (error,) = errors
    assert error["field"] == "legal_entity"
    assert error["message"].startswith("Legal entity: value map region→subsidiary has no entry for 'LATAM' on ")
    assert error["path"] == "$fetched.company.properties.region"
    assert "Add an entry for 'LATAM' to value map 'region-subsidiary'" in error["fix"]
    assert preview["totals"]["commands"] == 0


def test_an_unsaved_spec_is_previewed_on_a_pasted_delivery(api_as, steward):
    spec = active("stripe-invoice-paid").spec
    delivery = sample("stripe/invoice.paid.json")

    response = api_as(steward).post("/api/v1/source-profiles/preview/", {"spec": spec, "payload": delivery})

    assert response.status_code == 200, response.content
    (event,) = response.json()["events"]
    assert [command["type"] for command in event["commands"]] == ["payment.received"]
    assert SourceProfile.objects.filter(name="stripe-invoice-paid").count() == 1


def test_a_malformed_spec_is_refused_with_readable_messages(api_as, steward):
    spec = json.loads(json.dumps(active("stripe-invoice-paid").spec))
    spec["commands"][0]["fields"]["amount"]["type"] = "string"
    spec["commands"][0]["fields"]["amont"] = "data.object.amount_paid"
    spec["delivery"] = "carrier-pigeon"

    body = problem(
        api_as(steward).post("/api/v1/source-profiles/preview/", {"spec": spec, "payload": {}}),
        400,
    )

    messages = [error["message"] for error in body["errors"] if error["field"] == "spec"]
    assert "commands[0].fields: 'amont' is not a field of payment.received" in " ".join(messages)
    assert any(message.startswith("commands[0].fields.amount.type: this field holds a decimal") for message in messages)
    assert any(message.startswith("delivery: 'carrier-pigeon' is not a delivery format") for message in messages)


def test_a_new_version_with_a_broken_spec_is_refused_and_nothing_is_written(api_as, steward):
    profile = active("stripe-invoice-paid")
    before = SourceProfile.objects.count()

    body = problem(
        api_as(steward).post(f"/api/v1/source-profiles/{profile.pk}/new-version/", {"spec": {"vendor": "stripe"}}),
        400,
    )

    assert any("event_types: list the vendor event types" in error["message"] for error in body["errors"])
    assert SourceProfile.objects.count() == before


def test_a_new_version_may_not_change_the_vendor(api_as, steward):
    profile = active("stripe-invoice-paid")
    spec = {**profile.spec, "vendor": "chargebee"}

    body = problem(api_as(steward).post(f"/api/v1/source-profiles/{profile.pk}/new-version/", {"spec": spec}), 400)

    assert "This profile reads stripe payloads, but the spec says vendor 'chargebee'" in body["detail"]


def test_a_new_version_then_publish_keeps_one_active_version_and_records_who_and_why(api_as, steward):
    original = active("stripe-invoice-paid")
    spec = {**original.spec, "description": "Stripe paid invoices, our edition"}
    client = api_as(steward)

    response = client.post(
        f"/api/v1/source-profiles/{original.pk}/new-version/",
        {"spec": spec},
        HTTP_X_CHANGE_REASON="Describe the profile for the finance team (MAP-12)",
    )
    assert response.status_code == 201, response.content
    draft = response.json()
    assert (draft["version"], draft["status"], draft["builtin"]) == (original.version + 1, "draft", False)
    assert response["Location"] == f"/api/v1/source-profiles/{draft['id']}/"
    assert active("stripe-invoice-paid").pk == original.pk

    response = client.post(f"/api/v1/source-profiles/{draft['id']}/publish/", {"reason": "Reviewed with finance"})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "active"
    assert SourceProfile.objects.filter(name="stripe-invoice-paid", status="active").count() == 1
    assert active("stripe-invoice-paid").pk == draft["id"]
    original.refresh_from_db()
    assert original.status == "retired"
    published = SourceProfile.objects.get(pk=draft["id"]).history.order_by("-history_date", "-history_id")
    assert [(row.history_user, row.history_change_reason) for row in published[:2]] == [
        (steward, "Reviewed with finance"),
        (steward, "Describe the profile for the finance team (MAP-12)"),
    ]
    versions = client.get(f"/api/v1/source-profiles/{original.pk}/versions/").json()
    assert [(row["version"], row["status"]) for row in versions] == [
        (original.version + 1, "active"),
        (original.version, "retired"),
    ]
    assert versions[0]["last_changed_by"] == str(steward)
    assert versions[0]["last_change_reason"] == "Reviewed with finance"
    assert versions[1]["last_change_reason"] == "Reviewed with finance"


def test_publishing_needs_a_reason(api_as, steward):
    profile = active("stripe-invoice-paid")
    draft = api_as(steward).post(f"/api/v1/source-profiles/{profile.pk}/new-version/", {"spec": profile.spec}).json()

    body = problem(
        api_as(steward).post(f"/api/v1/source-profiles/{draft['id']}/publish/", {}, HTTP_X_CHANGE_REASON=""), 400
    )

    assert body["errors"][0]["field"] == "reason"
    assert SourceProfile.objects.get(pk=draft["id"]).status == "draft"


def test_publishing_the_active_version_again_changes_nothing(api_as, steward):
    profile = active("stripe-invoice-paid")
    rows = profile.history.count()

    response = api_as(steward).post(f"/api/v1/source-profiles/{profile.pk}/publish/", {"reason": "again"})

    assert response.status_code == 200
    assert profile.history.count() == rows


def test_an_auditor_reads_and_previews_but_may_not_start_or_publish_versions(api_as, auditor):
    profile = active("stripe-invoice-paid")
    client = api_as(auditor)

    assert client.get("/api/v1/source-profiles/?status=active&builtin=true").json()["count"] == len(BUILTIN_NAMES)
    assert client.post(f"/api/v1/source-profiles/{profile.pk}/preview/", {}).status_code == 200
    refused = problem(client.post(f"/api/v1/source-profiles/{profile.pk}/new-version/", {"spec": profile.spec}), 403)
    assert refused["detail"] == "Only mapping stewards may start or publish versions of a source profile."
    problem(client.post(f"/api/v1/source-profiles/{profile.pk}/publish/", {"reason": "x"}), 403)
    assert SourceProfile.objects.filter(name="stripe-invoice-paid").count() == 1


def test_outsiders_may_not_read_or_preview_profiles(api_as, outsider):
    profile = active("stripe-invoice-paid")
    client = api_as(outsider)

    problem(client.get("/api/v1/source-profiles/"), 403)
    problem(client.post(f"/api/v1/source-profiles/{profile.pk}/preview/", {}), 403)


def test_profiles_are_found_by_the_event_type_they_read(api_as, auditor):
    found = api_as(auditor).get("/api/v1/source-profiles/?event_type=invoice.paid").json()["results"]

    assert [row["name"] for row in found] == ["stripe-invoice-paid"]
