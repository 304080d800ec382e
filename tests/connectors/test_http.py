"""The outbound HTTP layer against a real local HTTP server: headers, auth, masking, errors, paging."""

import datetime
import email.utils
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.connectors.errors import PermanentError, TargetRejected, TransientError
from apps.connectors.http import PAGING_LINKS, PAGING_NEXT_OFFSET, PAGING_OFFSET, HttpClient, encode_json
from apps.core.errors import ErrorClass
from apps.systems.models import url_host

from .conftest import Reply

pytestmark = pytest.mark.django_db

SECRET = "tok-Sup3rS3cretValue"


def client_for(system, calls=None, **options):
    return HttpClient(
        system, correlation_id="corr-123", recorder=calls.append if calls is not None else None, **options
    )


def test_a_call_carries_correlation_idempotency_user_agent_and_auth(target, target_system):
    response = client_for(target_system).request("POST", "customer", json={"name": "Acme"}, idempotency_key="k-1")

    assert response.status_code == 200
    received = target.received[0]
    assert received.path == "/services/rest/record/v1/customer"
    assert received.headers["X-Correlation-ID"] == "corr-123"
    assert received.headers["Idempotency-Key"] == "k-1"
    assert received.headers["User-Agent"].startswith("IntegrationConsole/")
    assert received.headers["Authorization"] == f"Bearer {SECRET}"
    assert json.loads(received.body) == {"name": "Acme"}


def test_an_adapter_can_name_its_own_idempotency_header(target, target_system):
    client_for(target_system, idempotency_header="Chargebee-Idempotency-Key").request(
        "POST", "customers", data={"id": "C-1"}, idempotency_key="k-2"
    )

    received = target.received[0]
    assert received.headers["Chargebee-Idempotency-Key"] == "k-2"
    assert "Idempotency-Key" not in received.headers
    assert received.body == b"id=C-1"


def test_amounts_are_sent_as_exact_json_numbers():
    assert encode_json({"amount": Decimal("12345678901234567.89"), "on": datetime.date(2026, 1, 31)}) == (
        '{"amount":12345678901234567.89,"on":"2026-01-31"}'
    )


def test_the_capture_masks_auth_headers_cookies_and_secret_fields_but_keeps_the_rest(target, target_system):
    target.queue(
        Reply(
            200,
            {"id": "42", "client_secret": "cs-EchoedBack", "nested": {"access_token": "at-EchoedBack"}},
            headers={"Set-Cookie": "session=sess-EchoedBack"},
        )
    )
    calls = []
    client_for(target_system, calls).request(
        "POST",
        "customer",
        json={"name": "Acme", "password": "pw-InTheBody", "credentials": {"api_key": "ak-Nested"}},
        headers={"X-API-Key": "xk-Header"},
        params={"token": "qt-InTheQuery", "page": "2"},
        idempotency_key="k-3",
    )

    captured = json.dumps(calls)
    for secret in (SECRET, "cs-EchoedBack", "at-EchoedBack", "sess-EchoedBack", "pw-InTheBody", "ak-Nested",
                   "xk-Header", "qt-InTheQuery"):  # fmt: skip
        assert secret not in captured
    call = calls[0]
    assert call["request_headers"]["Authorization"] == "•••"
    assert call["request_headers"]["Idempotency-Key"] == "k-3"
    assert call["request_headers"]["X-Correlation-ID"] == "corr-123"
    assert '"name": "Acme"' in call["request_body"]
    assert "page=2" in call["url"]
    assert '"id": "42"' in call["response_body"]
    assert call["status"] == 200
    assert call["idempotency_key"] == "k-3"
    assert call["error"] is None
    assert set(call) == {
        "method", "url", "request_headers", "request_body", "status", "response_headers", "response_body",
        "duration_ms", "error", "idempotency_key", "started_at",
    }  # fmt: skip


def test_form_bodies_are_masked_by_field_name_including_bracket_notation(target, target_system):
    calls = []
    client_for(target_system, calls).request(
        "POST", "customers", data=[("id", "C-1"), ("password", "pw-Form"), ("card[number]", "4111111111111111")]
    )

    captured = json.dumps(calls)
    assert "pw-Form" not in captured
    assert "4111111111111111" not in captured
    assert "id=C-1" in calls[0]["request_body"]


def test_a_secret_echoed_anywhere_by_the_target_is_scrubbed(target, target_system):
    target.queue(Reply(400, {"message": f"bad token {SECRET} for this account"}))
    calls = []
    with pytest.raises(TargetRejected) as raised:
        client_for(target_system, calls).request("GET", "customer/1")

    assert SECRET not in json.dumps(calls)
    assert SECRET not in raised.value.message
    assert SECRET not in raised.value.technical


def test_large_bodies_are_truncated_in_the_capture(target, target_system):
    target.queue(Reply(200, {"blob": "x" * 50_000}))
    calls = []
    client_for(target_system, calls).request("GET", "customer/1")

    assert len(calls[0]["response_body"].encode()) < 9 * 1024
    assert "truncated" in calls[0]["response_body"]


def test_basic_auth_sends_an_api_key_as_user_name_with_an_empty_password(target, target_system, monkeypatch):
    monkeypatch.setenv("IC_SECRET_FAKE_BILLING_KEY", "live_Key9876543")
    target_system.outbound_auth = "basic"
    target_system.outbound_credentials = {"username": {"env": "IC_SECRET_FAKE_BILLING_KEY"}}
    calls = []
    client_for(target_system, calls).request("GET", "customers/C-1")

    import base64

    expected = base64.b64encode(b"live_Key9876543:").decode()
    assert target.received[0].headers["Authorization"] == f"Basic {expected}"
    assert "live_Key9876543" not in json.dumps(calls)
    assert expected not in json.dumps(calls)


def test_api_key_auth_uses_the_adapters_header(target, target_system, monkeypatch):
    monkeypatch.setenv("IC_SECRET_FAKE_API_KEY", "key-ABCDEF123")
    target_system.outbound_auth = "api-key"
    target_system.outbound_credentials = {"env": "IC_SECRET_FAKE_API_KEY"}
    calls = []
    client_for(target_system, calls, api_key_header="X-Vendor-Key").request("GET", "customers/C-1")

    assert target.received[0].headers["X-Vendor-Key"] == "key-ABCDEF123"
    assert "key-ABCDEF123" not in json.dumps(calls)


def test_oauth2_client_credentials_fetches_one_token_and_reuses_it(target, target_system, monkeypatch):
    monkeypatch.setenv("IC_SECRET_FAKE_CLIENT_ID", "client-IdValue1")
    monkeypatch.setenv("IC_SECRET_FAKE_CLIENT_SECRET", "client-SecretValue1")
    monkeypatch.setenv("IC_SECRET_FAKE_TOKEN_URL", f"{target.url}/oauth2/token")
    target_system.outbound_auth = "oauth2-client-credentials"
    target_system.outbound_credentials = {
        "client_id": {"env": "IC_SECRET_FAKE_CLIENT_ID"},
        "client_secret": {"env": "IC_SECRET_FAKE_CLIENT_SECRET"},
        "token_url": {"env": "IC_SECRET_FAKE_TOKEN_URL"},
    }
    target.queue(Reply(200, {"access_token": "access-TokenValue1", "expires_in": 3600, "token_type": "Bearer"}))
    calls = []
    client_for(target_system, calls).request("GET", "customer/1")
    client_for(target_system, calls).request("GET", "customer/2")

    paths = [r.path for r in target.received]
    assert paths == ["/oauth2/token", "/services/rest/record/v1/customer/1", "/services/rest/record/v1/customer/2"]
    assert target.received[0].body == b"grant_type=client_credentials"
    assert target.received[1].headers["Authorization"] == "Bearer access-TokenValue1"
    captured = json.dumps(calls)
    for secret in ("client-SecretValue1", "access-TokenValue1"):
        assert secret not in captured
    assert len(calls) == 3


def test_oauth2_fetches_a_fresh_token_once_when_the_old_one_is_refused(target, target_system, monkeypatch):
    monkeypatch.setenv("IC_SECRET_FAKE_CLIENT_ID", "client-IdValue2")
    monkeypatch.setenv("IC_SECRET_FAKE_CLIENT_SECRET", "client-SecretValue2")
    target_system.outbound_auth = "oauth2-client-credentials"
    target_system.outbound_credentials = {
        "client_id": {"env": "IC_SECRET_FAKE_CLIENT_ID"},
        "client_secret": {"env": "IC_SECRET_FAKE_CLIENT_SECRET"},
    }
    target.queue(
        Reply(200, {"access_token": "first-Token111", "expires_in": 3600}),
        Reply(401, {"error": "invalid_token"}),
        Reply(200, {"access_token": "second-Token222", "expires_in": 3600}),
        Reply(200, {"id": "1"}),
    )
    client = client_for(target_system, oauth_token_url=f"{target.url}/token")
    assert client.request("GET", "customer/1").json() == {"id": "1"}
    assert target.received[3].headers["Authorization"] == "Bearer second-Token222"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_transient(target, target_system, status):
    target.queue(Reply(status, {"title": "Internal"}))
    with pytest.raises(TransientError) as raised:
        client_for(target_system).request("GET", "customer/1", action="read customer C-1")

    error = raised.value
    assert error.error_class == ErrorClass.TRANSIENT
    assert error.maybe_committed is False
    assert error.message.startswith("NetSuite had a problem of its own")
    assert "read customer C-1" in error.message
    assert f"HTTP {status}" in error.technical


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (401, "refused our credentials"),
        (403, "lacks a permission"),
        (404, "has no such record"),
        (405, "refused the call (HTTP 405)"),
        (410, "refused the call (HTTP 410)"),
    ],
)
def test_client_errors_that_retrying_cannot_fix_are_permanent(target, target_system, status, words):
    target.queue(Reply(status, {"message": "nope"}))
    with pytest.raises(PermanentError) as raised:
        client_for(target_system).request("GET", "customer/1")

    assert raised.value.error_class == ErrorClass.PERMANENT
    assert words in raised.value.message
    assert raised.value.status == status


def test_credential_refusals_name_the_reference_not_the_secret(target, target_system):
    target.queue(Reply(401, {"message": "Invalid login"}))
    with pytest.raises(PermanentError) as raised:
        client_for(target_system).request("GET", "customer/1")

    assert "environment variable IC_SECRET_FAKE_TARGET_TOKEN" in raised.value.fix
    assert SECRET not in str(raised.value.as_dict())


@pytest.mark.parametrize("status", [400, 409, 422])
def test_validation_refusals_say_what_the_target_refused_and_why(target, target_system, status):
    target.queue(
        Reply(
            status,
            {
                "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
                "title": "Bad Request",
                "status": status,
                "o:errorDetails": [{"detail": "Missing value for companyName.", "o:errorCode": "USER_ERROR"}],
            },
        )
    )
    with pytest.raises(TargetRejected) as raised:
        client_for(target_system).request("PUT", "customer/eid:C-1", json={}, action="upsert customer C-1")

    error = raised.value
    assert error.error_class == ErrorClass.BUSINESS_RULE
    assert error.message == "NetSuite refused to upsert customer C-1: Missing value for companyName."
    assert error.vendor_code == "USER_ERROR"
    assert "USER_ERROR" in error.technical
    assert "corr-123" in error.technical


@pytest.mark.parametrize(
    ("body", "vendor_message", "vendor_code"),
    [
        ([{"message": "No such column 'Foo__c'", "errorCode": "INVALID_FIELD"}], "No such column 'Foo__c'",
         "INVALID_FIELD"),
        ({"errors": [{"type": "validation", "message": "external_reference has already been taken"}]},
         "external_reference has already been taken", "validation"),
        ({"message": "The value C-1 is already present.", "type": "invalid_request",
          "api_error_code": "duplicate_entry", "error_code": "duplicate_entry", "http_status_code": 400},
         "The value C-1 is already present.", "duplicate_entry"),
    ],
)  # fmt: skip
def test_each_vendors_error_shape_is_read(target, target_system, body, vendor_message, vendor_code):
    target.queue(Reply(400, body))
    with pytest.raises(TargetRejected) as raised:
        client_for(target_system).request("POST", "x", json={})

    assert raised.value.vendor_message == vendor_message
    assert raised.value.vendor_code == vendor_code
    assert vendor_message in raised.value.message


def test_a_read_timeout_after_a_write_was_sent_may_have_committed(target, target_system):
    target_system.read_timeout_seconds = Decimal("0.5")
    target.queue(Reply(200, {"id": "1"}, delay=1.5))
    calls = []
    with pytest.raises(TransientError) as raised:
        client_for(target_system, calls).request("POST", "customer", json={"name": "Acme"}, action="create Acme")

    error = raised.value
    assert error.maybe_committed is True
    assert error.message.startswith("NetSuite did not answer within 0.5 s while trying to create Acme.")
    assert "may have done it" in error.message
    assert len(target.received) == 1
    assert calls[0]["status"] is None
    assert calls[0]["error"] == error.message


def test_a_read_timeout_of_a_read_committed_nothing(target, target_system):
    target_system.read_timeout_seconds = Decimal("0.5")
    target.queue(Reply(200, {"id": "1"}, delay=1.5))
    with pytest.raises(TransientError) as raised:
        client_for(target_system).request("GET", "customer/1")

    assert raised.value.maybe_committed is False


def test_a_connection_dropped_after_a_write_was_sent_may_have_committed(target, target_system):
    target.queue(Reply(drop=True))
    with pytest.raises(TransientError) as raised:
        client_for(target_system).request("PUT", "invoice/eid:INV-1", json={}, action="post invoice INV-1")

    assert raised.value.maybe_committed is True
    assert raised.value.message.startswith("NetSuite dropped the connection before answering while trying to post")
    assert len(target.received) == 1


def test_a_connect_timeout_is_transient_and_nothing_was_sent(target_system, unanswering_port):
    target_system.connect_timeout_seconds = Decimal("0.5")
    target_system.base_url = f"http://127.0.0.1:{unanswering_port}/"
    target_system.credentials_host = url_host(target_system.base_url)  # moved on purpose, credentials with it
    with pytest.raises(TransientError) as raised:
        client_for(target_system).request("POST", "customer", json={}, action="create Acme")

    assert raised.value.maybe_committed is False
    assert (
        raised.value.message
        == "NetSuite could not be reached within 0.5 s while trying to create Acme; nothing was sent."
    )
    assert "ConnectTimeout" in raised.value.technical


def test_a_refused_connection_is_transient_and_nothing_was_sent(target_system, closed_port):
    target_system.base_url = f"http://127.0.0.1:{closed_port}/"
    target_system.credentials_host = url_host(target_system.base_url)  # moved on purpose, credentials with it
    with pytest.raises(TransientError) as raised:
        client_for(target_system).request("POST", "customer", json={})

    assert raised.value.maybe_committed is False
    assert "could not be reached (connection refused" in raised.value.message


def test_retry_after_in_seconds_sets_retry_at(target, target_system):
    target.queue(Reply(429, {"message": "slow down"}, headers={"Retry-After": "120"}))
    before = timezone.now()
    with pytest.raises(TransientError) as raised:
        client_for(target_system).request("GET", "customer/1")
    after = timezone.now()

    retry_at = raised.value.retry_at
    assert before + datetime.timedelta(seconds=120) <= retry_at <= after + datetime.timedelta(seconds=120)
    assert "asked us to slow down" in raised.value.message


def test_retry_after_as_an_http_date_sets_retry_at(target, target_system):
    when = (timezone.now() + datetime.timedelta(minutes=5)).replace(microsecond=0)
    target.queue(Reply(503, {"title": "maintenance"}, headers={"Retry-After": email.utils.format_datetime(when, True)}))
    with pytest.raises(TransientError) as raised:
        client_for(target_system).request("GET", "customer/1")

    assert raised.value.retry_at == when
    assert "is unavailable for now" in raised.value.message


def test_redirects_are_not_followed(target, target_system):
    target.queue(Reply(302, None, headers={"Location": "https://login.example.com/"}))
    with pytest.raises(PermanentError) as raised:
        client_for(target_system).request("GET", "customer/1")

    assert "redirect to https://login.example.com/" in raised.value.message
    assert len(target.received) == 1


def test_a_disabled_system_is_not_called(target, target_system):
    target_system.enabled = False
    with pytest.raises(PermanentError) as raised:
        client_for(target_system).request("GET", "customer/1", action="read customer C-1")

    assert raised.value.message == "NetSuite is disabled in the console, so it was not asked to read customer C-1."
    assert target.received == []


def test_a_missing_secret_is_permanent_and_names_the_variable(target, target_system, monkeypatch):
    monkeypatch.delenv("IC_SECRET_FAKE_TARGET_TOKEN")
    with pytest.raises(PermanentError) as raised:
        client_for(target_system).request("GET", "customer/1")

    assert "environment variable IC_SECRET_FAKE_TARGET_TOKEN" in raised.value.message
    assert target.received == []


def test_a_failing_recorder_does_not_fail_a_call_that_happened(target, target_system):
    def broken(call):
        raise RuntimeError("ledger unavailable")

    response = HttpClient(target_system, correlation_id="c", recorder=broken).request("GET", "customer/1")
    assert response.status_code == 200


def test_netsuite_links_paging_follows_next_until_there_is_none(target, target_system):
    base = target_system.base_url

    def page(request):
        offset = int(request.path.split("offset=")[1].split("&")[0])
        items = [{"id": str(n), "links": []} for n in range(offset, min(offset + 2, 5))]
        links = [{"rel": "self", "href": f"{base}invoice?limit=2&offset={offset}"}]
        if offset + 2 < 5:
            links.append({"rel": "next", "href": f"{base}invoice?limit=2&offset={offset + 2}"})
        return Reply(200, {"links": links, "count": len(items), "hasMore": offset + 2 < 5, "items": items,
                           "offset": offset, "totalResults": 5})  # fmt: skip

    target.default = page
    ids = [item["id"] for item in client_for(target_system).paginate("invoice", style=PAGING_LINKS, page_size=2)]

    assert ids == ["0", "1", "2", "3", "4"]
    assert len(target.received) == 3


def test_chargebee_next_offset_paging(target, target_system):
    target.queue(
        Reply(200, {"list": [{"invoice": {"id": "in_1"}}, {"invoice": {"id": "in_2"}}], "next_offset": '["17","2"]'}),
        Reply(200, {"list": [{"invoice": {"id": "in_3"}}]}),
    )
    entries = list(client_for(target_system).paginate("invoices", style=PAGING_NEXT_OFFSET, page_size=2))

    assert [entry["invoice"]["id"] for entry in entries] == ["in_1", "in_2", "in_3"]
    assert "offset=%5B%2217%22%2C%222%22%5D" in target.received[1].path


def test_offset_paging_stops_at_a_short_page(target, target_system):
    target.queue(Reply(200, {"items": [1, 2]}), Reply(200, {"items": [3]}))
    items = list(client_for(target_system).paginate("rates", style=PAGING_OFFSET, page_size=2))

    assert items == [1, 2, 3]
    assert target.received[1].path.endswith("limit=2&offset=2")


def test_a_next_link_to_another_server_is_not_followed(target, target_system):
    elsewhere = "https://elsewhere.example.com/invoice?offset=1"
    target.queue(Reply(200, {"items": [{"id": "1"}], "hasMore": True, "links": [{"rel": "next", "href": elsewhere}]}))
    with pytest.raises(PermanentError) as raised:
        list(client_for(target_system).paginate("invoice", style=PAGING_LINKS))

    assert "pointed us to another server" in raised.value.message
    assert len(target.received) == 1


def test_amounts_convert_to_each_currencys_minor_unit():
    from apps.connectors.adapters.base import unix_seconds
    from apps.core.money import to_minor_units

    assert to_minor_units(Decimal("1500.00"), "USD") == 150000
    assert to_minor_units(Decimal("0.005"), "EUR") == 1
    assert to_minor_units(Decimal("1500"), "JPY") == 1500
    assert to_minor_units(Decimal("1.234"), "KWD") == 1234
    assert unix_seconds(datetime.date(2026, 1, 1)) == 1767225600
    assert unix_seconds(datetime.date(2026, 1, 1), end_of_day=True) == 1767225600 + 86399
