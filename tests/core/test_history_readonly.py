"""History rows cannot be changed or deleted through the admin or the API, by anyone."""

import datetime

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.urls import get_resolver, reverse

from apps.canonical.models import RateCard
from apps.core.context import audit_context
from tests import factories

pytestmark = pytest.mark.django_db


def history_routes():
    """Every API route that serves history rows, with the view behind it."""
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif (pattern.name or "").endswith("-history"):
                found.append((prefix + str(pattern.pattern), pattern.callback))

    walk(get_resolver().url_patterns)
    return found


def test_every_api_history_route_only_reads():
    routes = history_routes()
    assert len(routes) >= 10
    writable = [(route, getattr(view, "actions", None)) for route, view in routes]
    writable = [
        (route, actions) for route, actions in writable if actions is None or not set(actions) <= {"get", "head"}
    ]
    assert writable == []


def test_writing_to_a_history_endpoint_is_refused(api_as, steward):
    with audit_context(actor=steward, reason="Price list"):
        card = factories.rate_card(versions=[(datetime.date(2026, 1, 1), None, "draft", {"Consultant": 150})])
    client = api_as(steward)
    url = f"/api/v1/rate-cards/{card.pk}/history/"
    assert client.get(url).status_code == 200
    row = card.history.get()
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)(url, {"history_change_reason": "rewritten"})
        assert response.status_code == 405, f"{method}: {response.status_code}"
    row.refresh_from_db()
    assert row.history_change_reason == "Price list"
    assert card.history.count() == 1


def test_no_history_model_has_an_admin_page():
    registered = [model for model in admin.site._registry if model._meta.model_name.startswith("historical")]
    assert registered == []


def test_no_role_may_add_change_or_delete_history_rows():
    writes = Permission.objects.filter(
        group__in=Group.objects.all(), codename__regex=r"^(add|change|delete)_historical"
    ).values_list("codename", flat=True)
    assert list(writes) == []


def test_the_admin_refuses_to_save_an_old_version_even_for_a_superuser(client, django_user_model, steward):
    with audit_context(actor=steward, reason="Price list"):
        card = factories.rate_card(code="STD-UK", currency="GBP")
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-only"))
    row = card.history.get()
    url = reverse("admin:canonical_ratecard_simple_history", args=[card.pk, row.history_id])
    assert client.get(url).status_code == 200
    response = client.post(url, {"code": "STD-XX", "name": "Rewritten", "currency": "GBP"})
    assert response.status_code == 403
    assert RateCard.objects.get(pk=card.pk).code == "STD-UK"
    assert card.history.count() == 1
