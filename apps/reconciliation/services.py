"""Every write of reconciliation: request and execute runs, record discrepancies, act on them, sign periods off.

Over 500 lines on purpose: a run's pull, compare, discrepancy upkeep and sign-off voiding are one transaction story.
"""

import calendar
import dataclasses
import datetime
import hashlib
import logging
import re
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from apps.canonical.models import Invoice, LegalEntity, Project
from apps.core.context import audit_context, new_correlation_id
from apps.core.errors import BusinessError
from apps.core.history import bulk_create_tracked, bulk_update_tracked
from apps.core.money import MINOR_UNITS, quantize
from apps.core.users import system_user
from apps.sync.models import Transaction, Workflow
from apps.sync.registry import target_system
from apps.sync.services import transaction_replay
from apps.systems.models import ConnectedSystem, SystemKind

from . import checks, ranges
from .checks import UNPERIODED_CHECKS, Scope
from .matching import ReportingCurrency
from .models import ROLLUP_CHECKS, Check, Discrepancy, PeriodSignOff, ReconciliationRun, SnapshotInvoice
from .pulls import BILLING, ERP, PullIncomplete, batches, discard_snapshots, pull_billing, pull_erp

logger = logging.getLogger(__name__)

PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
FINISHED = (ReconciliationRun.Status.SUCCEEDED, ReconciliationRun.Status.PARTIAL)
ACTIVE = (ReconciliationRun.Status.QUEUED, ReconciliationRun.Status.RUNNING)
RECORD_BATCH = 500
RERUNNABLE = (Transaction.Status.EXCEPTION, Transaction.Status.WAITING_RETRY)


class ReconciliationRefused(BusinessError):
    code = "reconciliation_refused"


# --- scope ------------------------------------------------------------------------------------------------------


def period_bounds(period: str) -> tuple[datetime.date, datetime.date]:
    """First and last day of a 'YYYY-MM' period."""
    match = PERIOD.match(period or "")
    if match is None:
        raise ReconciliationRefused(
            f"'{period}' is not an accounting period.", fix="Give the month as YYYY-MM, for example 2026-11."
        )
    year, month = int(match.group(1)), int(match.group(2))
    return datetime.date(year, month, 1), datetime.date(year, month, calendar.monthrange(year, month)[1])


def legal_entity_for(code: str | None) -> LegalEntity | None:
    """The legal entity with this code, or None for all; a business error when unknown."""
    if not code:
        return None
    entity = LegalEntity.objects.filter(code=code).first()
    if entity is None:
        known = ", ".join(LegalEntity.objects.order_by("code").values_list("code", flat=True))
        raise ReconciliationRefused(f"There is no legal entity '{code}'.", fix=f"Use one of: {known or 'none yet'}.")
    return entity


def _scope_filter(run_or_period, legal_entity) -> Q:
    return Q(legal_entity=legal_entity) if legal_entity is not None else Q(legal_entity__isnull=True)


# --- runs -------------------------------------------------------------------------------------------------------


def reconciliation_run_request(
    *, period: str, legal_entity_code: str | None = None, trigger: str, actor, reason: str = ""
) -> ReconciliationRun:
    """Queue a run of one period (and entity); refused while a run of the same scope is queued or running."""
    start, end = period_bounds(period)
    entity = legal_entity_for(legal_entity_code)
    with audit_context(actor=actor, reason=reason or f"Reconciliation of {period} requested"), transaction.atomic():
        busy = (
            ReconciliationRun.objects.select_for_update()
            .filter(_scope_filter(period, entity), period=period, status__in=ACTIVE)
            .first()
        )
        if busy is not None:
            raise ReconciliationRefused(
                f"A reconciliation of {period} ({entity.code if entity else 'all entities'}) is already "
                f"{busy.get_status_display().lower()} (run #{busy.pk}).",
                fix="Wait for it to finish; its progress shows on the run.",
            )
        return ReconciliationRun.objects.create(
            period=period,
            period_start=start,
            period_end=end,
            legal_entity=entity,
            trigger=trigger,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            correlation_id=new_correlation_id(),
        )


def _progress(run: ReconciliationRun, percent: int, stage: str) -> None:
    run.progress, run.stage = percent, stage
    ReconciliationRun.objects.filter(pk=run.pk).update(progress=percent, stage=stage)  # history-ok: progress ticks


def reconciliation_run_execute(*, run_id: int) -> ReconciliationRun:
    """Pull, compare, record, close and digest one queued run; a run already taken is returned as it is."""
    with transaction.atomic():
        run = ReconciliationRun.objects.select_for_update().get(pk=run_id)
        if run.status != ReconciliationRun.Status.QUEUED:
            return run
        actor = run.requested_by or system_user()
        with audit_context(actor=actor, reason=f"Reconciliation of {run.period}", correlation_id=run.correlation_id):
            run.status = ReconciliationRun.Status.RUNNING
            run.started_at = timezone.now()
            run.stage = "Starting"
            run.save()
    with audit_context(actor=actor, reason=f"Reconciliation of {run.period}", correlation_id=run.correlation_id):
        try:
            _execute(run)
        except Exception as exc:
            logger.exception("Reconciliation run %s failed", run.pk)
            run.refresh_from_db()
            run.status = ReconciliationRun.Status.FAILED
            run.error = f"{type(exc).__name__}: {exc}"[:2000]
            run.finished_at = timezone.now()
            run.save()
            raise
    return run


PLAN = [
    ({Check.INVOICE_MISSING_IN_ERP, Check.INVOICE_MISSING_IN_BILLING}, {BILLING, ERP}, checks.invoices_missing),
    ({Check.INVOICE_TOTAL, Check.INVOICE_TAX}, {BILLING, ERP}, checks.invoice_amounts),
    ({Check.INVOICE_LINE}, {BILLING, ERP}, checks.invoice_lines),
    ({Check.PERIOD_TOTAL}, {BILLING, ERP}, checks.period_totals),
    ({Check.AR_BALANCE}, {BILLING, ERP}, checks.ar_balances),
    ({Check.PAYMENT_APPLIED}, {BILLING, ERP}, checks.payments_applied),
    ({Check.TIME_UNBILLED, Check.TIME_BILLED_TWICE}, {BILLING}, checks.time_billed),
    ({Check.PROJECT_NO_SCHEDULE}, {BILLING}, checks.projects_without_schedule),
    ({Check.INVOICE_NOT_POSTED}, {BILLING}, lambda scope: checks.invoices_not_posted(scope, billing_pulled=True)),
    ({Check.DANGLING_XREF}, {BILLING, ERP}, checks.dangling_cross_references),
]
# Billing-vs-ERP invoice comparisons between two snapshot tables: the range first pass narrows them to what differs.
RANGED = {checks.invoices_missing, checks.invoice_amounts, checks.invoice_lines}


def _execute(run: ReconciliationRun) -> None:
    scope = Scope(
        run.pk, run.period, run.period_start, run.period_end, run.legal_entity.code if run.legal_entity_id else None
    )
    # Every enabled billing platform (a firm may bill some legal entities through another one, by route) goes
    # into the billing side; the ERP is the one the workflows post to.
    erp = target_system(SystemKind.ERP)
    systems = {
        BILLING: list(ConnectedSystem.objects.filter(kind=SystemKind.BILLING, enabled=True).order_by("slug")),
        ERP: [erp] if erp else [],
    }
    pulled, failed, ok = {}, [], {}
    for index, (side, pull) in enumerate(((BILLING, pull_billing), (ERP, pull_erp))):
        if not systems[side]:
            _progress(run, 5 + 30 * index, f"Pulling from {side}")
            failed.append({"system": side, "name": side, "reason": f"No enabled {side} system is connected."})
            continue
        done = []
        for system in systems[side]:
            _progress(run, 5 + 30 * index, f"Pulling from {system.name}")
            try:
                pulled[system.slug] = pull(run, system)
                done.append(system)
            except PullIncomplete as exc:
                discard_snapshots([run.pk], side)  # one platform missing makes the whole side incomplete
                failed.append({"system": system.slug, "name": system.name, "reason": exc.reason})
                break
        else:
            ok[side] = tuple(done)
    _progress(run, 65, "Comparing")
    recorder = DiscrepancyRecorder(run, scope)
    compared, skipped = set(), set()
    listed_schedules = tuple(s for s in ok.get(BILLING, ()) if "schedules" in pulled[s.slug])
    scope = dataclasses.replace(scope, systems=ok, schedule_systems=listed_schedules)
    ranged_scope, range_summary = scope, {}
    if ranges.enabled() and {BILLING, ERP} <= ok.keys():
        _progress(run, 65, "Comparing counts and checksums per key range")
        first_pass = ranges.differing_ranges(scope)
        ranged_scope = dataclasses.replace(scope, invoice_keys=first_pass.key_filter())
        range_summary = {
            "range_pass": {
                "queries": first_pass.queries,
                "levels": first_pass.levels,
                "differing_ranges": "all" if first_pass.prefixes is None else len(first_pass.prefixes),
            }
        }
    plan = PLAN
    with checks.whole_results():
        for index, (types, needs, produce) in enumerate(plan):
            if needs - ok.keys():
                skipped |= types
                continue
            _progress(run, 65 + 25 * index // len(plan), f"Comparing: {', '.join(sorted(types))}")
            recorder.record(produce(ranged_scope if produce in RANGED else scope))
            compared |= types
    _progress(run, 92, "Closing what was not found again")
    recorder.close_missing(compared)
    not_compared = [
        {**entry, "period": run.period, "checks": sorted(str(check) for check in skipped)} for entry in failed
    ]
    run.refresh_from_db()
    run.pulled = pulled
    run.not_compared = not_compared
    run.summary = {**recorder.summary, **_open_summary(scope), **range_summary}
    run.figures_digest = figures_digest(scope)
    run.status = ReconciliationRun.Status.PARTIAL if not_compared else ReconciliationRun.Status.SUCCEEDED
    run.progress, run.stage = 100, "Done"
    run.finished_at = timezone.now()
    run.save()
    if run.status == ReconciliationRun.Status.SUCCEEDED:
        _void_changed_sign_offs(run)
    older = ReconciliationRun.objects.filter(_scope_filter(run.period, run.legal_entity), period=run.period)
    discard_snapshots(
        list(older.exclude(pk=run.pk).filter(status__in=[*FINISHED, "failed"]).values_list("pk", flat=True))
    )


def _in_scope_discrepancies(scope: Scope):
    rows = Discrepancy.objects.filter(Q(period=scope.period) | Q(check_type__in=UNPERIODED_CHECKS))
    if scope.entity:
        rows = rows.filter(legal_entity__code=scope.entity)
    return rows


def _open_summary(scope: Scope) -> dict:
    open_rows = _in_scope_discrepancies(scope).filter(status=Discrepancy.Status.OPEN)
    total = open_rows.exclude(check_type__in=ROLLUP_CHECKS).aggregate(v=Sum("value_at_risk"))["v"]
    return {
        "open": open_rows.count(),
        "value_at_risk": str(quantize(Decimal(total or 0), settings.REPORTING_CURRENCY)),
        "reporting_currency": settings.REPORTING_CURRENCY,
    }


def figures_digest(scope: Scope) -> str:
    """A digest of what a sign-off approves: each system's totals and every unresolved discrepancy's figures."""
    digest = hashlib.sha256()
    totals = (
        SnapshotInvoice.objects.filter(run_id=scope.run_id, period=scope.period)
        .filter(**({"legal_entity_code": scope.entity} if scope.entity else {}))
        .order_by("system", "currency")
        .values("system", "currency")
        .annotate(total=Sum("total"), tax=Sum("tax_total"))
    )
    for row in totals:
        digest.update(f"{row['system']}|{row['currency']}|{_money(row['total'], row['currency'])}|".encode())
        digest.update(f"{_money(row['tax'], row['currency'])}\n".encode())
    rows = (
        _in_scope_discrepancies(scope)
        .exclude(status=Discrepancy.Status.CLOSED)
        .order_by("check_type", "business_key")
        .values_list("check_type", "business_key", "currency", "left_amount", "right_amount")
    )
    for check, key, currency, left, right in rows.iterator(chunk_size=2000):
        digest.update(f"{check}|{key}|{currency}|{_money(left, currency)}|{_money(right, currency)}\n".encode())
    return digest.hexdigest()


def _money(value, currency: str) -> str:
    return "" if value is None else str(quantize(Decimal(value), currency if currency in MINOR_UNITS else "USD"))


class DiscrepancyRecorder:
    """Turns a run's findings into discrepancy rows: new ones open, known ones age, closed ones reopen."""

    FIELDS = [
        "legal_entity",
        "currency",
        "left_system",
        "right_system",
        "left_amount",
        "right_amount",
        "difference",
        "reporting_currency",
        "value_at_risk",
        "description",
        "detail",
        "status",
        "last_seen_at",
        "last_seen_run",
        "closed_by_run",
        "closed_at",
        "times_reopened",
    ]

    def __init__(self, run: ReconciliationRun, scope: Scope):
        self.run, self.scope = run, scope
        self.now = timezone.now()
        self.reporting = ReportingCurrency()
        self.entities = dict(LegalEntity.objects.values_list("code", "pk"))
        self.seen: set[tuple[str, str]] = set()
        self.summary = {"opened": 0, "still_open": 0, "reopened": 0, "closed": 0}

    def record(self, findings: Iterable[dict]) -> None:
        for chunk in batches(findings, RECORD_BATCH):
            self._record_batch(chunk)

    def _record_batch(self, chunk: list[dict]) -> None:
        fresh = []
        for item in chunk:
            identity = (str(item["check_type"]), item["business_key"])
            if identity not in self.seen:
                self.seen.add(identity)
                fresh.append(item)
        existing = {
            (row.check_type, row.business_key): row
            for row in Discrepancy.objects.filter(business_key__in={item["business_key"] for item in fresh})
        }
        created, changed = [], []
        for item in fresh:
            values = self._values(item)
            row = existing.get((str(item["check_type"]), item["business_key"]))
            if row is None:
                created.append(
                    Discrepancy(
                        check_type=item["check_type"],
                        business_key=item["business_key"],
                        period=values.pop("period"),
                        period_close_date=values.pop("period_close_date"),
                        status=Discrepancy.Status.OPEN,
                        times_reopened=0,
                        first_seen_at=self.now,
                        first_seen_run=self.run,
                        **values,
                    )
                )
                self.summary["opened"] += 1
                continue
            values.pop("period"), values.pop("period_close_date")
            figures_changed = (row.left_amount, row.right_amount) != (values["left_amount"], values["right_amount"])
            if row.status == Discrepancy.Status.CLOSED or (
                row.status == Discrepancy.Status.EXPLAINED and figures_changed
            ):
                values.update(status=Discrepancy.Status.OPEN, times_reopened=row.times_reopened + 1)
                values.update(closed_by_run=None, closed_at=None)
                self.summary["reopened"] += 1
            else:
                self.summary["still_open"] += 1
            for name, value in values.items():
                setattr(row, name, value)
            changed.append(row)
        with transaction.atomic():
            if created:
                bulk_create_tracked(Discrepancy, created)
            if changed:
                bulk_update_tracked(Discrepancy, changed, self.FIELDS)

    def _values(self, item: dict) -> dict:
        currency = item["currency"] if item["currency"] in MINOR_UNITS else self.reporting.code
        left = None if item["left_amount"] is None else quantize(Decimal(item["left_amount"]), currency)
        right = None if item["right_amount"] is None else quantize(Decimal(item["right_amount"]), currency)
        difference = (left or Decimal(0)) - (right or Decimal(0))
        period = item["period"] or self.scope.period
        start, close = period_bounds(period)
        at_risk, rate_found = self.reporting.convert(abs(difference), currency, close)
        detail = dict(item["detail"])
        if not rate_found:
            detail["exchange_rate_missing"] = f"No stored {currency}/{self.reporting.code} rate on or before {close}."
        return {
            "period": period,
            "period_close_date": close,
            "legal_entity_id": self.entities.get(item["legal_entity_code"]),
            "currency": currency,
            "left_system": item["left_system"],
            "right_system": item["right_system"],
            "left_amount": left,
            "right_amount": right,
            "difference": difference,
            "reporting_currency": self.reporting.code,
            "value_at_risk": at_risk,
            "description": item["description"],
            "detail": detail,
            "last_seen_at": self.now,
            "last_seen_run": self.run,
            "closed_by_run": None,
            "closed_at": None,
        }

    def close_missing(self, compared: set) -> None:
        """Close what this run could check and did not find again; never what it could not check."""
        periodic = compared - UNPERIODED_CHECKS
        unperioded = compared & UNPERIODED_CHECKS
        gone = (
            Discrepancy.objects.filter(status__in=[Discrepancy.Status.OPEN, Discrepancy.Status.EXPLAINED])
            .filter(Q(check_type__in=periodic, period=self.scope.period) | Q(check_type__in=unperioded))
            .exclude(last_seen_run=self.run)
            .order_by("pk")
        )
        if self.scope.entity:
            gone = gone.filter(legal_entity__code=self.scope.entity)
        for chunk in batches(gone.iterator(chunk_size=RECORD_BATCH), RECORD_BATCH):
            for row in chunk:
                row.status, row.closed_by_run, row.closed_at = Discrepancy.Status.CLOSED, self.run, self.now
            with transaction.atomic():
                bulk_update_tracked(Discrepancy, chunk, ["status", "closed_by_run", "closed_at"])
            self.summary["closed"] += len(chunk)


# --- acting on a discrepancy ------------------------------------------------------------------------------------


def discrepancy_explain(*, discrepancy: Discrepancy, reason: str, actor) -> Discrepancy:
    """Mark a discrepancy explained (accepted as it is) with the reason auditors will read."""
    if not (reason or "").strip():
        raise ReconciliationRefused(
            "Say why this difference is acceptable.", fix="Write the reason, e.g. 'FX rounding agreed with auditors'."
        )
    with audit_context(actor=actor, reason=f"Explained: {reason}"), transaction.atomic():
        row = Discrepancy.objects.select_for_update().get(pk=discrepancy.pk)
        if row.status == Discrepancy.Status.CLOSED:
            raise ReconciliationRefused(
                f"{row} is already closed: the last run no longer found it.", fix="Nothing to explain."
            )
        row.status = Discrepancy.Status.EXPLAINED
        row.explanation = reason.strip()
        row.explained_by = actor
        row.explained_at = timezone.now()
        row.save()
    return row


def transactions_at_fault(discrepancy: Discrepancy):
    """The ledger transactions that carried the records this discrepancy is about (only those)."""
    detail = discrepancy.detail or {}
    check = discrepancy.check_type
    if check in (Check.INVOICE_MISSING_IN_ERP, Check.INVOICE_NOT_POSTED, Check.INVOICE_TAX, Check.INVOICE_TOTAL):
        keys = {f"invoice:{detail['billing_id']}"} if detail.get("billing_id") else set()
        ids = set(
            Invoice.objects.filter(number=detail.get("invoice", discrepancy.business_key)).values_list("pk", flat=True)
        )
        return Transaction.objects.filter(workflow=Workflow.INVOICE_TO_ERP).filter(
            Q(business_key__in=keys) | Q(subject_id__in=ids, subject_type__in=["invoice", ""])
        )
    if check == Check.PAYMENT_APPLIED:
        payments = {f"payment:{item['payment']}" for item in detail.get("applications", [])}
        return Transaction.objects.filter(workflow=Workflow.PAYMENT_TO_CRM, business_key__in=payments)
    if check in (Check.TIME_UNBILLED, Check.PROJECT_NO_SCHEDULE):
        project = Project.objects.filter(code=detail.get("project")).select_related("contract").first()
        if project is None:
            return Transaction.objects.none()
        workflows = [Workflow.TIME_TO_BILL, Workflow.MILESTONE_TO_BILL]
        subject = Q(subject_type="project", subject_id=project.pk)
        if check == Check.PROJECT_NO_SCHEDULE and project.contract and project.contract.opportunity_id:
            workflows.append(Workflow.OPPORTUNITY_TO_PROJECT)
            subject |= Q(subject_type="opportunity", subject_id=project.contract.opportunity_id)
        return Transaction.objects.filter(workflow__in=workflows).filter(subject)
    return Transaction.objects.none()


def discrepancy_rerun(*, discrepancy: Discrepancy, actor, reason: str) -> list[Transaction]:
    """Re-run through the ledger the failed transaction(s) behind a discrepancy, and note it on the discrepancy."""
    if not (reason or "").strip():
        raise ReconciliationRefused("Say why you are re-running.", fix="Auditors read the reason in the history.")
    if discrepancy.status != Discrepancy.Status.OPEN:
        raise ReconciliationRefused(
            f"{discrepancy} is {discrepancy.get_status_display().lower()}; only open discrepancies are re-run."
        )
    candidates = list(transactions_at_fault(discrepancy).order_by("pk"))
    failed = [txn for txn in candidates if txn.status in RERUNNABLE]
    if not failed:
        running = [txn for txn in candidates if txn.status in Transaction.OPEN_STATUSES]
        if running:
            raise ReconciliationRefused(
                f"The transaction behind {discrepancy.business_key} is still running ({running[0].correlation_id}).",
                fix="Wait for it to finish; the next reconciliation run closes the discrepancy if it fixed it.",
            )
        raise ReconciliationRefused(
            f"No failed transaction carried {discrepancy.business_key}, so there is nothing to re-run."
            + (" The ledger shows it completed." if candidates else ""),
            fix="Check the record in the far system (it may have been changed by hand there), or mark the "
            "discrepancy explained with the reason.",
        )
    with audit_context(actor=actor, reason=f"Re-run from discrepancy {discrepancy.business_key}: {reason}"):
        with transaction.atomic():
            for txn in failed:
                transaction_replay(txn=txn, actor=actor, reason=reason)
            row = Discrepancy.objects.select_for_update().get(pk=discrepancy.pk)
            actions = list((row.detail or {}).get("actions", []))
            actions.append(
                {
                    "action": "rerun",
                    "transactions": [txn.correlation_id for txn in failed],
                    "by": getattr(actor, "username", str(actor)),
                    "at": timezone.now().isoformat(),
                    "reason": reason,
                }
            )
            row.detail = {**(row.detail or {}), "actions": actions}
            row.save()
    return failed


# --- sign-off ---------------------------------------------------------------------------------------------------


def latest_finished_run(period: str, legal_entity) -> ReconciliationRun | None:
    return (
        ReconciliationRun.objects.filter(_scope_filter(period, legal_entity), period=period, status__in=FINISHED)
        .order_by("-finished_at", "-pk")
        .first()
    )


def sign_off_prepare(*, period: str, legal_entity_code: str | None = None, actor, note: str = "") -> PeriodSignOff:
    """Prepare a period's reconciliation for approval, on the figures of its latest complete run."""
    period_bounds(period)
    entity = legal_entity_for(legal_entity_code)
    scope_label = f"{period} ({entity.code if entity else 'all entities'})"
    run = latest_finished_run(period, entity)
    if run is None:
        raise ReconciliationRefused(
            f"{scope_label} has not been reconciled yet.", fix="Run a reconciliation of the period first."
        )
    if run.status == ReconciliationRun.Status.PARTIAL:
        systems = ", ".join(entry.get("name", entry.get("system", "")) for entry in run.not_compared)
        raise ReconciliationRefused(
            f"The latest run of {scope_label} (#{run.pk}) could not compare {systems}; a partial reconciliation "
            f"cannot be signed off.",
            fix="Run the reconciliation again once the systems answer.",
        )
    with audit_context(actor=actor, reason=f"Prepared the reconciliation of {scope_label}"), transaction.atomic():
        active = (
            PeriodSignOff.objects.select_for_update()
            .filter(_scope_filter(period, entity), period=period)
            .filter(status__in=[PeriodSignOff.Status.PREPARED, PeriodSignOff.Status.APPROVED])
            .first()
        )
        if active is not None:
            raise ReconciliationRefused(
                f"{scope_label} is already {active.get_status_display().lower()} (prepared by "
                f"{active.prepared_by} on {active.prepared_at:%Y-%m-%d}).",
                fix="A later run that changes the figures voids it; then prepare again.",
            )
        return PeriodSignOff.objects.create(
            period=period,
            legal_entity=entity,
            run=run,
            figures_digest=run.figures_digest,
            prepared_by=actor,
            prepared_at=timezone.now(),
            note=note,
        )


def sign_off_approve(*, sign_off: PeriodSignOff, actor, note: str = "") -> PeriodSignOff:
    """Approve a prepared reconciliation: never by the person who prepared it."""
    with audit_context(actor=actor, reason=f"Approved the reconciliation of {sign_off.period}"), transaction.atomic():
        row = PeriodSignOff.objects.select_for_update().get(pk=sign_off.pk)
        if row.status != PeriodSignOff.Status.PREPARED:
            raise ReconciliationRefused(
                f"This sign-off is {row.get_status_display().lower()}; only a prepared one can be approved.",
                fix="Prepare the period again on the latest run's figures." if row.status == "voided" else "",
            )
        if row.prepared_by_id == actor.pk:
            raise ReconciliationRefused(
                f"You prepared the reconciliation of {row.period}; another person must approve it.",
                fix="Ask a colleague in finance to review and approve it.",
            )
        row.status = PeriodSignOff.Status.APPROVED
        row.approved_by = actor
        row.approved_at = timezone.now()
        if note:
            row.note = f"{row.note}\n{note}".strip()
        row.save()
    return row


def _void_changed_sign_offs(run: ReconciliationRun) -> None:
    """A later run whose figures differ from what was prepared or approved voids that sign-off."""
    stale = PeriodSignOff.objects.filter(
        _scope_filter(run.period, run.legal_entity),
        period=run.period,
        status__in=[PeriodSignOff.Status.PREPARED, PeriodSignOff.Status.APPROVED],
    ).exclude(figures_digest=run.figures_digest)
    for sign_off in stale:
        sign_off.status = PeriodSignOff.Status.VOIDED
        sign_off.voided_by_run = run
        sign_off.voided_at = timezone.now()
        with audit_context(reason=f"Voided: run #{run.pk} changed the figures of {run.period}"):
            sign_off.save()
