"""Approved rate cards are frozen: a price change is a new version (API, admin, configuration import, model)."""

import datetime
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse

from apps.canonical.models import RateCard, RateCardLine, RateCardVersion
from apps.canonical.models.commercial import RateCardFrozen
from apps.canonical.services import rate_card_version_create, rate_for
from apps.configuration.errors import ConfigError
from apps.configuration.services import config_export, config_import
from tests import factories

pytestmark = pytest.mark.django_db

JAN_1 = datetime.date(2026, 1, 1)
MAR_1 = datetime.date(2026, 3, 1)


@pytest.fixture
def approved():
    card = factories.rate_card(versions=[(JAN_1, None, "approved", {"Consultant": 150, "Architect": 220})])
    return card.versions.get()


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


# --- API (the review's three findings) -----------------------------------------------------------------


def test_patching_an_approved_rate_is_refused_with_a_readable_422(api_as, steward, approved):
    line = approved.lines.get(role="Consultant")
    body = problem(api_as(steward).patch(f"/api/v1/rate-card-lines/{line.pk}/", {"bill_rate": "999"}), 422)
    assert body["detail"] == (
        "Rate card STD-US version 1 is approved, so the bill rate of role 'Consultant' cannot change."
    )
    assert "new version" in body["fix"]
    assert body["code"] == "rate_card_frozen"
    line.refresh_from_db()
    assert line.bill_rate == Decimal("150")
    assert rate_for(card="STD-US", role="Consultant", on=MAR_1).bill_rate == Decimal("150")
    assert line.history.count() == 1


def test_moving_an_approved_versions_dates_is_refused(api_as, steward, approved):
    client = api_as(steward)
    body = problem(client.patch(f"/api/v1/rate-card-versions/{approved.pk}/", {"effective_from": "2020-01-01"}), 422)
    assert "its start (2026-01-01) cannot move" in body["detail"]
    approved.refresh_from_db()
    assert approved.effective_from == JAN_1


def test_deleting_an_approved_rate_or_version_is_refused(api_as, steward, approved):
    client = api_as(steward)
    line = approved.lines.get(role="Architect")
    body = problem(client.delete(f"/api/v1/rate-card-lines/{line.pk}/"), 422)
    assert (
        body["detail"] == "Rate card STD-US version 1 is approved, so its rate for role 'Architect' cannot be deleted."
    )
    assert RateCardLine.objects.filter(pk=line.pk).exists()
    assert problem(client.delete(f"/api/v1/rate-card-versions/{approved.pk}/"), 422)["code"] == "rate_card_frozen"
    assert RateCardVersion.objects.filter(pk=approved.pk).exists()


def test_adding_a_rate_to_an_approved_version_is_refused(api_as, steward, approved):
    body = problem(
        api_as(steward).post(
            "/api/v1/rate-card-lines/",
            {"version": approved.pk, "role": "Intern", "bill_rate": "50", "currency": "USD"},
        ),
        422,
    )
    assert "so no rate can be added to it (role 'Intern')" in body["detail"]
    assert not RateCardLine.objects.filter(role="Intern").exists()


def test_an_approved_version_may_still_be_ended_retired_and_annotated(api_as, steward, approved):
    client = api_as(steward)
    response = client.patch(
        f"/api/v1/rate-card-versions/{approved.pk}/", {"effective_to": "2026-06-30", "notes": "Superseded by v2"}
    )
    assert response.status_code == 200, response.content
    approved.refresh_from_db()
    assert approved.effective_to == datetime.date(2026, 6, 30)
    # Once ended, the end is fixed like the start.
    body = problem(client.patch(f"/api/v1/rate-card-versions/{approved.pk}/", {"effective_to": "2026-12-31"}), 422)
    assert "its end (2026-06-30) cannot move" in body["detail"]


@pytest.mark.usefixtures("four_eyes_off")
def test_a_price_change_is_a_new_version(api_as, steward, approved):
    approved.effective_to = datetime.date(2026, 6, 30)
    approved.save()
    version = rate_card_version_create(
        rate_card=approved.rate_card,
        effective_from=datetime.date(2026, 7, 1),
        lines=[{"role": "Consultant", "bill_rate": "165"}],
        actor=steward,
        reason="H2 prices",
    )
    response = api_as(steward).post(f"/api/v1/rate-card-versions/{version.pk}/approve/")
    assert response.status_code == 200, response.content
    assert rate_for(card="STD-US", role="Consultant", on=MAR_1).bill_rate == Decimal("150")
    assert rate_for(card="STD-US", role="Consultant", on=datetime.date(2026, 8, 1)).bill_rate == Decimal("165")


def test_draft_rates_stay_editable(api_as, steward):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    line = card.versions.get().lines.get()
    assert api_as(steward).patch(f"/api/v1/rate-card-lines/{line.pk}/", {"bill_rate": "155"}).status_code == 200


# --- model: every path, including ones that bypass delete() ------------------------------------------------


def test_deleting_a_rate_card_with_an_approved_version_is_refused(approved):
    with pytest.raises(RateCardFrozen), transaction.atomic():
        RateCard.objects.filter(pk=approved.rate_card_id).delete()
    with pytest.raises(RateCardFrozen), transaction.atomic():
        RateCardLine.objects.filter(version=approved).delete()
    assert approved.lines.count() == 2


def test_a_retired_version_stays_retired(approved):
    approved.status = RateCardVersion.Status.RETIRED
    approved.save()
    approved.status = RateCardVersion.Status.APPROVED
    with pytest.raises(RateCardFrozen, match="a retired version cannot come back"):
        approved.save()


# --- admin -------------------------------------------------------------------------------------------------


@pytest.fixture
def steward_client(client, steward):
    steward.is_staff = True
    steward.save()
    client.force_login(steward)
    return client


def test_the_admin_shows_approved_rates_read_only_and_offers_no_delete(steward_client, approved):
    line = approved.lines.get(role="Consultant")
    page = steward_client.get(reverse("admin:canonical_ratecardline_change", args=[line.pk])).content.decode()
    assert 'name="bill_rate"' not in page
    response = steward_client.post(
        reverse("admin:canonical_ratecardline_change", args=[line.pk]),
        {
            "version": approved.pk,
            "role": "Consultant",
            "bill_rate": "999",
            "currency": "USD",
            "unit": "hour",
            "change_reason": "try",
        },
    )
    assert response.status_code == 403
    response = steward_client.post(reverse("admin:canonical_ratecardline_delete", args=[line.pk]), {"post": "yes"})
    assert response.status_code == 403
    line.refresh_from_db()
    assert line.bill_rate == Decimal("150")
    version_page = steward_client.get(
        reverse("admin:canonical_ratecardversion_change", args=[approved.pk])
    ).content.decode()
    assert 'name="effective_from"' not in version_page
    assert 'name="lines-0-bill_rate"' not in version_page


def test_adding_a_rate_to_an_approved_version_in_the_admin_is_a_form_error(steward_client, approved):
    response = steward_client.post(
        reverse("admin:canonical_ratecardline_add"),
        {"version": approved.pk, "role": "Intern", "bill_rate": "50", "currency": "USD", "unit": "hour"},
    )
    assert response.status_code == 200
    assert "so no rate can be added to it" in response.content.decode()
    assert not RateCardLine.objects.filter(role="Intern").exists()


def test_bulk_deleting_versions_in_the_admin_keeps_the_approved_ones(steward_client, approved):
    draft = RateCardVersion.objects.create(rate_card=approved.rate_card, version=2, effective_from=MAR_1)
    response = steward_client.post(
        reverse("admin:canonical_ratecardversion_changelist"),
        {"action": "delete_selected", "_selected_action": [approved.pk, draft.pk], "post": "yes"},
    )
    assert response.status_code == 403  # Django refuses the whole action when one row may not be deleted
    assert RateCardVersion.objects.filter(pk=approved.pk).exists()
    steward_client.post(
        reverse("admin:canonical_ratecardversion_changelist"),
        {"action": "delete_selected", "_selected_action": [draft.pk], "post": "yes"},
    )
    assert list(RateCardVersion.objects.values_list("version", flat=True)) == [1]


# --- configuration import ----------------------------------------------------------------------------------


def test_import_config_refuses_to_change_an_approved_rate(approved, systems):
    document = config_export()
    document["rate_cards"][0]["versions"][0]["lines"][0]["bill_rate"] = "999.00"
    with pytest.raises(ConfigError) as raised:
        config_import(document=document, dry_run=False, prune=False, source_name="prices.yaml")
    assert "is approved, so the bill rate of role" in str(raised.value)
    assert "new version" in str(raised.value)
    assert rate_for(card="STD-US", role="Architect", on=MAR_1).bill_rate == Decimal("220")


def test_import_config_refuses_to_move_or_prune_an_approved_version(approved, systems):
    document = config_export()
    document["rate_cards"][0]["versions"][0]["effective_from"] = "2020-01-01"
    with pytest.raises(ConfigError, match=r"its start \(2026-01-01\) cannot move"):
        config_import(document=document, dry_run=False, prune=False, source_name="prices.yaml")
    document = config_export()
    document["rate_cards"][0]["versions"] = []
    with pytest.raises(ConfigError, match="is approved and cannot be deleted"):
        config_import(document=document, dry_run=False, prune=True, source_name="prices.yaml")
    assert RateCardVersion.objects.filter(pk=approved.pk).exists()
