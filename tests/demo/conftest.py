"""The demo firm loaded once per test that asks for it, on a developer-style setup (DEBUG on)."""

import io

import pytest
from django.core.management import call_command


@pytest.fixture(autouse=True)
def demo_settings(settings, tmp_path):
    """DEBUG on as under `make demo`; a fast hasher for the demo logins; demo files under a temporary VAR_DIR."""
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.VAR_DIR = tmp_path
    return settings


@pytest.fixture
def load_demo(db):
    """Run `manage.py load_demo` and return what it printed."""

    def run(**options) -> str:
        out = io.StringIO()
        call_command("load_demo", stdout=out, stderr=io.StringIO(), **options)
        return out.getvalue()

    return run


@pytest.fixture
def demo(load_demo):
    """The demo firm, loaded."""
    load_demo()
