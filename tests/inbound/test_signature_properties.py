"""Property tests (hypothesis) for signature header parsing: any header or body is either accepted as signed or
refused with a 4xx sentence that never shows a secret; genuine signatures survive noise around them."""

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.inbound.signatures import Secret, SignatureRejected, SignedRequest, verify

from .test_signatures import NOW, SCHEMES, URL, request

pytestmark = pytest.mark.fuzz

BOUNDED = settings(max_examples=60, deadline=None, database=None)
SCHEME_BY_NAME = {scheme.name: scheme for scheme in SCHEMES}
HEADER_NAMES = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "X-HubSpot-Signature",
    "X-HubSpot-Signature-Version",
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Request-Timestamp",
    "Stripe-Signature",
    "Authorization",
]
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=120)
# Pieces real headers are made of, so generated values get past the first checks and reach the deeper parsing.
header_parts = st.lists(
    st.sampled_from(["t=", "v1=", "v0=", "v1,", ",", " ", "=", "Basic ", "Bearer ", "whsec_", "00", "ff", "=="])
    | st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True)
    | st.from_regex(r"[0-9]{1,22}", fullmatch=True)
    | st.from_regex(r"[A-Za-z0-9+/]{43}=", fullmatch=True),
    max_size=8,
).map("".join)


def outcome(scheme_name, headers, body, secrets=None):
    scheme = SCHEME_BY_NAME[scheme_name]
    secrets = secrets or [Secret("primary", scheme.primary)]
    try:
        return verify(scheme_name, request(headers, body), secrets, now=NOW)
    except SignatureRejected as refusal:
        assert refusal.status in (400, 401)
        assert refusal.detail.strip()
        for secret in secrets:
            assert secret.value not in refusal.detail
        return refusal


@BOUNDED
@given(
    scheme=st.sampled_from(sorted(SCHEME_BY_NAME)),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_text | header_parts, max_size=5),
    body=st.binary(max_size=200),
)
def test_any_headers_are_accepted_or_refused_with_a_readable_4xx(scheme, headers, body):
    outcome(scheme, headers, body)  # never any other exception


@BOUNDED
@given(scheme=st.sampled_from(sorted(SCHEME_BY_NAME)), body=st.binary(max_size=500))
def test_a_genuine_signature_over_any_body_is_accepted(scheme, body):
    signer = SCHEME_BY_NAME[scheme]
    headers = signer.sign(signer.primary, body, NOW - timedelta(seconds=5))
    result = verify(scheme, request(headers, body), [Secret("primary", signer.primary)], now=NOW)
    assert result.secret_label == "primary"


@BOUNDED
@given(
    scheme=st.sampled_from([s.name for s in SCHEMES if s.name not in ("basic", "bearer")]),
    body=st.binary(min_size=1, max_size=300),
    data=st.data(),
)
def test_changing_any_byte_of_a_signed_body_is_refused(scheme, body, data):
    signer = SCHEME_BY_NAME[scheme]
    headers = signer.sign(signer.primary, body, NOW)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    refusal = outcome(scheme, headers, tampered)
    assert isinstance(refusal, SignatureRejected) and refusal.code == "signature_mismatch"


@BOUNDED
@given(
    body=st.binary(max_size=200),
    extras=st.lists(
        st.tuples(st.sampled_from(["v0", "v2", "scheme", "x"]), st.from_regex(r"[0-9a-f]{0,64}", fullmatch=True)),
        max_size=4,
    ),
    wrong=st.lists(st.from_regex(r"[0-9a-f]{64}", fullmatch=True), max_size=3),
    data=st.data(),
)
def test_stripe_finds_the_right_v1_among_other_entries_in_any_order(body, extras, wrong, data):
    signer = SCHEME_BY_NAME["stripe"]
    header = signer.sign(signer.primary, body, NOW)["Stripe-Signature"]
    entries = header.split(",") + [f"{key}={value}" for key, value in extras] + [f"v1={value}" for value in wrong]
    shuffled = data.draw(st.permutations(entries))
    result = verify(
        "stripe", request({"Stripe-Signature": " , ".join(shuffled)}, body), [Secret("k", signer.primary)], now=NOW
    )
    assert result.secret_label == "k"


@BOUNDED
@given(body=st.binary(max_size=200), others=st.lists(st.binary(min_size=32, max_size=32), max_size=3), data=st.data())
def test_standard_webhooks_finds_the_right_signature_among_several(body, others, data):
    signer = SCHEME_BY_NAME["standard-webhooks"]
    headers = signer.sign(signer.primary, body, NOW)
    entries = [headers["webhook-signature"]] + [f"v1,{base64.b64encode(other).decode()}" for other in others]
    entries += ["v1a,ignored-asymmetric-signature"]
    headers["webhook-signature"] = " ".join(data.draw(st.permutations(entries)))
    assert (
        verify("standard-webhooks", request(headers, body), [Secret("k", signer.primary)], now=NOW).secret_label == "k"
    )


@BOUNDED
@given(
    secrets=st.lists(
        st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=40),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    data=st.data(),
)
def test_during_a_rotation_the_secret_that_signed_is_the_one_named(secrets, data):
    signing = data.draw(st.sampled_from(secrets))
    body = b'{"id": "evt_1"}'
    timestamp = str(int(NOW.timestamp()))
    signature = hmac.new(signing.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    active = [Secret(f"secret {n}", value) for n, value in enumerate(secrets)]
    req = SignedRequest("POST", URL, {"Stripe-Signature": f"t={timestamp},v1={signature}"}, body)
    assert verify("stripe", req, active, now=NOW).secret_label == f"secret {secrets.index(signing)}"
