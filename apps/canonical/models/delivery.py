"""The work: projects with tasks and milestones, time entries and expenses."""

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.history import history
from apps.core.models import Timestamped
from apps.core.money import AMOUNT, QUANTITY, RATE, CurrencyField

from .commercial import Contract, ContractType, RateCard
from .parties import Customer, LegalEntity, Resource


class Project(Timestamped):
    """A delivery project (PSA) with its financial counterpart (ERP); bills per its contract."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        ACTIVE = "active", "Active"
        ON_HOLD = "on_hold", "On hold"
        CLOSED = "closed", "Closed"

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="projects")
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="projects")
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="projects")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    billing_method = models.CharField(max_length=24, choices=ContractType.choices)
    rate_card = models.ForeignKey(RateCard, null=True, blank=True, on_delete=models.PROTECT, related_name="projects")
    project_manager = models.ForeignKey(
        Resource, null=True, blank=True, on_delete=models.SET_NULL, related_name="managed_projects"
    )
    currency = CurrencyField()
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    budget_amount = models.DecimalField(**AMOUNT, null=True, blank=True)
    baseline_version = models.PositiveIntegerField(default=1, help_text="Contract version the plan follows.")

    history = history()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self):
        if self.end_date and self.start_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": "The project cannot end before it starts."})


class Task(Timestamped):
    """A task (work breakdown element) of a project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    billable = models.BooleanField(default=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="subtasks")

    history = history()

    class Meta:
        ordering = ["project", "code"]
        constraints = [models.UniqueConstraint(fields=["project", "code"], name="unique_task_code_per_project")]

    def __str__(self) -> str:
        return f"{self.project.code}/{self.code} {self.name}"


class Milestone(Timestamped):
    """A billable milestone; milestone contracts bill when it is completed, not on raw time."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        COMPLETED = "completed", "Completed"
        BILLED = "billed", "Billed"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="milestones")
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    due_date = models.DateField(null=True, blank=True)
    amount = models.DecimalField(**AMOUNT)
    currency = CurrencyField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    completed_on = models.DateField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["project", "due_date", "code"]
        constraints = [models.UniqueConstraint(fields=["project", "code"], name="unique_milestone_code_per_project")]

    def __str__(self) -> str:
        return f"{self.project.code}/{self.code} {self.name}"

    def clean(self):
        if self.status in {self.Status.COMPLETED, self.Status.BILLED} and not self.completed_on:
            raise ValidationError({"completed_on": "A completed milestone needs its completion date."})


class TimeEntry(Timestamped):
    """Hours a resource worked on a project on a date; billed at the rate card version in force that day."""

    sensitive_fields = ("bill_rate", "cost_rate")

    class Status(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        BILLED = "billed", "Billed"
        WRITTEN_OFF = "written_off", "Written off"

    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="time_entries")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="time_entries")
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="time_entries")
    work_date = models.DateField()
    hours = models.DecimalField(**QUANTITY)
    role = models.CharField(max_length=80, blank=True, help_text="Empty: the resource's role.")
    billable = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBMITTED)
    approved_at = models.DateTimeField(null=True, blank=True)
    bill_rate = models.DecimalField(**RATE, null=True, blank=True)
    cost_rate = models.DecimalField(**RATE, null=True, blank=True)
    currency = CurrencyField(blank=True)
    billing_event = models.ForeignKey(
        "canonical.BillingEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="time_entries"
    )

    history = history()

    class Meta:
        ordering = ["-work_date", "resource"]
        verbose_name_plural = "time entries"
        indexes = [
            models.Index(fields=["project", "status", "work_date"]),
            models.Index(fields=["-work_date", "-id"], name="canonical_time_newest"),  # the admin's list order
        ]

    def __str__(self) -> str:
        return f"{self.resource.name} {self.work_date} {self.hours}h on {self.project.code}"

    def clean(self):
        if self.hours is not None and not (0 < self.hours <= 24):
            raise ValidationError({"hours": f"{self.hours} hours in one day is not possible; give 0 < hours ≤ 24."})

    @property
    def billing_role(self) -> str:
        return self.role or self.resource.role


class Expense(Timestamped):
    """An expense a resource incurred on a project, billable at cost unless the contract says otherwise."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        BILLED = "billed", "Billed"

    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="expenses")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="expenses")
    incurred_on = models.DateField()
    category = models.CharField(max_length=60)
    description = models.CharField(max_length=500, blank=True)
    amount = models.DecimalField(**AMOUNT)
    currency = CurrencyField()
    billable = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBMITTED)
    approved_at = models.DateTimeField(null=True, blank=True)
    billing_event = models.ForeignKey(
        "canonical.BillingEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="expenses"
    )

    history = history()

    class Meta:
        ordering = ["-incurred_on", "resource"]

    def __str__(self) -> str:
        return f"{self.resource.name} {self.incurred_on} {self.category} {self.amount} {self.currency}"

    def clean(self):
        if self.amount is not None and self.amount <= 0:
            raise ValidationError({"amount": "An expense amount must be positive; record refunds as credits."})
