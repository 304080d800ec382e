"""What every sandbox endpoint shares: auth, faults, idempotency replay, the call log and vendor-shaped errors.

A request goes: auth → latency → fault (decided under a row lock, one counter consumed) → the kind's
handler, inside one short transaction that holds the kind's write lock and stores the idempotency key →
call log → (for timeout/drop faults) a sleep outside any transaction → the answer.

Over 500 lines on purpose: the request pipeline every simulator shares reads best as one file.
"""

import base64
import binascii
import datetime
import hmac
import json
import logging
import math
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from apps.core.context import system_context
from apps.systems import secrets

from .models import Fault, SandboxCall, SandboxIdempotencyKey, SandboxSystem
from .services import (
    KINDS,
    SandboxSettingError,
    faults_as_dict,
    sandbox_faults_reset,
    sandbox_faults_set,
    sandbox_system,
)
from .webhooks import webhook_emit

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADERS = {
    "crm": "Idempotency-Key",
    "psa": "Idempotency-Key",
    "erp": "Idempotency-Key",
    "billing": "Chargebee-Idempotency-Key",
    "hubspot": "Idempotency-Key",
    "stripe": "Idempotency-Key",
    # Business Central has no idempotency keys: its writes are made safe by If-Match ETags instead.
}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_LOGGED_BODY = 64 * 1024
MASKED_HEADERS = {"authorization", "cookie", "x-api-key", "proxy-authorization"}

# The error code each vendor uses for the answers every kind can give.
STANDARD_CODES = {
    "crm": {
        400: "JSON_PARSER_ERROR",
        401: "INVALID_SESSION_ID",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        413: "REQUEST_TOO_LARGE",
        429: "REQUEST_LIMIT_EXCEEDED",
        500: "UNKNOWN_EXCEPTION",
        503: "SERVER_UNAVAILABLE",
        504: "REQUEST_RUNNING_TOO_LONG",
    },
    "psa": {},
    "erp": {
        400: "INVALID_CONTENT",
        401: "INVALID_LOGIN",
        404: "NONEXISTENT_ID",
        405: "INVALID_METHOD",
        413: "REQUEST_TOO_LARGE",
        429: "REQUEST_LIMIT_EXCEEDED",
        500: "UNEXPECTED_ERROR",
        503: "SERVICE_UNAVAILABLE",
        504: "REQUEST_TIMEOUT",
    },
    "billing": {
        400: "invalid_request",
        401: "api_authentication_failed",
        404: "resource_not_found",
        405: "invalid_request",
        413: "invalid_request",
        429: "api_request_limit_exceeded",
        500: "internal_error",
        503: "internal_temporary_error",
        504: "internal_temporary_error",
    },
    "hubspot": {
        400: "VALIDATION_ERROR",
        401: "INVALID_AUTHENTICATION",
        403: "MISSING_SCOPES",
        404: "OBJECT_NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        409: "CONFLICT",
        413: "VALIDATION_ERROR",
        423: "LOCKED",
        429: "RATE_LIMITS",
        500: "INTERNAL_ERROR",
        503: "SERVICE_UNAVAILABLE",
        504: "TIMEOUT",
    },
    "stripe": {
        400: "parameter_invalid",
        401: "api_key_invalid",
        403: "secret_key_required",
        404: "resource_missing",
        405: "invalid_request",
        413: "invalid_request",
        429: "rate_limit",
        500: "api_error",
        503: "api_error",
        504: "api_error",
    },
    "business-central": {
        400: "BadRequest",
        401: "Authentication_InvalidCredentials",
        403: "Authorization_Failed",
        404: "BadRequest_NotFound",
        405: "BadRequest_MethodNotAllowed",
        412: "Request_EntityChanged",
        413: "RequestDataInvalid",
        429: "Application_TooManyRequests",
        500: "Internal_ServerError",
        503: "Internal_ServiceUnavailable",
        504: "Internal_RequestTimeout",
    },
}
# What reject_next answers, per kind and Rejection: (status, vendor code, message) as each vendor documents it.
REJECTIONS = {
    "crm": {
        "validation": (400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "The record failed a validation rule of the org."),
        "duplicate": (400, "DUPLICATE_VALUE", "duplicate value found: the record already exists"),
        "concurrency": (400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"),
        "auth": (401, "INVALID_SESSION_ID", "Session expired or invalid"),
        "forbidden": (403, "INSUFFICIENT_ACCESS", "insufficient access rights on object id"),
        "not_found": (404, "NOT_FOUND", "The requested resource does not exist"),
    },
    "psa": {
        "validation": (422, "", "The record is not valid."),
        "duplicate": (422, "", "has already been taken"),
        "concurrency": (409, "", "The record was changed by someone else."),
        "auth": (401, "", "Authentication required."),
        "forbidden": (403, "", "You do not have access to this record."),
        "not_found": (404, "", "The record does not exist."),
    },
    "erp": {
        "validation": (400, "USER_ERROR", "Invalid field value."),
        "duplicate": (400, "DUP_RCRD", "A record with this external ID already exists."),
        "concurrency": (409, "RCRD_HAS_BEEN_CHANGED", "Record has been changed since you loaded it."),
        "auth": (401, "INVALID_LOGIN", "Invalid login attempt."),
        "forbidden": (403, "INSUFFICIENT_PERMISSION", "Permission violation."),
        "not_found": (404, "NONEXISTENT_ID", "The record does not exist."),
    },
    "billing": {
        "validation": (400, "param_wrong_value", "The value of a parameter is not valid."),
        "duplicate": (400, "duplicate_entry", "The value is already present."),
        "concurrency": (409, "invalid_state_for_request", "The resource is being changed by another request."),
        "auth": (401, "api_authentication_failed", "Authentication failed."),
        "forbidden": (403, "api_authorization_failed", "The API key may not do this."),
        "not_found": (404, "resource_not_found", "The resource was not found."),
    },
    "hubspot": {
        "validation": (400, "VALIDATION_ERROR", "Property values were not valid."),
        "duplicate": (409, "CONFLICT", "An object with this unique property value already exists."),
        "concurrency": (423, "LOCKED", "The portal is syncing a high volume of data; wait 2 seconds and retry."),
        "auth": (401, "INVALID_AUTHENTICATION", "Authentication credentials not found or expired."),
        "forbidden": (403, "MISSING_SCOPES", "This app hasn't been granted all required scopes."),
        "not_found": (404, "OBJECT_NOT_FOUND", "Object not found."),
    },
    "stripe": {
        "validation": (400, "parameter_invalid_empty", "You passed an empty string for a parameter."),
        "duplicate": (400, "resource_already_exists", "The resource ID you specified already exists."),
        "concurrency": (
            429,
            "lock_timeout",
            "This object cannot be accessed right now because another API request or Stripe process is "
            "currently accessing it.",
        ),
        "auth": (401, "api_key_invalid", "Invalid API Key provided."),
        "forbidden": (403, "secret_key_required", "This API call cannot be made with a publishable API key."),
        "not_found": (404, "resource_missing", "No such object."),
    },
    "business-central": {
        "validation": (400, "Internal_ValidationError", "A field value is not valid for this record."),
        "duplicate": (400, "Internal_EntityWithSameKeyExists", "The record already exists."),
        "concurrency": (412, "Request_EntityChanged", "Another user has already changed the record."),
        "auth": (401, "Authentication_InvalidCredentials", "The credentials provided are incorrect."),
        "forbidden": (403, "Authorization_Failed", "You do not have permission to access this resource."),
        "not_found": (404, "BadRequest_NotFound", "The resource was not found."),
    },
}
# Headers a kind adds to every answer it gives (HubSpot's rate limit headers); filled in by the kind's module.
ANSWER_HEADERS: dict = {}
STANDARD_MESSAGES = {
    401: "The credential is missing or not valid for this sandbox.",
    404: "The requested resource does not exist.",
    405: "This method is not supported here.",
    413: "The request body is too large.",
    429: "Too many requests: the request limit was exceeded. Try again after the Retry-After seconds.",
    500: "An unexpected error occurred in the sandbox.",
    503: "The service is temporarily unavailable. Try again later.",
    504: "The request took too long and was abandoned; nothing was done.",
}
RFC_TYPES = {
    400: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
    401: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2",
    404: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5",
    405: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.6",
    409: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.10",
    413: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.14",
    422: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.21",
    429: "https://www.rfc-editor.org/rfc/rfc6585.html#section-4",
    500: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.1",
    503: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.4",
    504: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.5",
}
PSA_ERROR_TYPES = {400: "validation", 401: "authentication", 404: "not_found", 422: "validation", 429: "rate_limit"}
HUBSPOT_CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    409: "CONFLICT",
    423: "LOCKED",
    429: "RATE_LIMITS",
}


@dataclass
class Answer:
    """What a sandbox answers: status, a JSON body (or raw text for replays) and headers."""

    status: int
    body: object = None
    headers: dict = field(default_factory=dict)
    raw: str | None = None

    def text(self) -> str:
        if self.raw is not None:
            return self.raw
        return "" if self.body is None else json.dumps(self.body)


class VendorError(Exception):
    """An error the handler answers in its vendor's shape; raised inside the write transaction, it rolls it back."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def error_answer(kind: str, status: int, code: str | None = None, message: str | None = None, **extra) -> Answer:
    """A vendor-shaped error answer; code and message default to the vendor's standard ones for the status."""
    code = code or STANDARD_CODES[kind].get(status, "")
    message = message or STANDARD_MESSAGES.get(status, HTTPStatus(status).phrase)
    param = extra.pop("param", None)
    headers = extra.pop("headers", {})
    if kind == "crm":
        error = {"message": message, "errorCode": code}
        if param:
            error["fields"] = [param]
        return Answer(status, [error], headers)
    if kind == "psa":
        error = {"type": PSA_ERROR_TYPES.get(status, "system"), "message": message}
        if param:
            error["field"] = param
        return Answer(status, {"errors": [error]}, headers)
    if kind == "hubspot":
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": HUBSPOT_CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"),
        }
        if code and code != body["category"]:
            body["subCategory"] = code
        if status == 429:
            body["policyName"] = "TEN_SECONDLY_ROLLING"
        if param:
            body["errors"] = [{"message": message, "context": {"propertyName": [param]}}]
        return Answer(status, body, headers)
    if kind == "stripe":
        error_type = "api_error" if status >= 500 else "invalid_request_error"
        if code == "idempotency_key_in_use" or code == "idempotency_error":
            error_type = "idempotency_error"
        error = {
            "type": error_type,
            "code": code,
            "message": message,
            "doc_url": f"https://stripe.com/docs/error-codes/{code}",
        }
        if param:
            error["param"] = param
        return Answer(status, {"error": error}, headers)
    if kind == "business-central":
        target = f" (field {param})" if param else ""
        return Answer(status, {"error": {"code": code, "message": f"{message}{target}"}}, headers)
    if kind == "erp":
        detail = {"detail": message, "o:errorCode": code}
        if param:
            detail["o:errorPath"] = param
        body = {
            "type": RFC_TYPES.get(status, "about:blank"),
            "title": HTTPStatus(status).phrase,
            "status": status,
            "o:errorDetails": [detail],
        }
        return Answer(status, body, headers)
    body = {
        "message": message,
        "type": "invalid_request" if 400 <= status < 500 and status not in (401, 429) else "operation_failed",
        "api_error_code": code,
        "error_code": code,
        "error_msg": message,
        "http_status_code": status,
    }
    if param:
        body["param"] = param
        body["error_param"] = param
    return Answer(status, body, headers)


def answer_for(kind: str, error: VendorError) -> Answer:
    return error_answer(kind, error.status, error.code, error.message, param=error.param)


# --- the request's context for handlers ----------------------------------------------------------------------


@dataclass
class Context:
    """What a handler gets: the kind, the request, the (locked, for writes) sandbox row, body parsing."""

    kind: str
    request: HttpRequest
    system: SandboxSystem

    def url(self, path: str) -> str:
        """An absolute URL on this site (for Location headers and links)."""
        return self.request.build_absolute_uri(path)

    def json(self) -> dict:
        """The JSON object sent, or a vendor-shaped 400."""
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise VendorError(
                400, STANDARD_CODES[self.kind].get(400, ""), f"The body is not valid JSON: {exc}"
            ) from exc
        if not isinstance(body, dict):
            raise VendorError(400, STANDARD_CODES[self.kind].get(400, ""), "The body must be a JSON object.")
        return body

    def form(self) -> dict:
        """The form sent, with Chargebee's bracket names (charges[amount][0]) turned into nested dicts."""
        content_type = self.request.content_type or ""
        if self.request.body and content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raise VendorError(
                400, "invalid_request", "Send the parameters form-encoded (application/x-www-form-urlencoded)."
            )
        return bracket_form(self.request.POST)

    def emit_webhook(self, event_type: str, content: dict) -> None:
        """Send an event to this sandbox's webhook URL after the current transaction commits."""
        webhook_emit(system=self.system, event_type=event_type, content=content)


BRACKETS = re.compile(r"\[([^\[\]]*)\]")


def bracket_form(querydict) -> dict:
    """`charges[amount][0]=1000` → {"charges": {"amount": {"0": "1000"}}} (last value of a repeated name wins)."""
    result: dict = {}
    for name in querydict:
        base = name.split("[", 1)[0]
        parts = [base, *BRACKETS.findall(name[len(base) :])]
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise VendorError(400, "invalid_request", f"Parameter {name} clashes with {part}.", param=name)
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise VendorError(400, "invalid_request", f"Parameter {name} clashes with another parameter.", param=name)
        node[parts[-1]] = querydict.get(name)
    return result


# --- auth ------------------------------------------------------------------------------------------------


def presented_credential(request: HttpRequest, kind: str) -> str:
    """The bearer token (CRM, PSA, ERP) or the Basic username = API key (billing) the caller sent."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if kind == "stripe" and scheme.lower() == "bearer":
        return value
    if kind in ("billing", "stripe"):
        if scheme.lower() != "basic" or not value:
            return ""
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[0]
    return value if scheme.lower() == "bearer" else ""


def auth_refusal(kind: str, system: SandboxSystem, request: HttpRequest) -> Answer | None:
    """None if the caller may in; otherwise the vendor's 401."""
    presented = presented_credential(request, kind)
    how = "HTTP Basic with the API key as user name" if kind == "billing" else "Authorization: Bearer <token>"
    if kind == "stripe":
        how = "Authorization: Bearer <secret key> (or Basic with the key as user name)"
    if not presented:
        return error_answer(kind, 401, message=f"No credential was sent. Send {how}.")
    if system.required_credential:
        try:
            expected = secrets.resolve(system.required_credential)
        except secrets.SecretUnavailable as exc:
            return error_answer(kind, 401, message=f"The sandbox cannot check credentials: {exc.message}")
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            return error_answer(kind, 401)
    return None


# --- faults ----------------------------------------------------------------------------------------------


@dataclass
class AppliedFault:
    fault: str
    status: int | None = None  # None: the call is processed normally (drop)
    retry_after: int | None = None
    sleep: float = 0
    rejection: str = ""  # the Rejection answered for reject_next


RATE_WINDOW = datetime.timedelta(seconds=60)


def rate_limit_reached(system: SandboxSystem, now) -> AppliedFault | None:
    """A 429 when the calls served in the past 60 seconds reached the kind's requests_per_minute.

    Chargebee counts "requests in the past 60 seconds" and answers 429 beyond its plan's limit (the call log is
    the count here; refused calls are not served, so they do not count). Retry-After is when the oldest call that
    keeps the window full ages out of it.
    """
    limit = system.requests_per_minute
    if not limit:
        return None
    served = SandboxCall.objects.filter(kind=system.kind, received_at__gt=now - RATE_WINDOW).exclude(
        fault=Fault.RATE_LIMITED
    )
    count = served.count()
    if count < limit:
        return None
    oldest = served.order_by("received_at").values_list("received_at", flat=True)[count - limit]
    retry_after = max(1, math.ceil((oldest + RATE_WINDOW - now).total_seconds()))
    return AppliedFault(Fault.RATE_LIMITED, 429, retry_after=retry_after)


def fault_consume(system: SandboxSystem, *, write: bool) -> AppliedFault | None:
    """The fault this call meets, if any; each counter is consumed under the row lock, so exactly once."""
    if not system.has_faults(timezone.now()):
        return None
    with system_context(f"Sandbox {system.kind}: fault applied"), transaction.atomic():
        system = SandboxSystem.objects.select_for_update().get(pk=system.pk)
        now = timezone.now()
        if system.throttled_until is not None and system.throttled_until > now:
            remaining = max(1, math.ceil((system.throttled_until - now).total_seconds()))
            return AppliedFault(Fault.THROTTLE_WINDOW, 429, retry_after=remaining)
        if system.throttle_next:
            system.throttle_next -= 1
            seconds = system.retry_after_seconds
            system.throttled_until = now + datetime.timedelta(seconds=seconds) if seconds else None
            system.save(update_fields=["throttle_next", "throttled_until"])
            return AppliedFault(Fault.THROTTLED, 429, retry_after=seconds)
        if system.fail_next:
            system.fail_next -= 1
            system.save(update_fields=["fail_next"])
            return AppliedFault(Fault.FAILED, 503)
        if system.reject_next:
            system.reject_next -= 1
            system.save(update_fields=["reject_next"])
            status = REJECTIONS[system.kind][system.reject_with][0]
            return AppliedFault(Fault.REJECTED, status, rejection=system.reject_with)
        if system.timeout_next:
            system.timeout_next -= 1
            system.save(update_fields=["timeout_next"])
            return AppliedFault(Fault.TIMEOUT, 504, sleep=system.timeout_seconds)
        if system.error_rate:
            if system.random_seed is None:
                draw = random.Random()
            else:
                # One generator per draw number: the sequence of outcomes repeats for a seed, whatever the threads.
                draw = random.Random(f"{system.random_seed}:{system.random_draws}")
                system.random_draws += 1
                system.save(update_fields=["random_draws"])
            if draw.random() < float(system.error_rate):
                return AppliedFault(Fault.ERROR_RATE, 500 if draw.random() < 0.5 else 503)
        if write and system.drop_next:
            system.drop_next -= 1
            system.save(update_fields=["drop_next"])
            return AppliedFault(Fault.DROPPED, None, sleep=system.drop_seconds)
    return None


def fault_answer(kind: str, applied: AppliedFault) -> Answer:
    if applied.rejection:
        status, code, message = REJECTIONS[kind][applied.rejection]
        headers = {"Retry-After": "2"} if status in (423, 429) else {}
        return error_answer(kind, status, code, message, headers=headers)
    headers = {"Retry-After": str(applied.retry_after)} if applied.retry_after is not None else {}
    return error_answer(kind, applied.status, headers=headers)


# --- serving a request -----------------------------------------------------------------------------------


def serve(request: HttpRequest, kind: str, handlers: dict, **kwargs) -> HttpResponse:
    """Answer one sandbox request: auth, faults, the handler for its method, idempotency, the call log."""
    started = time.monotonic()
    received_at = timezone.now()
    write = request.method in WRITE_METHODS
    header = IDEMPOTENCY_HEADERS.get(kind)
    key = request.headers.get(header, "").strip() if write and header else ""
    applied, replayed = None, False
    try:
        body = request.body
    except RequestDataTooBig:
        body = b""
        answer = error_answer(kind, 413)
    else:
        try:
            answer, applied, replayed = _answer(request, kind, handlers, write=write, key=key, kwargs=kwargs)
        except Exception:
            # A simulator bug must still answer like the vendor would, and be logged.
            logger.exception("Sandbox %s failed on %s %s", kind, request.method, request.path)
            answer = error_answer(kind, 500)
    if kind in ANSWER_HEADERS:
        answer.headers = {**ANSWER_HEADERS[kind](request), **answer.headers}
    _log_call(
        request,
        kind,
        body=body,
        key=key,
        received_at=received_at,
        duration_ms=int((time.monotonic() - started) * 1000),
        answer=answer,
        applied=applied,
        replayed=replayed,
    )
    if applied is not None and applied.sleep:
        time.sleep(applied.sleep)  # after commit and the log, outside any transaction
    response = http_response(answer)
    if applied is not None and applied.status is not None:
        # An injected 5xx is the sandbox working as asked: keep it out of django.request's error log.
        logger.info("Sandbox %s answered %s %s with injected %s", kind, request.method, request.path, applied.fault)
        response._has_been_logged = True
    return response


def _answer(request, kind, handlers, *, write, key, kwargs):
    system = sandbox_system(kind)
    refusal = auth_refusal(kind, system, request)
    if refusal is not None:
        return refusal, None, False
    if system.latency_ms:
        time.sleep(system.latency_ms / 1000)
    applied = rate_limit_reached(system, timezone.now()) or fault_consume(system, write=write)
    if applied is not None and applied.status is not None:
        return fault_answer(kind, applied), applied, False
    handler = handlers.get(request.method)
    if handler is None:
        allowed = ", ".join(sorted(handlers))
        return error_answer(kind, 405, headers={"Allow": allowed}), applied, False
    ctx = Context(kind=kind, request=request, system=system)
    if not write:
        try:
            return handler(ctx, **kwargs), applied, False
        except VendorError as error:
            return answer_for(kind, error), applied, False
    with system_context(f"Sandbox {kind}: {request.method} {request.path}"):
        try:
            with transaction.atomic():
                # The kind's write lock: idempotency checks, upserts and id numbering never race.
                ctx.system = SandboxSystem.objects.select_for_update().get(pk=system.pk)
                if key:
                    stored = SandboxIdempotencyKey.objects.filter(kind=kind, key=key).first()
                    if (
                        stored is not None
                        and kind == "stripe"
                        and (stored.method, stored.path)
                        != (
                            request.method,
                            request.path[:500],
                        )
                    ):
                        message = (
                            "Keys for idempotent requests can only be used for the same endpoint they were first "
                            f"used for ('{stored.method} {stored.path}'). Try using a key other than '{key}'."
                        )
                        return error_answer(kind, 400, "idempotency_error", message), applied, False
                    if stored is not None:
                        headers = {**stored.headers, "Idempotent-Replayed": "true"}
                        return Answer(stored.status, headers=headers, raw=stored.body), applied, True
                answer = handler(ctx, **kwargs)
                if key and 200 <= answer.status < 300:
                    SandboxIdempotencyKey.objects.create(
                        kind=kind,
                        key=key,
                        method=request.method,
                        path=request.path[:500],
                        status=answer.status,
                        headers=answer.headers,
                        body=answer.text(),
                    )
                return answer, applied, False
        except VendorError as error:
            return answer_for(kind, error), applied, False


def http_response(answer: Answer) -> HttpResponse:
    if answer.status == 204:
        response = HttpResponse(status=204)
        del response["Content-Type"]
    else:
        response = HttpResponse(answer.text(), status=answer.status, content_type="application/json")
    for name, value in answer.headers.items():
        response[name] = value
    return response


def logged_headers(request: HttpRequest) -> dict:
    """Request headers for the call log, with credentials reduced to their scheme."""
    headers = {}
    for name, value in request.headers.items():
        if name.lower() in MASKED_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} ***".strip()
        headers[name] = value
    return headers


def _log_call(request, kind, *, body, key, received_at, duration_ms, answer, applied, replayed) -> None:
    try:
        SandboxCall.objects.create(
            kind=kind,
            method=request.method,
            path=request.path[:500],
            query=request.META.get("QUERY_STRING", ""),
            headers=logged_headers(request),
            body=body[:MAX_LOGGED_BODY].decode("utf-8", errors="replace"),
            idempotency_key=key[:255],
            correlation_id=request.headers.get("X-Correlation-ID", "")[:64],
            received_at=received_at,
            duration_ms=duration_ms,
            response_status=answer.status,
            response_body=answer.text()[:MAX_LOGGED_BODY],
            fault=applied.fault if applied is not None else "",
            replayed=replayed,
        )
    except Exception:
        logger.exception("Sandbox %s could not log the call %s %s", kind, request.method, request.path)


def endpoint(kind: str, **handlers):
    """A csrf-exempt view serving the given method handlers, e.g. endpoint("erp", GET=read, PUT=upsert)."""

    @csrf_exempt
    def view(request, **kwargs):
        return serve(request, kind, handlers, **kwargs)

    return view


def _not_found(ctx: Context, **kwargs) -> Answer:
    raise VendorError(404, STANDARD_CODES[ctx.kind].get(404, ""), f"There is nothing at {ctx.request.path}.")


def not_found(kind: str):
    """The kind's answer for every path it does not serve (still authenticated, faulted and logged)."""
    return endpoint(kind, **{method: _not_found for method in ALL_METHODS})


# --- the fault control endpoint -------------------------------------------------------------------------


@csrf_exempt
def faults_view(request: HttpRequest, kind: str) -> HttpResponse:
    """GET the kind's fault settings, POST some of them (JSON), DELETE to turn every fault off."""
    if kind not in KINDS:
        return HttpResponse(json.dumps({"message": f"There is no '{kind}' sandbox."}), status=404)
    system = sandbox_system(kind)
    refusal = auth_refusal(kind, system, request)
    if refusal is not None:
        return http_response(refusal)
    if request.method == "GET":
        return http_response(Answer(200, faults_as_dict(system)))
    if request.method == "DELETE":
        return http_response(Answer(200, faults_as_dict(sandbox_faults_reset(kind, reason="Faults reset over HTTP"))))
    if request.method != "POST":
        return http_response(error_answer(kind, 405, headers={"Allow": "GET, POST, DELETE"}))
    try:
        settings = Context(kind=kind, request=request, system=system).json()
        system = sandbox_faults_set(kind, reason="Faults set over HTTP", **settings)
    except VendorError as error:
        return http_response(answer_for(kind, error))
    except SandboxSettingError as error:
        return http_response(error_answer(kind, 400, message=f"{error.message} {error.fix}".strip()))
    return http_response(Answer(200, faults_as_dict(system)))
