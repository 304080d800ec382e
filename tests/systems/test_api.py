"""Connected systems over the API (secrets by reference only) and ownership rules written through the service."""

import datetime

import pytest

from apps.systems.models import OwnershipRule, SigningSecret
from tests import factories

pytestmark = pytest.mark.django_db

JAN_1 = datetime.date(2026, 1, 1)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def test_connected_systems_show_where_secrets_live_never_their_values(api_as, auditor, systems, monkeypatch):
    monkeypatch.setenv("IC_SECRET_SF_SIGNING_SECRET", "whsec-live-value-123")
    monkeypatch.setenv("IC_SECRET_NS_TOKEN", "ns-token-value-456")
    crm = systems["crm"]
    crm.outbound_auth = "bearer"
    crm.outbound_credentials = {"env": "IC_SECRET_NS_TOKEN"}
    crm.save()
    SigningSecret.objects.create(system=crm, label="primary 2026", reference={"env": "IC_SECRET_SF_SIGNING_SECRET"})
    response = api_as(auditor).get("/api/v1/connected-systems/", {"slug": "salesforce"})
    assert "whsec-live-value-123" not in response.content.decode()
    assert "ns-token-value-456" not in response.content.decode()
    system = response.json()["results"][0]
    assert system["credentials_description"] == "environment variable IC_SECRET_NS_TOKEN"
    assert system["signing_secrets"] == [
        {
            "id": system["signing_secrets"][0]["id"],
            "system": "salesforce",
            "label": "primary 2026",
            "reference": {"env": "IC_SECRET_SF_SIGNING_SECRET"},
            "reference_description": "environment variable IC_SECRET_SF_SIGNING_SECRET",
            "active": True,
            "not_after": None,
            "created_at": system["signing_secrets"][0]["created_at"],
            "updated_at": system["signing_secrets"][0]["updated_at"],
        }
    ]


def test_signing_secrets_are_listed_by_system(api_as, integration_admin, systems):
    SigningSecret.objects.create(system=systems["crm"], label="primary", reference={"file": "/run/secrets/sf"})
    SigningSecret.objects.create(system=systems["billing"], label="primary", reference={"env": "IC_SECRET_CB_SECRET"})
    rows = api_as(integration_admin).get("/api/v1/signing-secrets/", {"system": "chargebee"}).json()["results"]
    assert [row["reference_description"] for row in rows] == ["environment variable IC_SECRET_CB_SECRET"]


def test_connected_systems_are_read_only_over_the_api(api_as, integration_admin, systems):
    body = problem(api_as(integration_admin).post("/api/v1/connected-systems/", {"slug": "x"}), 405)
    assert body["detail"] == 'Method "POST" not allowed.'
    body = problem(api_as(integration_admin).delete(f"/api/v1/connected-systems/{systems['crm'].pk}/"), 405)
    assert "DELETE" in body["detail"]


@pytest.mark.usefixtures("four_eyes_off")
def test_a_steward_creates_an_ownership_rule_and_history_says_who_and_why(api_as, steward, systems):
    response = api_as(steward).post(
        "/api/v1/ownership-rules/",
        {
            "object_type": "customer",
            "owner": "salesforce",
            "may_update": ["netsuite"],
            "effective_from": "2026-01-01",
            "rationale": "CRM is the customer master (GOV-4)",
        },
        HTTP_X_CHANGE_REASON="Governance board decision GOV-4",
        HTTP_X_CORRELATION_ID="gov-4-rollout",
    )
    assert response.status_code == 201, response.content
    assert response.json()["may_update"] == ["netsuite"]
    assert response.json()["display"] == "customer owned by salesforce (2026-01-01 to open-ended)"
    rule = OwnershipRule.objects.get(pk=response.json()["id"])
    assert list(rule.may_update.values_list("slug", flat=True)) == ["netsuite"]
    history = api_as(steward).get(f"/api/v1/ownership-rules/{rule.pk}/history/").json()["results"]
    assert history[0]["history_user"] == "sam.steward"
    assert history[0]["history_change_reason"] == "Governance board decision GOV-4"
    assert history[0]["correlation_id"] == "gov-4-rollout"


def test_an_overlapping_rule_is_a_400_with_the_stewards_explanation(api_as, steward, systems):
    factories.ownership_rule("invoice", systems["billing"], start=JAN_1)
    response = api_as(steward).post(
        "/api/v1/ownership-rules/", {"object_type": "invoice", "owner": "netsuite", "effective_from": "2026-06-01"}
    )
    body = problem(response, 400)
    assert body["detail"].startswith("The invoice already has an ownership rule for 2026-01-01 to open-ended")
    assert "end the existing rule the day before this one starts" in body["detail"]
    assert body["errors"][0]["field"] is None
    assert OwnershipRule.objects.filter(object_type="invoice").count() == 1


def test_a_rule_for_an_unknown_field_names_the_known_fields(api_as, steward, systems):
    body = problem(
        api_as(steward).post(
            "/api/v1/ownership-rules/",
            {"object_type": "customer", "field": "colour", "owner": "salesforce", "effective_from": "2026-01-01"},
        ),
        400,
    )
    assert body["detail"].startswith("field: A customer / account has no field 'colour'. Known fields:")


def test_an_unknown_system_slug_is_a_400(api_as, steward, systems):
    body = problem(
        api_as(steward).post(
            "/api/v1/ownership-rules/", {"object_type": "customer", "owner": "sap", "effective_from": "2026-01-01"}
        ),
        400,
    )
    assert body["detail"] == "owner: Object with slug=sap does not exist."


@pytest.mark.usefixtures("four_eyes_off")
def test_ending_a_rule_and_changing_grants_through_patch(api_as, steward, systems):
    rule = factories.ownership_rule("project", systems["psa"], may_update=[systems["erp"]])
    client = api_as(steward)
    response = client.patch(
        f"/api/v1/ownership-rules/{rule.pk}/",
        {"effective_to": "2026-12-31", "may_update": ["netsuite", "chargebee"]},
        HTTP_X_CHANGE_REASON="PSA hand-over ends 2026",
    )
    assert response.status_code == 200, response.content
    assert sorted(response.json()["may_update"]) == ["chargebee", "netsuite"]
    rule.refresh_from_db()
    assert rule.effective_to == datetime.date(2026, 12, 31)
    assert rule.history.latest().history_change_reason == "PSA hand-over ends 2026"
    rows_before = rule.history.count()
    assert client.patch(f"/api/v1/ownership-rules/{rule.pk}/", {"effective_to": "2026-12-31"}).status_code == 200
    assert rule.history.count() == rows_before


def test_rules_in_force_on_a_date(api_as, auditor, systems):
    factories.ownership_rule("invoice", systems["billing"], start=JAN_1, end=datetime.date(2026, 6, 30))
    factories.ownership_rule("invoice", systems["erp"], start=datetime.date(2026, 7, 1))
    rows = api_as(auditor).get("/api/v1/ownership-rules/", {"in_force_on": "2026-09-01"}).json()["results"]
    assert [row["owner"] for row in rows] == ["netsuite"]


def test_only_stewards_write_ownership_rules(api_as, integration_admin, finance_user, systems):
    payload = {"object_type": "customer", "owner": "salesforce", "effective_from": "2026-01-01"}
    for user in (integration_admin, finance_user):
        body = problem(api_as(user).post("/api/v1/ownership-rules/", payload), 403)
        assert body["detail"] == "You do not have permission to perform this action."
    assert not OwnershipRule.objects.exists()


def test_listing_rules_does_not_grow_with_rows(api_as, auditor, systems, django_assert_max_num_queries):
    for object_type in ["customer", "contract", "project", "invoice", "payment", "time_entry"]:
        factories.ownership_rule(object_type, systems["crm"], may_create=[systems["erp"]], may_update=[systems["psa"]])
    client = api_as(auditor)
    client.get("/api/v1/ownership-rules/")
    with django_assert_max_num_queries(4):  # count, rules with owner, may_create, may_update
        assert len(client.get("/api/v1/ownership-rules/").json()["results"]) == 6
