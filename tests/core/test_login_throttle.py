"""The sign-in page answers 429 after too many attempts from one address."""

import pytest

pytestmark = pytest.mark.django_db


def test_repeated_sign_in_attempts_are_throttled(client, auditor, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "3/min"},
    }
    attempts = [
        client.post("/admin/login/", {"username": auditor.username, "password": f"guess-{n}"}).status_code
        for n in range(5)
    ]
    assert attempts[:3] == [200, 200, 200]  # the form again, with its error
    assert attempts[3:] == [429, 429]
    response = client.post("/admin/login/", {"username": auditor.username, "password": "pw-for-tests-only"})
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert int(response["Retry-After"]) > 0


def test_a_person_signs_in_normally_under_the_limit(client, auditor):
    response = client.post("/admin/login/", {"username": auditor.username, "password": "pw-for-tests-only"})
    assert response.status_code == 302


def test_the_login_rate_is_set_in_production_settings(settings):
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"]
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["inbound"]
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["inbound_rejected"]
