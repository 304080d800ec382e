"""Connected systems that send us signed webhooks, and helpers that sign like the vendors do."""

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from apps.sync.intake import pick_up_stored_events
from apps.systems.models import SigningSecret

from .. import factories

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
SF_SECRET = "whsec_" + base64.b64encode(b"salesforce-test-signing-key-0001").decode()
STRIPE_SECRET = "whsec_stripe_test_secret"
HUBSPOT_SECRET = "hubspot-client-secret-for-tests"


def sample(vendor: str, name: str) -> bytes:
    return (FIXTURES / vendor / name).read_bytes()


@pytest.fixture
def inbound_systems(db, monkeypatch):
    monkeypatch.setenv("IC_SECRET_TEST_SF_SECRET", SF_SECRET)
    monkeypatch.setenv("IC_SECRET_TEST_STRIPE_SECRET", STRIPE_SECRET)
    monkeypatch.setenv("IC_SECRET_TEST_HUBSPOT_SECRET", HUBSPOT_SECRET)
    systems = {
        "salesforce": factories.system(
            "salesforce", "crm", name="Salesforce", vendor="salesforce", inbound_scheme="standard-webhooks"
        ),
        "stripe": factories.system("stripe", "billing", name="Stripe", vendor="stripe", inbound_scheme="stripe"),
        "hubspot": factories.system("hubspot", "crm", name="HubSpot", vendor="hubspot", inbound_scheme="hubspot-v3"),
    }
    for slug, env in (
        ("salesforce", "IC_SECRET_TEST_SF_SECRET"),
        ("stripe", "IC_SECRET_TEST_STRIPE_SECRET"),
        ("hubspot", "IC_SECRET_TEST_HUBSPOT_SECRET"),
    ):
        SigningSecret.objects.create(system=systems[slug], label="primary", reference={"env": env})
    return systems


def standard_webhook_headers(body: bytes, *, msg_id="msg_2Lq0", secret=SF_SECRET, timestamp=None) -> dict:
    """Signed by the standardwebhooks package, as a real sender would."""
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(timestamp or time.time(), tz=UTC)
    signature = Webhook(secret).sign(msg_id, moment, body.decode())
    return {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(moment.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }


def stripe_headers(body: bytes, *, secret=STRIPE_SECRET, timestamp=None) -> dict:
    stamp = int(timestamp or time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"HTTP_STRIPE_SIGNATURE": f"t={stamp},v1={digest}"}


def hubspot_v3_headers(body: bytes, url: str, *, secret=HUBSPOT_SECRET) -> dict:
    stamp = str(int(time.time() * 1000))
    message = b"POST" + url.encode() + body + stamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {"HTTP_X_HUBSPOT_SIGNATURE_V3": signature, "HTTP_X_HUBSPOT_REQUEST_TIMESTAMP": stamp}


def post(client, slug: str, body: bytes, headers: dict, *, path_suffix="", content_type="application/json", **query):
    url = f"/api/v1/inbound/{slug}/{path_suffix}"
    if query:
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return client.post(url, data=body, content_type=content_type, **headers)


def as_json(body) -> bytes:
    return json.dumps(body).encode()


def hand_over() -> int:
    """What a worker does once a delivery is committed (the pick-up task, or the sweep if its message was lost):
    the ledger starts the transactions of the stored events. Returns how many it started."""
    return pick_up_stored_events()
