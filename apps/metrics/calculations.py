"""Each metric as one or two aggregate queries: the database groups and sums, Python only shapes the groups.

Every function takes a period and returns its figures (one per legal entity and currency where that
applies). Nothing here loops over records; the loops below run over the handful of groups a query returns.
"""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Avg,
    BigIntegerField,
    Case,
    Count,
    DateTimeField,
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, NullIf, TruncDate

from apps.canonical.models import (
    BillingEvent,
    BillingSchedule,
    Contract,
    Customer,
    Expense,
    Invoice,
    LegalEntity,
    Milestone,
    Opportunity,
    Payment,
    Project,
    Resource,
    TimeEntry,
)
from apps.core.money import AMOUNT, quantize
from apps.core.objects import BusinessObject
from apps.reconciliation.models import ROLLUP_CHECKS, Discrepancy
from apps.sync.models import Transaction

from .definitions import Metric
from .periods import Period

MONEY = DecimalField(max_digits=30, decimal_places=8)
ZERO = Value(Decimal(0), output_field=MONEY)
DAY = datetime.timedelta(days=1)
FIGURE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Figure:
    """One computed figure before it is stored."""

    metric: str
    legal_entity_id: int | None
    currency: str
    value: Decimal
    sample_size: int


def _days(duration) -> Decimal:
    """A duration (an average from the database) in days, to four places."""
    if duration is None:
        return Decimal(0)
    if not isinstance(duration, datetime.timedelta):  # some backends hand back microseconds
        duration = datetime.timedelta(microseconds=int(duration))
    micros = Decimal(duration.days * 86_400_000_000 + duration.seconds * 1_000_000 + duration.microseconds)
    return (micros / Decimal(86_400_000_000)).quantize(FIGURE_PLACES)


def _money(amount, currency: str) -> Decimal:
    return quantize(Decimal(str(amount or 0)), currency)


def _average_days(metric: str, rows) -> list[Figure]:
    return [Figure(metric, row["entity"], "", _days(row["average"]), row["count"]) for row in rows if row["count"] > 0]


def project_activation_time(period: Period) -> list[Figure]:
    first_active = (
        Project.history.filter(id=OuterRef("pk"), status=Project.Status.ACTIVE)
        .order_by("history_date")
        .values("history_date")[:1]
    )
    rows = (
        Project.objects.filter(
            contract__opportunity__stage=Opportunity.Stage.CLOSED_WON, contract__opportunity__close_date__isnull=False
        )
        .annotate(activated_at=Subquery(first_active, output_field=DateTimeField()))
        .filter(activated_at__gte=period.start_at(), activated_at__lt=period.end_at())
        .values(entity=F("legal_entity_id"))
        .annotate(
            average=Avg(
                ExpressionWrapper(
                    TruncDate("activated_at") - F("contract__opportunity__close_date"), output_field=DurationField()
                )
            ),
            count=Count("pk"),
        )
        .order_by("entity")
    )
    return _average_days(Metric.PROJECT_ACTIVATION_TIME, rows)


def time_to_bill(period: Period) -> list[Figure]:
    rows = (
        TimeEntry.objects.filter(
            billable=True,
            approved_at__isnull=False,
            billing_event__invoice__issue_date__gte=period.start,
            billing_event__invoice__issue_date__lte=period.end,
        )
        .exclude(billing_event__invoice__status=Invoice.Status.VOID)
        .values(entity=F("project__legal_entity_id"))
        .annotate(
            average=Avg(
                ExpressionWrapper(
                    F("billing_event__invoice__issue_date") - TruncDate("approved_at"), output_field=DurationField()
                )
            ),
            count=Count("pk"),
        )
        .order_by("entity")
    )
    return _average_days(Metric.TIME_TO_BILL, rows)


def invoice_lag(period: Period) -> list[Figure]:
    rows = (
        BillingEvent.objects.filter(invoice__issue_date__gte=period.start, invoice__issue_date__lte=period.end)
        .exclude(invoice__status=Invoice.Status.VOID)
        .values(entity=F("invoice__legal_entity_id"))
        .annotate(
            average=Avg(ExpressionWrapper(F("invoice__issue_date") - F("event_date"), output_field=DurationField())),
            count=Count("pk"),
        )
        .order_by("entity")
    )
    return _average_days(Metric.INVOICE_LAG, rows)


# Which legal entity a ledger transaction is about: the entity of its subject record, where it has one.
SUBJECT_ENTITY = {
    BusinessObject.LEGAL_ENTITY: (LegalEntity, F("pk")),
    BusinessObject.CUSTOMER: (Customer, F("legal_entity_id")),
    BusinessObject.OPPORTUNITY: (Opportunity, F("legal_entity_id")),
    BusinessObject.CONTRACT: (Contract, F("legal_entity_id")),
    BusinessObject.PROJECT: (Project, F("legal_entity_id")),
    BusinessObject.MILESTONE: (Milestone, F("project__legal_entity_id")),
    BusinessObject.TIME_ENTRY: (TimeEntry, F("project__legal_entity_id")),
    BusinessObject.EXPENSE: (Expense, F("project__legal_entity_id")),
    BusinessObject.BILLING_SCHEDULE: (BillingSchedule, F("project__legal_entity_id")),
    BusinessObject.BILLING_EVENT: (BillingEvent, F("project__legal_entity_id")),
    BusinessObject.INVOICE: (Invoice, F("legal_entity_id")),
    BusinessObject.PAYMENT: (Payment, Coalesce("invoice__legal_entity_id", "customer__legal_entity_id")),
    BusinessObject.RESOURCE: (Resource, F("legal_entity_id")),
}


def subject_entity() -> Case:
    """SQL for the legal entity of a transaction's subject (NULL when it has none or the subject is unknown)."""
    return Case(
        *[
            When(
                subject_type=object_type,
                then=Subquery(model.objects.filter(pk=OuterRef("subject_id")).values(entity=path)[:1]),
            )
            for object_type, (model, path) in SUBJECT_ENTITY.items()
        ],
        default=Value(None),
        output_field=BigIntegerField(),
    )


def _per_entity_and_firm(transactions, **aggregates) -> list[tuple[int | None, dict]]:
    """The aggregates per legal entity of the subject, then over every transaction (legal entity None)."""
    rows = (
        transactions.annotate(entity=subject_entity())
        .filter(entity__isnull=False)
        .values("entity")
        .annotate(**aggregates)
        .order_by("entity")
    )
    return [(row["entity"], row) for row in rows] + [(None, transactions.aggregate(**aggregates))]


def sync_failure_rate(period: Period) -> list[Figure]:
    started = Transaction.objects.filter(created_at__gte=period.start_at(), created_at__lt=period.end_at())
    figures = []
    for entity, row in _per_entity_and_firm(
        started, total=Count("pk"), failed=Count("pk", filter=Q(exception_at__isnull=False))
    ):
        if row["total"]:
            rate = (Decimal(100) * row["failed"] / row["total"]).quantize(FIGURE_PLACES)
            figures.append(Figure(Metric.SYNC_FAILURE_RATE, entity, "", rate, row["total"]))
    return figures


def exception_aging(period: Period) -> list[Figure]:
    as_of = period.as_of()
    # Still open at the end of the period: in exception now, or handled (updated) only after it.
    still_open = Q(status=Transaction.Status.EXCEPTION) | Q(exception_at__isnull=False, updated_at__gt=as_of)
    open_then = (
        Transaction.objects.filter(still_open, exception_at__lte=as_of)
        .exclude(resolved_at__lte=as_of)
        .exclude(completed_at__lte=as_of)
    )
    age = ExpressionWrapper(Value(as_of, output_field=DateTimeField()) - F("exception_at"), DurationField())
    return [
        Figure(Metric.EXCEPTION_AGING, entity, "", _days(row["average"]), row["count"])
        for entity, row in _per_entity_and_firm(open_then, average=Avg(age), count=Count("pk"))
        if row["count"]
    ]


def unreconciled_value(period: Period) -> list[Figure]:
    rows = (
        Discrepancy.objects.filter(status=Discrepancy.Status.OPEN, period=period.label)
        .exclude(check_type__in=ROLLUP_CHECKS)  # they restate per-invoice differences: counted once
        .values(entity=F("legal_entity_id"), money=F("reporting_currency"))
        .annotate(total=Sum("value_at_risk", output_field=MONEY), count=Count("pk"))
        .order_by("entity", "money")
    )
    return [
        Figure(Metric.UNRECONCILED_VALUE, row["entity"], row["money"], _money(row["total"], row["money"]), row["count"])
        for row in rows
    ]


def _not_invoiced_by(prefix: str, day: datetime.date) -> Q:
    invoice = f"{prefix}__invoice"
    return (
        Q(**{f"{invoice}__isnull": True})
        | Q(**{f"{invoice}__issue_date__gt": day})
        | Q(**{f"{invoice}__status": Invoice.Status.VOID})
    )


def wip(period: Period) -> list[Figure]:
    as_of, day = period.as_of(), period.as_of_date()
    approved = [TimeEntry.Status.APPROVED, TimeEntry.Status.BILLED]
    approved_by_then = Q(approved_at__isnull=True) | Q(approved_at__lt=as_of)
    time_rows = (
        TimeEntry.objects.filter(approved_by_then, billable=True, status__in=approved, work_date__lte=day)
        .filter(_not_invoiced_by("billing_event", day))
        .values(
            entity=F("project__legal_entity_id"), money=Coalesce(NullIf("currency", Value("")), "project__currency")
        )
        .annotate(
            total=Sum(ExpressionWrapper(F("hours") * Coalesce("bill_rate", ZERO), output_field=MONEY)),
            count=Count("pk"),
        )
        .order_by("entity", "money")
    )
    expense_rows = (
        Expense.objects.filter(
            approved_by_then, billable=True, status__in=[Expense.Status.APPROVED, Expense.Status.BILLED]
        )
        .filter(incurred_on__lte=day)
        .filter(_not_invoiced_by("billing_event", day))
        .values(entity=F("project__legal_entity_id"), money=F("currency"))
        .annotate(total=Sum("amount", output_field=MONEY), count=Count("pk"))
        .order_by("entity", "money")
    )
    groups: dict[tuple, list] = {}
    for row in [*time_rows, *expense_rows]:
        total, count = groups.setdefault((row["entity"], row["money"]), [Decimal(0), 0])
        groups[(row["entity"], row["money"])] = [total + Decimal(str(row["total"] or 0)), count + row["count"]]
    return [
        Figure(Metric.WIP, entity, currency, _money(total, currency), count)
        for (entity, currency), (total, count) in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1]))
    ]


def backlog(period: Period) -> list[Figure]:
    day = period.as_of_date()
    billed = (
        Invoice.objects.filter(contract=OuterRef("pk"), issue_date__lte=day)
        .exclude(status=Invoice.Status.VOID)
        .order_by()
        .values("contract")
        .annotate(billed=Sum("subtotal"))
        .values("billed")
    )
    rows = (
        Contract.objects.filter(status=Contract.Status.ACTIVE, total_value__isnull=False, start_date__lte=day)
        .annotate(billed=Coalesce(Subquery(billed, output_field=DecimalField(**AMOUNT)), ZERO))
        .annotate(remaining=Greatest(ExpressionWrapper(F("total_value") - F("billed"), output_field=MONEY), ZERO))
        .values(entity=F("legal_entity_id"), money=F("currency"))
        .annotate(total=Sum("remaining", output_field=MONEY), count=Count("pk"))
        .order_by("entity", "money")
    )
    return [
        Figure(Metric.BACKLOG, row["entity"], row["money"], _money(row["total"], row["money"]), row["count"])
        for row in rows
    ]


def dso(period: Period) -> list[Figure]:
    day = period.as_of_date()
    issued = Invoice.objects.exclude(status=Invoice.Status.VOID)
    sales = {
        (row["legal_entity_id"], row["currency"]): row
        for row in issued.filter(issue_date__gte=period.start, issue_date__lte=day)
        .values("legal_entity_id", "currency")
        .annotate(total=Sum("total", output_field=MONEY), count=Count("pk"))
        .order_by()
    }
    if not sales:
        return []
    invoiced = {
        (row["legal_entity_id"], row["currency"]): Decimal(str(row["total"] or 0))
        for row in issued.filter(issue_date__lte=day)
        .values("legal_entity_id", "currency")
        .annotate(total=Sum("total", output_field=MONEY))
        .order_by()
    }
    paid = {
        (row["entity"], row["money"]): Decimal(str(row["total"] or 0))
        for row in Payment.objects.filter(received_on__lte=day, invoice__issue_date__lte=day)
        .exclude(status=Payment.Status.REVERSED)
        .exclude(invoice__status=Invoice.Status.VOID)
        .values(entity=F("invoice__legal_entity_id"), money=F("invoice__currency"))
        .annotate(total=Sum("amount", output_field=MONEY))
        .order_by()
    }
    figures = []
    for key in sorted(sales):
        sold = Decimal(str(sales[key]["total"] or 0))
        if sold <= 0:
            continue
        receivable = invoiced.get(key, Decimal(0)) - paid.get(key, Decimal(0))
        value = (receivable / sold * period.days()).quantize(FIGURE_PLACES)
        figures.append(Figure(Metric.DSO, key[0], key[1], value, sales[key]["count"]))
    return figures


CALCULATIONS = {
    Metric.PROJECT_ACTIVATION_TIME: project_activation_time,
    Metric.TIME_TO_BILL: time_to_bill,
    Metric.INVOICE_LAG: invoice_lag,
    Metric.SYNC_FAILURE_RATE: sync_failure_rate,
    Metric.UNRECONCILED_VALUE: unreconciled_value,
    Metric.EXCEPTION_AGING: exception_aging,
    Metric.WIP: wip,
    Metric.BACKLOG: backlog,
    Metric.DSO: dso,
}
