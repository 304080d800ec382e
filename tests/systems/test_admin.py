"""The systems admin: secrets shown by reference, never by value; ownership rules saved through the service."""

import datetime

import pytest
from django.urls import reverse

from apps.systems.models import OwnershipRule, SigningSecret
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_for(client):
    def login(user):
        user.is_staff = True
        user.save()
        client.force_login(user)
        return client

    return login


def test_a_system_page_says_where_secrets_live_and_never_shows_them(
    admin_client_for, integration_admin, systems, monkeypatch
):
    monkeypatch.setenv("IC_SECRET_HUBSPOT_CLIENT_SECRET", "live-secret-value-789")
    monkeypatch.setenv("IC_SECRET_NS_USER", "ns-user-value")
    crm = systems["crm"]
    crm.outbound_auth = "basic"
    crm.outbound_credentials = {"username": {"env": "IC_SECRET_NS_USER"}, "password": {"file": "/run/secrets/ns"}}
    crm.save()
    SigningSecret.objects.create(
        system=crm, label="rotation 2026-11", reference={"env": "IC_SECRET_HUBSPOT_CLIENT_SECRET"}
    )
    page = (
        admin_client_for(integration_admin)
        .get(reverse("admin:systems_connectedsystem_change", args=[crm.pk]))
        .content.decode()
    )
    assert "live-secret-value-789" not in page and "ns-user-value" not in page
    assert "password: file /run/secrets/ns; username: environment variable IC_SECRET_NS_USER" in page
    assert "rotation 2026-11: environment variable IC_SECRET_HUBSPOT_CLIENT_SECRET (active)" in page


def test_a_plain_text_secret_is_refused_with_an_explanation(admin_client_for, integration_admin, systems):
    crm = systems["crm"]
    url = reverse("admin:systems_signingsecret_add")
    response = admin_client_for(integration_admin).post(
        url, {"system": crm.pk, "label": "primary", "reference": '"whsec_abc123"', "active": "on"}
    )
    assert response.status_code == 200
    assert "secrets themselves are never stored here" in response.content.decode()
    assert not SigningSecret.objects.exists()


def test_the_signing_secret_list_describes_each_reference(admin_client_for, auditor, systems):
    SigningSecret.objects.create(system=systems["billing"], label="primary", reference={"file": "/run/secrets/cb"})
    page = admin_client_for(auditor).get(reverse("admin:systems_signingsecret_changelist")).content.decode()
    assert "file /run/secrets/cb" in page


def rule_form(owner, **overrides):
    form = {
        "object_type": "customer",
        "field": "",
        "owner": owner.pk,
        "may_create": [],
        "may_update": [],
        "effective_from": "2026-01-01",
        "effective_to": "",
        "rationale": "",
    }
    form.update(overrides)
    return form


@pytest.mark.usefixtures("four_eyes_off")
def test_a_new_rule_is_saved_with_its_grants_and_the_stewards_reason(admin_client_for, steward, systems):
    client = admin_client_for(steward)
    response = client.post(
        reverse("admin:systems_ownershiprule_add"),
        rule_form(systems["crm"], may_update=[systems["erp"].pk], change_reason="CRM owns customers (GOV-1)"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = OwnershipRule.objects.get()
    assert list(rule.may_update.all()) == [systems["erp"]]
    # The rule and then its grants each write a history row, both with the steward's name and reason.
    assert {(row.history_user, row.history_change_reason) for row in rule.history.all()} == {
        (steward, "CRM owns customers (GOV-1)")
    }


def test_an_overlapping_rule_shows_the_model_message_on_the_form(admin_client_for, steward, systems):
    factories.ownership_rule("customer", systems["crm"])
    response = admin_client_for(steward).post(
        reverse("admin:systems_ownershiprule_add"), rule_form(systems["erp"], effective_from="2026-05-01")
    )
    assert response.status_code == 200
    assert "Rules for the same object and field may not overlap" in response.content.decode()
    assert OwnershipRule.objects.count() == 1


@pytest.mark.usefixtures("four_eyes_off")
def test_changing_a_rule_needs_a_reason(admin_client_for, steward, systems):
    rule = factories.ownership_rule("customer", systems["crm"])
    url = reverse("admin:systems_ownershiprule_change", args=[rule.pk])
    client = admin_client_for(steward)
    response = client.post(url, rule_form(systems["crm"], effective_to="2026-12-31"))
    assert "Say why you are changing this record" in response.content.decode()
    response = client.post(url, rule_form(systems["crm"], effective_to="2026-12-31", change_reason="Ends with FY"))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.effective_to == datetime.date(2026, 12, 31)
    assert rule.history.latest().history_change_reason == "Ends with FY"


def test_an_integration_admin_reads_rules_but_cannot_change_them(admin_client_for, integration_admin, systems):
    rule = factories.ownership_rule("customer", systems["crm"])
    client = admin_client_for(integration_admin)
    url = reverse("admin:systems_ownershiprule_change", args=[rule.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, rule_form(systems["erp"], change_reason="x")).status_code == 403
