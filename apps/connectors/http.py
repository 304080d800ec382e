"""The one outbound HTTP layer: every call to a target system goes through `HttpClient.request`.

Per call: the system's base URL, its auth (from credential references, resolved at call time), its
connect/read timeouts, the shared rate limit, `X-Correlation-ID`, an idempotency key header, a
`User-Agent`; a masked capture handed to the recorder; and failures classified into `TransientError`,
`PermanentError` or `TargetRejected` with business-readable messages. No retries here: the ledger
retries whole steps, with backoff, and knows whether a step is safe to repeat.

Supported `outbound_auth`:
- `bearer`: credentials `{"env": "X"}` or `{"token": {"env": "X"}}` → `Authorization: Bearer <token>`.
- `basic`: `{"username": ref, "password": ref}` (password optional: Chargebee sends the API key as user
  name and an empty password) or one reference holding `user:password` or just the user name.
- `api-key`: `{"env": "X"}` or `{"api_key": ref}`, sent in the adapter's header (default `X-API-Key`).
- `oauth2-client-credentials`: `{"client_id": ref, "client_secret": ref, "token_url": ref (optional when the
  adapter knows its vendor's token endpoint), "scope": ref (optional)}`. The access token is cached in the
  process until one minute before it expires, and fetched again once when a call answers 401.

Over 500 lines on purpose: the one outbound call path (auth, limits, capture, error classes) in one place.
"""

import datetime
import email.utils
import json as jsonlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from urllib.parse import quote, urljoin, urlsplit

import requests
from django.utils import timezone

from apps.systems import secrets
from apps.systems.models import OutboundAuth, url_host

from . import capture, ratelimit
from .errors import ConnectorError, PermanentError, TargetRejected, TransientError

logger = logging.getLogger(__name__)

USER_AGENT = "IntegrationConsole/1.0 (+https://github.com/integration-console; connectors)"
CORRELATION_HEADER = "X-Correlation-ID"
# The correlation ID of what started the chain (e.g. the inbound delivery answered with 202), on every call.
ROOT_CORRELATION_HEADER = "X-Root-Correlation-ID"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VALIDATION_STATUSES = frozenset({400, 409, 422})
TRANSIENT_STATUSES = frozenset({408, 425, 429})

# Paging styles understood by HttpClient.paginate.
PAGING_LINKS = "links"  # NetSuite: {"items": [...], "links": [{"rel": "next", "href": ...}], "hasMore"}
PAGING_NEXT_OFFSET = "next_offset"  # Chargebee: {"list": [...], "next_offset": "..."}
PAGING_OFFSET = "offset"  # plain ?offset=&limit= until a short page

_token_cache: dict[tuple, tuple[str, float]] = {}
_token_lock = threading.Lock()


def encode_json(value) -> str:
    """JSON text with Decimals written exactly as numbers (never through float), dates as ISO strings."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{jsonlib.dumps(str(k))}:{encode_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be sent as a JSON number")
        return format(value, "f")
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return jsonlib.dumps(value.isoformat())
    if isinstance(value, uuid.UUID):
        return jsonlib.dumps(str(value))
    return jsonlib.dumps(value)


def parse_retry_after(value: str | None, *, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """When a Retry-After header (seconds or an HTTP-date) lets us call again; None when absent or unreadable."""
    if not value:
        return None
    now = now or timezone.now()
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return now + datetime.timedelta(seconds=max(0.0, seconds))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if timezone.is_naive(when):
        when = when.replace(tzinfo=datetime.UTC)
    return max(when, now)


def seconds_label(value) -> str:
    """30.00 → '30 s', 0.50 → '0.5 s'."""
    number = Decimal(str(value)).normalize()
    return f"{number:f} s"


def generic_error(body) -> tuple[str, str]:
    """The vendor's message and code from the common error shapes (JSON already parsed, or text)."""
    if isinstance(body, list) and body and isinstance(body[0], dict):  # Salesforce
        return "; ".join(str(item.get("message", "")) for item in body), str(body[0].get("errorCode", ""))
    if isinstance(body, dict):
        details = body.get("o:errorDetails")
        if isinstance(details, list) and details:  # NetSuite problem JSON
            message = "; ".join(str(d.get("detail", "")) for d in details if isinstance(d, dict))
            return message or str(body.get("title", "")), str(details[0].get("o:errorCode", ""))
        errors = body.get("errors")
        if isinstance(errors, list) and errors:  # Kantata and similar
            messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
            first = errors[0] if isinstance(errors[0], dict) else {}
            return "; ".join(messages), str(first.get("type", first.get("code", "")))
        if "api_error_code" in body or "error_code" in body:  # Chargebee
            return str(body.get("message", "")), str(body.get("api_error_code") or body.get("error_code") or "")
        if "error_description" in body or isinstance(body.get("error"), str):  # OAuth 2
            return str(body.get("error_description") or body.get("error")), str(body.get("error", ""))
        for key in ("message", "detail", "title", "error"):
            if isinstance(body.get(key), str):
                return body[key], str(body.get("code", ""))
    if isinstance(body, str):
        return body.strip()[:300], ""
    return "", ""


class HttpClient:
    """Calls one connected system: auth, timeouts, rate limit, headers, masked capture, error classes."""

    def __init__(
        self,
        system,
        *,
        correlation_id: str,
        recorder: Callable[[dict], None] | None = None,
        session: requests.Session | None = None,
        idempotency_header: str = "Idempotency-Key",
        api_key_header: str = "X-API-Key",
        oauth_token_url: str | None = None,
        error_parser: Callable[[object], tuple[str, str]] | None = None,
        max_rate_wait: float | None = None,
        body_limit: int = capture.BODY_LIMIT,
        root_correlation_id: str = "",
    ):
        self.system = system
        self.correlation_id = correlation_id
        self.root_correlation_id = root_correlation_id or correlation_id
        self.recorder = recorder
        self.session = session or requests.Session()
        self.idempotency_header = idempotency_header
        self.api_key_header = api_key_header
        self.oauth_token_url = oauth_token_url
        self.error_parser = error_parser or generic_error
        self.max_rate_wait = max_rate_wait
        self.body_limit = body_limit
        self._secrets: set[str] = set()
        self._secret_variants: list[str] = []

    # --- public ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.system.name

    def url_for(self, path: str) -> str:
        """An absolute URL on the system: a path joined to its base URL, or a link it gave us on its own host."""
        base = self.system.base_url
        if not base:
            raise PermanentError(
                f"{self.name} has no API address configured, so nothing can be sent to it.",
                fix=f"Enter the base URL of {self.name} in the connected system's settings.",
                system=self.system.slug,
            )
        if path.startswith(("http://", "https://")):
            if _origin(path) != _origin(base):
                raise PermanentError(
                    f"{self.name} pointed us to another server ({_origin(path)}); the call was not made so that "
                    f"our credentials for {self.name} are not sent elsewhere.",
                    fix=f"Check the base URL configured for {self.name}.",
                    technical=f"link {capture.mask_url(path)} outside {_origin(base)}",
                    system=self.system.slug,
                )
            return path
        return urljoin(base if base.endswith("/") else base + "/", path.lstrip("/"))

    def request(
        self,
        method: str,
        path: str,
        *,
        json=None,
        data=None,
        params=None,
        headers: dict | None = None,
        idempotency_key: str | None = None,
        action: str = "",
    ) -> requests.Response:
        """Send one call and return its (2xx) response; raise a classified ConnectorError otherwise.

        `action` is what the call does in business words ("create project P-1042"); messages use it.
        """
        method = method.upper()
        action = action or f"call {method} {path.split('?')[0]}"
        if not self.system.enabled:
            raise PermanentError(
                f"{self.name} is disabled in the console, so it was not asked to {action}.",
                fix=f"Enable {self.name} under connected systems, then re-run.",
                system=self.system.slug,
            )
        url = self.url_for(path)
        call_headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            CORRELATION_HEADER: self.correlation_id,
            ROOT_CORRELATION_HEADER: self.root_correlation_id,
        }
        if idempotency_key:
            call_headers[self.idempotency_header] = idempotency_key
        body = None
        if json is not None:
            body = encode_json(json).encode("utf-8")
            call_headers["Content-Type"] = "application/json"
        elif data is not None:
            body = data
        call_headers.update(headers or {})

        response, error = self._send_with_auth(method, url, call_headers, params, body, idempotency_key, action)
        if response.status_code == 401 and self.system.outbound_auth == OutboundAuth.OAUTH2_CLIENT_CREDENTIALS:
            self._forget_token()  # an access token revoked or expired early: fetch a fresh one once
            response, error = self._send_with_auth(method, url, call_headers, params, body, idempotency_key, action)
        if error is not None:
            raise error
        return response

    def json(self, response: requests.Response, *, action: str = ""):
        """The JSON of a successful answer; a PermanentError if the system answered something else."""
        try:
            return response.json()
        except ValueError as exc:
            raise PermanentError(
                f"{self.name} answered something that is not JSON while trying to {action or 'answer our call'}.",
                fix=f"Check that the base URL of {self.name} points at its API, not a web page.",
                technical=f"{response.request.method} {self._mask_url(response.url)} → HTTP {response.status_code}, "
                f"Content-Type {response.headers.get('Content-Type', '?')}: {exc}",
                system=self.system.slug,
                status=response.status_code,
            ) from exc

    def get_json(self, path: str, *, params=None, action: str = ""):
        """GET a path and return its JSON."""
        return self.json(self.request("GET", path, params=params, action=action), action=action)

    def paginate(
        self,
        path: str,
        *,
        style: str = PAGING_OFFSET,
        params: dict | None = None,
        page_size: int = 100,
        items_key: str | None = None,
        action: str = "",
    ) -> Iterator:
        """Every item of a list endpoint, page after page (NetSuite links, Chargebee next_offset, offset/limit)."""
        params = dict(params or {})
        seen: set = set()

        def guard(marker):
            if marker in seen:
                raise PermanentError(
                    f"{self.name} returned the same page twice while we listed {path}; listing stopped.",
                    fix=f"Report this to the owner of {self.name}; the listing is retried when they fix it.",
                    technical=f"repeated page marker {marker!r}",
                    system=self.system.slug,
                )
            seen.add(marker)

        if style == PAGING_LINKS:
            url, query = path, {**params, "limit": page_size, "offset": 0}
            while url:
                body = self.get_json(url, params=query, action=action)
                yield from body.get(items_key or "items", [])
                links = body.get("links", [])
                next_href = next((link.get("href") for link in links if link.get("rel") == "next"), None)
                if not next_href or body.get("hasMore") is False:
                    return
                guard(next_href)
                url, query = next_href, None
        elif style == PAGING_NEXT_OFFSET:
            query = {**params, "limit": page_size}
            while True:
                body = self.get_json(path, params=query, action=action)
                yield from body.get(items_key or "list", [])
                next_offset = body.get("next_offset")
                if not next_offset:
                    return
                guard(next_offset)
                query = {**params, "limit": page_size, "offset": next_offset}
        elif style == PAGING_OFFSET:
            offset = 0
            while True:
                body = self.get_json(path, params={**params, "limit": page_size, "offset": offset}, action=action)
                items = body.get(items_key or "items", []) if isinstance(body, dict) else body
                yield from items
                if len(items) < page_size:
                    return
                offset += len(items)
        else:
            raise ValueError(f"Unknown paging style {style!r}")

    # --- sending -----------------------------------------------------------------------------

    def _send_with_auth(self, method, url, headers, params, body, idempotency_key, action):
        self._check_credentials_host(url, action)
        wait = ratelimit.rate_limit_acquire(system=self.system, max_wait=self.max_rate_wait)
        if wait > 0:
            time.sleep(wait)
        headers = {**headers, **self._auth_headers(action)}
        return self._send(method, url, headers=headers, params=params, body=body, idem=idempotency_key, action=action)

    def _send(
        self, method, url, *, headers, params, body, idem, action, auth=None, token_endpoint=False
    ) -> tuple[requests.Response, ConnectorError | None]:
        """One HTTP exchange, recorded; raises when no answer came, returns the answer and its error otherwise."""
        prepared = self.session.prepare_request(
            requests.Request(method, url, headers=headers, params=params, data=body, auth=auth)
        )
        env = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
        timeout = (float(self.system.connect_timeout_seconds), float(self.system.read_timeout_seconds))
        started_at = timezone.now()
        start = time.monotonic()
        response, error = None, None
        try:
            answer = self.session.send(prepared, timeout=timeout, allow_redirects=False, **env)
            answer.content  # noqa: B018 - read the whole body now, inside the timing and the capture
            response = answer
        except requests.RequestException as exc:
            error = self._error_for_exception(method, prepared, exc, action)
            outcome = type(exc).__name__
        duration_ms = int((time.monotonic() - start) * 1000)
        if response is not None:
            outcome = f"HTTP {response.status_code}"
            if response.status_code >= 300:
                error = self._error_for_response(method, response, action, token_endpoint=token_endpoint)
        logger.info(
            "%s %s %s → %s in %d ms", self.system.slug, method, self._mask_url(prepared.url), outcome, duration_ms
        )
        self._record(prepared, response, error, duration_ms, started_at, idem)
        if response is None:
            raise error
        return response, error

    def _record(self, prepared, response, error, duration_ms, started_at, idem) -> None:
        if self.recorder is None:
            return
        secrets_ = self._secret_variants
        call = {
            "method": prepared.method,
            "url": self._mask_url(prepared.url),
            "request_headers": capture.mask_headers(prepared.headers, secrets_),
            "request_body": capture.mask_body(
                prepared.body, prepared.headers.get("Content-Type", ""), secrets_, self.body_limit
            ),
            "status": response.status_code if response is not None else None,
            "response_headers": capture.mask_headers(response.headers, secrets_) if response is not None else {},
            "response_body": (
                capture.mask_body(response.content, response.headers.get("Content-Type", ""), secrets_, self.body_limit)
                if response is not None
                else None
            ),
            "duration_ms": duration_ms,
            "error": capture.scrub(error.message, secrets_) if error is not None else None,
            "idempotency_key": idem,
            "started_at": started_at.isoformat(),
        }
        try:
            self.recorder(call)
        except Exception:
            # The call has happened (and may have committed); losing its capture must not turn it into a failure.
            logger.exception("The recorder failed to keep a captured call to %s", self.system.slug)

    # --- auth --------------------------------------------------------------------------------

    def _check_credentials_host(self, url: str, action: str) -> None:
        """Credentials go only to the host the system pointed at when they were attached."""
        if self.system.outbound_auth == OutboundAuth.NONE or not self.system.outbound_credentials:
            return
        bound, target = self.system.credentials_host, url_host(url)
        if bound != target:
            raise PermanentError(
                f"The credentials of {self.name} were attached for {bound or 'no address'}, but {self.name} now "
                f"points at {target}; they were not sent there, so nothing was done to {action}.",
                fix=f"If {target} is really {self.name}'s new address, attach the credentials again (save them "
                f"with the new base URL, or import the configuration) so they are bound to it.",
                technical=f"credentials bound to {bound!r}, request to {target!r}",
                system=self.system.slug,
            )

    def _remember_secret(self, *values: str) -> None:
        self._secrets.update(value for value in values if value)
        self._secret_variants = capture.secret_variants(self._secrets)

    def _credentials(self):
        try:
            resolved = secrets.resolve_credentials(self.system.outbound_credentials)
        except secrets.SecretUnavailable as exc:
            raise PermanentError(
                f"The credentials for {self.name} are not available: {exc.message}",
                fix=exc.fix,
                technical=exc.technical,
                system=self.system.slug,
            ) from exc
        except Exception as exc:  # a malformed reference (ValidationError) is a configuration problem
            raise PermanentError(
                f"The credentials configured for {self.name} are not valid references.",
                fix=f'Set the credentials of {self.name} to references such as {{"env": "NAME"}}.',
                technical=str(exc),
                system=self.system.slug,
            ) from exc
        if isinstance(resolved, str):
            self._remember_secret(resolved)
        elif isinstance(resolved, dict):
            self._remember_secret(*resolved.values())
        return resolved

    def _missing_credential(self, part: str) -> PermanentError:
        return PermanentError(
            f"{self.name} needs a '{part}' in its credentials for {self.system.get_outbound_auth_display()} "
            f"authentication.",
            fix=f'Add "{part}": {{"env": "…"}} to the credentials of {self.name}.',
            system=self.system.slug,
        )

    def _auth_headers(self, action: str) -> dict:
        kind = self.system.outbound_auth
        if kind == OutboundAuth.NONE:
            return {}
        creds = self._credentials()
        if creds is None:
            raise self._missing_credential("token" if kind == OutboundAuth.BEARER else "username")
        if kind == OutboundAuth.BEARER:
            token = creds if isinstance(creds, str) else creds.get("token") or creds.get("access_token")
            if not token:
                raise self._missing_credential("token")
            return {"Authorization": f"Bearer {token}"}
        if kind == OutboundAuth.BASIC:
            if isinstance(creds, str):
                username, _, password = creds.partition(":")
            else:
                username, password = creds.get("username", ""), creds.get("password", "")
            if not username:
                raise self._missing_credential("username")
            credential = capture.basic_credential(username, password)
            self._remember_secret(credential)
            return {"Authorization": f"Basic {credential}"}
        if kind == OutboundAuth.API_KEY:
            key = creds if isinstance(creds, str) else creds.get("api_key") or creds.get("key")
            if not key:
                raise self._missing_credential("api_key")
            return {self.api_key_header: key}
        if kind == OutboundAuth.OAUTH2_CLIENT_CREDENTIALS:
            return {"Authorization": f"Bearer {self._oauth_token(creds, action)}"}
        raise PermanentError(
            f"{self.name} uses an authentication method the connectors do not support ({kind}).",
            fix="Choose bearer, basic, API key or OAuth 2 client credentials.",
            system=self.system.slug,
        )

    def _oauth_key(self, creds) -> tuple:
        token_url = creds.get("token_url") or self.oauth_token_url
        return (self.system.pk, token_url, creds.get("client_id"), creds.get("scope", ""))

    def _forget_token(self) -> None:
        creds = self._credentials()
        if isinstance(creds, dict):
            with _token_lock:
                _token_cache.pop(self._oauth_key(creds), None)

    def _oauth_token(self, creds, action: str) -> str:
        if not isinstance(creds, dict):
            raise self._missing_credential("client_id")
        for part in ("client_id", "client_secret"):
            if not creds.get(part):
                raise self._missing_credential(part)
        token_url = creds.get("token_url") or self.oauth_token_url
        if not token_url:
            raise self._missing_credential("token_url")
        key = self._oauth_key(creds)
        with _token_lock:
            cached = _token_cache.get(key)
        if cached and cached[1] > time.monotonic():
            self._remember_secret(cached[0])
            return cached[0]
        form = {"grant_type": "client_credentials"}
        if creds.get("scope"):
            form["scope"] = creds["scope"]
        token_action = f"get an access token (to {action})"
        response, error = self._send(
            "POST",
            token_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", CORRELATION_HEADER: self.correlation_id},
            params=None,
            body=form,
            idem=None,
            action=token_action,
            auth=(creds["client_id"], creds["client_secret"]),
            token_endpoint=True,
        )
        if error is not None:
            raise error
        body = self.json(response, action=token_action)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise PermanentError(
                f"{self.name}'s token endpoint answered without an access token.",
                fix=f"Check the token URL configured for {self.name}.",
                system=self.system.slug,
            )
        self._remember_secret(token)
        lifetime = float(body.get("expires_in") or 3600)
        with _token_lock:
            _token_cache[key] = (token, time.monotonic() + max(0.0, lifetime - 60))
        return token

    # --- classification ----------------------------------------------------------------------

    def _mask_url(self, url: str) -> str:
        return capture.mask_url(url, self._secret_variants)

    def _error_for_exception(self, method, prepared, exc, action) -> ConnectorError:
        url = self._mask_url(prepared.url)
        technical = capture.scrub(
            f"{method} {url}: {type(exc).__name__}: {exc} (correlation {self.correlation_id})",
            self._secret_variants,
        )
        common = {"technical": technical, "system": self.system.slug}
        write = method not in SAFE_METHODS
        maybe_note = (
            f" {self.name} may have done it before the answer was lost; the retry checks before doing it again."
            if write
            else ""
        )
        if isinstance(exc, requests.ConnectTimeout):
            return TransientError(
                f"{self.name} could not be reached within {seconds_label(self.system.connect_timeout_seconds)} "
                f"while trying to {action}; nothing was sent.",
                **common,
            )
        if isinstance(exc, requests.ReadTimeout):
            return TransientError(
                f"{self.name} did not answer within {seconds_label(self.system.read_timeout_seconds)} "
                f"while trying to {action}.{maybe_note}",
                maybe_committed=write,
                **common,
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return PermanentError(
                f"The secure connection to {self.name} failed (certificate problem) while trying to {action}.",
                fix=f"Check the certificate of {self.name} and its base URL (https host name).",
                **common,
            )
        if isinstance(exc, requests.ConnectionError):
            if _never_connected(exc):
                return TransientError(
                    f"{self.name} could not be reached (connection refused or unknown host) while trying to "
                    f"{action}; nothing was sent.",
                    **common,
                )
            return TransientError(
                f"{self.name} dropped the connection before answering while trying to {action}.{maybe_note}",
                maybe_committed=write,
                **common,
            )
        return PermanentError(
            f"The call to {self.name} could not be made while trying to {action}: the address or request is invalid.",
            fix=f"Check the base URL configured for {self.name}.",
            **common,
        )

    def _error_for_response(self, method, response, action, *, token_endpoint=False) -> ConnectorError:
        status = response.status_code
        try:
            parsed = response.json()
        except ValueError:
            parsed = response.text
        vendor_message, vendor_code = self.error_parser(parsed)
        vendor_message = capture.scrub(vendor_message, self._secret_variants)
        masked_body = capture.mask_data(parsed) if not isinstance(parsed, str) else None
        url = self._mask_url(response.url)
        technical = capture.scrub(
            f"{method} {url} → HTTP {status} {response.reason or ''}".rstrip()
            + (f"; {vendor_code}" if vendor_code else "")
            + (f": {vendor_message}" if vendor_message else "")
            + f" (correlation {self.correlation_id})",
            self._secret_variants,
        )
        why = f": {vendor_message.rstrip('. ')}" if vendor_message else ""
        common = {
            "technical": technical,
            "system": self.system.slug,
            "status": status,
            "vendor_code": vendor_code,
            "vendor_message": vendor_message,
            "response_body": masked_body,
        }
        retry_at = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429 or (status == 503 and retry_at):
            if retry_at:
                ratelimit.rate_limit_block(system=self.system, until=retry_at)
            when = f"; calls resume after {retry_at:%H:%M:%S} UTC" if retry_at else ""
            busy = "asked us to slow down (too many requests)" if status == 429 else "is unavailable for now"
            return TransientError(f"{self.name} {busy} while we tried to {action}{when}.", retry_at=retry_at, **common)
        if (status >= 500 and status != 501) or status in TRANSIENT_STATUSES:
            return TransientError(
                f"{self.name} had a problem of its own (HTTP {status}) while we tried to {action}.",
                retry_at=retry_at,
                **common,
            )
        if 300 <= status < 400:
            return PermanentError(
                f"{self.name} answered with a redirect to {response.headers.get('Location', '?')} while we tried to "
                f"{action}.",
                fix=f"Check the base URL configured for {self.name}.",
                **common,
            )
        references = secrets.describe(self.system.outbound_credentials) if self.system.outbound_credentials else ""
        if status == 401 or (token_endpoint and status in (400, 403)):
            return PermanentError(
                f"{self.name} refused our credentials while we tried to {action}{why}.",
                fix=f"Check the credentials configured for {self.name}"
                + (f" ({references})" if references and "invalid" not in references else "")
                + " and that they are still valid, then re-run.",
                **common,
            )
        if status == 403:
            return PermanentError(
                f"{self.name} refused access while we tried to {action}: the integration user lacks a permission{why}.",
                fix=f"Give the integration user the missing permission in {self.name}, then re-run.",
                **common,
            )
        if status == 404:
            return PermanentError(
                f"{self.name} has no such record or address while we tried to {action}{why}.",
                fix=f"Check the cross-reference (the ID used in {self.name}) and the system's base URL.",
                **common,
            )
        if status in VALIDATION_STATUSES:
            return TargetRejected(
                f"{self.name} refused to {action}{why or f' (HTTP {status}, no reason given)'}.",
                fix="Correct what the message names, in the source record or its mapping, and re-run the step.",
                **common,
            )
        return PermanentError(
            f"{self.name} refused the call (HTTP {status}) while we tried to {action}{why}.",
            fix=f"Check the request against {self.name}'s API; retrying as is will not help.",
            **common,
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the connection was refused or the host unknown, so the request never left the machine."""
    import urllib3.exceptions as u3

    reason = exc.args[0] if exc.args else None
    if isinstance(reason, u3.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, u3.NewConnectionError | u3.NameResolutionError | ConnectionRefusedError)


def path_segment(value) -> str:
    """A value made safe as one URL path segment (IDs may hold '/', '?' or spaces)."""
    return quote(str(value), safe=":@-._~")
