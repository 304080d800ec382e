"""Sandbox test helpers: a client per vendor (with its auth) over Django's test client or over real HTTP."""

import base64
import json
from urllib.parse import urlencode

import pytest
import requests

from apps.sandbox.services import sandbox_reset, sandbox_webhooks_wait

BASES = {
    "crm": "/sandbox/crm/services/data/v60.0/",
    "psa": "/sandbox/psa/api/v1/",
    "erp": "/sandbox/erp/services/rest/record/v1/",
    "billing": "/sandbox/billing/api/v2/",
    "hubspot": "/sandbox/hubspot/crm/v3/",
    "stripe": "/sandbox/stripe/v1/",
    "business-central": "/sandbox/business-central/api/v2.0/",
}


def auth_header(kind: str, credential: str = "test-token") -> str:
    if kind == "billing":
        return "Basic " + base64.b64encode(f"{credential}:".encode()).decode()
    return f"Bearer {credential}"


class Vendor:
    """Django's test client speaking to one sandbox with that vendor's auth and body encoding."""

    def __init__(self, client, kind: str, credential: str = "test-token"):
        self.client, self.kind, self.base = client, kind, BASES[kind]
        self.credential = credential

    def _headers(self, headers):
        merged = {"Authorization": auth_header(self.kind, self.credential)} if self.credential else {}
        merged.update(headers or {})
        return merged

    def get(self, path: str, params=None, headers=None):
        return self.client.get(self.base + path, params or {}, headers=self._headers(headers))

    def send(self, method: str, path: str, body=None, headers=None):
        """A JSON request (crm, psa, erp, hubspot, business-central) or a form-encoded one (billing, stripe)."""
        if self.kind in ("billing", "stripe"):
            data, content_type = urlencode(body or {}), "application/x-www-form-urlencoded"
        else:
            data, content_type = json.dumps(body if body is not None else {}), "application/json"
        call = getattr(self.client, method.lower())
        return call(self.base + path, data=data, content_type=content_type, headers=self._headers(headers))

    def post(self, path, body=None, headers=None):
        return self.send("POST", path, body, headers)

    def put(self, path, body=None, headers=None):
        return self.send("PUT", path, body, headers)

    def patch(self, path, body=None, headers=None):
        return self.send("PATCH", path, body, headers)


class LiveVendor:
    """`requests` against the live server, for faults that need a real socket (timeouts, dropped answers)."""

    def __init__(self, live_server_url: str, kind: str):
        self.url = live_server_url.rstrip("/") + BASES[kind]
        self.kind = kind

    def request(self, method: str, path: str, body=None, headers=None, timeout=10):
        headers = {"Authorization": auth_header(self.kind), **(headers or {})}
        if self.kind == "billing":
            return requests.request(method, self.url + path, data=body, headers=headers, timeout=timeout)
        return requests.request(method, self.url + path, json=body, headers=headers, timeout=timeout)


@pytest.fixture
def sandbox(db):
    """All the sandboxes empty, fault-free and seeded."""
    sandbox_reset()
    yield
    sandbox_webhooks_wait(15)


@pytest.fixture
def live_sandbox(transactional_db, live_server):
    """The sandboxes reset for a test that talks to them over real HTTP."""
    sandbox_reset()
    yield live_server
    sandbox_webhooks_wait(15)


@pytest.fixture
def vendor(client, sandbox):
    def make(kind: str, credential: str = "test-token") -> Vendor:
        return Vendor(client, kind, credential)

    return make


@pytest.fixture
def live_vendor(live_sandbox):
    def make(kind: str) -> LiveVendor:
        return LiveVendor(live_sandbox.url, kind)

    return make
