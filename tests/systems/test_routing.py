"""Routes: which system a workflow's steps of one kind write to, per legal entity, and what happens without one."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.systems.models import Route
from apps.systems.routing import RouteMissing, choose_system
from tests import factories

pytestmark = pytest.mark.django_db

JAN_1 = datetime.date(2026, 1, 1)
TODAY = datetime.date(2026, 6, 1)


@pytest.fixture
def two_erps(systems):
    factories.legal_entity("NW-US", country="US")
    factories.legal_entity("NW-UK", country="GB", currency="GBP")
    uk = factories.system("netsuite-uk", "erp", name="NetSuite UK", vendor="netsuite")
    return {"us": systems["erp"], "uk": uk}


def route(system, *, workflow="", legal_entity="", kind=None, start=JAN_1, end=None):
    made = Route(
        target_kind=kind or system.kind,
        workflow=workflow,
        legal_entity=legal_entity,
        system=system,
        effective_from=start,
        effective_to=end,
    )
    made.full_clean()
    made.save()
    return made


def test_without_routes_the_only_enabled_system_of_a_kind_is_used(systems):
    choice = choose_system(workflow="invoice_to_erp", kind="erp", on=TODAY)
    assert choice.system == systems["erp"]
    assert choice.route is None
    assert choice.explanation == "NetSuite is the only enabled ERP system (no route applies)"


def test_two_systems_of_a_kind_and_no_route_is_refused_naming_both(two_erps):
    with pytest.raises(RouteMissing) as refused:
        choose_system(workflow="invoice_to_erp", kind="erp", legal_entity="NW-US", on=TODAY)
    assert refused.value.message == (
        "2 ERP systems are enabled (NetSuite and NetSuite UK) and no route says which one the workflow "
        "'invoice_to_erp' writes to for legal entity NW-US."
    )
    assert "Add a route" in refused.value.fix


def test_a_legal_entitys_route_beats_the_route_for_every_entity(two_erps):
    route(two_erps["us"])
    uk = route(two_erps["uk"], legal_entity="NW-UK")
    assert choose_system(workflow="invoice_to_erp", kind="erp", legal_entity="NW-US", on=TODAY).system == two_erps["us"]
    choice = choose_system(workflow="invoice_to_erp", kind="erp", legal_entity="NW-UK", on=TODAY)
    assert choice.system == two_erps["uk"] and choice.route == uk
    assert (
        choice.explanation
        == f"route #{uk.pk}: ERP of every workflow, legal entity NW-UK → NetSuite UK (2026-01-01 to open-ended)"
    )


def test_a_workflows_own_route_for_an_entity_beats_the_entitys_route_for_every_workflow(two_erps):
    route(two_erps["uk"], legal_entity="NW-UK")
    route(two_erps["us"], workflow="customer_update", legal_entity="NW-UK")
    assert (
        choose_system(workflow="customer_update", kind="erp", legal_entity="NW-UK", on=TODAY).system == two_erps["us"]
    )
    assert choose_system(workflow="invoice_to_erp", kind="erp", legal_entity="NW-UK", on=TODAY).system == two_erps["uk"]


def test_a_route_applies_only_within_its_dates(two_erps):
    route(two_erps["us"], end=datetime.date(2026, 3, 31))
    route(two_erps["uk"], start=datetime.date(2026, 4, 1))
    assert choose_system(workflow="invoice_to_erp", kind="erp", on=datetime.date(2026, 3, 31)).system == two_erps["us"]
    assert choose_system(workflow="invoice_to_erp", kind="erp", on=datetime.date(2026, 4, 1)).system == two_erps["uk"]


def test_overlapping_routes_for_one_scope_are_refused_as_ambiguous(two_erps):
    route(two_erps["us"], legal_entity="NW-UK")
    with pytest.raises(ValidationError) as refused:
        route(two_erps["uk"], legal_entity="NW-UK", start=datetime.date(2026, 6, 1))
    assert "already has a route for 2026-01-01 to open-ended (to NetSuite)" in str(refused.value)


def test_a_route_must_name_a_system_of_its_kind_an_existing_entity_and_a_real_workflow(two_erps, systems):
    with pytest.raises(ValidationError) as refused:
        route(systems["crm"], kind="erp", workflow="invoice_to_erpp", legal_entity="NW-FR")
    errors = refused.value.message_dict
    assert errors["system"] == ["Salesforce is a CRM system; this route chooses among ERP systems."]
    assert errors["legal_entity"] == ["There is no legal entity with the code 'NW-FR'."]
    assert errors["workflow"][0].startswith("There is no workflow called 'invoice_to_erpp'. The workflows are")


def test_a_route_for_a_kind_the_workflow_never_writes_to_is_refused(two_erps):
    with pytest.raises(ValidationError) as refused:
        route(two_erps["uk"], workflow="time_to_bill")
    assert refused.value.message_dict["target_kind"] == [
        "The workflow time_to_bill writes to billing systems only, not to erp."
    ]


def test_an_integration_admin_adds_a_route_over_the_api_with_who_and_why(api_as, integration_admin, two_erps):
    response = api_as(integration_admin).post(
        "/api/v1/routes/",
        {"target_kind": "erp", "legal_entity": "NW-UK", "system": "netsuite-uk", "effective_from": "2026-01-01"},
        HTTP_X_CHANGE_REASON="UK entity invoices from its own ERP",
    )
    assert response.status_code == 201, response.content
    created = Route.objects.get()
    assert created.system == two_erps["uk"]
    history = created.history.get()
    assert history.history_user == integration_admin
    assert history.history_change_reason == "UK entity invoices from its own ERP"
    listed = api_as(integration_admin).get("/api/v1/routes/", {"legal_entity": "NW-UK"}).json()["results"]
    assert [row["system"] for row in listed] == ["netsuite-uk"]


def test_an_overlapping_route_over_the_api_is_a_400_with_the_explanation(api_as, integration_admin, two_erps):
    route(two_erps["us"], legal_entity="NW-UK")
    response = api_as(integration_admin).post(
        "/api/v1/routes/",
        {"target_kind": "erp", "legal_entity": "NW-UK", "system": "netsuite-uk", "effective_from": "2026-05-01"},
    )
    assert response.status_code == 400
    assert "two routes for the same scope may not overlap" in response.json()["detail"].lower()
    assert Route.objects.count() == 1


def test_only_integration_admins_write_routes(api_as, steward, finance_user, two_erps):
    body = {"target_kind": "erp", "system": "netsuite-uk", "effective_from": "2026-01-01"}
    assert api_as(steward).post("/api/v1/routes/", body).status_code == 403
    assert api_as(finance_user).post("/api/v1/routes/", body).status_code == 403
    assert api_as(finance_user).get("/api/v1/routes/").status_code == 200


def test_a_route_is_added_in_the_admin_with_a_reason(client, integration_admin, two_erps):
    client.force_login(integration_admin)
    response = client.post(
        reverse("admin:systems_route_add"),
        {
            "target_kind": "erp",
            "workflow": "",
            "legal_entity": "NW-UK",
            "system": two_erps["uk"].pk,
            "effective_from": "2026-01-01",
            "effective_to": "",
            "rationale": "UK books in its own ERP",
            "change_reason": "Set up the UK ERP",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Route.objects.get().history.get().history_change_reason == "Set up the UK ERP"
    page = client.get(reverse("admin:systems_route_changelist")).content.decode()
    assert "every workflow" in page and "NW-UK" in page
