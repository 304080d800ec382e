"""Outbound webhooks from a sandbox (billing, stripe → console), delivered after commit in a background thread.

The API answer never waits for a delivery and never fails because of one: the event row is written in the
API's transaction, and a thread started by `transaction.on_commit` posts it (HTTP Basic, as Chargebee does;
for the Stripe sandbox a Stripe event signed in `Stripe-Signature`), `duplicate_webhooks` times, retrying a
copy that met no answer, a 5xx or a 429.
"""

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time

import requests
from django.db import connections, transaction
from django.utils import timezone

from apps.core.context import system_context
from apps.systems.secrets import SecretUnavailable, resolve

from .models import SandboxSystem, SandboxWebhook, WebhookStatus

logger = logging.getLogger(__name__)

ATTEMPTS_PER_COPY = 3
BACKOFF_SECONDS = 0.5
TIMEOUT = (5, 10)

STRIPE_API_VERSION = "2024-06-20"

_running: set[threading.Thread] = set()
_running_lock = threading.Lock()


def webhook_emit(
    *, system: SandboxSystem, event_type: str, content: dict, target_url: str | None = None
) -> SandboxWebhook | None:
    """Record an event in the vendor's shape and have it delivered once the current transaction commits.

    `target_url` overrides the system's webhook URL (Business Central posts to each subscription's URL, and
    `content` is then the whole notification body)."""
    target_url = target_url or system.webhook_url
    if not target_url:
        return None
    if system.kind == "business-central":
        event_id, body = "bc_" + secrets.token_hex(12), content
    elif system.kind == "stripe":
        event_id = "evt_" + secrets.token_hex(12)
        body = {
            "id": event_id,
            "object": "event",
            "api_version": STRIPE_API_VERSION,
            "created": int(timezone.now().timestamp()),
            "type": event_type,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": content},
        }
    else:
        event_id = "ev_" + secrets.token_hex(12)
        body = {
            "id": event_id,
            "occurred_at": int(timezone.now().timestamp()),
            "source": "api",
            "object": "event",
            "api_version": "v2",
            "event_type": event_type,
            "content": content,
        }
    webhook = SandboxWebhook.objects.create(
        kind=system.kind,
        event_id=event_id,
        event_type=event_type,
        target_url=target_url,
        body=body,
        copies=max(1, system.duplicate_webhooks),
    )
    transaction.on_commit(lambda: _start(webhook.pk))
    return webhook


def _start(webhook_id: int) -> None:
    thread = threading.Thread(target=_run, args=(webhook_id,), name=f"sandbox-webhook-{webhook_id}", daemon=True)
    with _running_lock:
        _running.add(thread)
    thread.start()


def _run(webhook_id: int) -> None:
    try:
        with system_context("Sandbox webhook delivery"):
            webhook_deliver(webhook_id=webhook_id)
    except Exception:
        logger.exception("Sandbox webhook %s could not be delivered", webhook_id)
    finally:
        connections.close_all()  # this thread's connections only
        with _running_lock:
            _running.discard(threading.current_thread())


def webhook_deliver(*, webhook_id: int) -> SandboxWebhook:
    """Post one event to its target as many times as it asks, and record every attempt on the event row."""
    webhook = SandboxWebhook.objects.get(pk=webhook_id)
    system = SandboxSystem.objects.get(kind=webhook.kind)
    auth, signing_secret = None, None
    if system.webhook_credentials:
        try:
            credential = resolve(system.webhook_credentials)
        except SecretUnavailable as exc:
            return _finish(webhook, status=WebhookStatus.FAILED, last_error=exc.message)
        if system.kind == "stripe":
            signing_secret = credential  # the endpoint's whsec_… signing secret
        else:
            user, _, password = credential.partition(":")
            auth = (user, password)
    payload = json.dumps(webhook.body)
    agent = (
        "Stripe/1.0 (+https://stripe.com/docs/webhooks)" if system.kind == "stripe" else "Sandbox-Chargebee-Webhooks/2"
    )
    headers = {"Content-Type": "application/json", "User-Agent": agent}
    codes, delivered, last_error = list(webhook.status_codes), 0, ""
    for _copy in range(webhook.copies):
        for attempt in range(ATTEMPTS_PER_COPY):
            if signing_secret is not None:
                headers["Stripe-Signature"] = stripe_signature(payload, signing_secret)
            try:
                response = requests.post(webhook.target_url, data=payload, headers=headers, auth=auth, timeout=TIMEOUT)
            except requests.RequestException as exc:
                codes.append(None)
                last_error = f"No answer from {webhook.target_url}: {exc}"
            else:
                codes.append(response.status_code)
                if 200 <= response.status_code < 300:
                    delivered += 1
                    break
                last_error = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the target refused it; sending it again will not help
            if attempt + 1 < ATTEMPTS_PER_COPY:
                time.sleep(BACKOFF_SECONDS * 2**attempt)
    status = WebhookStatus.DELIVERED if delivered == webhook.copies else WebhookStatus.FAILED
    return _finish(
        webhook,
        status=status,
        status_codes=codes,
        attempts=len(codes),
        delivered=delivered,
        last_error="" if status == WebhookStatus.DELIVERED else last_error,
    )


def stripe_signature(payload: str, secret: str) -> str:
    """Stripe's scheme: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<payload>" keyed with the whole secret>."""
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def _finish(webhook: SandboxWebhook, **values) -> SandboxWebhook:
    for name, value in values.items():
        setattr(webhook, name, value)
    webhook.finished_at = timezone.now()
    webhook.save()
    return webhook


def webhooks_wait(timeout: float = 10.0) -> bool:
    """Wait for the deliveries running in this process; True if all finished in time (for tests and the demo)."""
    deadline = time.monotonic() + timeout
    while True:
        with _running_lock:
            threads = list(_running)
        if not threads:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        threads[0].join(remaining)
