"""Reconciliation: runs that compare systems, the discrepancies they find, sign-off, and the run's snapshots.

A run pulls what it compares from each system into snapshot tables (bounded batches), then compares in
the database. A discrepancy has a stable identity (check + business key): it persists and ages across
runs, closes itself when a run no longer finds it, and reopens when it comes back.
"""

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.canonical.models import LegalEntity
from apps.core.history import history
from apps.core.models import Timestamped
from apps.core.money import AMOUNT, CurrencyField


class Check(models.TextChoices):
    """What a discrepancy compares."""

    INVOICE_MISSING_IN_ERP = "invoice_missing_in_erp", "Invoice in billing, missing in ERP"
    INVOICE_MISSING_IN_BILLING = "invoice_missing_in_billing", "Invoice in ERP, missing in billing"
    INVOICE_TOTAL = "invoice_total", "Invoice amount before tax differs (billing vs ERP)"
    INVOICE_TAX = "invoice_tax", "Invoice tax differs (billing vs ERP)"
    INVOICE_LINE = "invoice_line", "Invoice line differs (billing vs ERP)"
    PERIOD_TOTAL = "period_total", "Period total per legal entity differs (billing vs ERP)"
    AR_BALANCE = "ar_balance", "Customer open balance differs (ERP, billing, console)"
    PAYMENT_APPLIED = "payment_applied", "Payment applied differently (billing vs ERP)"
    TIME_UNBILLED = "time_unbilled", "Approved billable time not billed"
    TIME_BILLED_TWICE = "time_billed_twice", "Time billed more than once"
    PROJECT_NO_SCHEDULE = "project_no_schedule", "Active project without a billing schedule"
    INVOICE_NOT_POSTED = "invoice_not_posted", "Invoice generated but never posted"
    DANGLING_XREF = "dangling_xref", "Cross-reference to a record missing in the system"


# Checks whose figures roll up (or drill into) per-invoice discrepancies: summing their value at risk with the
# per-invoice ones would count the same money twice. "Unreconciled value" leaves them out.
ROLLUP_CHECKS = frozenset({Check.INVOICE_LINE, Check.PERIOD_TOTAL, Check.AR_BALANCE})


class ReconciliationRun(Timestamped):
    """One reconciliation of a period (and optionally one legal entity): pulls, comparisons, outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partial: some systems could not be compared"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Daily schedule"
        API = "api", "On demand (API or console)"
        COMMAND = "command", "Command line"
        DEMO = "demo", "Demo"

    period = models.CharField(max_length=7, help_text="Accounting month, YYYY-MM.")
    period_start = models.DateField()
    period_end = models.DateField()
    legal_entity = models.ForeignKey(
        LegalEntity, null=True, blank=True, on_delete=models.PROTECT, help_text="Empty: every legal entity."
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.API)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    stage = models.CharField(max_length=200, blank=True, help_text="What the run is doing now.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    not_compared = models.JSONField(
        default=list,
        blank=True,
        help_text="[{system, period, checks, reason}] for pulls that failed or came back incomplete.",
    )
    pulled = models.JSONField(default=dict, blank=True, help_text="Rows pulled per system and kind.")
    summary = models.JSONField(
        default=dict, blank=True, help_text="Discrepancies opened, still open, closed, reopened."
    )
    figures_digest = models.CharField(
        max_length=64, blank=True, help_text="Digest of the open discrepancies' figures; a sign-off approves it."
    )
    error = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["period", "legal_entity", "status"])]

    def __str__(self) -> str:
        scope = self.legal_entity.code if self.legal_entity_id else "all entities"
        return f"Reconciliation {self.period} ({scope}) #{self.pk} {self.get_status_display()}"

    @property
    def duration(self) -> datetime.timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class Discrepancy(Timestamped):
    """A difference a run found, identified by check + business key, with both values and the value at risk."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed (no longer found)"
        EXPLAINED = "explained", "Explained"

    check_type = models.CharField(max_length=32, choices=Check.choices, help_text="What is compared.")
    business_key = models.CharField(max_length=255, help_text="What is compared, e.g. the invoice number.")
    legal_entity = models.ForeignKey(LegalEntity, null=True, blank=True, on_delete=models.PROTECT)
    period = models.CharField(max_length=7, help_text="Accounting month, YYYY-MM.")
    period_close_date = models.DateField(help_text="Last day of the period: aging counts from here.")
    currency = CurrencyField()
    left_system = models.CharField(max_length=50, help_text="Where the left amount comes from.")
    right_system = models.CharField(max_length=50, help_text="Where the right amount comes from.")
    left_amount = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="Empty: missing on that side.")
    right_amount = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="Empty: missing on that side.")
    difference = models.DecimalField(**AMOUNT, help_text="left − right (a missing side counts as 0).")
    reporting_currency = CurrencyField()
    value_at_risk = models.DecimalField(**AMOUNT, help_text="|difference| in the reporting currency.")
    description = models.CharField(max_length=500)
    detail = models.JSONField(default=dict, blank=True, help_text="Customer, project, invoice, payment keys…")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    first_seen_run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="+")
    last_seen_run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="+")
    closed_by_run = models.ForeignKey(
        ReconciliationRun, null=True, blank=True, on_delete=models.PROTECT, related_name="closed_discrepancies"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    times_reopened = models.PositiveIntegerField(default=0)
    explanation = models.TextField(blank=True)
    explained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    explained_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["-value_at_risk", "check_type", "business_key"]
        verbose_name_plural = "discrepancies"
        constraints = [
            models.UniqueConstraint(
                fields=["check_type", "business_key"],
                name="unique_discrepancy_identity",
                violation_error_message="A discrepancy with this check and business key already exists.",
            )
        ]
        indexes = [models.Index(fields=["status", "period", "legal_entity"])]

    def __str__(self) -> str:
        return f"{self.get_check_type_display()}: {self.business_key} ({self.difference} {self.currency})"

    @property
    def days_open(self) -> int:
        end = self.closed_at if self.status == self.Status.CLOSED and self.closed_at else timezone.now()
        return (end - self.first_seen_at).days

    @property
    def days_past_close(self) -> int:
        """Days since the period closed (negative before the close date)."""
        return (timezone.localdate() - self.period_close_date).days


class PeriodSignOff(Timestamped):
    """A period's reconciliation prepared by one person and approved by another, voided if its figures change."""

    class Status(models.TextChoices):
        PREPARED = "prepared", "Prepared, awaiting approval"
        APPROVED = "approved", "Approved"
        VOIDED = "voided", "Voided: a later run changed the figures"

    period = models.CharField(max_length=7)
    legal_entity = models.ForeignKey(LegalEntity, null=True, blank=True, on_delete=models.PROTECT)
    run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="sign_offs")
    figures_digest = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREPARED)
    prepared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    prepared_at = models.DateTimeField()
    note = models.TextField(blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    voided_by_run = models.ForeignKey(
        ReconciliationRun, null=True, blank=True, on_delete=models.PROTECT, related_name="voided_sign_offs"
    )
    voided_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["-period", "-prepared_at"]

    def __str__(self) -> str:
        scope = self.legal_entity.code if self.legal_entity_id else "all entities"
        return f"Sign-off {self.period} ({scope}) {self.get_status_display()}"


# --- snapshots: a run's copy of what each system held (high volume, written in batches, no history) ---------


class SnapshotInvoice(models.Model):
    """One invoice as a system (billing, ERP) or the console held it during a run."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="+")
    system = models.CharField(max_length=16, help_text="billing, erp or console.")
    external_id = models.CharField(max_length=255, blank=True)
    invoice_key = models.CharField(max_length=255, help_text="The invoice number the console knows it by.")
    customer_key = models.CharField(max_length=255, blank=True)
    legal_entity_code = models.CharField(max_length=20, blank=True)
    period = models.CharField(max_length=7)
    issued_on = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(**AMOUNT, default=0)
    tax_total = models.DecimalField(**AMOUNT, default=0)
    total = models.DecimalField(**AMOUNT, default=0)
    amount_paid = models.DecimalField(**AMOUNT, default=0)
    balance = models.DecimalField(**AMOUNT, default=0)
    status = models.CharField(max_length=30, blank=True)

    class Meta:
        ordering = ["run", "system", "invoice_key"]
        indexes = [models.Index(fields=["run", "system", "invoice_key"])]

    def __str__(self) -> str:
        return f"{self.system} {self.invoice_key} {self.total} {self.currency}"


class SnapshotInvoiceLine(models.Model):
    """One invoice line (amount and tax) as a system held it during a run."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="+")
    system = models.CharField(max_length=16)
    invoice_key = models.CharField(max_length=255)
    line_number = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(**AMOUNT, default=0)
    tax_amount = models.DecimalField(**AMOUNT, default=0)
    reference = models.CharField(max_length=100, blank=True, help_text="Our charge reference, e.g. BE-42.")

    class Meta:
        ordering = ["run", "system", "invoice_key", "line_number"]
        indexes = [
            models.Index(fields=["run", "system", "invoice_key", "line_number"]),
            models.Index(fields=["run", "system", "reference"]),
        ]

    def __str__(self) -> str:
        return f"{self.system} {self.invoice_key}/{self.line_number}"


class SnapshotPayment(models.Model):
    """One application of a payment to an invoice (a payment settling N invoices is N rows)."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="+")
    system = models.CharField(max_length=16)
    payment_key = models.CharField(max_length=255)
    invoice_key = models.CharField(max_length=255)
    currency = models.CharField(max_length=3)
    applied_amount = models.DecimalField(**AMOUNT, default=0)
    received_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["run", "system", "invoice_key", "payment_key"]
        indexes = [models.Index(fields=["run", "system", "invoice_key"])]

    def __str__(self) -> str:
        return f"{self.system} {self.payment_key} → {self.invoice_key} {self.applied_amount}"


class SnapshotBillingSchedule(models.Model):
    """One billing schedule as the billing platform held it during a run."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="+")
    system = models.CharField(max_length=16)
    external_id = models.CharField(max_length=255)
    project_key = models.CharField(max_length=255, help_text="The project code the schedule bills.")
    status = models.CharField(max_length=30, blank=True)

    class Meta:
        ordering = ["run", "system", "project_key"]
        indexes = [models.Index(fields=["run", "system", "project_key"])]

    def __str__(self) -> str:
        return f"{self.system} {self.external_id} ({self.project_key}) {self.status}"
