"""The OpenAPI schema builds without warnings, so every endpoint is documented as it really behaves."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_openapi_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/inbound/{system}/" in (tmp_path / "schema.yaml").read_text()
