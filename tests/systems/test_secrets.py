"""Secret references stay inside the integration-secrets namespace, and credentials go only to their own host."""

import pytest
from django.core.exceptions import ValidationError

from apps.connectors.errors import PermanentError
from apps.connectors.http import HttpClient
from apps.systems import secrets
from apps.systems.models import SigningSecret
from tests import factories

pytestmark = pytest.mark.django_db

OUTSIDE = [
    ({"env": "SECRET_KEY"}, "not an integration secret"),
    ({"env": "DATABASE_URL"}, "not an integration secret"),
    ({"env": "IC_SECRET_"}, "not an integration secret"),
    ({"file": "/etc/passwd"}, "outside the secrets directory"),
]


@pytest.mark.parametrize(("reference", "words"), OUTSIDE)
def test_a_reference_outside_the_namespace_is_refused_when_saved(systems, reference, words):
    secret = SigningSecret(system=systems["crm"], label="primary", reference=reference)
    with pytest.raises(ValidationError) as raised:
        secret.full_clean()
    message = " ".join(raised.value.messages)
    assert words in message
    assert "IC_SECRET_" in message or "secrets directory" in message


def test_outbound_credentials_outside_the_namespace_are_refused_when_saved(systems):
    system = systems["erp"]
    system.outbound_auth = "basic"
    system.outbound_credentials = {"username": {"env": "IC_SECRET_NS_USER"}, "password": {"env": "DATABASE_URL"}}
    with pytest.raises(ValidationError, match="DATABASE_URL, which is not an integration secret"):
        system.full_clean()


def test_path_traversal_out_of_the_secrets_directory_is_refused(settings, tmp_path):
    settings.SECRETS_DIR = tmp_path / "secrets"
    settings.SECRETS_DIR.mkdir()
    (tmp_path / "server.key").write_text("the server's own key")
    reference = {"file": f"{settings.SECRETS_DIR}/../server.key"}
    with pytest.raises(ValidationError, match="outside the secrets directory"):
        secrets.validate_reference(reference)
    with pytest.raises(secrets.SecretUnavailable) as raised:
        secrets.resolve(reference)
    assert "the server's own key" not in raised.value.message
    assert "outside the secrets directory" in raised.value.message


def test_a_symbolic_link_out_of_the_secrets_directory_is_refused(settings, tmp_path):
    settings.SECRETS_DIR = tmp_path / "secrets"
    settings.SECRETS_DIR.mkdir()
    (tmp_path / "server.key").write_text("the server's own key")
    (settings.SECRETS_DIR / "innocent").symlink_to(tmp_path / "server.key")
    with pytest.raises(secrets.SecretUnavailable, match="outside the secrets directory"):
        secrets.resolve({"file": str(settings.SECRETS_DIR / "innocent")})


@pytest.mark.parametrize(("reference", "words"), OUTSIDE)
def test_a_stored_reference_outside_the_namespace_does_not_resolve(reference, words, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "the-django-secret-key")
    with pytest.raises(secrets.SecretUnavailable) as raised:
        secrets.resolve(reference)
    assert words in raised.value.message
    assert "the-django-secret-key" not in raised.value.message
    assert "IC_SECRET_" in raised.value.fix


def test_references_inside_the_namespace_resolve(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("IC_SECRET_HUBSPOT", "hub-value")
    settings.SECRETS_DIR = tmp_path
    (tmp_path / "netsuite").write_text("ns-value\n")
    assert secrets.resolve({"env": "IC_SECRET_HUBSPOT"}) == "hub-value"
    assert secrets.resolve({"file": str(tmp_path / "netsuite")}) == "ns-value"


def test_the_namespace_comes_from_settings(settings, monkeypatch):
    settings.SECRET_ENV_PREFIX = "ACME_INTEGRATION_"
    monkeypatch.setenv("ACME_INTEGRATION_TOKEN", "acme")
    assert secrets.resolve({"env": "ACME_INTEGRATION_TOKEN"}) == "acme"
    with pytest.raises(ValidationError, match="start with ACME_INTEGRATION_"):
        secrets.validate_reference({"env": "IC_SECRET_TOKEN"})


def _erp(monkeypatch):
    monkeypatch.setenv("IC_SECRET_NS_TOKEN", "ns-token-value-456")
    return factories.system(
        "netsuite",
        "erp",
        name="NetSuite",
        vendor="netsuite",
        base_url="https://acme.suitetalk.api.netsuite.com/services/rest/",
        outbound_auth="bearer",
        outbound_credentials={"env": "IC_SECRET_NS_TOKEN"},
    )


def test_credentials_are_bound_to_the_host_they_were_attached_for(monkeypatch):
    system = _erp(monkeypatch)
    assert system.credentials_host == "acme.suitetalk.api.netsuite.com"
    system.base_url = "https://attacker.example.net/collect/"
    system.save()
    system.refresh_from_db()
    assert system.credentials_host == "acme.suitetalk.api.netsuite.com"
    assert system.history.first().credentials_host == "acme.suitetalk.api.netsuite.com"


def test_the_client_refuses_to_send_credentials_to_another_host(monkeypatch):
    system = _erp(monkeypatch)
    system.base_url = "https://attacker.example.net/collect/"
    system.save()

    class NoNetwork:
        def __getattr__(self, name):
            raise AssertionError("nothing may be sent")

    client = HttpClient(system, correlation_id="c-1", session=NoNetwork())
    with pytest.raises(PermanentError) as raised:
        client.request("GET", "customer", action="read customer C-1")
    assert raised.value.message == (
        "The credentials of NetSuite were attached for acme.suitetalk.api.netsuite.com, but NetSuite now points at "
        "attacker.example.net; they were not sent there, so nothing was done to read customer C-1."
    )
    assert "attach the credentials again" in raised.value.fix


def test_attaching_credentials_again_binds_them_to_the_new_host(monkeypatch):
    system = _erp(monkeypatch)
    system.base_url = "https://acme-sb1.suitetalk.api.netsuite.com/services/rest/"
    system.outbound_credentials = {"token": {"env": "IC_SECRET_NS_TOKEN"}}
    system.save()
    assert system.credentials_host == "acme-sb1.suitetalk.api.netsuite.com"
