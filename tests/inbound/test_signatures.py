"""Webhook signature verification: published vectors, the real Standard Webhooks signer, and every scheme's refusals."""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from apps.inbound.signatures import (
    Secret,
    SignatureRejected,
    SignedRequest,
    secret_problem,
    verify,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
URL = "https://console.example.com/api/v1/inbound/hubspot/?a=b"
BODY = b'{"type":"invoice.paid","data":{"id":"in_1042","amount":"1250.00","currency":"EUR"}}'
NO_MATCH = "signature does not match any active secret for this system"


def request(headers: dict[str, str], body: bytes = BODY, *, url: str = URL, method: str = "POST") -> SignedRequest:
    return SignedRequest(method=method, url=url, headers=headers, body=body)


def rejection(scheme: str, req: SignedRequest, secrets: list[Secret], *, now=NOW, window=300) -> SignatureRejected:
    with pytest.raises(SignatureRejected) as caught:
        verify(scheme, req, secrets, now=now, replay_window=window)
    return caught.value


def b64_hmac(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


# --- the published test vectors ----------------------------------------------------------------------------------


def test_it_accepts_the_standard_webhooks_reference_vector():
    # standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py::test_sign_function
    # (spec/standard-webhooks.md shows the header format but no secret for its example signature).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    sent_at = datetime.fromtimestamp(1614265330, tz=UTC)

    result = verify(
        "standard-webhooks",
        request(headers, b'{"test": 2432232314}'),
        [Secret("primary", secret)],
        now=sent_at + timedelta(seconds=30),
    )

    assert result.secret_label == "primary"
    assert result.delivery_id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert result.signed_at == sent_at


def test_it_accepts_the_standard_webhooks_reference_vector_with_a_raw_base64_key():
    # Same vector; the reference library accepts the key with or without the whsec_ prefix.
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }

    result = verify(
        "standard-webhooks",
        request(headers, b'{"test": 2432232314}'),
        [Secret("raw key", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
        now=datetime.fromtimestamp(1614265330, tz=UTC),
    )

    assert result.secret_label == "raw key"


def test_it_accepts_hubspots_documented_v1_example():
    # https://developers.hubspot.com/docs/faq/v1-request-validation ("Example for a request with a body").
    body = (
        b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
        b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
        b'"changeFlag":"NEW","appId":54321}]'
    )
    headers = {
        "X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        "X-HubSpot-Signature-Version": "v1",
    }

    result = verify(
        "hubspot-v1", request(headers, body), [Secret("app", "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy")], now=NOW
    )

    assert result.secret_label == "app"
    assert result.signed_at is None


@pytest.mark.parametrize(
    ("method", "body", "signature"),
    [
        # https://developers.hubspot.com/docs/faq/v2-request-validation ("Example for a GET request").
        ("GET", b"", "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"),
        # Same page, "Example for a request with a body".
        (
            "POST",
            b'{"example_field":"example_value"}',
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
        ),
    ],
)
def test_it_accepts_hubspots_documented_v2_examples(method, body, signature):
    headers = {"X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": "v2"}

    result = verify(
        "hubspot-v2",
        request(headers, body, url="https://www.example.com/webhook_uri", method=method),
        [Secret("app", "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy")],
        now=NOW,
    )

    assert result.secret_label == "app"


def test_it_accepts_hubspots_own_v3_test_vector():
    # HubSpot's docs give no v3 example; this is HubSpot's official Python client test
    # (HubSpot/hubspot-api-python, tests/spec/utils/test_signature.py::test_get_signature__v3).
    headers = {
        "X-HubSpot-Signature-v3": "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=",
        "X-HubSpot-Request-Timestamp": "15000000",
    }

    result = verify(
        "hubspot-v3",
        request(headers, b"{'example_field':'example_value'}", url="https://www.example.com/webhook_uri"),
        [Secret("app", "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy")],
        now=datetime.fromtimestamp(15000, tz=UTC) + timedelta(seconds=5),
    )

    assert result.secret_label == "app"
    assert result.signed_at == datetime.fromtimestamp(15000, tz=UTC)


# --- the real Standard Webhooks signer ---------------------------------------------------------------------------

SW_SECRET = "whsec_" + base64.b64encode(b"integration-console-test-key-32b").decode()


def test_it_accepts_what_the_standardwebhooks_package_signs():
    signature = Webhook(SW_SECRET).sign(msg_id="msg_inv_1042", timestamp=NOW, data=BODY.decode())
    headers = {
        "webhook-id": "msg_inv_1042",
        "webhook-timestamp": str(int(NOW.timestamp())),
        "webhook-signature": signature,
    }

    result = verify("standard-webhooks", request(headers), [Secret("primary", SW_SECRET)], now=NOW)

    assert result.secret_label == "primary"
    assert result.delivery_id == "msg_inv_1042"


def test_it_refuses_what_the_standardwebhooks_package_signed_once_one_body_byte_changes():
    signature = Webhook(SW_SECRET).sign(msg_id="msg_inv_1042", timestamp=NOW, data=BODY.decode())
    headers = {
        "webhook-id": "msg_inv_1042",
        "webhook-timestamp": str(int(NOW.timestamp())),
        "webhook-signature": signature,
    }
    tampered = BODY.replace(b"1250.00", b"1251.00")

    refusal = rejection("standard-webhooks", request(headers, tampered), [Secret("primary", SW_SECRET)])

    assert refusal.status == 401
    assert NO_MATCH in refusal.detail


# --- one signer per scheme, for the behaviour every scheme shares -------------------------------------------------


def sign_standard_webhooks(secret, body, at, url=URL):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    timestamp = str(int(at.timestamp()))
    signature = b64_hmac(key, b"msg_1." + timestamp.encode() + b"." + body)
    return {"webhook-id": "msg_1", "webhook-timestamp": timestamp, "webhook-signature": f"v1,{signature}"}


def sign_hubspot_v1(secret, body, at, url=URL):
    return {
        "X-HubSpot-Signature": hashlib.sha256(secret.encode() + body).hexdigest(),
        "X-HubSpot-Signature-Version": "v1",
    }


def sign_hubspot_v2(secret, body, at, url=URL):
    return {
        "X-HubSpot-Signature": hashlib.sha256(secret.encode() + b"POST" + url.encode() + body).hexdigest(),
        "X-HubSpot-Signature-Version": "v2",
    }


def sign_hubspot_v3(secret, body, at, url=URL):
    timestamp = str(int(at.timestamp() * 1000))
    signed = b"POST" + url.encode() + body + timestamp.encode()
    return {"X-HubSpot-Signature-v3": b64_hmac(secret.encode(), signed), "X-HubSpot-Request-Timestamp": timestamp}


def sign_stripe(secret, body, at, url=URL):
    timestamp = str(int(at.timestamp()))
    signature = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}"}


def sign_basic(secret, body, at, url=URL):
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def sign_bearer(secret, body, at, url=URL):
    return {"Authorization": f"Bearer {secret}"}


@dataclass(frozen=True)
class Scheme:
    name: str
    sign: object
    primary: str
    rotated: str

    def __str__(self):
        return self.name


SCHEMES = [
    Scheme("standard-webhooks", sign_standard_webhooks, SW_SECRET, "whsec_" + base64.b64encode(b"n" * 32).decode()),
    Scheme("hubspot-v1", sign_hubspot_v1, "hs-client-secret-2025", "hs-client-secret-2026"),
    Scheme("hubspot-v2", sign_hubspot_v2, "hs-client-secret-2025", "hs-client-secret-2026"),
    Scheme("hubspot-v3", sign_hubspot_v3, "hs-client-secret-2025", "hs-client-secret-2026"),
    Scheme("stripe", sign_stripe, "whsec_stripe_endpoint_2025", "whsec_stripe_endpoint_2026"),
    Scheme("basic", sign_basic, "psa-webhooks:correct horse 2025", "psa-webhooks:battery staple 2026"),
    Scheme("bearer", sign_bearer, "erp-token-2025-Xq7", "erp-token-2026-Lm2"),
]
BODY_SIGNING = [scheme for scheme in SCHEMES if scheme.name not in ("basic", "bearer")]
TIMESTAMPED = [scheme for scheme in SCHEMES if scheme.name in ("standard-webhooks", "hubspot-v3", "stripe")]


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_it_accepts_a_correctly_signed_delivery(scheme):
    headers = scheme.sign(scheme.primary, BODY, NOW)

    result = verify(scheme.name, request(headers), [Secret("primary 2025", scheme.primary)], now=NOW)

    assert result.scheme == scheme.name
    assert result.secret_label == "primary 2025"


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_it_reads_headers_whatever_their_case(scheme):
    headers = {name.upper(): value for name, value in scheme.sign(scheme.primary, BODY, NOW).items()}

    result = verify(scheme.name, request(headers), [Secret("primary", scheme.primary)], now=NOW)

    assert result.secret_label == "primary"


@pytest.mark.parametrize("scheme", BODY_SIGNING, ids=str)
def test_it_refuses_a_delivery_whose_body_was_changed_after_signing(scheme):
    headers = scheme.sign(scheme.primary, BODY, NOW)
    tampered = BODY.replace(b"1250.00", b"9250.00")

    refusal = rejection(scheme.name, request(headers, tampered), [Secret("primary", scheme.primary)])

    assert refusal.status == 401
    assert NO_MATCH in refusal.detail


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_basic_and_bearer_vouch_for_the_sender_but_not_for_the_body(scheme):
    signer = {"basic": sign_basic, "bearer": sign_bearer}[scheme]
    secret = "psa-webhooks:pw" if scheme == "basic" else "token"
    headers = signer(secret, BODY, NOW)

    result = verify(scheme, request(headers, b"anything at all"), [Secret("primary", secret)], now=NOW)

    assert result.secret_label == "primary"


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_it_refuses_a_delivery_signed_with_a_secret_it_does_not_hold(scheme):
    headers = scheme.sign(scheme.rotated, BODY, NOW)

    refusal = rejection(scheme.name, request(headers), [Secret("primary", scheme.primary)])

    assert refusal.status == 401
    assert refusal.code == "signature_mismatch"
    assert NO_MATCH in refusal.detail


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_a_refusal_never_shows_the_secret_or_the_expected_signature(scheme):
    expected_headers = scheme.sign(scheme.primary, BODY, NOW)
    forged = scheme.sign(scheme.rotated, BODY, NOW)

    refusal = rejection(scheme.name, request(forged), [Secret("primary", scheme.primary)])

    shown = refusal.detail + str(refusal) + repr(refusal.args)
    assert scheme.primary not in shown
    for value in expected_headers.values():
        if len(value) > 8:  # the signatures, not the version markers
            assert value not in shown


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
@pytest.mark.parametrize("signed_with", ["primary", "rotated"])
def test_either_active_secret_verifies_during_a_rotation_and_the_label_says_which(scheme, signed_with):
    secrets = [Secret("primary 2025", scheme.primary), Secret("rotation 2026-03", scheme.rotated)]
    headers = scheme.sign(getattr(scheme, signed_with), BODY, NOW)

    result = verify(scheme.name, request(headers), secrets, now=NOW)

    assert result.secret_label == {"primary": "primary 2025", "rotated": "rotation 2026-03"}[signed_with]


@pytest.mark.parametrize(
    ("scheme", "header"),
    [
        ("standard-webhooks", "webhook-id"),
        ("standard-webhooks", "webhook-timestamp"),
        ("standard-webhooks", "webhook-signature"),
        ("hubspot-v1", "X-HubSpot-Signature"),
        ("hubspot-v2", "X-HubSpot-Signature"),
        ("hubspot-v3", "X-HubSpot-Signature-v3"),
        ("hubspot-v3", "X-HubSpot-Request-Timestamp"),
        ("stripe", "Stripe-Signature"),
        ("basic", "Authorization"),
        ("bearer", "Authorization"),
    ],
)
def test_a_missing_header_is_refused_as_unauthenticated_and_named(scheme, header):
    signer = next(s for s in SCHEMES if s.name == scheme)
    headers = {name: value for name, value in signer.sign(signer.primary, BODY, NOW).items() if name != header}

    refusal = rejection(scheme, request(headers), [Secret("primary", signer.primary)])

    assert refusal.status == 401
    assert refusal.code == "missing_credentials"
    assert header in refusal.detail


@pytest.mark.parametrize(
    ("scheme", "header", "value", "complaint"),
    [
        ("standard-webhooks", "webhook-timestamp", "1772443800.5", "whole seconds"),
        ("standard-webhooks", "webhook-timestamp", "yesterday", "whole seconds"),
        ("standard-webhooks", "webhook-signature", "v1:c2lnbmF0dXJl", "version,signature pairs"),
        ("standard-webhooks", "webhook-signature", "v1,not*base64", "not valid base64"),
        ("standard-webhooks", "webhook-signature", "v1,c2hvcnQ=", "not an HMAC-SHA256 signature"),
        ("hubspot-v1", "X-HubSpot-Signature", "232db2615f3d", "not a hex SHA-256 hash"),
        ("hubspot-v2", "X-HubSpot-Signature", "z" * 64, "not a hex SHA-256 hash"),
        ("hubspot-v3", "X-HubSpot-Request-Timestamp", "2026-03-02T09:30:00Z", "milliseconds"),
        ("hubspot-v3", "X-HubSpot-Signature-v3", "%%%", "not valid base64"),
        ("stripe", "Stripe-Signature", "v1=" + "a" * 64, "exactly one t= timestamp"),
        ("stripe", "Stripe-Signature", "t=1,t=2,v1=" + "a" * 64, "exactly one t= timestamp"),
        ("stripe", "Stripe-Signature", "t=1772443800,garbage", "key=value pairs"),
        ("stripe", "Stripe-Signature", "t=1772443800,v1=xyz", "not a hex HMAC-SHA256 signature"),
        ("basic", "Authorization", "Basic not*base64", "not valid base64"),
        ("basic", "Authorization", "Basic " + base64.b64encode(b"no-colon").decode(), "username:password"),
        ("basic", "Authorization", "Basic", "followed by one credential"),
        ("bearer", "Authorization", "Bearer two words", "followed by one credential"),
    ],
)
def test_a_malformed_header_is_refused_as_a_bad_request(scheme, header, value, complaint):
    signer = next(s for s in SCHEMES if s.name == scheme)
    headers = {**signer.sign(signer.primary, BODY, NOW), header: value}

    refusal = rejection(scheme, request(headers), [Secret("primary", signer.primary)])

    assert refusal.status == 400
    assert refusal.code == "malformed_header"
    assert complaint in refusal.detail


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_a_genuine_but_stale_delivery_is_refused_with_its_age_and_the_window(scheme):
    headers = scheme.sign(scheme.primary, BODY, NOW - timedelta(seconds=742))

    refusal = rejection(scheme.name, request(headers), [Secret("primary", scheme.primary)], window=300)

    assert refusal.status == 401
    assert refusal.code == "stale"
    assert "742 seconds ago" in refusal.detail
    assert "300 seconds" in refusal.detail


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_a_delivery_dated_beyond_the_window_in_the_future_is_refused(scheme):
    headers = scheme.sign(scheme.primary, BODY, NOW + timedelta(seconds=400))

    refusal = rejection(scheme.name, request(headers), [Secret("primary", scheme.primary)], window=300)

    assert refusal.status == 401
    assert refusal.code == "future"
    assert "400 seconds in the future" in refusal.detail


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
@pytest.mark.parametrize("offset", [-300, 300])
def test_a_delivery_right_at_the_edge_of_the_window_is_accepted_and_dated(scheme, offset):
    signed_at = NOW + timedelta(seconds=offset)
    headers = scheme.sign(scheme.primary, BODY, signed_at)

    result = verify(scheme.name, request(headers), [Secret("primary", scheme.primary)], now=NOW, replay_window=300)

    assert result.signed_at == signed_at


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_the_window_is_the_systems_own_setting(scheme):
    headers = scheme.sign(scheme.primary, BODY, NOW - timedelta(seconds=90))

    refusal = rejection(scheme.name, request(headers), [Secret("primary", scheme.primary)], window=60)

    assert "deliveries older than 60 seconds" in refusal.detail


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_a_forged_old_delivery_is_called_a_mismatch_not_a_replay(scheme):
    headers = scheme.sign(scheme.rotated, BODY, NOW - timedelta(hours=2))

    refusal = rejection(scheme.name, request(headers), [Secret("primary", scheme.primary)])

    assert refusal.code == "signature_mismatch"


# --- Standard Webhooks details -----------------------------------------------------------------------------------


def test_standard_webhooks_ignores_signatures_of_other_versions_and_tries_every_v1():
    genuine = sign_standard_webhooks(SW_SECRET, BODY, NOW)["webhook-signature"]
    headers = {
        **sign_standard_webhooks(SW_SECRET, BODY, NOW),
        "webhook-signature": f"v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw== v2,abc v1,{'A' * 43}= {genuine}",
    }

    result = verify("standard-webhooks", request(headers), [Secret("primary", SW_SECRET)], now=NOW)

    assert result.secret_label == "primary"
    assert result.delivery_id == "msg_1"


def test_standard_webhooks_without_any_v1_signature_is_refused():
    headers = {**sign_standard_webhooks(SW_SECRET, BODY, NOW), "webhook-signature": "v1a,hnO3f9T8Ytu9Hw=="}

    refusal = rejection("standard-webhooks", request(headers), [Secret("primary", SW_SECRET)])

    assert refusal.status == 401
    assert "no v1" in refusal.detail


def test_standard_webhooks_signs_the_delivery_id_so_it_cannot_be_swapped():
    headers = {**sign_standard_webhooks(SW_SECRET, BODY, NOW), "webhook-id": "msg_2"}

    refusal = rejection("standard-webhooks", request(headers), [Secret("primary", SW_SECRET)])

    assert NO_MATCH in refusal.detail


# --- HubSpot details -----------------------------------------------------------------------------------------------


def test_hubspot_v3_signs_the_uri_with_hubspots_listed_escapes_decoded():
    sent_url = "https://console.example.com/api/v1/inbound/hubspot/?next=%2Fdeals%3Fid%3D7%40eu&note=a%20b%2Ac%3B"
    signed_url = "https://console.example.com/api/v1/inbound/hubspot/?next=/deals?id%3D7@eu&note=a%20b*c;"
    headers = sign_hubspot_v3("hs-secret", BODY, NOW, url=signed_url)

    result = verify("hubspot-v3", request(headers, url=sent_url), [Secret("app", "hs-secret")], now=NOW)

    assert result.secret_label == "app"


def test_hubspot_v3_leaves_other_escapes_encoded():
    sent_url = "https://console.example.com/api/v1/inbound/hubspot/?q=a%20b%3Dc"
    fully_decoded = "https://console.example.com/api/v1/inbound/hubspot/?q=a b=c"
    headers = sign_hubspot_v3("hs-secret", BODY, NOW, url=fully_decoded)

    refusal = rejection("hubspot-v3", request(headers, url=sent_url), [Secret("app", "hs-secret")])

    assert NO_MATCH in refusal.detail


def test_hubspot_v2_signs_the_uri_exactly_so_a_reordered_query_fails():
    headers = sign_hubspot_v2("hs-secret", BODY, NOW, url="https://console.example.com/in/?a=1&b=2")

    refusal = rejection(
        "hubspot-v2", request(headers, url="https://console.example.com/in/?b=2&a=1"), [Secret("app", "hs-secret")]
    )

    assert NO_MATCH in refusal.detail


def test_hubspot_v2_signs_the_method():
    headers = sign_hubspot_v2("hs-secret", BODY, NOW)

    refusal = rejection("hubspot-v2", request(headers, method="PUT"), [Secret("app", "hs-secret")])

    assert NO_MATCH in refusal.detail


def test_hubspot_legacy_signature_of_the_other_version_is_refused_with_a_clear_reason():
    headers = {**sign_hubspot_v2("hs-secret", BODY, NOW), "X-HubSpot-Signature-Version": "v2"}

    refusal = rejection("hubspot-v1", request(headers), [Secret("app", "hs-secret")])

    assert refusal.status == 401
    assert "this system expects v1" in refusal.detail


def test_hubspot_v1_accepts_an_uppercase_hex_signature():
    headers = sign_hubspot_v1("hs-secret", BODY, NOW)
    headers["X-HubSpot-Signature"] = headers["X-HubSpot-Signature"].upper()

    assert verify("hubspot-v1", request(headers), [Secret("app", "hs-secret")], now=NOW).secret_label == "app"


# --- Stripe details ------------------------------------------------------------------------------------------------


def test_stripe_accepts_any_matching_v1_and_ignores_v0_and_unknown_schemes():
    genuine = sign_stripe("whsec_endpoint", BODY, NOW)["Stripe-Signature"]
    timestamp, v1 = genuine.split(",")
    headers = {"Stripe-Signature": f"{timestamp},v1={'0' * 64},{v1},v0={'f' * 64},v9=future-scheme"}

    result = verify("stripe", request(headers), [Secret("endpoint", "whsec_endpoint")], now=NOW)

    assert result.signed_at == NOW


def test_stripe_with_only_a_v0_signature_is_refused():
    timestamp = int(NOW.timestamp())
    headers = {"Stripe-Signature": f"t={timestamp},v0={'f' * 64}"}

    refusal = rejection("stripe", request(headers), [Secret("endpoint", "whsec_endpoint")])

    assert refusal.status == 401
    assert "no v1 signature" in refusal.detail


def test_stripe_signs_the_timestamp_so_it_cannot_be_refreshed():
    header = sign_stripe("whsec_endpoint", BODY, NOW - timedelta(hours=1))["Stripe-Signature"]
    _, v1 = header.split(",")
    headers = {"Stripe-Signature": f"t={int(NOW.timestamp())},{v1}"}

    refusal = rejection("stripe", request(headers), [Secret("endpoint", "whsec_endpoint")])

    assert NO_MATCH in refusal.detail


# --- HTTP Basic and bearer details ---------------------------------------------------------------------------------


def test_basic_refuses_a_right_password_for_the_wrong_user():
    headers = sign_basic("someone-else:correct horse 2025", BODY, NOW)

    refusal = rejection("basic", request(headers), [Secret("primary", "psa-webhooks:correct horse 2025")])

    assert NO_MATCH in refusal.detail


@pytest.mark.parametrize(("scheme", "header"), [("basic", "Bearer erp-token"), ("bearer", "Basic dXNlcjpwYXNz")])
def test_an_authorization_header_of_the_wrong_kind_is_refused(scheme, header):
    secret = "user:pass" if scheme == "basic" else "erp-token"

    refusal = rejection(scheme, request({"Authorization": header}), [Secret("primary", secret)])

    assert refusal.status == 401
    assert "must use the" in refusal.detail


def test_the_authorization_scheme_word_is_case_insensitive():
    result = verify("bearer", request({"authorization": "bearer erp-token"}), [Secret("erp", "erp-token")], now=NOW)

    assert result.secret_label == "erp"


# --- clientState (Microsoft Graph, Business Central) ---------------------------------------------------------------


def notifications(*states) -> bytes:
    value = []
    for n, state in enumerate(states):
        item = {"subscriptionId": f"sub-{n}", "changeType": "updated", "resource": f"customers({n})"}
        if state is not None:
            item["clientState"] = state
        value.append(item)
    return json.dumps({"value": value}).encode()


def test_client_state_accepts_a_graph_batch_where_every_notification_carries_the_secret():
    body = notifications("cs-2025-secret", "cs-2025-secret")

    result = verify("client-state", request({}, body), [Secret("primary", "cs-2025-secret")], now=NOW)

    assert result.scheme == "client-state"
    assert result.secret_label == "primary"
    assert result.signed_at is None


def test_client_state_accepts_a_business_central_notification():
    # Business Central webhook notifications: {"value": [{"subscriptionId", "clientState", "expirationDateTime",
    # "resource", "changeType", "lastModifiedDateTime"}]}.
    body = json.dumps(
        {
            "value": [
                {
                    "subscriptionId": "customers-sub",
                    "clientState": "cs-2025-secret",
                    "expirationDateTime": "2026-03-05T09:30:00Z",
                    "resource": "api/v2.0/companies(f64eba74-dacd-4854-a584-1834f68cfc3a)/customers(1042)",
                    "changeType": "updated",
                    "lastModifiedDateTime": "2026-03-02T09:29:51Z",
                }
            ]
        }
    ).encode()

    result = verify("client-state", request({}, body), [Secret("primary", "cs-2025-secret")], now=NOW)

    assert result.secret_label == "primary"


def test_client_state_accepts_a_top_level_client_state():
    body = json.dumps({"clientState": "cs-2025-secret", "event": "invoice.posted"}).encode()

    result = verify("client-state", request({}, body), [Secret("primary", "cs-2025-secret")], now=NOW)

    assert result.secret_label == "primary"


def test_client_state_refuses_a_batch_where_one_notification_lacks_it():
    body = notifications("cs-2025-secret", None)

    refusal = rejection("client-state", request({}, body), [Secret("primary", "cs-2025-secret")])

    assert refusal.status == 401
    assert "Notification 2 of 2 carries no clientState" in refusal.detail


def test_client_state_refuses_a_batch_where_one_notification_carries_a_wrong_value():
    body = notifications("cs-2025-secret", "guessed")

    refusal = rejection("client-state", request({}, body), [Secret("primary", "cs-2025-secret")])

    assert refusal.status == 401
    assert NO_MATCH in refusal.detail
    assert "guessed" not in refusal.detail


def test_client_state_refuses_a_body_that_carries_none():
    refusal = rejection("client-state", request({}, b'{"value": []}'), [Secret("primary", "cs-2025-secret")])

    assert refusal.status == 401
    assert "carries no clientState" in refusal.detail


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b'{"value": [{"clientState": "cs-2025-secret"}', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'[{"clientState": "cs-2025-secret"}]', "must be a JSON object"),
        (b'{"value": "cs-2025-secret"}', "list of notification objects"),
        (b'{"value": [{"clientState": 2025}]}', "not a string"),
    ],
)
def test_client_state_refuses_a_malformed_body_as_a_bad_request(body, complaint):
    refusal = rejection("client-state", request({}, body), [Secret("primary", "cs-2025-secret")])

    assert refusal.status == 400
    assert complaint in refusal.detail


def test_client_state_accepts_a_batch_mixing_old_and_new_secret_during_a_rotation():
    body = notifications("cs-2025-secret", "cs-2026-secret")
    secrets = [Secret("primary 2025", "cs-2025-secret"), Secret("rotation 2026", "cs-2026-secret")]

    result = verify("client-state", request({}, body), secrets, now=NOW)

    assert result.secret_label == "primary 2025, rotation 2026"


# --- the system's configuration ------------------------------------------------------------------------------------


def test_a_system_with_inbound_switched_off_refuses_every_delivery():
    headers = sign_bearer("erp-token", BODY, NOW)

    refusal = rejection("none", request(headers), [Secret("primary", "erp-token")])

    assert refusal.status == 403
    assert "switched off" in refusal.detail


def test_a_system_without_an_active_secret_refuses_every_delivery():
    headers = sign_bearer("erp-token", BODY, NOW)

    refusal = rejection("bearer", request(headers), [])

    assert refusal.status == 401
    assert "no usable active signing secret" in refusal.detail


def test_an_unusable_secret_is_skipped_so_the_other_one_still_verifies():
    secrets = [Secret("typo", "whsec_not base64!"), Secret("primary", SW_SECRET)]
    headers = sign_standard_webhooks(SW_SECRET, BODY, NOW)

    result = verify("standard-webhooks", request(headers), secrets, now=NOW)

    assert result.secret_label == "primary"


@pytest.mark.parametrize(
    ("scheme", "value", "problem"),
    [
        ("standard-webhooks", "whsec_not base64!", "must be base64"),
        ("basic", "just-a-password", "username:password"),
        ("bearer", "", "empty"),
        ("standard-webhooks", SW_SECRET, None),
        ("basic", "user:pass", None),
        ("stripe", "whsec_anything", None),
    ],
)
def test_secret_problem_explains_a_value_that_cannot_work_without_repeating_it(scheme, value, problem):
    found = secret_problem(scheme, value)

    if problem is None:
        assert found is None
    else:
        assert problem in found
        assert not value or value not in found


def test_an_unknown_scheme_is_a_programming_error_not_a_refusal():
    with pytest.raises(ValueError, match="Unknown signing scheme"):
        verify("hmac-sha1", request({}), [Secret("primary", "x")], now=NOW)


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        verify("bearer", request(sign_bearer("t", BODY, NOW)), [Secret("p", "t")], now=NOW.replace(tzinfo=None))
