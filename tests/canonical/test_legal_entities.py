"""Legal entities over the API: stewards create and update them with who and why; nobody deletes them there."""

import pytest

from apps.canonical.models import LegalEntity
from tests import factories

pytestmark = pytest.mark.django_db

NW_DE = {"code": "NW-DE", "name": "Northwind GmbH", "country": "DE", "currency": "EUR", "tax_region": "DE"}


def test_a_steward_creates_a_legal_entity_and_history_says_who_and_why(api_as, steward):
    response = api_as(steward).post("/api/v1/legal-entities/", NW_DE, HTTP_X_CHANGE_REASON="German entity opens")
    assert response.status_code == 201, response.content
    assert response.json()["display"] == "NW-DE — Northwind GmbH"
    entity = LegalEntity.objects.get(code="NW-DE")
    history = entity.history.get()
    assert history.history_user == steward and history.history_change_reason == "German entity opens"


def test_a_steward_renames_a_legal_entity_with_patch(api_as, steward):
    entity = factories.legal_entity("NW-UK", name="Northwind UK", country="GB", currency="GBP")
    response = api_as(steward).patch(f"/api/v1/legal-entities/{entity.pk}/", {"name": "Northwind Advisory UK Ltd"})
    assert response.status_code == 200, response.content
    entity.refresh_from_db()
    assert entity.name == "Northwind Advisory UK Ltd"


def test_an_unknown_currency_is_refused_with_a_readable_message(api_as, steward):
    response = api_as(steward).post("/api/v1/legal-entities/", NW_DE | {"currency": "EURO"})
    assert response.status_code == 400
    assert "currency" in response.json()["detail"].lower()
    assert not LegalEntity.objects.exists()


def test_only_stewards_write_legal_entities_and_nobody_deletes_them_over_the_api(
    api_as, finance_user, steward, django_user_model
):
    assert api_as(finance_user).post("/api/v1/legal-entities/", NW_DE).status_code == 403
    entity = factories.legal_entity("NW-US")
    assert api_as(steward).delete(f"/api/v1/legal-entities/{entity.pk}/").status_code == 403
    root = django_user_model.objects.create_superuser("root", password="pw-for-tests-only")
    assert api_as(root).delete(f"/api/v1/legal-entities/{entity.pk}/").status_code == 405
    assert LegalEntity.objects.filter(pk=entity.pk).exists()
