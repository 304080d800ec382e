"""What each business metric means: code, name, unit and the definition shown beside every figure."""

from dataclasses import dataclass

from django.db import models


class Unit(models.TextChoices):
    DAYS = "days", "Days"
    PERCENT = "percent", "Percent"
    MONEY = "money", "Money"


class Metric(models.TextChoices):
    PROJECT_ACTIVATION_TIME = "project_activation_time", "Project activation time"
    TIME_TO_BILL = "time_to_bill", "Time to bill approved time"
    INVOICE_LAG = "invoice_lag", "Invoice lag"
    SYNC_FAILURE_RATE = "sync_failure_rate", "Sync failure rate"
    UNRECONCILED_VALUE = "unreconciled_value", "Unreconciled value"
    EXCEPTION_AGING = "exception_aging", "Exception aging"
    WIP = "wip", "Work in progress (WIP)"
    BACKLOG = "backlog", "Backlog"
    DSO = "dso", "Days sales outstanding (DSO)"


@dataclass(frozen=True)
class MetricDefinition:
    """How one metric is computed, in words a finance user reads, and what its figure is measured in."""

    code: str
    name: str
    unit: str
    definition: str
    firm_wide: bool = False  # also one figure over the whole firm (no legal entity)

    @property
    def is_money(self) -> bool:
        return self.unit == Unit.MONEY


DEFINITIONS: dict[str, MetricDefinition] = {
    d.code: d
    for d in [
        MetricDefinition(
            Metric.PROJECT_ACTIVATION_TIME,
            Metric.PROJECT_ACTIVATION_TIME.label,
            Unit.DAYS,
            "Average number of days from an opportunity's close date (closed won) to the day its project first "
            "became active, over the projects activated in the period, per legal entity of the project.",
        ),
        MetricDefinition(
            Metric.TIME_TO_BILL,
            Metric.TIME_TO_BILL.label,
            Unit.DAYS,
            "Average number of days from the approval of a billable time entry to the issue date of the invoice "
            "that bills it, over the time entries invoiced in the period (void invoices excluded), per legal "
            "entity of the project.",
        ),
        MetricDefinition(
            Metric.INVOICE_LAG,
            Metric.INVOICE_LAG.label,
            Unit.DAYS,
            "Average number of days from a billing event's date (the work, expense, milestone or fee being "
            "billed) to the issue date of the invoice that carries it, over the billing events invoiced in the "
            "period (void invoices excluded), per legal entity of the invoice.",
        ),
        MetricDefinition(
            Metric.SYNC_FAILURE_RATE,
            Metric.SYNC_FAILURE_RATE.label,
            Unit.PERCENT,
            "Share of ledger transactions started in the period that became an exception at least once "
            "(whether resolved since or not), in percent of all transactions started in the period; per legal "
            "entity of the record a transaction is about (customer, project, invoice…, where it has one), and "
            "firm-wide over every transaction (no legal entity).",
            firm_wide=True,
        ),
        MetricDefinition(
            Metric.UNRECONCILED_VALUE,
            Metric.UNRECONCILED_VALUE.label,
            Unit.MONEY,
            "Sum of the value at risk of the period's reconciliation discrepancies that are open when the figure "
            "is computed (explained and closed ones excluded), in the firm's reporting currency, per legal entity "
            "of the discrepancy. Roll-up checks (invoice lines, period totals, AR balances) restate per-invoice "
            "differences and are left out, so no money counts twice. Each snapshot keeps the figure of its day.",
        ),
        MetricDefinition(
            Metric.EXCEPTION_AGING,
            Metric.EXCEPTION_AGING.label,
            Unit.DAYS,
            "Average age in days of the ledger transactions in exception at the end of the period (now for the "
            "current period), counted from when each became an exception; per legal entity of the record a "
            "transaction is about, where it has one, and firm-wide over every open exception (no legal entity).",
            firm_wide=True,
        ),
        MetricDefinition(
            Metric.WIP,
            Metric.WIP.label,
            Unit.MONEY,
            "Approved billable work not yet invoiced at the end of the period (now for the current period): "
            "hours × bill rate of approved time entries worked by then plus approved billable expenses incurred "
            "by then, that no invoice issued by then (and not void) bills; per legal entity of the project and "
            "currency of the entry. Time without a bill rate counts as zero.",
        ),
        MetricDefinition(
            Metric.BACKLOG,
            Metric.BACKLOG.label,
            Unit.MONEY,
            "Contracted value not yet billed at the end of the period (now for the current period): for each "
            "active contract started by then with a total value, its total value less the subtotals of its "
            "non-void invoices issued by then (never below zero); per legal entity and currency of the contract.",
        ),
        MetricDefinition(
            Metric.DSO,
            Metric.DSO.label,
            Unit.DAYS,
            "Days sales outstanding: accounts receivable at the end of the period (totals of non-void invoices "
            "issued by then less payments received by then on them, reversed payments excluded) divided by the "
            "totals invoiced in the period, times the days in the period; per legal entity of the invoice and "
            "currency. No figure when nothing was invoiced in the period.",
        ),
    ]
}


def definition_of(code: str) -> MetricDefinition:
    return DEFINITIONS[code]
