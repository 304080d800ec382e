"""Outbound webhooks (billing → console): Chargebee event JSON, HTTP Basic, duplicates, never blocking the API."""

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.sandbox.models import WebhookStatus
from apps.sandbox.services import (
    sandbox_faults_set,
    sandbox_system_configure,
    sandbox_webhooks,
    sandbox_webhooks_wait,
)

CREDENTIAL = "chargebee-webhooks:s3cret-for-tests"


@pytest.fixture
def receiver():
    """A tiny HTTP server that records every POST it gets (path, Basic credentials, JSON body)."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            auth = self.headers.get("Authorization", "")
            user_password = base64.b64decode(auth.split(" ", 1)[1]).decode() if auth.startswith("Basic ") else ""
            received.append({"path": self.path, "auth": user_password, "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/inbound/chargebee/", received
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def invoice_a_customer(billing):
    billing.request("POST", "customers", {"id": "cust-1", "company": "Northwind", "preferred_currency_code": "GBP"})
    billing.request(
        "POST",
        "unbilled_charges",
        {
            "customer_id": "cust-1",
            "currency_code": "GBP",
            "charges[amount][0]": "120000",
            "charges[description][0]": "Consulting, November",
            "charges[date_from][0]": "1793491200",
            "charges[date_to][0]": "1796083200",
            "charges[reference][0]": "be-1",
        },
    )
    response = billing.request("POST", "unbilled_charges/invoice_unbilled_charges", {"customer_id": "cust-1"})
    assert response.status_code == 200, response.text
    return response.json()["invoices"][0]


def test_an_invoice_generated_event_is_delivered_n_times_with_http_basic(live_vendor, receiver, monkeypatch):
    url, received = receiver
    monkeypatch.setenv("IC_SECRET_SANDBOX_TEST_WEBHOOK_BASIC", CREDENTIAL)
    sandbox_system_configure(
        "billing", webhook_url=url, webhook_credentials={"env": "IC_SECRET_SANDBOX_TEST_WEBHOOK_BASIC"}
    )
    sandbox_faults_set("billing", duplicate_webhooks=3)

    invoice = invoice_a_customer(live_vendor("billing"))
    assert sandbox_webhooks_wait(15)

    assert len(received) == 3
    assert {delivery["auth"] for delivery in received} == {CREDENTIAL}
    assert {delivery["path"] for delivery in received} == {"/api/v1/inbound/chargebee/"}
    event = received[0]["body"]
    assert all(delivery["body"] == event for delivery in received)  # the same event id each time
    assert event["event_type"] == "invoice_generated"
    assert event["id"].startswith("ev_")
    assert event["api_version"] == "v2"
    assert event["content"]["invoice"]["id"] == invoice["id"]
    assert event["content"]["invoice"]["tax"] == 24000  # 20% flat sandbox rate on GBP
    webhook = sandbox_webhooks().get()
    assert (webhook.status, webhook.attempts, webhook.delivered, webhook.status_codes) == (
        WebhookStatus.DELIVERED,
        3,
        3,
        [200, 200, 200],
    )


def test_a_payment_emits_payment_succeeded_with_invoice_and_transaction(live_vendor, receiver):
    url, received = receiver
    sandbox_system_configure("billing", webhook_url=url)
    billing = live_vendor("billing")
    invoice = invoice_a_customer(billing)

    billing.request(
        "POST",
        f"invoices/{invoice['id']}/record_payment",
        {"transaction[payment_method]": "bank_transfer", "transaction[date]": "1794614400"},
    )
    assert sandbox_webhooks_wait(15)

    assert [delivery["body"]["event_type"] for delivery in received] == ["invoice_generated", "payment_succeeded"]
    content = received[1]["body"]["content"]
    assert content["invoice"]["status"] == "paid"
    assert content["transaction"]["amount"] == invoice["total"]
    assert content["customer"]["id"] == "cust-1"


def test_an_unreachable_target_never_fails_the_api_answer(live_vendor):
    sandbox_system_configure("billing", webhook_url=f"http://127.0.0.1:{free_port()}/nobody-listens/")

    invoice = invoice_a_customer(live_vendor("billing"))
    assert sandbox_webhooks_wait(15)

    assert invoice["status"] == "posted"
    webhook = sandbox_webhooks().get()
    assert webhook.status == WebhookStatus.FAILED
    assert webhook.status_codes == [None, None, None]
    assert "No answer" in webhook.last_error


def test_missing_webhook_credentials_are_recorded_on_the_event(live_vendor, receiver, monkeypatch):
    url, received = receiver
    monkeypatch.delenv("IC_SECRET_SANDBOX_TEST_MISSING_BASIC", raising=False)
    sandbox_system_configure(
        "billing", webhook_url=url, webhook_credentials={"env": "IC_SECRET_SANDBOX_TEST_MISSING_BASIC"}
    )

    invoice_a_customer(live_vendor("billing"))
    assert sandbox_webhooks_wait(15)

    assert received == []
    webhook = sandbox_webhooks().get()
    assert webhook.status == WebhookStatus.FAILED
    assert "IC_SECRET_SANDBOX_TEST_MISSING_BASIC" in webhook.last_error


def test_no_webhook_is_recorded_without_a_target(vendor):
    billing = vendor("billing")
    billing.post("customers", {"id": "cust-1"})
    billing.post(
        "unbilled_charges",
        {
            "customer_id": "cust-1",
            "currency_code": "USD",
            "charges[amount][0]": "100",
            "charges[description][0]": "x",
            "charges[date_from][0]": "1",
            "charges[date_to][0]": "2",
        },
    )

    assert billing.post("unbilled_charges/invoice_unbilled_charges", {"customer_id": "cust-1"}).status_code == 200
    assert not sandbox_webhooks().exists()
