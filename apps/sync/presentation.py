"""How the ledger reads to people: ages, money, laid-out JSON, status badges and the parts of a transaction's trace.

Used by the admin pages (the queue, the trace); nothing here reads a request or writes a row.
"""

import difflib
import json

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.core.money import MINOR_UNITS
from apps.core.objects import BusinessObject, model_for

from . import selectors
from .models import Step, StepAttempt, Transaction

RAW_BODY_LIMIT = 256 * 1024  # larger deliveries (month-end bulk uploads) are not shown inline


def short_age(moment, now=None) -> str:
    """'12 min', '3 h', '2 d' since a moment."""
    if moment is None:
        return "—"
    seconds = max(int(((now or timezone.now()) - moment).total_seconds()), 0)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def money(amount, currency: str) -> str:
    """'USD 12,500.00' (no currency: the bare amount)."""
    if amount is None:
        return "—"
    places = MINOR_UNITS.get(currency, 2)
    return f"{currency} {amount:,.{places}f}".strip()


def pretty(value) -> str:
    """JSON (or a JSON text) laid out for reading; other text as it is."""
    if value is None or value == "" or value == {} or value == []:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


STATUS_BADGES = {
    Transaction.Status.PENDING: ("pending", "Pending"),
    Transaction.Status.RUNNING: ("running", "Running"),
    Transaction.Status.WAITING_RETRY: ("retrying", "Retrying"),
    Transaction.Status.COMPLETED: ("completed", "Completed"),
    Transaction.Status.EXCEPTION: ("exception", "Exception"),
    Transaction.Status.RESOLVED: ("resolved", "Resolved by hand"),
    Transaction.Status.IGNORED: ("ignored", "Ignored"),
    Step.Status.SUCCEEDED: ("completed", "Succeeded"),
    Step.Status.FAILED: ("exception", "Failed"),
    Step.Status.SKIPPED: ("ignored", "Skipped"),
    StepAttempt.Outcome.SUCCEEDED: ("completed", "Succeeded"),
    StepAttempt.Outcome.ABANDONED: ("retrying", "Abandoned"),
    StepAttempt.Outcome.SUPERSEDED: ("ignored", "Superseded"),
}


def badge(status: str, label: str | None = None):
    """A status as a coloured badge."""
    css, text = STATUS_BADGES.get(status, ("pending", status))
    return format_html('<span class="sync-badge sync-badge-{}">{}</span>', css, label or text)


def admin_url(model, pk) -> str | None:
    """The admin page of a record, or None when its model has no admin page."""
    opts = model._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
    except NoReverseMatch:
        return None


def api_url(txn) -> str | None:
    try:
        return reverse("transaction-detail", args=[txn.pk])
    except NoReverseMatch:
        return None


def call_view(call: dict) -> dict:
    """One captured HTTP call, laid out for the trace."""
    return {
        "method": call.get("method") or "",
        "url": call.get("url") or "",
        "status": call.get("status"),
        "duration_ms": call.get("duration_ms"),
        "error": call.get("error") or "",
        "idempotency_key": call.get("idempotency_key") or "",
        "started_at": call.get("started_at") or "",
        "request_headers": pretty(call.get("request_headers")),
        "request_body": pretty(call.get("request_body")),
        "response_headers": pretty(call.get("response_headers")),
        "response_body": pretty(call.get("response_body")),
        "failed": bool(call.get("error")) or (call.get("status") or 0) >= 400,
    }


def step_view(step: Step, user, restart) -> dict:
    """One step of the trace: its badge, edited input, output, last call and every attempt with its calls."""
    last_call = {**(step.request or {}), **(step.response or {})}
    return {
        "step": step,
        "status_badge": badge(step.status, "Retrying" if step.status == Step.Status.WAITING_RETRY else None),
        "is_restart": restart is not None and restart.pk == step.pk,
        "input_override": pretty(selectors.visible_json(step.input_override, user)),
        "output": pretty(selectors.visible_json(step.output, user)),
        "last_call": call_view(selectors.visible_call(last_call, user)) if last_call else None,
        "attempts": [
            {
                "attempt": attempt,
                "outcome_badge": badge(attempt.outcome),
                "calls": [call_view(selectors.visible_call(call, user)) for call in attempt.http_calls or []],
            }
            for attempt in step.attempt_log.all()
        ],
    }


def related_view(txn: Transaction, user) -> dict:
    """What a transaction is linked to: parent, replays, children, the inbound event and the canonical subject."""

    def link(other):
        url = reverse("admin:sync_transaction_change", args=[other.pk])
        return {"url": url, "label": other.subject or other.correlation_id, "badge": badge(other.status)}

    related = {
        "parent": link(txn.parent) if txn.parent_id else None,
        "replay_of": link(txn.replay_of) if txn.replay_of_id else None,
        "children": [link(child) for child in txn.children.all()],
        "replays": [link(replay) for replay in txn.replays.all()],
        "event": None,
        "subject": None,
    }
    event = txn.inbound_event
    if event is not None:
        delivery = event.delivery
        if delivery.body_size <= RAW_BODY_LIMIT:
            raw = bytes(delivery.body or b"").decode("utf-8", "replace")
            raw = pretty(selectors.visible_call({"request_body": raw}, user)["request_body"])
        else:
            raw = ""
        related["event"] = {
            "event": event,
            "delivery": delivery,
            "url": admin_url(type(event), event.pk),
            "delivery_url": admin_url(type(delivery), delivery.pk),
            "payload": pretty(selectors.visible_json(event.payload, user)),
            "raw_body": raw,
            "raw_too_large": delivery.body_size > RAW_BODY_LIMIT,
            "error": event.error or {},
        }
    if txn.subject_type in BusinessObject.values and txn.subject_id:
        model = model_for(txn.subject_type)
        record = model.objects.filter(pk=txn.subject_id).first()
        related["subject"] = {
            "type": BusinessObject(txn.subject_type).label,
            "label": str(record) if record is not None else f"#{txn.subject_id} (no longer exists)",
            "url": admin_url(model, txn.subject_id) if record is not None else None,
        }
    return related


def input_diff(before: list[str], after: list[str]) -> list[tuple[str, str]]:
    """(kind, line) pairs of a unified diff of two JSON renderings: kind is 'add', 'remove', 'context' or 'hunk'."""
    lines = []
    for line in difflib.unified_diff(before, after, "received", "edited", n=2, lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "remove", "@": "hunk"}.get(line[:1], "context")
        lines.append((kind, line))
    return lines
