"""The figures of the console home, each computed with a few database aggregates and each with the list behind it.

Business health reads the ledger (`sync.Transaction`) and the canonical time entries; technical health reads the
steps and attempts per connected system. Every function answers in a constant number of queries, whatever the
number of transactions, using the indexes on the ledger (status, created/completed/exception times).
"""

import datetime
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone

from apps.canonical.models import ExchangeRate, TimeEntry
from apps.core.masking import can_see_sensitive
from apps.core.money import MINOR_UNITS
from apps.metrics.models import Alert
from apps.reconciliation.models import ROLLUP_CHECKS, Discrepancy, PeriodSignOff, ReconciliationRun
from apps.sync.models import Step, StepAttempt, Transaction, Workflow
from apps.systems.models import ConnectedSystem

Status = Transaction.Status
TREND_DAYS = 30
WINDOW = datetime.timedelta(days=TREND_DAYS)
TECH_WINDOW = datetime.timedelta(hours=24)
# Age buckets of open exceptions: (label, younger than).
AGING = [
    ("< 1 h", datetime.timedelta(hours=1)),
    ("1–24 h", datetime.timedelta(days=1)),
    ("1–3 d", datetime.timedelta(days=3)),
    ("3–7 d", datetime.timedelta(days=7)),
    ("> 7 d", None),
]
# Workflow durations shown on the home page: (key, label, workflow, what the time runs from and to).
DURATIONS = [
    ("activation", "Project activation", Workflow.OPPORTUNITY_TO_PROJECT, "closed-won deal received → project active"),
    ("time_to_bill", "Time to bill", Workflow.TIME_TO_BILL, "approved time received → billable in the billing system"),
    ("invoice_lag", "Invoice lag", Workflow.INVOICE_TO_ERP, "invoice issued → posted in the ERP and CRM"),
]


def transactions_url(**params) -> str:
    """The console's transaction list (the API's TransactionFilter) with these filters."""
    query = urlencode([(key, value) for key, values in params.items() for value in _as_list(values)])
    return f"{reverse('console:transactions')}?{query}" if query else reverse("console:transactions")


def _as_list(value):
    return value if isinstance(value, list | tuple) else [value]


def _iso(moment: datetime.datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


# --- money ---------------------------------------------------------------------------------------------------


@dataclass
class Amount:
    currency: str
    amount: Decimal
    count: int = 0
    reported: Decimal | None = None  # in the reporting currency, None when no rate is stored
    url: str = ""


@dataclass
class MoneyStuck:
    reporting_currency: str
    amounts: list[Amount] = field(default_factory=list)
    reported_total: Decimal | None = None
    missing_rates: list[str] = field(default_factory=list)
    without_value: int = 0
    exceptions: int = 0
    url: str = ""
    rates_on: datetime.date | None = None


def rates_to(reporting: str, currencies, *, on: datetime.date) -> dict[str, tuple[Decimal, datetime.date]]:
    """Multiplier from each currency to `reporting`, from the latest stored rate on or before `on` (one query)."""
    wanted = {c for c in currencies if c and c != reporting}
    found: dict[str, tuple[Decimal, datetime.date]] = {}
    if not wanted:
        return found
    rows = (
        ExchangeRate.objects.filter(effective_date__lte=on)
        .filter(Q(base__in=wanted, quote=reporting) | Q(base=reporting, quote__in=wanted))
        .order_by("-effective_date")
        .values_list("base", "quote", "rate", "effective_date")[:500]
    )
    for base, quote, rate, day in rows:
        currency, factor = (base, rate) if quote == reporting else (quote, Decimal(1) / rate if rate else None)
        if factor is not None and currency not in found:
            found[currency] = (Decimal(factor), day)
    return found


def _round(amount: Decimal, currency: str) -> Decimal:
    places = MINOR_UNITS.get(currency, 2)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def money_stuck(*, today: datetime.date | None = None) -> MoneyStuck:
    """Open exceptions' value at risk per currency, and their sum in the reporting currency (two queries + rates)."""
    reporting = settings.REPORTING_CURRENCY
    rows = list(
        Transaction.objects.filter(status=Status.EXCEPTION)
        .order_by()
        .values("currency")
        .annotate(total=Sum("value_at_risk"), n=Count("pk"), priced=Count("value_at_risk"))
    )
    result = MoneyStuck(reporting_currency=reporting, url=transactions_url(queue="exception"))
    result.exceptions = sum(row["n"] for row in rows)
    result.without_value = sum(row["n"] - row["priced"] for row in rows)
    rates = rates_to(reporting, [row["currency"] for row in rows], on=today or timezone.localdate())
    total = Decimal(0)
    for row in sorted(rows, key=lambda r: -(r["total"] or 0)):
        if row["total"] is None or not row["currency"]:
            continue
        amount = Amount(
            row["currency"],
            row["total"],
            row["priced"],
            url=transactions_url(queue="exception", currency=row["currency"]),
        )
        if row["currency"] == reporting:
            amount.reported = row["total"]
        elif row["currency"] in rates:
            factor, day = rates[row["currency"]]
            amount.reported = _round(row["total"] * factor, reporting)
            result.rates_on = max(result.rates_on or day, day)
        else:
            result.missing_rates.append(row["currency"])
        if amount.reported is not None:
            total += amount.reported
        result.amounts.append(amount)
    result.reported_total = total if result.amounts else Decimal(0)
    return result


def wip(user) -> dict:
    """Approved, billable, not yet billed time: hours, and its value at the recorded bill rates for roles that may
    see rates (one query)."""
    rows = (
        TimeEntry.objects.filter(status=TimeEntry.Status.APPROVED, billable=True)
        .order_by()
        .values(cur=Coalesce("currency", "project__currency"))
        .annotate(total_hours=Sum("hours"), total_value=Sum(F("hours") * F("bill_rate")), n=Count("pk"))
    )
    rows = list(rows)
    url = (
        reverse("admin:canonical_timeentry_changelist")
        + "?"
        + urlencode({"status__exact": "approved", "billable__exact": 1})
    )
    show_value = can_see_sensitive(user)
    return {
        "hours": sum((row["total_hours"] or 0 for row in rows), Decimal(0)),
        "entries": sum(row["n"] for row in rows),
        "values": [
            (row["cur"], _round(Decimal(row["total_value"]), row["cur"] or "USD"))
            for row in rows
            if row["total_value"] is not None
        ]
        if show_value
        else [],
        "value_hidden": not show_value,
        "url": url,
    }


def _hours(delta: datetime.timedelta | None) -> str:
    if delta is None:
        return "—"
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def durations(*, now=None) -> list[dict]:
    """Average run time of each money workflow over the last 30 days, completed transactions only (one query)."""
    now = now or timezone.now()
    took = ExpressionWrapper(F("completed_at") - F("created_at"), output_field=DurationField())
    rows = {
        row["workflow"]: row
        for row in Transaction.objects.filter(
            status=Status.COMPLETED, completed_at__gte=now - WINDOW, workflow__in=[d[2] for d in DURATIONS]
        )
        .order_by()
        .values("workflow")
        .annotate(avg=Avg(took), longest=Max(took), n=Count("pk"))
    }
    figures = []
    for key, label, workflow, span in DURATIONS:
        row = rows.get(workflow, {})
        figures.append(
            {
                "key": key,
                "label": label,
                "value": _hours(row.get("avg")),
                "longest": _hours(row.get("longest")),
                "count": row.get("n", 0),
                "span": span,
                "url": transactions_url(workflow=workflow, queue="completed", created_after=_iso(now - WINDOW)),
            }
        )
    return figures


def failure_rate(*, now=None) -> dict:
    """Share of the last 30 days' transactions that needed a person (became exceptions), one query."""
    since = (now or timezone.now()) - WINDOW
    needed = Q(status__in=[Status.EXCEPTION, Status.RESOLVED, Status.IGNORED]) | Q(exception_membership__isnull=False)
    row = Transaction.objects.filter(created_at__gte=since).aggregate(
        total=Count("pk"), failed=Count("pk", filter=needed)
    )
    total, failed = row["total"] or 0, row["failed"] or 0
    return {
        "total": total,
        "failed": failed,
        "rate": f"{100 * failed / total:.1f} %" if total else "—",
        "url": transactions_url(queue="problems", created_after=_iso(since)),
    }


def aging(*, now=None) -> list[dict]:
    """Open exceptions per age bucket (one query)."""
    now = now or timezone.now()
    buckets, previous = {}, None
    for index, (_label, limit) in enumerate(AGING):
        condition = Q()
        if limit is not None:
            condition &= Q(exception_at__gt=now - limit)
        if previous is not None:
            condition &= Q(exception_at__lte=now - previous)
        buckets[f"b{index}"] = Count("pk", filter=condition)
        previous = limit
    counts = Transaction.objects.filter(status=Status.EXCEPTION).aggregate(**buckets)
    result, previous = [], None
    for index, (label, limit) in enumerate(AGING):
        params = {"queue": "exception"}
        if limit is not None:
            params["exception_after"] = _iso(now - limit)
        if previous is not None:
            params["exception_before"] = _iso(now - previous)
        result.append({"label": label, "count": counts[f"b{index}"], "url": transactions_url(**params)})
        previous = limit
    return result


def trend(*, now=None) -> list[dict]:
    """Per day of the last 30: transactions started, and how many of them needed a person (one query)."""
    now = now or timezone.now()
    start = (now - WINDOW).date() + datetime.timedelta(days=1)
    needed = Q(status__in=[Status.EXCEPTION, Status.RESOLVED, Status.IGNORED]) | Q(exception_membership__isnull=False)
    since = timezone.make_aware(datetime.datetime.combine(start, datetime.time.min))
    rows = {
        row["day"]: row
        for row in Transaction.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values("day")
        .annotate(
            total=Count("pk"), failed=Count("pk", filter=needed), done=Count("pk", filter=Q(status=Status.COMPLETED))
        )
    }
    days = []
    for offset in range(TREND_DAYS):
        day = start + datetime.timedelta(days=offset)
        row = rows.get(day, {})
        days.append(
            {"day": day, "total": row.get("total", 0), "failed": row.get("failed", 0), "done": row.get("done", 0)}
        )
    return days


# 30-day figures scan a month of the ledger: they are kept in the cache, refreshed by the task
# `apps.console.tasks.refresh_home_figures` every 5 minutes (installed by `install_schedules`), computed on a miss.
HISTORY_CACHE_KEY = "console:home:30-day-figures:v1"
HISTORY_CACHE_SECONDS = 900


def history_figures(*, refresh: bool = False) -> dict:
    """Trend, workflow durations and failure rate of the last 30 days, as kept in the cache."""
    if not refresh:
        kept = cache.get(HISTORY_CACHE_KEY)
        if kept is not None:
            return kept
    figures = {"computed_at": timezone.now(), "trend": trend(), "durations": durations(), "failure": failure_rate()}
    cache.set(HISTORY_CACHE_KEY, figures, HISTORY_CACHE_SECONDS)
    return figures


# --- technical health -------------------------------------------------------------------------------------------


def technical(*, now=None) -> list[dict]:
    """Per enabled connected system: queue depth, retries, p95 step latency and 429s over 24 h, last success.

    Four grouped queries, plus one per system for the 95th percentile (a handful of systems)."""
    now = now or timezone.now()
    since = now - TECH_WINDOW
    systems = list(ConnectedSystem.objects.filter(enabled=True).order_by("name"))
    queued = Q(status=Step.Status.PENDING, next_attempt_at__isnull=False) | Q(status=Step.Status.RUNNING)
    steps = {
        row["target_system"]: row
        for row in Step.objects.filter(queued | Q(status=Step.Status.WAITING_RETRY), target_system__isnull=False)
        .order_by()
        .values("target_system")
        .annotate(depth=Count("pk"), retrying=Count("pk", filter=Q(status=Step.Status.WAITING_RETRY)))
    }
    attempts = {
        row["step__target_system"]: row
        for row in StepAttempt.objects.filter(started_at__gte=since, step__target_system__isnull=False)
        .order_by()
        .values("step__target_system")
        .annotate(
            n=Count("pk", filter=Q(duration_ms__isnull=False)),
            failed=Count("pk", filter=Q(outcome=StepAttempt.Outcome.FAILED)),
            throttled=Count("pk", filter=Q(error_message__icontains="too many requests")),
            last_success=Max("finished_at", filter=Q(outcome=StepAttempt.Outcome.SUCCEEDED)),
        )
    }
    figures = []
    for system in systems:
        step_row, attempt_row = steps.get(system.pk, {}), attempts.get(system.pk, {})
        n = attempt_row.get("n", 0)
        p95 = None
        if n:
            p95 = (
                StepAttempt.objects.filter(started_at__gte=since, step__target_system=system, duration_ms__isnull=False)
                .order_by("duration_ms")
                .values_list("duration_ms", flat=True)[min(n - 1, int(n * 0.95)) : min(n - 1, int(n * 0.95)) + 1]
            )
            p95 = next(iter(p95), None)
        steps_url = reverse("admin:sync_step_changelist")
        figures.append(
            {
                "system": system,
                "depth": step_row.get("depth", 0),
                "retrying": step_row.get("retrying", 0),
                "attempts": n,
                "failed": attempt_row.get("failed", 0),
                "p95_ms": p95,
                "throttled": attempt_row.get("throttled", 0),
                "last_success": attempt_row.get("last_success"),
                "depth_url": f"{steps_url}?{urlencode({'target_system__id__exact': system.pk})}",
                "retry_url": f"{steps_url}?"
                + urlencode({"target_system__id__exact": system.pk, "status__exact": Step.Status.WAITING_RETRY}),
            }
        )
    return figures


# --- reconciliation (wired by the Reconciliation feature) --------------------------------------------------------


def _close_age(close_date: datetime.date, today: datetime.date) -> str:
    """'open since first found; 3 d past the close of its period (2026-11-30)', or before the close."""
    days = (today - close_date).days
    if days > 0:
        return f"open since first found; {days} d past the close of its period ({close_date:%Y-%m-%d})"
    return f"open since first found; its period closes {close_date:%Y-%m-%d}"


def reconciliation_figures(user) -> list[dict]:
    """Figures of the reconciliation section of the home page: what the systems disagree on, and since when.

    Open discrepancies leave out the roll-up checks (period totals, AR balances, invoice lines), which repeat
    the money of the per-invoice checks; value at risk is already in the reporting currency on each row.
    Returns a list of {"label", "value", "sub", "url", "bad"} dicts; empty until a reconciliation has run.
    """
    last_run = ReconciliationRun.objects.order_by("-created_at").first()
    if last_run is None:
        return []
    reporting = settings.REPORTING_CURRENCY
    open_rows = Discrepancy.objects.filter(status=Discrepancy.Status.OPEN).exclude(check_type__in=ROLLUP_CHECKS)
    totals = open_rows.aggregate(count=Count("pk"), risk=Sum("value_at_risk"))
    oldest = open_rows.order_by("first_seen_at").values("first_seen_at", "period_close_date").first()
    today = timezone.localdate()
    discrepancies = reverse("admin:reconciliation_discrepancy_changelist")
    figures = [
        {
            "label": "Open discrepancies",
            "value": f"{totals['count']:,}",
            "sub": f"{reporting} {(totals['risk'] or Decimal(0)):,.2f} at risk between billing, ERP and the console",
            "url": f"{discrepancies}?status=open",
            "bad": bool(totals["count"]),
        },
        {
            "label": "Oldest open discrepancy",
            "value": f"{(today - timezone.localdate(oldest['first_seen_at'])).days} d" if oldest else "—",
            "sub": _close_age(oldest["period_close_date"], today) if oldest else "nothing open",
            "url": f"{discrepancies}?status=open",
            "bad": bool(oldest) and oldest["period_close_date"] < today,
        },
    ]
    partial = ", ".join(sorted({item.get("system", "?") for item in last_run.not_compared or []}))
    figures.append(
        {
            "label": f"Last reconciliation ({last_run.period})",
            "value": last_run.get_status_display(),
            "sub": (f"not compared: {partial}" if partial else "every system compared")
            + (f" · {last_run.finished_at:%Y-%m-%d %H:%M}" if last_run.finished_at else ""),
            "url": reverse("admin:reconciliation_reconciliationrun_change", args=[last_run.pk]),
            "bad": last_run.status != ReconciliationRun.Status.SUCCEEDED or bool(partial),
        }
    )
    sign_off = PeriodSignOff.objects.filter(period=last_run.period).order_by("-prepared_at").first()
    open_alerts = Alert.objects.filter(status=Alert.Status.OPEN).count()
    figures.append(
        {
            "label": f"Sign-off {last_run.period}",
            "value": sign_off.get_status_display() if sign_off else "Not prepared",
            "sub": f"{open_alerts} open alert{'s' if open_alerts != 1 else ''} on metric and discrepancy thresholds",
            "url": reverse("admin:reconciliation_periodsignoff_changelist"),
            "bad": sign_off is None or sign_off.status != PeriodSignOff.Status.APPROVED,
        }
    )
    return figures
