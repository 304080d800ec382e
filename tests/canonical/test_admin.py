"""The canonical admin: approving rate card versions, reasons for edits, inline rates, every page opens."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.canonical.models import RateCardLine, RateCardVersion, TimeEntry
from tests import factories

pytestmark = pytest.mark.django_db

JAN_1 = datetime.date(2026, 1, 1)
CHANGELIST = "admin:canonical_ratecardversion_changelist"


@pytest.fixture
def steward_client(client, steward):
    steward.is_staff = True
    steward.save()
    client.force_login(steward)
    return client


def approve(client, *versions):
    response = client.post(
        reverse(CHANGELIST), {"action": "approve_versions", "_selected_action": [v.pk for v in versions]}
    )
    assert response.status_code == 302
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


@pytest.mark.usefixtures("four_eyes_off")
def test_approving_a_draft_version_from_the_list(steward_client, steward):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    version = card.versions.get()
    messages = approve(steward_client, version)
    assert messages == [("success", f"Approved: Rate card {card.code} version 1.")]
    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.APPROVED and version.approved_at
    row = version.history.latest()
    assert row.history_user == steward
    assert row.history_change_reason == "Approved in the admin by sam.steward"


@pytest.mark.usefixtures("four_eyes_off")
def test_an_overlapping_version_is_refused_with_an_error_naming_it(steward_client):
    card = factories.rate_card(
        versions=[
            (JAN_1, None, "approved", {"Consultant": 150}),
            (datetime.date(2026, 7, 1), None, "draft", {"Consultant": 160}),
        ]
    )
    draft = card.versions.get(version=2)
    [(level, message)] = approve(steward_client, draft)
    assert level == "error"
    assert message.startswith(f"Rate card {card.code} version 2 was not approved: ")
    assert "overlaps approved version 1" in message
    draft.refresh_from_db()
    assert draft.status == RateCardVersion.Status.DRAFT


@pytest.mark.usefixtures("four_eyes_off")
def test_a_version_without_rates_is_refused_and_the_others_still_approved(steward_client):
    card = factories.rate_card(versions=[(JAN_1, datetime.date(2026, 6, 30), "draft", {"Consultant": 150})])
    empty = RateCardVersion.objects.create(rate_card=card, version=2, effective_from=datetime.date(2026, 7, 1))
    messages = approve(steward_client, card.versions.get(version=1), empty)
    assert (
        "error",
        f"Rate card {card.code} version 2 was not approved: Rate card {card.code} version 2 has no "
        "rates; add lines first.",
    ) in messages
    assert ("success", f"Approved: Rate card {card.code} version 1.") in messages
    assert list(card.versions.order_by("version").values_list("status", flat=True)) == ["approved", "draft"]


def test_a_delivery_user_is_not_offered_the_approve_action(client, delivery_user):
    delivery_user.is_staff = True
    delivery_user.save()
    client.force_login(delivery_user)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "Approve selected versions" not in page


def test_editing_a_version_needs_a_reason_that_lands_in_the_history(steward_client):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    version = card.versions.get()
    line = version.lines.get()
    url = reverse("admin:canonical_ratecardversion_change", args=[version.pk])
    form = {
        "rate_card": card.pk,
        "version": 1,
        "effective_from": "2026-01-01",
        "effective_to": "2026-12-31",
        "notes": "",
        "lines-TOTAL_FORMS": 2,
        "lines-INITIAL_FORMS": 1,
        "lines-MIN_NUM_FORMS": 0,
        "lines-MAX_NUM_FORMS": 1000,
        "lines-0-id": line.pk,
        "lines-0-version": version.pk,
        "lines-0-role": "Consultant",
        "lines-0-bill_rate": "150",
        "lines-0-cost_rate": "75",
        "lines-0-currency": "USD",
        "lines-0-unit": "hour",
        "lines-1-version": version.pk,
        "lines-1-role": "Architect",
        "lines-1-bill_rate": "230",
        "lines-1-cost_rate": "",
        "lines-1-currency": "USD",
        "lines-1-unit": "hour",
    }
    response = steward_client.post(url, form)
    assert response.status_code == 200
    assert "Say why you are changing this record" in response.content.decode()
    response = steward_client.post(url, {**form, "change_reason": "Add architects for 2026 (PRICE-7)"})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.effective_to == datetime.date(2026, 12, 31)
    assert version.history.latest().history_change_reason == "Add architects for 2026 (PRICE-7)"
    architect = RateCardLine.objects.get(version=version, role="Architect")
    assert architect.bill_rate == Decimal("230")
    assert architect.history.get().history_change_reason == "Add architects for 2026 (PRICE-7)"


def test_the_version_page_lists_its_rates_inline_and_shows_status_read_only(steward_client):
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150, "Architect": 220})])
    page = steward_client.get(
        reverse("admin:canonical_ratecardversion_change", args=[card.versions.get().pk])
    ).content.decode()
    assert 'value="Architect"' in page and 'value="220.0000"' in page
    assert 'name="status"' not in page  # approval goes through the action, which checks overlaps and rates


def test_the_version_list_counts_rates_and_filters_by_status(steward_client):
    factories.rate_card(code="A", versions=[(JAN_1, None, "approved", {"Consultant": 150, "PM": 120})])
    factories.rate_card(code="B", versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    page = steward_client.get(reverse(CHANGELIST), {"status__exact": "approved"}).content.decode()
    assert '<td class="field-line_count">2</td>' in page
    assert '<td class="field-line_count">1</td>' not in page


def test_the_time_entry_list_needs_no_query_per_row(client, django_user_model, django_assert_max_num_queries):
    root = django_user_model.objects.create_superuser("root", password="pw-for-tests-only")
    client.force_login(root)
    project, resource = factories.project(), factories.resource()
    url = reverse("admin:canonical_timeentry_changelist")

    def add(count):
        for n in range(count):
            TimeEntry.objects.create(
                resource=resource, project=project, work_date=JAN_1 + datetime.timedelta(days=n), hours=Decimal("8")
            )

    add(3)
    client.get(url)
    with django_assert_max_num_queries(12) as few:
        client.get(url)
    add(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200
