"""The money: billing schedules and events, invoices with lines and tax, payments, revenue schedules."""

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.history import history
from apps.core.models import Timestamped
from apps.core.money import AMOUNT, QUANTITY, RATE, CurrencyField

from .commercial import Contract, ContractType
from .delivery import Milestone, Project
from .parties import Customer, LegalEntity


class BillingSchedule(Timestamped):
    """How and when a project is invoiced; owned by the billing platform."""

    class Frequency(models.TextChoices):
        MONTHLY = "monthly", "Monthly in arrears"
        MILESTONE = "milestone", "On milestone completion"
        UPFRONT = "upfront", "Upfront"
        QUARTERLY = "quarterly", "Quarterly"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        SUPERSEDED = "superseded", "Superseded by a revision"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="billing_schedules")
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT)
    billing_method = models.CharField(max_length=24, choices=ContractType.choices)
    frequency = models.CharField(max_length=16, choices=Frequency.choices, default=Frequency.MONTHLY)
    start_date = models.DateField()
    currency = CurrencyField()
    revision = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)

    history = history()

    class Meta:
        ordering = ["project", "-revision"]
        constraints = [models.UniqueConstraint(fields=["project", "revision"], name="unique_billing_schedule_revision")]

    def __str__(self) -> str:
        return f"{self.project.code} schedule r{self.revision} ({self.get_frequency_display()})"


class BillingEvent(Timestamped):
    """Something billable that happened: approved time, an expense, a completed milestone, a fee."""

    class Source(models.TextChoices):
        TIME = "time", "Time"
        EXPENSE = "expense", "Expense"
        MILESTONE = "milestone", "Milestone"
        FIXED_FEE = "fixed_fee", "Fixed fee"
        RETAINER = "retainer", "Retainer"
        USAGE = "usage", "Usage"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent to billing"
        INVOICED = "invoiced", "Invoiced"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="billing_events")
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT)
    milestone = models.ForeignKey(Milestone, null=True, blank=True, on_delete=models.PROTECT)
    source = models.CharField(max_length=16, choices=Source.choices)
    event_date = models.DateField()
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(**QUANTITY, default=1)
    unit_price = models.DecimalField(**RATE)
    amount = models.DecimalField(**AMOUNT)
    currency = CurrencyField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    invoice = models.ForeignKey(
        "canonical.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="billing_events"
    )

    history = history()

    class Meta:
        ordering = ["-event_date", "project"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"{self.project.code} {self.get_source_display()} {self.event_date} {self.amount} {self.currency}"


class Invoice(Timestamped):
    """A customer invoice: generated in billing, posted to ERP AR, reported to CRM."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        POSTED = "posted", "Posted"
        PARTIALLY_PAID = "partially_paid", "Partially paid"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    number = models.CharField(max_length=40, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices", help_text="Bill-to.")
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices")
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="invoices")
    issue_date = models.DateField()
    due_date = models.DateField()
    currency = CurrencyField()
    subtotal = models.DecimalField(**AMOUNT, default=0)
    tax_total = models.DecimalField(**AMOUNT, default=0)
    total = models.DecimalField(**AMOUNT, default=0)
    amount_paid = models.DecimalField(**AMOUNT, default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    posted_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["-issue_date", "number"]
        indexes = [models.Index(fields=["status", "issue_date"])]

    def __str__(self) -> str:
        return f"{self.number} {self.customer.name} {self.total} {self.currency}"

    @property
    def balance_due(self):
        return self.total - self.amount_paid

    def clean(self):
        if self.due_date and self.issue_date and self.due_date < self.issue_date:
            raise ValidationError({"due_date": "An invoice cannot be due before it is issued."})
        if self.subtotal is not None and self.tax_total is not None and self.total is not None:
            if self.subtotal + self.tax_total != self.total:
                raise ValidationError(
                    {"total": f"Total {self.total} is not subtotal {self.subtotal} plus tax {self.tax_total}."}
                )


class InvoiceLine(Timestamped):
    """One line of an invoice with its tax."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField()
    description = models.CharField(max_length=300)
    service_item = models.CharField(max_length=80, blank=True)
    quantity = models.DecimalField(**QUANTITY, default=1)
    unit_price = models.DecimalField(**RATE)
    amount = models.DecimalField(**AMOUNT)
    tax_code = models.CharField(max_length=40, blank=True)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0, help_text="e.g. 0.2000 for 20 %.")
    tax_amount = models.DecimalField(**AMOUNT, default=0)
    billing_event = models.ForeignKey(BillingEvent, null=True, blank=True, on_delete=models.SET_NULL)

    history = history()

    class Meta:
        ordering = ["invoice", "line_number"]
        constraints = [models.UniqueConstraint(fields=["invoice", "line_number"], name="unique_invoice_line_number")]

    def __str__(self) -> str:
        return f"{self.invoice.number} line {self.line_number}"


class Payment(Timestamped):
    """Money received from a customer, applied to an invoice."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        APPLIED = "applied", "Applied"
        REVERSED = "reversed", "Reversed"

    reference = models.CharField(max_length=80, unique=True, help_text="Bank or processor reference.")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    received_on = models.DateField()
    amount = models.DecimalField(**AMOUNT)
    currency = CurrencyField()
    method = models.CharField(max_length=40, blank=True, help_text="card, ach, wire, …")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)

    history = history()

    class Meta:
        ordering = ["-received_on", "reference"]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency}"

    def clean(self):
        if self.amount is not None and self.amount <= 0:
            raise ValidationError({"amount": "A payment amount must be positive; record reversals with their status."})
        if self.invoice_id and self.currency and self.invoice.currency != self.currency:
            raise ValidationError(
                {
                    "currency": f"Payment in {self.currency} cannot be applied to invoice {self.invoice.number} "
                    f"in {self.invoice.currency}."
                }
            )


class RevenueSchedule(Timestamped):
    """How a contract's revenue is recognised over time."""

    class Method(models.TextChoices):
        STRAIGHT_LINE = "straight_line", "Straight line"
        AS_BILLED = "as_billed", "As billed"
        MILESTONE = "milestone", "On milestone"
        PERCENT_COMPLETE = "percent_complete", "Percent complete"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="revenue_schedules")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL)
    method = models.CharField(max_length=24, choices=Method.choices)
    total_amount = models.DecimalField(**AMOUNT)
    currency = CurrencyField()

    history = history()

    class Meta:
        ordering = ["contract"]

    def __str__(self) -> str:
        return f"{self.contract.number} revenue ({self.get_method_display()})"


class RevenueScheduleLine(Timestamped):
    """The revenue planned (and recognised) for one period."""

    schedule = models.ForeignKey(RevenueSchedule, on_delete=models.CASCADE, related_name="lines")
    period_start = models.DateField()
    amount = models.DecimalField(**AMOUNT)
    recognized = models.BooleanField(default=False)

    history = history()

    class Meta:
        ordering = ["schedule", "period_start"]
        constraints = [models.UniqueConstraint(fields=["schedule", "period_start"], name="unique_revenue_period")]

    def __str__(self) -> str:
        return f"{self.schedule} {self.period_start}"


class ExchangeRate(Timestamped):
    """An exchange rate published by the ERP for a date: 1 `base` = `rate` `quote`."""

    base = CurrencyField()
    quote = CurrencyField()
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    effective_date = models.DateField()
    source = models.CharField(max_length=50, blank=True, help_text="System slug it was pulled from.")

    history = history()

    class Meta:
        ordering = ["-effective_date", "base", "quote"]
        constraints = [
            models.UniqueConstraint(fields=["base", "quote", "effective_date"], name="unique_exchange_rate_per_day")
        ]

    def __str__(self) -> str:
        return f"1 {self.base} = {self.rate} {self.quote} on {self.effective_date}"
