"""Bill and cost rates are hidden ("•••" in the admin, null in the API) from roles without the sensitive permission."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.canonical.models import RateCardLine, TimeEntry
from apps.core.context import audit_context
from apps.core.masking import MASK
from tests import factories

pytestmark = pytest.mark.django_db

BILL, COST = "187.5", "93.25"  # distinctive, so a leak anywhere on a page is found


def staff(user):
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def rates(steward):
    """A draft rate card version with one line, whose bill rate a steward later raised, and a priced time entry."""
    with audit_context(actor=steward, reason="Set up rates"):
        card = factories.rate_card(versions=[(datetime.date(2026, 1, 1), None, "draft", {"Senior Consultant": 170})])
        version = card.versions.get()
        line = version.lines.get()
        line.cost_rate = Decimal(COST)
        line.save()
    with audit_context(actor=steward, reason="Raise senior rate per PRICE-9"):
        line.bill_rate = Decimal(BILL)
        line.save()
    resource = factories.resource(role="Senior Consultant", cost_rate=Decimal(COST))
    project = factories.project()
    entry = TimeEntry.objects.create(
        resource=resource,
        project=project,
        work_date=datetime.date(2026, 2, 2),
        hours=Decimal("7.5"),
        bill_rate=Decimal("170"),
        cost_rate=Decimal("80"),
        currency="USD",
    )
    with audit_context(actor=steward, reason="Re-priced at the raised rate"):
        entry.bill_rate, entry.cost_rate = Decimal(BILL), Decimal(COST)
        entry.save()
    return {"version": version, "line": line, "resource": resource, "entry": entry}


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.content.decode()


def assert_masked(html: str):
    assert MASK in html
    assert BILL not in html
    assert COST not in html


def masked_pages(rates) -> dict[str, str]:
    line, version, resource, entry = rates["line"], rates["version"], rates["resource"], rates["entry"]
    return {
        "rate line list": reverse("admin:canonical_ratecardline_changelist"),
        "rate line change form": reverse("admin:canonical_ratecardline_change", args=[line.pk]),
        "rate line history": reverse("admin:canonical_ratecardline_history", args=[line.pk]),
        "rate line as of": reverse(
            "admin:canonical_ratecardline_simple_history", args=[line.pk, line.history.latest().history_id]
        ),
        "version with inline lines": reverse("admin:canonical_ratecardversion_change", args=[version.pk]),
        "resource list": reverse("admin:canonical_resource_changelist"),
        "resource change form (editable)": reverse("admin:canonical_resource_change", args=[resource.pk]),
        "time entry list": reverse("admin:canonical_timeentry_changelist"),
        "time entry change form (editable)": reverse("admin:canonical_timeentry_change", args=[entry.pk]),
        "time entry history": reverse("admin:canonical_timeentry_history", args=[entry.pk]),
        "time entry as of": reverse(
            "admin:canonical_timeentry_simple_history", args=[entry.pk, entry.history.latest().history_id]
        ),
    }


def test_delivery_ops_sees_dots_instead_of_rates_on_every_admin_page(client, delivery_user, rates):
    client.force_login(staff(delivery_user))
    for name, url in masked_pages(rates).items():
        html = page(client, url)
        assert MASK in html, name
        assert BILL not in html, f"bill rate leaks on the {name}"
        assert COST not in html, f"cost rate leaks on the {name}"


@pytest.mark.parametrize("role_user", ["finance_user", "steward"])
def test_finance_and_stewards_see_the_numbers(request, client, role_user, rates):
    client.force_login(staff(request.getfixturevalue(role_user)))
    for name, url in masked_pages(rates).items():
        html = page(client, url)
        assert BILL in html or COST in html, f"{role_user} cannot see the rates on the {name}"
        assert MASK not in html, name


def test_the_history_diff_hides_the_old_and_new_rate_but_says_it_changed(client, delivery_user, steward, rates):
    url = reverse("admin:canonical_ratecardline_history", args=[rates["line"].pk])
    client.force_login(staff(delivery_user))
    html = page(client, url)
    assert "Raise senior rate per PRICE-9" in html
    assert f"{MASK}\n                    \n                    &nbsp;&rarr;&nbsp;&nbsp;{MASK}" in html
    assert "170.0000" not in html
    client.force_login(staff(steward))
    html = page(client, url)
    assert "170.0000" in html and "187.5000" in html


def test_an_editable_form_has_no_rate_input_and_saving_it_keeps_the_rate(client, delivery_user, rates):
    resource = rates["resource"]
    client.force_login(staff(delivery_user))
    url = reverse("admin:canonical_resource_change", args=[resource.pk])
    html = page(client, url)
    assert 'name="cost_rate"' not in html
    response = client.post(
        url,
        {
            "employee_number": resource.employee_number,
            "name": "Renamed Consultant",
            "role": resource.role,
            "legal_entity": resource.legal_entity_id,
            "cost_rate": "1.00",  # ignored: the field is not on the form for this user
            "cost_currency": "USD",
            "active": "on",
            "change_reason": "Name corrected per HR-12",
        },
    )
    assert response.status_code == 302
    resource.refresh_from_db()
    assert resource.name == "Renamed Consultant"
    assert resource.cost_rate == Decimal(COST)
    assert resource.history.latest().history_change_reason == "Name corrected per HR-12"


def test_an_editable_time_entry_form_keeps_rates_out_of_hidden_inputs(client, delivery_user, rates):
    client.force_login(staff(delivery_user))
    html = page(client, reverse("admin:canonical_timeentry_change", args=[rates["entry"].pk]))
    assert 'name="bill_rate"' not in html and 'name="cost_rate"' not in html
    assert_masked(html)


@pytest.mark.parametrize(
    ("url_name", "lookup"),
    [
        ("admin:canonical_ratecardline_changelist", "bill_rate__gte"),
        ("admin:canonical_timeentry_changelist", "cost_rate__lt"),
        ("admin:canonical_ratecardversion_changelist", "lines__bill_rate__gte"),
        ("admin:canonical_resource_changelist", "cost_rate"),
    ],
)
def test_a_masked_user_cannot_guess_a_rate_by_filtering_the_list_on_it(client, delivery_user, rates, url_name, lookup):
    client.force_login(staff(delivery_user))
    response = client.get(reverse(url_name), {lookup: "150"})
    assert response.status_code == 400


def test_a_steward_may_filter_on_rates(client, steward, rates):
    client.force_login(staff(steward))
    html = page(client, reverse("admin:canonical_ratecardline_changelist") + "?bill_rate__gte=180")
    assert "Senior Consultant" in html


# --- API ---------------------------------------------------------------------------------------


def test_the_api_gives_null_and_names_the_masked_fields(api_as, delivery_user, finance_user, rates):
    line = rates["line"]
    masked = api_as(delivery_user).get(f"/api/v1/rate-card-lines/{line.pk}/").json()
    assert masked["bill_rate"] is None and masked["cost_rate"] is None
    assert masked["masked_fields"] == ["bill_rate", "cost_rate"]
    assert masked["role"] == "Senior Consultant"
    visible = api_as(finance_user).get(f"/api/v1/rate-card-lines/{line.pk}/").json()
    assert Decimal(visible["bill_rate"]) == Decimal(BILL)
    assert "masked_fields" not in visible


def test_nested_lines_of_a_version_are_masked_too(api_as, delivery_user, rates):
    data = api_as(delivery_user).get(f"/api/v1/rate-card-versions/{rates['version'].pk}/").json()
    assert data["lines"][0]["bill_rate"] is None
    assert data["lines"][0]["masked_fields"] == ["bill_rate", "cost_rate"]


def test_time_entries_and_resources_are_masked_in_lists(api_as, delivery_user, rates):
    client = api_as(delivery_user)
    entry = client.get("/api/v1/time-entries/").json()["results"][0]
    assert entry["bill_rate"] is None and entry["cost_rate"] is None and entry["hours"] == "7.5000"
    resource = client.get(f"/api/v1/resources/{rates['resource'].pk}/").json()
    assert resource["cost_rate"] is None and resource["masked_fields"] == ["cost_rate"]


def test_history_through_the_api_is_masked_like_the_record(api_as, delivery_user, steward, rates):
    url = f"/api/v1/rate-card-lines/{rates['line'].pk}/history/"
    rows = api_as(delivery_user).get(url).json()["results"]
    raise_row = next(row for row in rows if row["history_change_reason"] == "Raise senior rate per PRICE-9")
    assert raise_row["changes"] == [{"field": "bill_rate", "old": None, "new": None, "masked": True}]
    assert raise_row["record"]["bill_rate"] is None
    assert raise_row["history_user"] == "sam.steward"
    rows = api_as(steward).get(url).json()["results"]
    raise_row = next(row for row in rows if row["history_change_reason"] == "Raise senior rate per PRICE-9")
    assert raise_row["changes"][0]["new"] == Decimal(BILL)


def test_a_masked_user_cannot_sort_by_a_rate(api_as, delivery_user, steward):
    for name, cost in [("Ann", "300"), ("Bob", "100"), ("Cat", "200")]:
        factories.resource(name=name, cost_rate=Decimal(cost))
    url = "/api/v1/resources/?ordering=cost_rate"
    masked = [row["name"] for row in api_as(delivery_user).get(url).json()["results"]]
    visible = [row["name"] for row in api_as(steward).get(url).json()["results"]]
    assert masked == ["Ann", "Bob", "Cat"]  # the sort on cost is ignored: default order by name
    assert visible == ["Bob", "Cat", "Ann"]


def test_a_user_who_cannot_see_rates_cannot_write_them(api_as, make_user, rates):
    editor = make_user("rita.rates")
    editor.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="canonical", codename__in=["view_ratecardline", "change_ratecardline"]
        )
    )
    client = api_as(editor)
    line = rates["line"]
    response = client.patch(f"/api/v1/rate-card-lines/{line.pk}/", {"bill_rate": "1.00"})
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert "bill rate" in response.json()["detail"]
    assert "sensitive" in response.json()["detail"]
    line.refresh_from_db()
    assert line.bill_rate == Decimal(BILL)
    response = client.patch(f"/api/v1/rate-card-lines/{line.pk}/", {"unit": "day"})
    assert response.status_code == 200
    assert response.json()["bill_rate"] is None
    assert RateCardLine.objects.get(pk=line.pk).unit == "day"


def test_rates_nested_in_a_new_version_are_refused_for_a_user_who_cannot_see_them(api_as, make_user):
    editor = make_user("vic.versions")
    editor.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="canonical", codename__in=["view_ratecardversion", "add_ratecardversion"]
        )
    )
    card = factories.rate_card(code="STD-FR", currency="EUR")
    response = api_as(editor).post(
        "/api/v1/rate-card-versions/",
        {"rate_card": card.pk, "effective_from": "2026-01-01", "lines": [{"role": "Consultant", "bill_rate": "140"}]},
    )
    assert response.status_code == 403
    assert response.json()["detail"].startswith("Your role may not see or set bill rate (sensitive amounts).")
    assert not card.versions.exists()
