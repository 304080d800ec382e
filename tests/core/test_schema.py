"""The OpenAPI schema builds without warnings, so every endpoint is documented as it really behaves."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_openapi_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/inbound/{system}/" in (tmp_path / "schema.yaml").read_text()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/schema/", "/api/v1/docs/"])
def test_the_schema_and_its_docs_are_for_signed_in_people_only(client, url):
    response = client.get(url)
    assert response.status_code in (401, 403)
    assert b"/api/v1/inbound/" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/schema/", "/api/v1/docs/"])
def test_a_signed_in_user_reads_the_schema_and_its_docs(api_as, auditor, url):
    response = api_as(auditor).get(url)
    assert response.status_code == 200
