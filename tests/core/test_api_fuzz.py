"""Schemathesis against the OpenAPI schema: every operation, anonymous and signed in, never answers 5xx.

Bounded so CI stays fast: a few generated examples per operation and caller, no shrinking, no
example database. A failure prints the request as a curl command to reproduce it.
"""

import json

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig

from integration_console.wsgi import application

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

EXAMPLES_PER_OPERATION = 3


def _schema_document() -> dict:
    """The schema exactly as /api/v1/schema/ serves it, built in-process (the endpoint itself needs a login)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


# Fuzzing only: the boundary-value "coverage" phase sends dozens of requests per operation (minutes in CI).
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": False}}, "generation": {"max-examples": EXAMPLES_PER_OPERATION}}
)
schema = schemathesis.openapi.from_dict(_schema_document(), config=CONFIG)
schema.app = application


@pytest.fixture
def keep_the_test_connection_open():
    """The WSGI handler closes the database connection after each request; the test's transaction needs it
    (Django's own test client disconnects the same receivers)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def callers(db, systems):
    """Headers for each kind of caller: nobody, and a superuser (reaches every write path)."""
    admin = get_user_model().objects.create_superuser("fuzz.admin", "fuzz@example.com", "pw-for-tests-only")
    token = Token.objects.create(user=admin)
    common = {"X-Change-Reason": "Schemathesis run", "X-Correlation-ID": "schemathesis"}
    signed_in = Client(headers={"Authorization": f"Token {token.key}"})
    assert signed_in.get("/api/v1/transactions/").status_code == 200  # the token really signs the fuzzer in
    return {"anonymous": common, "superuser": {**common, "Authorization": f"Token {token.key}"}}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(case, callers, keep_the_test_connection_open):
    for who, headers in callers.items():
        response = case.call(headers=headers)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} as {who} answered {response.status_code}: "
            f"{response.text[:500]}\nReproduce: {case.as_curl_command(headers=headers)}"
        )


def test_an_id_too_large_for_the_database_is_a_400_not_a_500(api_as, finance_user):
    # Found by this fuzzer's boundary-value phase: a 20-digit id crashed the bulk re-run.
    response = api_as(finance_user).post(
        "/api/v1/transactions/replay/",
        {"reason": "fuzz", "ids": [10**20]},
        format="json",
        HTTP_X_CHANGE_REASON="fuzz",
    )
    assert response.status_code == 400
    assert "ids" in response.json()["detail"]


def test_a_date_filter_with_an_offset_postgresql_refuses_still_answers(api_as, finance_user):
    # Found by this fuzzer on PostgreSQL, which accepts offsets up to ±15:59 only: now compared in UTC.
    client = api_as(finance_user)
    assert client.get("/api/v1/transactions/?created_before=0043-11-19T04:47:04-21:44").status_code == 200
    assert client.get("/api/v1/inbound-deliveries/?received_after=2026-03-01T10:00:00%2B23:30").status_code == 200
    assert client.get("/api/v1/transactions/?created_after=0001-01-01T00:00:00%2B05:00").status_code == 400
