"""Webhook signature verification: is this delivery from the system it claims to be from, and which secret says so?

Pure functions over the raw request; the endpoint resolves the system's active secrets and turns a
`SignatureRejected` into a problem+json response. Every scheme accepts any of the active secrets, so a
secret can be rotated without downtime, and `Verification.secret_label` tells which one matched.

Vendor rules followed here:
- Standard Webhooks v1: standard-webhooks/standard-webhooks `spec/standard-webhooks.md`.
- HubSpot v1/v2/v3: https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests
- Stripe: https://docs.stripe.com/webhooks#verify-manually (scheme v1; v0 and unknown schemes are ignored).
- clientState: Microsoft Graph change notifications and Business Central webhooks (`value[].clientState`).
"""

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apps.systems.models import SigningScheme


@dataclass(frozen=True)
class Secret:
    """One active secret of a system, already resolved to its value."""

    label: str
    value: str


@dataclass(frozen=True)
class SignedRequest:
    """The delivery exactly as received: method, the URL the sender addressed, headers and raw body."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Verification:
    """A delivery that passed: which scheme, which secret, and the sender's timestamp and delivery id if any."""

    scheme: str
    secret_label: str
    signed_at: datetime | None = None
    delivery_id: str | None = None


class SignatureRejected(Exception):
    """A delivery that did not pass; `detail` is one sentence safe to show the sender (it never holds a secret)."""

    def __init__(self, status: int, detail: str, *, code: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code

    def __str__(self) -> str:
        return self.detail


NO_MATCH = "The signature does not match any active secret for this system."

DIGITS = re.compile(r"[0-9]{1,20}")
HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# HubSpot v3 signs the URI with exactly these escapes decoded (their "validating requests" page lists them).
HUBSPOT_V3_DECODED = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)


def verify(
    scheme: str,
    request: SignedRequest,
    secrets: Sequence[Secret],
    *,
    now: datetime,
    replay_window: int = 300,
) -> Verification:
    """Check a delivery against a system's active secrets; return what matched or raise `SignatureRejected`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (use django.utils.timezone.now()).")
    if scheme == SigningScheme.NONE:
        raise SignatureRejected(403, "Inbound deliveries are switched off for this system.", code="inbound_disabled")
    check = _CHECKS.get(str(scheme))
    if check is None:
        raise ValueError(f"Unknown signing scheme {scheme!r}; expected one of {sorted(SigningScheme.values)}.")
    usable = [secret for secret in secrets if secret_problem(scheme, secret.value) is None]
    if not usable:
        raise SignatureRejected(
            401, "This system has no usable active signing secret, so no delivery can be accepted.", code="no_secret"
        )
    headers = {name.lower(): value for name, value in request.headers.items()}
    return check(request, headers, usable, now, replay_window)


def secret_problem(scheme: str, value: str) -> str | None:
    """Why a secret value cannot work for a scheme (one sentence, without the value), or None when it can."""
    if not value:
        return "The secret is empty."
    if scheme == SigningScheme.STANDARD_WEBHOOKS and _standard_webhooks_key(value) is None:
        return "A Standard Webhooks secret must be base64, optionally prefixed with whsec_."
    if scheme == SigningScheme.BASIC and ":" not in value:
        return "An HTTP Basic secret must be written as username:password."
    return None


# --- schemes ---------------------------------------------------------------------------------------------------


def _verify_standard_webhooks(request, headers, secrets, now, window) -> Verification:
    delivery_id = _required(headers, "webhook-id")
    timestamp = _required(headers, "webhook-timestamp")
    signature_header = _required(headers, "webhook-signature")
    if not DIGITS.fullmatch(timestamp):
        raise _malformed("The webhook-timestamp header must be whole seconds since 1970 (digits only).")
    offered = []
    for entry in signature_header.split():
        version, comma, encoded = entry.partition(",")
        if not comma:
            raise _malformed("The webhook-signature header must be a space-separated list of version,signature pairs.")
        if version == "v1":
            offered.append(_base64_digest(encoded, "webhook-signature"))
    if not offered:
        raise SignatureRejected(
            401, "The webhook-signature header carries no v1 (HMAC-SHA256) signature.", code="unsupported_signature"
        )
    signed_content = b"%s.%s.%s" % (delivery_id.encode(), timestamp.encode(), request.body)
    label = _first_match(secrets, lambda secret: _hmac(_standard_webhooks_key(secret.value), signed_content), offered)
    signed_at = _within_window(int(timestamp), now, window)
    return Verification(SigningScheme.STANDARD_WEBHOOKS.value, label, signed_at, delivery_id)


def _verify_hubspot_v1(request, headers, secrets, now, window) -> Verification:
    offered = _hubspot_legacy_signature(headers, "v1")
    label = _first_match(secrets, lambda secret: hashlib.sha256(secret.value.encode() + request.body).digest(), offered)
    return Verification(SigningScheme.HUBSPOT_V1.value, label)


def _verify_hubspot_v2(request, headers, secrets, now, window) -> Verification:
    offered = _hubspot_legacy_signature(headers, "v2")
    # v2 signs the URI exactly as requested, protocol and query order included; nothing is decoded.
    signed = request.method.encode() + request.url.encode() + request.body
    label = _first_match(secrets, lambda secret: hashlib.sha256(secret.value.encode() + signed).digest(), offered)
    return Verification(SigningScheme.HUBSPOT_V2.value, label)


def _verify_hubspot_v3(request, headers, secrets, now, window) -> Verification:
    signature = _required(headers, "x-hubspot-signature-v3", "X-HubSpot-Signature-v3")
    timestamp = _required(headers, "x-hubspot-request-timestamp", "X-HubSpot-Request-Timestamp")
    if not DIGITS.fullmatch(timestamp):
        raise _malformed("The X-HubSpot-Request-Timestamp header must be milliseconds since 1970 (digits only).")
    offered = [_base64_digest(signature, "X-HubSpot-Signature-v3")]
    uri = HUBSPOT_V3_DECODED.sub(lambda match: bytes.fromhex(match.group(1)).decode(), request.url)
    signed = request.method.encode() + uri.encode() + request.body + timestamp.encode()
    label = _first_match(secrets, lambda secret: _hmac(secret.value.encode(), signed), offered)
    signed_at = _within_window(int(timestamp) / 1000, now, window)
    return Verification(SigningScheme.HUBSPOT_V3.value, label, signed_at)


def _verify_stripe(request, headers, secrets, now, window) -> Verification:
    header = _required(headers, "stripe-signature", "Stripe-Signature")
    timestamps, offered = [], []
    for item in header.split(","):
        key, equals, value = item.strip().partition("=")
        if not equals:
            raise _malformed("The Stripe-Signature header must be a comma-separated list of key=value pairs.")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            if not HEX_SHA256.fullmatch(value):
                raise _malformed("A v1 entry in the Stripe-Signature header is not a hex HMAC-SHA256 signature.")
            offered.append(bytes.fromhex(value))
    if len(timestamps) != 1 or not DIGITS.fullmatch(timestamps[0]):
        raise _malformed("The Stripe-Signature header must carry exactly one t= timestamp in whole seconds.")
    if not offered:
        raise SignatureRejected(
            401, "The Stripe-Signature header carries no v1 signature.", code="unsupported_signature"
        )
    signed = timestamps[0].encode() + b"." + request.body
    # Stripe keys the HMAC with the whole secret string, whsec_ prefix included.
    label = _first_match(secrets, lambda secret: _hmac(secret.value.encode(), signed), offered)
    signed_at = _within_window(int(timestamps[0]), now, window)
    return Verification(SigningScheme.STRIPE.value, label, signed_at)


def _verify_basic(request, headers, secrets, now, window) -> Verification:
    credentials = _authorization(headers, "Basic")
    try:
        decoded = base64.b64decode(credentials, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("The Basic credentials in the Authorization header are not valid base64.") from None
    if b":" not in decoded:
        raise _malformed("The Basic credentials in the Authorization header must be username:password.")
    label = _first_match(secrets, lambda secret: secret.value.encode(), [decoded])
    return Verification(SigningScheme.BASIC.value, label)


def _verify_bearer(request, headers, secrets, now, window) -> Verification:
    token = _authorization(headers, "Bearer")
    label = _first_match(secrets, lambda secret: secret.value.encode(), [token.encode()])
    return Verification(SigningScheme.BEARER.value, label)


def _verify_client_state(request, headers, secrets, now, window) -> Verification:
    try:
        payload = json.loads(request.body)
    except (ValueError, RecursionError):
        raise _malformed("The body is not valid JSON, so its clientState cannot be checked.") from None
    if not isinstance(payload, dict):
        raise _malformed("The body must be a JSON object carrying clientState or a value list of notifications.")
    states = []
    if "clientState" in payload:
        states.append(("The body", payload["clientState"]))
    if "value" in payload:
        notifications = payload["value"]
        if not isinstance(notifications, list) or not all(isinstance(item, dict) for item in notifications):
            raise _malformed("The value member of the body must be a list of notification objects.")
        total = len(notifications)
        states += [(f"Notification {n} of {total}", item.get("clientState")) for n, item in enumerate(notifications, 1)]
    if not states:
        raise SignatureRejected(401, "The body carries no clientState.", code="missing_credentials")
    labels = []
    for where, state in states:
        if state is None:
            raise SignatureRejected(401, f"{where} carries no clientState.", code="missing_credentials")
        if not isinstance(state, str):
            raise _malformed(f"{where} carries a clientState that is not a string.")
        # Every notification must carry a secret; during a rotation a batch may mix the old and the new one.
        label = _first_match(secrets, lambda secret: secret.value.encode(), [state.encode()])
        if label not in labels:
            labels.append(label)
    return Verification(SigningScheme.CLIENT_STATE.value, ", ".join(labels))


_CHECKS: dict[str, Callable[..., Verification]] = {
    SigningScheme.STANDARD_WEBHOOKS.value: _verify_standard_webhooks,
    SigningScheme.HUBSPOT_V1.value: _verify_hubspot_v1,
    SigningScheme.HUBSPOT_V2.value: _verify_hubspot_v2,
    SigningScheme.HUBSPOT_V3.value: _verify_hubspot_v3,
    SigningScheme.STRIPE.value: _verify_stripe,
    SigningScheme.BASIC.value: _verify_basic,
    SigningScheme.CLIENT_STATE.value: _verify_client_state,
    SigningScheme.BEARER.value: _verify_bearer,
}


# --- shared pieces ---------------------------------------------------------------------------------------------


def _required(headers: dict[str, str], name: str, display: str | None = None) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise SignatureRejected(401, f"The request has no {display or name} header.", code="missing_credentials")
    return value


def _malformed(detail: str) -> SignatureRejected:
    return SignatureRejected(400, detail, code="malformed_header")


def _hubspot_legacy_signature(headers: dict[str, str], version: str) -> list[bytes]:
    signature = _required(headers, "x-hubspot-signature", "X-HubSpot-Signature")
    sent_version = headers.get("x-hubspot-signature-version", "").strip()
    if sent_version and sent_version.lower() != version:
        raise SignatureRejected(
            401,
            f"The X-HubSpot-Signature-Version header says {sent_version[:8]!r} but this system expects {version}.",
            code="unsupported_signature",
        )
    if not HEX_SHA256.fullmatch(signature):
        raise _malformed("The X-HubSpot-Signature header is not a hex SHA-256 hash.")
    return [bytes.fromhex(signature)]


def _authorization(headers: dict[str, str], expected_scheme: str) -> str:
    value = _required(headers, "authorization", "Authorization")
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() != expected_scheme.lower():
        raise SignatureRejected(
            401, f"The Authorization header must use the {expected_scheme} scheme.", code="unsupported_signature"
        )
    credentials = credentials.strip()
    if not credentials or " " in credentials:
        raise _malformed(f"The Authorization header must be '{expected_scheme}' followed by one credential.")
    return credentials


def _base64_digest(encoded: str, header: str) -> bytes:
    try:
        digest = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"A signature in the {header} header is not valid base64.") from None
    if len(digest) != hashlib.sha256().digest_size:
        raise _malformed(f"A signature in the {header} header is not an HMAC-SHA256 signature.")
    return digest


def _standard_webhooks_key(value: str) -> bytes | None:
    encoded = value.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _first_match(secrets: Sequence[Secret], expected_for: Callable[[Secret], bytes], offered: list[bytes]) -> str:
    """The label of the first secret whose expected value equals any offered one (constant-time compares)."""
    for secret in secrets:
        expected = expected_for(secret)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return secret.label
    raise SignatureRejected(401, NO_MATCH, code="signature_mismatch")


def _within_window(signed_seconds: float, now: datetime, window: int) -> datetime:
    """The signing time, checked after the signature so 'stale' is only said of genuine (replayed) deliveries."""
    age = now.timestamp() - signed_seconds
    if age > window:
        raise SignatureRejected(
            401,
            f"The delivery was signed {math.ceil(age)} seconds ago; deliveries older than {window} seconds are refused "
            "as possible replays.",
            code="stale",
        )
    if -age > window:
        raise SignatureRejected(
            401,
            f"The delivery is dated {math.ceil(-age)} seconds in the future; more than {window} seconds of clock "
            "difference is refused.",
            code="future",
        )
    return datetime.fromtimestamp(signed_seconds, tz=UTC)
