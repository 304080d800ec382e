"""Shared fixtures: one user per role plus an outsider, API clients, and the usual connected systems."""

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.core import approvals
from apps.mapping.masking import forget_profile_keys

from . import factories


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Real hashing costs ~0.3 s per user; tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_throttles():
    """Throttles count requests in the cache; each test starts with none counted (and payload masking re-reads the
    source profiles of this test's database)."""
    cache.clear()
    forget_profile_keys()
    yield
    cache.clear()


# API writes must say why (X-Change-Reason); the shared clients send this unless a test gives its own.
TEST_CHANGE_REASON = "Test change (tests/conftest.py)"


class ReasonedAPIClient(APIClient):
    """An API client that says why it writes, as every real caller must."""

    def request(self, **kwargs):
        kwargs.setdefault("HTTP_X_CHANGE_REASON", TEST_CHANGE_REASON)
        return super().request(**kwargs)


ROLES = ["finance_ops", "delivery_ops", "mapping_steward", "auditor", "integration_admin"]


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, *roles: str, **fields):
        user = django_user_model.objects.create_user(username=username, password="pw-for-tests-only", **fields)
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def finance_user(make_user):
    return make_user("fiona.finance", "finance_ops")


@pytest.fixture
def delivery_user(make_user):
    return make_user("dan.delivery", "delivery_ops")


@pytest.fixture
def steward(make_user):
    return make_user("sam.steward", "mapping_steward")


@pytest.fixture
def auditor(make_user):
    return make_user("alex.auditor", "auditor", is_staff=True)


@pytest.fixture
def integration_admin(make_user):
    return make_user("ian.admin", "integration_admin", is_staff=True)


@pytest.fixture
def outsider(make_user):
    return make_user("olly.outsider")


@pytest.fixture
def api():
    """An API client; call api.force_authenticate(user) or use `api_as`."""
    return ReasonedAPIClient()


@pytest.fixture
def api_as():
    def client_for(user):
        client = ReasonedAPIClient()
        client.force_authenticate(user)
        return client

    return client_for


@pytest.fixture
def systems(db):
    """The six connected systems of the demo firm, keyed by kind."""
    return {
        "crm": factories.system("salesforce", "crm", name="Salesforce", vendor="salesforce"),
        "cpq": factories.system("pandadoc", "cpq", name="PandaDoc", vendor="pandadoc"),
        "psa": factories.system("kantata", "psa", name="Kantata", vendor="kantata"),
        "erp": factories.system("netsuite", "erp", name="NetSuite", vendor="netsuite"),
        "billing": factories.system("chargebee", "billing", name="Chargebee", vendor="chargebee"),
        "hris": factories.system("bamboohr", "hris", name="BambooHR", vendor="bamboohr"),
    }


@pytest.fixture
def four_eyes_off(settings):
    """Approve, publish and re-run in one step: for tests about something other than four-eyes control."""
    settings.FOUR_EYES = {kind: False for kind in approvals.DEFAULTS}


@pytest.fixture
def four_eyes_on(settings):
    """Every guarded kind of change needs a second person."""
    settings.FOUR_EYES = {kind: True for kind in approvals.DEFAULTS}
