"""The canonical API: read-only records, read-write rate cards with approval, problem+json errors, query budgets."""

import datetime
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.canonical.models import RateCard, RateCardLine, RateCardVersion, TimeEntry
from apps.core.context import audit_context
from tests import factories

pytestmark = pytest.mark.django_db

JAN_1 = datetime.date(2026, 1, 1)

READ_ONLY = [
    "customers",
    "resources",
    "opportunities",
    "contracts",
    "contract-lines",
    "contract-amendments",
    "projects",
    "tasks",
    "milestones",
    "time-entries",
    "expenses",
    "billing-schedules",
    "billing-events",
    "invoices",
    "invoice-lines",
    "payments",
    "revenue-schedules",
    "revenue-schedule-lines",
]
LISTED = [
    "legal-entities",
    *READ_ONLY,
]  # legal entities are also written by stewards (tests/canonical/test_legal_entities.py)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["detail"] and "__all__" not in body["detail"]
    return body


@pytest.mark.parametrize("resource", LISTED)
def test_every_canonical_record_type_is_listed_for_an_auditor(api_as, auditor, resource):
    client = api_as(auditor)
    response = client.get(f"/api/v1/{resource}/")
    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.parametrize("resource", READ_ONLY)
def test_read_only_records_refuse_writes_with_405(api_as, django_user_model, resource):
    admin = django_user_model.objects.create_superuser("root", password="pw-for-tests-only")
    body = problem(api_as(admin).post(f"/api/v1/{resource}/", {}), 405)
    assert body["detail"] == 'Method "POST" not allowed.'


def test_a_record_is_retrieved_with_its_label_and_history(api_as, finance_user, steward):
    with audit_context(actor=steward, reason="Onboard Globex", correlation_id="onboard-42"):
        customer = factories.customer(name="Globex")
    data = api_as(finance_user).get(f"/api/v1/customers/{customer.pk}/").json()
    assert data["name"] == "Globex"
    assert data["display"] == f"{customer.number} Globex"
    history = api_as(finance_user).get(f"/api/v1/customers/{customer.pk}/history/").json()["results"]
    assert history[0]["history_type"] == "created"
    assert history[0]["history_user"] == "sam.steward"
    assert history[0]["history_change_reason"] == "Onboard Globex"
    assert history[0]["correlation_id"] == "onboard-42"


def test_filters_narrow_the_list(api_as, finance_user):
    card = factories.rate_card(
        versions=[
            (JAN_1, datetime.date(2026, 6, 30), "approved", {"Consultant": 150}),
            (datetime.date(2026, 7, 1), None, "approved", {"Consultant": 160}),
        ]
    )
    client = api_as(finance_user)
    versions = client.get("/api/v1/rate-card-versions/", {"in_force_on": "2026-08-15"}).json()["results"]
    assert [v["version"] for v in versions] == [2]
    lines = client.get("/api/v1/rate-card-lines/", {"rate_card_code": card.code, "version": versions[0]["id"]})
    assert [Decimal(line["bill_rate"]) for line in lines.json()["results"]] == [Decimal("160")]


def test_a_bad_filter_value_is_a_readable_400(api_as, finance_user):
    body = problem(api_as(finance_user).get("/api/v1/time-entries/", {"work_date__gte": "last tuesday"}), 400)
    assert "work_date__gte" in body["detail"] and "date" in body["detail"].lower()


# --- errors --------------------------------------------------------------------------------------


def test_an_anonymous_caller_gets_401_with_a_readable_detail():
    body = problem(APIClient().get("/api/v1/customers/"), 401)
    assert body["detail"] == "Authentication credentials were not provided."


def test_a_user_without_the_view_permission_gets_403(api_as, outsider):
    body = problem(api_as(outsider).get("/api/v1/invoices/"), 403)
    assert "permission" in body["detail"]


def test_a_missing_record_is_a_404_that_names_what_was_looked_for(api_as, auditor):
    body = problem(api_as(auditor).get("/api/v1/rate-card-versions/999999/"), 404)
    assert body["detail"] == "There is no rate card version with id 999999, or you may not see it."


def test_deleting_a_rate_card_still_in_use_is_a_409_naming_the_user(api_as, steward):
    card = factories.rate_card(code="TM-US")
    contract = factories.contract(contract_type="time_and_materials", rate_card=card)
    body = problem(api_as(steward).delete(f"/api/v1/rate-cards/{card.pk}/"), 409)
    assert contract.number in body["detail"]
    assert RateCard.objects.filter(pk=card.pk).exists()


# --- rate cards ------------------------------------------------------------------------------------


def test_a_steward_creates_a_draft_version_with_lines_and_the_history_says_who_and_why(api_as, steward):
    card = factories.rate_card(code="STD-UK", currency="GBP")
    response = api_as(steward).post(
        "/api/v1/rate-card-versions/",
        {
            "rate_card": card.pk,
            "effective_from": "2026-01-01",
            "lines": [
                {"role": "Consultant", "bill_rate": "150.00", "cost_rate": "70.00"},
                {"role": "Architect", "bill_rate": "220.00"},
            ],
        },
        HTTP_X_CHANGE_REASON="2026 price list per PRICE-1",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["version"] == 1 and data["status"] == "draft"
    assert sorted(line["role"] for line in data["lines"]) == ["Architect", "Consultant"]
    assert {line["currency"] for line in data["lines"]} == {"GBP"}
    version = RateCardVersion.objects.get(pk=data["id"])
    row = version.history.get()
    assert row.history_user == steward
    assert row.history_change_reason == "2026 price list per PRICE-1"
    assert {line.history.get().history_change_reason for line in version.lines.all()} == {"2026 price list per PRICE-1"}


def test_a_write_without_a_change_reason_is_refused_and_nothing_is_saved(steward):
    # Issue 11 finding 7: the reason used to default to boilerplate ("Changed through the API by …").
    client = APIClient()
    client.force_authenticate(steward)
    response = client.post("/api/v1/rate-cards/", {"code": "STD-DE", "name": "Standard DE", "currency": "EUR"})
    body = problem(response, 400)
    assert "X-Change-Reason" in body["detail"]
    assert "why" in body["detail"]
    assert not RateCard.objects.filter(code="STD-DE").exists()


def test_the_change_reason_header_is_recorded_with_the_user(api_as, steward):
    response = api_as(steward).post(
        "/api/v1/rate-cards/",
        {"code": "STD-DE", "name": "Standard DE", "currency": "EUR"},
        HTTP_X_CHANGE_REASON="German price list (PRICE-9)",
    )
    assert response.status_code == 201
    row = RateCard.objects.get(code="STD-DE").history.get()
    assert row.history_change_reason == "German price list (PRICE-9)"
    assert row.history_user == steward


@pytest.mark.usefixtures("four_eyes_off")
def test_approving_a_version_through_the_api(api_as, steward):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    version = card.versions.get()
    response = api_as(steward).post(
        f"/api/v1/rate-card-versions/{version.pk}/approve/", HTTP_X_CHANGE_REASON="Signed off by CFO"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "approved" and response.json()["approved_at"]
    assert version.history.latest().history_change_reason == "Signed off by CFO"


@pytest.mark.usefixtures("four_eyes_off")
def test_approving_an_overlapping_version_is_a_400_that_explains_the_overlap(api_as, steward):
    card = factories.rate_card(
        versions=[
            (JAN_1, None, "approved", {"Consultant": 150}),
            (datetime.date(2026, 7, 1), None, "draft", {"Consultant": 160}),
        ]
    )
    draft = card.versions.get(version=2)
    body = problem(api_as(steward).post(f"/api/v1/rate-card-versions/{draft.pk}/approve/"), 400)
    assert "overlaps approved version 1" in body["detail"]
    assert "end version 1 the day before this one starts" in body["detail"]
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_approving_a_version_without_rates_is_refused(api_as, steward):
    card = factories.rate_card()
    version = RateCardVersion.objects.create(rate_card=card, version=1, effective_from=JAN_1)
    body = problem(api_as(steward).post(f"/api/v1/rate-card-versions/{version.pk}/approve/"), 400)
    assert body["detail"] == f"Rate card {card.code} version 1 has no rates; add lines first."


def test_moving_an_approved_version_onto_another_is_refused_with_the_model_message(api_as, steward):
    card = factories.rate_card(
        versions=[
            (JAN_1, datetime.date(2026, 6, 30), "approved", {"Consultant": 150}),
            (datetime.date(2026, 7, 1), None, "approved", {"Consultant": 160}),
        ]
    )
    first = card.versions.get(version=1)
    body = problem(api_as(steward).patch(f"/api/v1/rate-card-versions/{first.pk}/", {"effective_to": None}), 400)
    assert "overlaps approved version 2" in body["detail"]


def test_a_version_cannot_take_new_lines_or_move_card_through_patch(api_as, steward):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    other = factories.rate_card(code="OTHER")
    version = card.versions.get()
    client = api_as(steward)
    body = problem(
        client.patch(f"/api/v1/rate-card-versions/{version.pk}/", {"lines": [{"role": "X", "bill_rate": "1"}]}),
        400,
    )
    assert "/api/v1/rate-card-lines/" in body["detail"]
    body = problem(client.patch(f"/api/v1/rate-card-versions/{version.pk}/", {"rate_card": other.pk}), 400)
    assert "cannot move to another rate card" in body["detail"]


def test_a_negative_rate_is_a_400_with_a_field_and_a_message(api_as, steward):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    version = card.versions.get()
    body = problem(
        api_as(steward).post(
            "/api/v1/rate-card-lines/",
            {"version": version.pk, "role": "Intern", "bill_rate": "-5", "currency": "USD"},
        ),
        400,
    )
    assert body["detail"] == "bill_rate: A bill rate cannot be negative."
    assert body["errors"] == [{"field": "bill_rate", "message": "A bill rate cannot be negative."}]


def test_a_duplicate_role_in_a_version_uses_the_business_message(api_as, steward):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    version = card.versions.get()
    body = problem(
        api_as(steward).post(
            "/api/v1/rate-card-lines/",
            {"version": version.pk, "role": "Consultant", "bill_rate": "155", "currency": "USD"},
        ),
        400,
    )
    assert "already has a rate for that role" in body["detail"]


def test_a_patch_that_changes_nothing_writes_no_history_row(api_as, steward):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    line = card.versions.get().lines.get()
    before = line.history.count()
    response = api_as(steward).patch(f"/api/v1/rate-card-lines/{line.pk}/", {"bill_rate": "150.0000"})
    assert response.status_code == 200
    assert line.history.count() == before


def test_deleting_a_line_is_recorded_with_who_and_why(api_as, steward):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150, "Architect": 200})])
    line = card.versions.get().lines.get(role="Architect")
    response = api_as(steward).delete(
        f"/api/v1/rate-card-lines/{line.pk}/", HTTP_X_CHANGE_REASON="Role retired per HR-3"
    )
    assert response.status_code == 204
    row = RateCardLine.history.filter(id=line.pk).latest()
    assert row.history_type == "-" and row.history_user == steward
    assert row.history_change_reason == "Role retired per HR-3"


def test_listing_time_entries_costs_the_same_queries_for_5_or_40_rows(
    api_as, finance_user, django_assert_max_num_queries
):
    project = factories.project()
    resources = [factories.resource() for _ in range(4)]
    client = api_as(finance_user)
    client.get("/api/v1/time-entries/")  # warm the permission cache of this user

    def add_entries(count):
        for n in range(count):
            TimeEntry.objects.create(
                resource=resources[n % 4],
                project=project,
                work_date=JAN_1 + datetime.timedelta(days=n),
                hours=Decimal("8"),
                bill_rate=Decimal("150"),
                currency="USD",
            )

    add_entries(5)
    with django_assert_max_num_queries(3):  # count, page with resource and project joined, nothing per row
        assert len(client.get("/api/v1/time-entries/").json()["results"]) == 5
    add_entries(35)
    with django_assert_max_num_queries(3):
        assert len(client.get("/api/v1/time-entries/").json()["results"]) == 40


def test_listing_versions_with_lines_does_not_grow_with_rows(api_as, finance_user, django_assert_max_num_queries):
    for n in range(10):
        factories.rate_card(code=f"C{n}", versions=[(JAN_1, None, "approved", {"Consultant": 100 + n, "PM": 90})])
    client = api_as(finance_user)
    client.get("/api/v1/rate-card-versions/")
    with django_assert_max_num_queries(3):  # count, versions with their card, all their lines
        assert len(client.get("/api/v1/rate-card-versions/").json()["results"]) == 10
