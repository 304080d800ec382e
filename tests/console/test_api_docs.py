"""The API docs are served by the project itself, so they work on a machine with no internet."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static

pytestmark = pytest.mark.django_db


def _assets(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)


def test_the_api_docs_page_loads_swagger_ui_from_our_own_static_files(client, auditor):
    client.force_login(auditor)
    page = client.get("/api/v1/docs/").content.decode()
    assets = _assets(page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    assert all(not a.startswith(("http:", "https:", "//")) for a in assets), assets
    assert "cdn" not in page.lower()
    prefix = static("")
    for asset in assets:
        if asset.startswith(prefix):
            assert finders.find(asset[len(prefix) :]), f"{asset} is not a static file of the project"


def test_the_schema_the_docs_read_is_served_by_the_project(client, auditor):
    client.force_login(auditor)
    page = client.get("/api/v1/docs/").content.decode()
    assert "/api/v1/schema/" in page
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"Integration Console API" in schema.content
