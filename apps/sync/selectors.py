"""Shared reads of the ledger: the queue, one transaction's trace, its history, and what a user may see of it."""

import json

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connections
from django.db.models import Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from apps.core.limits import LIST_ROW_LIMIT
from apps.core.masking import can_see_sensitive, json_holds, mask_json, sensitive_payload_keys

from .models import Step, StepAttempt, Transaction, Workflow

ACT_PERMISSION = "sync.change_transaction"


def transaction_list() -> QuerySet[Transaction]:
    """Transactions with their owner and `problem_since` (when the exception, or the last failed try, happened)."""
    return Transaction.objects.select_related("owner", "resolved_by").annotate(
        problem_since=Coalesce("exception_at", "updated_at")
    )


def _steps_with_attempts() -> Prefetch:
    attempts = StepAttempt.objects.order_by("number")
    steps = Step.objects.select_related("target_system").prefetch_related(Prefetch("attempt_log", queryset=attempts))
    return Prefetch("steps", queryset=steps.order_by("sequence"))


def transaction_detail() -> QuerySet[Transaction]:
    """Transactions with their steps, every attempt of each step, and the links to related transactions."""
    related = Transaction.objects.only("pk", "correlation_id", "workflow", "status", "subject").order_by("created_at")
    return transaction_list().prefetch_related(
        _steps_with_attempts(),
        Prefetch("children", queryset=related),
        Prefetch("replays", queryset=related),
    )


def transaction_trace(pk) -> Transaction | None:
    """One transaction as the trace page shows it: steps, attempts, related transactions, inbound event."""
    return (
        transaction_detail()
        .select_related("parent", "replay_of", "inbound_event__system", "inbound_event__delivery")
        .defer("inbound_event__delivery__body")  # a bulk delivery's body runs to megabytes; loaded only if small
        .filter(pk=pk)
        .first()
    )


def queue_summary(queryset: QuerySet[Transaction], *, statuses=None, limit: int = LIST_ROW_LIMIT) -> dict:
    """How many transactions a list holds per status, and the value at risk per currency (two queries).

    Each status is counted up to `limit` (a list over a million rows says "more than 10,000 completed" instead of
    counting them all); `statuses` are those the list can hold (its queue view), the others are not counted.
    The sums run on the list's own query, not through `pk IN (subquery)`.
    """
    base = queryset.order_by()
    wanted = [status for status in Transaction.Status.values if statuses is None or status in statuses]
    parts, params = [], []
    for status in wanted:
        sql, status_params = base.filter(status=status).values("pk")[: limit + 1].query.sql_with_params()
        parts.append(f"SELECT %s, (SELECT COUNT(*) FROM ({sql}) AS limited)")
        params += [status, *status_params]
    counted = {}
    if parts:
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            counted = {status: n for status, n in cursor.fetchall() if n}
    capped = {status for status, n in counted.items() if n > limit}
    by_status = {status: min(n, limit) for status, n in counted.items()}
    # Money is at risk only while a transaction is not closed: completed, resolved and ignored rows add nothing.
    unsettled = [status for status in wanted if status not in Transaction.CLOSED_STATUSES]
    at_risk = (
        base.filter(status__in=unsettled, value_at_risk__isnull=False)
        .exclude(currency="")
        .values_list("currency")
        .annotate(total=Sum("value_at_risk"))
        .order_by("currency")
    )
    total = sum(by_status.values())
    return {
        "by_status": by_status,
        "capped": capped,
        "value_at_risk": list(at_risk),
        "total": total,
        "total_label": f"more than {total:,}" if capped else f"{total:,}",
    }


def transaction_history(txn: Transaction, *, limit: int = 50) -> list[dict]:
    """The newest history rows of a transaction with the fields each changed, who changed them and why."""
    rows = list(txn.history.select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1])
    result = []
    for index, row in enumerate(rows[:limit]):
        older = rows[index + 1] if index + 1 < len(rows) else None
        changes = row.diff_against(older).changes if older is not None else []
        changed = [str(Transaction._meta.get_field(change.field).verbose_name) for change in changes]
        result.append({"row": row, "changed": changed})
    return result


def assignable_users() -> QuerySet:
    """Active people who may act on exceptions (and so may own one)."""
    app_label, codename = ACT_PERMISSION.split(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    may_act = Q(is_superuser=True)
    if permission is not None:
        may_act |= Q(groups__permissions=permission) | Q(user_permissions=permission)
    return get_user_model().objects.filter(is_active=True).filter(may_act).distinct().order_by("username")


def replay_candidates(queryset: QuerySet[Transaction]) -> tuple[list[Transaction], list[Transaction]]:
    """Split a selection into the transactions a re-run accepts and those it will refuse (by status)."""
    accepted, refused = [], []
    for txn in queryset.order_by("pk"):
        (accepted if txn.status in Transaction.PROBLEM_STATUSES else refused).append(txn)
    return accepted, refused


# --- sensitive amounts inside JSON --------------------------------------------------------------


def sensitive_keys() -> frozenset[str]:
    """The JSON keys hidden from users without the rates permission (apps/core/masking.py decides)."""
    return sensitive_payload_keys()


def holds_sensitive(value) -> bool:
    """Whether a JSON value carries a sensitive amount anywhere."""
    return json_holds(value, sensitive_keys())


def _mask(value):
    return mask_json(value, sensitive_keys())


def visible_json(value, user):
    """A JSON value (input, payload, output) with sensitive amounts hidden from users who may not see them."""
    return value if can_see_sensitive(user) else _mask(value)


def _mask_body(body):
    if not isinstance(body, str) or body.lstrip()[:1] not in ("{", "["):
        return body
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    return json.dumps(_mask(parsed), ensure_ascii=False) if holds_sensitive(parsed) else body


def visible_call(call: dict, user) -> dict:
    """A captured HTTP call (already stripped of secrets) with sensitive amounts in its bodies hidden too."""
    if can_see_sensitive(user) or not isinstance(call, dict):
        return call
    masked = _mask(call)
    for key in ("request_body", "response_body"):
        if key in masked:
            masked[key] = _mask_body(masked[key])
    return masked


def transactions_of_events(events) -> dict[int, list[Transaction]]:
    """The ledger transactions of each inbound event, oldest first: its mapping transaction and the workflows it
    started, or for a bulk-uploaded record the chunk transaction that carries it. Two queries for any number of events.
    """
    events = list(events)
    found: dict[int, list] = {event.pk: [] for event in events}
    for txn in Transaction.objects.filter(inbound_event_id__in=found).order_by("created_at", "pk"):
        found[txn.inbound_event_id].append(txn)
    bulk = {event.delivery_id for event in events if not found[event.pk]}
    if bulk:
        chunks = Transaction.objects.filter(workflow=Workflow.TIME_TO_BILL, input__delivery_id__in=sorted(bulk))
        for txn in chunks.order_by("created_at", "pk"):
            carried = set(txn.input.get("event_ids") or [])
            for event in events:
                if event.pk in carried and event.delivery_id == txn.input.get("delivery_id"):
                    found[event.pk].append(txn)
    return found
