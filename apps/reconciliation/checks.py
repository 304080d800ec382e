"""The comparisons, each a set-based query over the run's snapshots and the canonical store.

Every check yields *findings* (only the rows that differ beyond tolerance); the database does the
joins (correlated EXISTS / scalar subqueries on indexed keys, which both SQLite and PostgreSQL run as
index lookups) and the aggregates. A full outer join is emulated portably as "left side with the right
side's figure, where they differ" plus "right side rows with nothing on the left". Python only sees the
differences, streamed in chunks.

Over 500 lines on purpose: every check is one set-based query built from the same few snapshot joins, kept side by side.
"""

import contextlib
import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    CharField,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat

from apps.canonical.models import BillingEvent, BillingSchedule, ContractType, Invoice, Project, TimeEntry
from apps.mapping.models import CrossReference

from .matching import FLOAT_GUARD, MONEY, beyond_tolerance, tolerance, tolerance_sql
from .models import Check, SnapshotBillingSchedule, SnapshotInvoice, SnapshotInvoiceLine, SnapshotPayment
from .pulls import BILLING, BILLING_NOT_POSTED, ERP

CHUNK = 1000
ZERO = Value(Decimal("0"), output_field=MONEY)


class GroupSum(Coalesce):
    """The other side's sum for a group, 0 when it has none: a correlated subquery on the grouped columns.

    A plain Coalesce(Subquery) lands in the GROUP BY, where PostgreSQL evaluates it for every row before
    grouping (200,000 rows: 200,000 scans); its outer references are grouped columns, so it needs no key.
    """

    def __init__(self, subquery):
        super().__init__(Subquery(subquery, output_field=MONEY), ZERO, output_field=MONEY)

    def get_group_by_cols(self):
        return []


NOT_POSTED_IN_BILLING = BILLING_NOT_POSTED | {"voided"}
CONSOLE_OPEN = [Invoice.Status.POSTED, Invoice.Status.PARTIALLY_PAID]

# Checks that are not about one period: their identity has no period in it, and any run may close them.
UNPERIODED_CHECKS = {Check.AR_BALANCE, Check.PROJECT_NO_SCHEDULE, Check.DANGLING_XREF}


@dataclass(frozen=True)
class Scope:
    """What one run compares: a month, and one legal entity or all."""

    run_id: int
    period: str
    start: datetime.date
    end: datetime.date
    entity: str | None = None
    systems: dict = field(default_factory=dict)  # the systems pulled completely: {"billing": (...), "erp": (...)}
    schedule_systems: tuple = ()  # the billing systems whose billing schedules were listed (Stripe's are not)
    invoice_keys: object = None  # a Q on invoice_key from the range first pass (ranges.py); None: every key


@contextlib.contextmanager
def whole_results():
    """Plan the checks' queries for reading every row (PostgreSQL), for the duration.

    The checks stream findings through server-side cursors, which PostgreSQL plans for the first 10 % of the rows
    (`cursor_tuple_fraction`): nested-loop anti joins with an index lookup per invoice. The checks always read to
    the end, so hash joins are the better plan (measured: the two missing-invoice queries 2.7 s → 1.5 s at
    200,000 invoices a side). SQLite has no such setting.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET cursor_tuple_fraction = 1.0")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET cursor_tuple_fraction")


def _ranged(scope: Scope, rows):
    """Only the invoices in the key ranges the first pass found different (all of them without a first pass)."""
    return rows if scope.invoice_keys is None else rows.filter(scope.invoice_keys)


def _snap(scope: Scope, system: str):
    return SnapshotInvoice.objects.filter(run_id=scope.run_id, system=system).order_by()


def _in_scope(scope: Scope, rows, *, period: bool = True, entity_field: str = "legal_entity_code"):
    if period:
        rows = rows.filter(period=scope.period)
    if scope.entity:
        rows = rows.filter(**{entity_field: scope.entity})
    return rows


def _stream(rows) -> Iterator[dict]:
    yield from rows.iterator(chunk_size=CHUNK)


CENT = Decimal("0.01")


def _amount(value):
    """A money column read by hand: SQLite gives floats where the ORM would give Decimals."""
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(repr(value)).quantize(CENT)


def _joined(sql: str, params: list, money: tuple[str, ...]) -> Iterator[dict]:
    """Rows of a join written by hand (the ORM joins unrelated snapshot tables only through per-row subqueries)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column[0] for column in cursor.description]
        while rows := cursor.fetchmany(CHUNK):
            for values in rows:
                row = dict(zip(columns, values, strict=True))
                yield {**row, **{name: _amount(row[name]) for name in money}}


def _billing_in_scope_sql(scope: Scope, alias: str) -> tuple[str, list]:
    """Conditions on a billing snapshot invoice `alias`: this run's, in the scope, in the ranges that differ."""
    sql = f"{alias}.run_id = %s AND {alias}.system = %s AND {alias}.period = %s"
    params: list = [scope.run_id, BILLING, scope.period]
    if scope.entity:
        sql += f" AND {alias}.legal_entity_code = %s"
        params.append(scope.entity)
    if scope.invoice_keys is not None:
        keys = SnapshotInvoice.objects.filter(run_id=scope.run_id, system=BILLING).filter(scope.invoice_keys)
        try:
            subquery, key_params = keys.order_by().values("invoice_key").query.sql_with_params()
        except EmptyResultSet:
            return "1 = 0", []
        sql += f" AND {alias}.invoice_key IN ({subquery})"
        params += list(key_params)
    return sql, params


def finding(check, key, row: dict, *, left, right, left_system, right_system, description, **detail) -> dict:
    return {
        "check_type": check,
        "business_key": str(key)[:255],
        "legal_entity_code": row.get("legal_entity_code") or "",
        "period": row.get("period") or "",
        "currency": row.get("currency") or "",
        "left_system": left_system,
        "right_system": right_system,
        "left_amount": left,
        "right_amount": right,
        "description": description[:500],
        "detail": {k: v for k, v in detail.items() if v not in (None, "")},
    }


# --- invoices: billing vs ERP -------------------------------------------------------------------------------------


def invoices_missing(scope: Scope) -> Iterator[dict]:
    """Invoices posted on one side and absent on the other."""
    erp_has = _snap(scope, ERP).filter(invoice_key=OuterRef("invoice_key"))
    billing_has = _snap(scope, BILLING).filter(invoice_key=OuterRef("invoice_key"))
    posted_in_billing = _ranged(scope, _in_scope(scope, _snap(scope, BILLING))).exclude(
        status__in=NOT_POSTED_IN_BILLING
    )
    fields = ("invoice_key", "external_id", "customer_key", "legal_entity_code", "period", "currency", "total")
    for row in _stream(posted_in_billing.filter(~Exists(erp_has)).values(*fields)):
        yield finding(
            Check.INVOICE_MISSING_IN_ERP,
            row["invoice_key"],
            row,
            left=row["total"],
            right=None,
            left_system=BILLING,
            right_system=ERP,
            description=f"Invoice {row['invoice_key']} ({row['total']} {row['currency']}) is posted in billing "
            f"but not in ERP receivables.",
            invoice=row["invoice_key"],
            billing_id=row["external_id"],
            customer=row["customer_key"],
        )
    for row in _stream(
        _ranged(scope, _in_scope(scope, _snap(scope, ERP))).filter(~Exists(billing_has)).values(*fields)
    ):
        yield finding(
            Check.INVOICE_MISSING_IN_BILLING,
            row["invoice_key"],
            row,
            left=None,
            right=row["total"],
            left_system=BILLING,
            right_system=ERP,
            description=f"Invoice {row['invoice_key']} ({row['total']} {row['currency']}) is in ERP receivables "
            f"but the billing platform has no such invoice.",
            invoice=row["invoice_key"],
            erp_id=row["external_id"],
            customer=row["customer_key"],
        )


def invoice_amounts(scope: Scope) -> Iterator[dict]:
    """Per invoice: the amount before tax and the tax, billing vs ERP, each within the document tolerance."""
    invoices = SnapshotInvoice._meta.db_table
    where, params = _billing_in_scope_sql(scope, "b")
    tol, tol_params = tolerance_sql("document", "b.currency")
    sql = (
        "SELECT b.invoice_key, b.customer_key, b.legal_entity_code, b.period, b.currency, b.subtotal, "
        "e.subtotal AS erp_subtotal, b.tax_total, e.tax_total AS erp_tax "
        f"FROM {invoices} b JOIN {invoices} e ON e.run_id = b.run_id AND e.system = %s "
        f"AND e.invoice_key = b.invoice_key WHERE {where} "
        f"AND (ABS(b.subtotal - e.subtotal) > {tol} OR ABS(b.tax_total - e.tax_total) > {tol})"
    )
    rows = _joined(sql, [ERP, *params, *tol_params, *tol_params], ("subtotal", "erp_subtotal", "tax_total", "erp_tax"))
    taxes = []
    for row in rows:
        if abs(row["subtotal"] - row["erp_subtotal"]) > _tolerance(row["currency"]):
            yield finding(
                Check.INVOICE_TOTAL,
                row["invoice_key"],
                row,
                left=row["subtotal"],
                right=row["erp_subtotal"],
                left_system=BILLING,
                right_system=ERP,
                description=f"Invoice {row['invoice_key']}: billing has {row['subtotal']} {row['currency']} before "
                f"tax, ERP has {row['erp_subtotal']}.",
                invoice=row["invoice_key"],
                customer=row["customer_key"],
            )
        if abs(row["tax_total"] - row["erp_tax"]) > _tolerance(row["currency"]):
            taxes.append(row)
            if len(taxes) >= CHUNK:
                yield from _tax_findings(taxes)
                taxes = []
    yield from _tax_findings(taxes)


def _tolerance(currency: str) -> Decimal:
    return tolerance(currency, "document") + FLOAT_GUARD


def _tax_findings(rows) -> Iterator[dict]:
    for row in rows:
        yield finding(
            Check.INVOICE_TAX,
            row["invoice_key"],
            row,
            left=row["tax_total"],
            right=row["erp_tax"],
            left_system=BILLING,
            right_system=ERP,
            description=f"Invoice {row['invoice_key']}: billing charged {row['tax_total']} {row['currency']} tax, "
            f"ERP recorded {row['erp_tax']}.",
            invoice=row["invoice_key"],
            customer=row["customer_key"],
        )


def invoice_lines(scope: Scope) -> Iterator[dict]:
    """Per line of invoices present on both sides: amount before tax within the line tolerance."""
    lines, invoices = SnapshotInvoiceLine._meta.db_table, SnapshotInvoice._meta.db_table
    where, params = _billing_in_scope_sql(scope, "i")
    tol, tol_params = tolerance_sql("line", "b.currency")
    sql = (
        "SELECT b.invoice_key, b.line_number, b.currency, b.amount, e.amount AS erp_amount, i.legal_entity_code, "
        f"i.period FROM {invoices} i "
        f"JOIN {lines} b ON b.run_id = i.run_id AND b.system = i.system AND b.invoice_key = i.invoice_key "
        f"JOIN {lines} e ON e.run_id = b.run_id AND e.system = %s AND e.invoice_key = b.invoice_key "
        f"AND e.line_number = b.line_number WHERE {where} AND ABS(b.amount - e.amount) > {tol}"
    )
    for row in _joined(sql, [ERP, *params, *tol_params], ("amount", "erp_amount")):
        yield finding(
            Check.INVOICE_LINE,
            f"{row['invoice_key']}/{row['line_number']}",
            row,
            left=row["amount"],
            right=row["erp_amount"],
            left_system=BILLING,
            right_system=ERP,
            description=f"Invoice {row['invoice_key']} line {row['line_number']}: billing {row['amount']}, "
            f"ERP {row['erp_amount']} {row['currency']}.",
            invoice=row["invoice_key"],
            line=row["line_number"],
        )


def period_totals(scope: Scope) -> Iterator[dict]:
    """Per legal entity, period and currency: the sum of invoice totals, billing vs ERP.

    One grouped pass over both sides' invoices (a conditional sum per side): a group's other-side sum as a
    correlated subquery would scan the other side once per group and per use (four times with the HAVING).
    The groups are few (entities × currencies), so the tolerance is applied here, as the SQL CASE would.
    """
    posted = Q(system=BILLING) & ~Q(status__in=NOT_POSTED_IN_BILLING)
    groups = (
        _in_scope(scope, SnapshotInvoice.objects.filter(run_id=scope.run_id, system__in=[BILLING, ERP]))
        .order_by()
        .values("legal_entity_code", "period", "currency")
        .annotate(
            billing_total=Sum("total", filter=posted),
            billing_rows=Count("pk", filter=posted),
            erp_total=Sum("total", filter=Q(system=ERP)),
            erp_rows=Count("pk", filter=Q(system=ERP)),
        )
        .order_by("legal_entity_code", "period", "currency")
    )
    rows = list(groups)
    for row in rows:
        if not row["billing_rows"]:
            continue
        erp_total = _amount(row["erp_total"]) if row["erp_rows"] else Decimal(0)
        billing_total = _amount(row["billing_total"])
        if abs(billing_total - erp_total) > _sql_tolerance(row["currency"], "document"):
            yield _period_finding(scope, row, billing_total, erp_total)
    for row in rows:
        if row["erp_rows"] and not row["billing_rows"]:
            yield _period_finding(scope, row, Decimal(0), _amount(row["erp_total"]))


def _sql_tolerance(currency: str, level: str) -> Decimal:
    """The tolerance `tolerance_expression` gives a row in this currency (the '*' entry for unlisted ones)."""
    listed = currency != "*" and currency in getattr(settings, "RECONCILIATION_TOLERANCES", {})
    return tolerance(currency if listed else "*", level) + FLOAT_GUARD


def _period_finding(scope, row, billing_total, erp_total) -> dict:
    entity = row["legal_entity_code"] or "unknown entity"
    return finding(
        Check.PERIOD_TOTAL,
        f"{entity}:{scope.period}:{row['currency']}",
        row,
        left=billing_total,
        right=erp_total,
        left_system=BILLING,
        right_system=ERP,
        description=f"{entity} {scope.period}: billing invoiced {billing_total} {row['currency']}, "
        f"ERP receivables show {erp_total}.",
    )


# --- AR open balances: ERP vs billing vs console ----------------------------------------------------------------


def ar_balances(scope: Scope) -> Iterator[dict]:
    """Open balance per customer and currency: ERP against billing, and ERP against what the console recorded."""
    fields = ("customer_key", "legal_entity_code", "currency")

    def snap_groups(system):
        rows = _in_scope(scope, _snap(scope, system), period=False).exclude(customer_key="")
        return rows

    def snap_sum(system):
        return (
            snap_groups(system)
            .filter(customer_key=OuterRef("customer_key"), currency=OuterRef("currency"))
            .values("customer_key")
            .annotate(s=Sum("balance"))
            .values("s")
        )

    known_to_erp = CrossReference.objects.filter(system__in=scope.systems.get(ERP, ()), object_type="customer").values(
        "object_id"
    )
    console = Invoice.objects.filter(status__in=CONSOLE_OPEN, customer__in=known_to_erp).order_by()
    if scope.entity:
        console = console.filter(legal_entity__code=scope.entity)
    console_sum = (
        console.filter(customer__number=OuterRef("customer_key"), currency=OuterRef("currency"))
        .values("customer")
        .annotate(s=Sum(F("total") - F("amount_paid"), output_field=MONEY))
        .values("s")
    )
    erp_groups = snap_groups(ERP).values(*fields).annotate(erp=Sum("balance"))
    for other, other_sum in ((BILLING, snap_sum(BILLING)), ("console", console_sum)):
        rows = (
            erp_groups.annotate(other=GroupSum(other_sum))
            .annotate(diff=ExpressionWrapper(F("erp") - F("other"), output_field=MONEY))
            .filter(beyond_tolerance("diff", "document"))
        )
        for row in _stream(rows):
            yield _ar_finding(scope, row, other, erp=row["erp"], other_amount=row["other"])
    erp_has = snap_groups(ERP).filter(customer_key=OuterRef("customer_key"), currency=OuterRef("currency"))
    billing_only = (
        snap_groups(BILLING)
        .filter(~Exists(erp_has))
        .values(*fields)
        .annotate(other=Sum("balance"))
        .filter(beyond_tolerance("other", "document"))
    )
    for row in _stream(billing_only):
        yield _ar_finding(scope, row, BILLING, erp=Decimal(0), other_amount=row["other"])
    erp_has_console = snap_groups(ERP).filter(customer_key=OuterRef("customer__number"), currency=OuterRef("currency"))
    console_only = (
        console.filter(~Exists(erp_has_console))
        .values("customer__number", "legal_entity__code", "currency")
        .annotate(other=Sum(F("total") - F("amount_paid"), output_field=MONEY))
        .filter(beyond_tolerance("other", "document"))
    )
    for row in _stream(console_only):
        row = {"customer_key": row["customer__number"], "legal_entity_code": row["legal_entity__code"], **row}
        yield _ar_finding(scope, row, "console", erp=Decimal(0), other_amount=row["other"])


def _ar_finding(scope, row, other: str, *, erp, other_amount) -> dict:
    label = "the billing platform" if other == BILLING else "the console"
    return finding(
        Check.AR_BALANCE,
        f"{row['customer_key']}:{row['currency']}:erp-vs-{other}",
        {**row, "period": scope.period},
        left=erp,
        right=other_amount,
        left_system=ERP,
        right_system=other,
        description=f"Customer {row['customer_key']} owes {erp} {row['currency']} in ERP but {other_amount} "
        f"according to {label}.",
        customer=row["customer_key"],
    )


# --- payments: applied in billing vs ERP (1 payment → N invoices, N instalments → 1 invoice) ------------------------


def payments_applied(scope: Scope) -> Iterator[dict]:
    """Per invoice of the period: the sum of payments applied to it, billing vs ERP."""

    def applied(system, side_keys):
        return SnapshotPayment.objects.filter(run_id=scope.run_id, system=system, invoice_key__in=side_keys).order_by()

    billing_keys = _in_scope(scope, _snap(scope, BILLING)).values("invoice_key")
    erp_keys = _in_scope(scope, _snap(scope, ERP)).values("invoice_key")
    invoice = _snap(scope, BILLING).filter(invoice_key=OuterRef("invoice_key"))
    erp_invoice = _snap(scope, ERP).filter(invoice_key=OuterRef("invoice_key"))
    erp_sum = (
        applied(ERP, erp_keys)
        .filter(invoice_key=OuterRef("invoice_key"))
        .values("invoice_key")
        .annotate(s=Sum("applied_amount"))
        .values("s")
    )
    rows = (
        applied(BILLING, billing_keys)
        .values("invoice_key", "currency")
        .annotate(billing=Sum("applied_amount"))
        .annotate(erp=GroupSum(erp_sum))
        .annotate(diff=ExpressionWrapper(F("billing") - F("erp"), output_field=MONEY))
        .filter(beyond_tolerance("diff", "document"))
        .annotate(
            legal_entity_code=Subquery(invoice.values("legal_entity_code")[:1]),
            period=Subquery(invoice.values("period")[:1]),
        )
    )
    for row in _stream(rows):
        yield _payment_finding(scope, row, row["billing"], row["erp"])
    billing_has = applied(BILLING, billing_keys).filter(invoice_key=OuterRef("invoice_key"))
    erp_only = (
        applied(ERP, erp_keys)
        .filter(~Exists(billing_has))
        .values("invoice_key", "currency")
        .annotate(erp=Sum("applied_amount"))
        .annotate(
            legal_entity_code=Subquery(erp_invoice.values("legal_entity_code")[:1]),
            period=Subquery(erp_invoice.values("period")[:1]),
        )
    )
    for row in _stream(erp_only):
        yield _payment_finding(scope, row, Decimal(0), row["erp"])


def _payment_finding(scope, row, billing, erp) -> dict:
    payments = list(
        SnapshotPayment.objects.filter(run_id=scope.run_id, invoice_key=row["invoice_key"])
        .order_by("system", "payment_key")
        .values_list("system", "payment_key", "applied_amount")
    )
    return finding(
        Check.PAYMENT_APPLIED,
        row["invoice_key"],
        row,
        left=billing,
        right=erp,
        left_system=BILLING,
        right_system=ERP,
        description=f"Invoice {row['invoice_key']}: billing applied {billing} {row['currency']} of payments, "
        f"ERP applied {erp}.",
        invoice=row["invoice_key"],
        applications=[{"system": s, "payment": p, "amount": str(a)} for s, p, a in payments],
    )


# --- time and billing, projects, unposted invoices ---------------------------------------------------------------


def time_billed(scope: Scope) -> Iterator[dict]:
    """Per time-and-materials project and period: approved billable time at its bill rate against what the
    billing platform invoiced for it (its invoice lines carrying the time's charge references)."""
    value = ExpressionWrapper(F("hours") * F("bill_rate"), output_field=DecimalField(max_digits=28, decimal_places=6))
    approved = TimeEntry.objects.filter(
        billable=True,
        status__in=[TimeEntry.Status.APPROVED, TimeEntry.Status.BILLED],
        work_date__range=(scope.start, scope.end),
        bill_rate__isnull=False,
        project__billing_method=ContractType.TIME_AND_MATERIALS,
    ).order_by()
    charges = (
        BillingEvent.objects.filter(source=BillingEvent.Source.TIME, event_date__range=(scope.start, scope.end))
        .exclude(status=BillingEvent.Status.CANCELLED)
        .order_by()
    )
    if scope.entity:
        approved = approved.filter(project__legal_entity__code=scope.entity)
        charges = charges.filter(project__legal_entity__code=scope.entity)
    references = charges.annotate(ref=Concat(Value("BE-"), Cast("pk", CharField()), output_field=CharField()))
    lines = SnapshotInvoiceLine.objects.filter(run_id=scope.run_id, system=BILLING).order_by()
    invoiced = (
        lines.filter(reference__in=references.filter(project=OuterRef(OuterRef("project"))).values("ref"))
        .values("run")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    fields = {"code": F("project__code"), "legal_entity_code": F("project__legal_entity__code")}
    rows = (
        approved.values("project", "project__currency")
        .annotate(approved=Sum(value), **fields)
        .annotate(billed=GroupSum(invoiced))
        .annotate(diff=ExpressionWrapper(F("approved") - F("billed"), output_field=MONEY))
        .filter(beyond_tolerance("diff", "document", currency_field="project__currency"))
    )
    for row in _stream(rows):
        yield _time_finding(scope, row, row["approved"], row["billed"])
    has_time = approved.filter(project=OuterRef("project"))
    billed_only = (
        charges.filter(project__billing_method=ContractType.TIME_AND_MATERIALS)
        .filter(~Exists(has_time))
        .values("project", "project__currency")
        .annotate(**fields)
        .annotate(billed=GroupSum(invoiced))
        .filter(beyond_tolerance("billed", "document", currency_field="project__currency"))
    )
    for row in _stream(billed_only):
        yield _time_finding(scope, row, Decimal(0), row["billed"])


def _time_finding(scope, row, approved, billed) -> dict:
    row = {**row, "currency": row["project__currency"], "period": scope.period}
    unbilled = Decimal(approved) > Decimal(billed)
    check = Check.TIME_UNBILLED if unbilled else Check.TIME_BILLED_TWICE
    what = "not billed" if unbilled else "billed more than once"
    return finding(
        check,
        f"{row['code']}:{scope.period}",
        row,
        left=approved,
        right=billed,
        left_system="psa",
        right_system=BILLING,
        description=f"Project {row['code']} {scope.period}: approved billable time worth {Decimal(approved):.2f} "
        f"{row['currency']}, invoiced {Decimal(billed):.2f}: time {what}.",
        project=row["code"],
        project_id=row["project"],
    )


def projects_without_schedule(scope: Scope) -> Iterator[dict]:
    """Active projects with no active billing schedule in the console or in the billing platform."""
    in_console = BillingSchedule.objects.filter(project=OuterRef("pk"), status=BillingSchedule.Status.ACTIVE)
    # Only schedules the console recorded in a billing platform that lists its schedules are expected there.
    recorded = CrossReference.objects.filter(
        system__in=scope.schedule_systems,
        object_type="billing_schedule",
        object_id__in=BillingSchedule.objects.filter(project=OuterRef(OuterRef("pk"))).values("pk"),
    )
    in_billing = SnapshotBillingSchedule.objects.filter(
        run_id=scope.run_id, system=BILLING, project_key=OuterRef("code"), status="active"
    )
    billing_status = SnapshotBillingSchedule.objects.filter(
        run_id=scope.run_id, system=BILLING, project_key=OuterRef("code")
    ).order_by("-pk")
    projects = (
        Project.objects.filter(status=Project.Status.ACTIVE)
        .annotate(in_console=Exists(in_console), in_billing=Exists(in_billing), recorded=Exists(recorded))
        .filter(Q(in_console=False) | Q(in_billing=False, recorded=True))
        .order_by()
    )
    if scope.entity:
        projects = projects.filter(legal_entity__code=scope.entity)
    rows = projects.annotate(
        value=Coalesce("budget_amount", "contract__total_value", ZERO, output_field=MONEY),
        billing_status=Subquery(billing_status.values("status")[:1]),
    ).values(
        "pk",
        "code",
        "name",
        "currency",
        "value",
        "in_console",
        "in_billing",
        "recorded",
        "billing_status",
        legal_entity_code=F("legal_entity__code"),
    )
    for row in _stream(rows):
        where = ["the console"] if not row["in_console"] else []
        where += ["billing"] if not row["in_billing"] and (row["recorded"] or not row["in_console"]) else []
        status = f" (billing shows it {row['billing_status']})" if row["billing_status"] else ""
        yield finding(
            Check.PROJECT_NO_SCHEDULE,
            row["code"],
            {**row, "period": scope.period},
            left=row["value"],
            right=None,
            left_system="psa",
            right_system=BILLING,
            description=f"Project {row['code']} ({row['name']}) is active but has no active billing schedule in "
            f"{' or '.join(where)}{status}; {row['value']} {row['currency']} of contracted work cannot be billed.",
            project=row["code"],
            project_id=row["pk"],
            missing_in=where,
        )


def invoices_not_posted(scope: Scope, *, billing_pulled: bool) -> Iterator[dict]:
    """Invoices generated (a draft in the console, pending in billing) in the period but never posted."""
    # A draft that billing shows as posted is an invoice missing in ERP (raised by that check), not an unposted one.
    posted_in_billing = (
        _snap(scope, BILLING).filter(invoice_key=OuterRef("number")).exclude(status__in=NOT_POSTED_IN_BILLING)
    )
    drafts = (
        Invoice.objects.filter(status=Invoice.Status.DRAFT, issue_date__range=(scope.start, scope.end))
        .filter(~Exists(posted_in_billing))
        .order_by()
    )
    if scope.entity:
        drafts = drafts.filter(legal_entity__code=scope.entity)
    rows = drafts.values(
        "pk",
        "number",
        "currency",
        "total",
        customer_key=F("customer__number"),
        legal_entity_code=F("legal_entity__code"),
    )
    seen = set()
    for row in _stream(rows):
        seen.add(row["number"])
        yield _not_posted(scope, row, "console", row["number"], subject_id=row["pk"])
    if billing_pulled:
        pending = _in_scope(scope, _snap(scope, BILLING)).filter(status__in=BILLING_NOT_POSTED)
        fields = ("invoice_key", "external_id", "currency", "total", "customer_key", "legal_entity_code")
        for row in _stream(pending.values(*fields)):
            if row["invoice_key"] not in seen:
                yield _not_posted(scope, {**row, "number": row["invoice_key"]}, BILLING, row["external_id"])


def _not_posted(scope, row, where: str, external_id, subject_id=None) -> dict:
    return finding(
        Check.INVOICE_NOT_POSTED,
        row["number"],
        {**row, "period": scope.period},
        left=row["total"],
        right=None,
        left_system=where,
        right_system=ERP,
        description=f"Invoice {row['number']} ({row['total']} {row['currency']}) was generated but never posted.",
        invoice=row["number"],
        customer=row.get("customer_key"),
        invoice_id=subject_id,
        billing_id=external_id if where == BILLING else None,
    )


def dangling_cross_references(scope: Scope) -> Iterator[dict]:
    """Cross-references to invoices the billing platform or the ERP does not have (any period)."""
    for side, system in ((side, system) for side, systems in scope.systems.items() for system in systems):
        present = _snap(scope, side).filter(external_id=OuterRef("external_id"))
        invoice = Invoice.objects.filter(pk=OuterRef("object_id"))
        refs = (
            CrossReference.objects.filter(system=system, object_type="invoice")
            .order_by()
            .filter(~Exists(present))
            .annotate(
                number=Subquery(invoice.values("number")[:1]),
                currency=Subquery(invoice.values("currency")[:1]),
                total=Subquery(invoice.values("total")[:1], output_field=MONEY),
                legal_entity_code=Subquery(invoice.values("legal_entity__code")[:1]),
            )
        )
        if scope.entity:
            refs = refs.filter(legal_entity_code=scope.entity)
        fields = ("object_id", "external_id", "number", "currency", "total", "legal_entity_code")
        for row in _stream(refs.values(*fields)):
            yield finding(
                Check.DANGLING_XREF,
                f"{system.slug}:invoice:{row['external_id']}",
                {**row, "period": scope.period},
                left=row["total"],
                right=None,
                left_system="console",
                right_system=side,
                description=f"Invoice {row['number']} points at {system.name} record {row['external_id']}, "
                f"which {system.name} does not have.",
                invoice=row["number"],
                invoice_id=row["object_id"],
            )
