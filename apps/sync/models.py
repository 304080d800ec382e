"""The transaction ledger: one transaction per workflow execution, its steps, and every attempt of each step.

The database, not the task queue, is the source of truth for what must run: a step is due when its
status is pending or waiting_retry and `next_attempt_at` has passed, or when it is running and its
lease has expired (its worker died). django-q2 only carries "run step N now" messages, which may be
lost or delivered twice; claiming a step is an atomic conditional update, so a duplicate message is a
no-op.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from apps.core.errors import ErrorClass
from apps.core.history import history
from apps.core.models import Timestamped
from apps.core.money import AMOUNT, CurrencyField
from apps.systems.models import ConnectedSystem


class Workflow(models.TextChoices):
    INBOUND_EVENT = "inbound_event", "Inbound event mapping"
    OPPORTUNITY_TO_PROJECT = "opportunity_to_project", "Opportunity to project"
    CUSTOMER_UPDATE = "customer_update", "Customer update"
    RESOURCE_UPDATE = "resource_update", "Resource update"
    TIME_TO_BILL = "time_to_bill", "Time and expenses to bill"
    MILESTONE_TO_BILL = "milestone_to_bill", "Milestone to bill"
    INVOICE_TO_ERP = "invoice_to_erp", "Invoice to ERP and CRM"
    PAYMENT_TO_CRM = "payment_to_crm", "Payment to ERP and CRM"
    CONTRACT_AMENDMENT = "contract_amendment", "Contract amendment"
    REFERENCE_DATA = "reference_data", "Reference data"


class Transaction(Timestamped):
    """One execution of a workflow, from its trigger to completion or an exception someone must handle."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        WAITING_RETRY = "waiting_retry", "Waiting to retry"
        COMPLETED = "completed", "Completed"
        EXCEPTION = "exception", "Exception"
        RESOLVED = "resolved", "Resolved by hand"
        IGNORED = "ignored", "Ignored"

    OPEN_STATUSES = (Status.PENDING, Status.RUNNING, Status.WAITING_RETRY)
    CLOSED_STATUSES = (Status.COMPLETED, Status.RESOLVED, Status.IGNORED)
    PROBLEM_STATUSES = (Status.EXCEPTION, Status.WAITING_RETRY)  # the exception queue

    workflow = models.CharField(max_length=40, choices=Workflow.choices, db_index=True)
    correlation_id = models.CharField(max_length=64, unique=True)
    root_correlation_id = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="The correlation ID of what started the chain (an inbound delivery, a request); children inherit it.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    business_key = models.CharField(
        max_length=255, blank=True, db_index=True, help_text="What this is about, e.g. 'salesforce:opportunity:006…'."
    )
    subject = models.CharField(max_length=300, blank=True, help_text="A readable label for lists.")
    subject_type = models.CharField(max_length=32, blank=True)
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    inbound_event = models.ForeignKey(
        "inbound.InboundEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The transaction that started this one (e.g. the inbound event it came from).",
    )
    command_index = models.PositiveIntegerField(null=True, blank=True)
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    input = models.JSONField(default=dict, help_text="The command as received. Never edited.")
    input_override = models.JSONField(
        null=True, blank=True, help_text="An edited copy of the input used on re-runs (the original stays above)."
    )
    state = models.JSONField(default=dict, blank=True, help_text="What earlier steps produced (IDs, amounts).")
    value_at_risk = models.DecimalField(**AMOUNT, null=True, blank=True)
    currency = CurrencyField(blank=True)
    owner_role = models.CharField(max_length=40, blank=True, help_text="The team that handles its exceptions.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="owned_transactions"
    )
    error_class = models.CharField(max_length=24, choices=ErrorClass.CHOICES, blank=True)
    error_message = models.TextField(blank=True)
    error_fix = models.TextField(blank=True)
    error_technical = models.TextField(blank=True)
    exception_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution_reason = models.TextField(blank=True)

    history = history(excluded_fields=["state"])

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "command_index"],
                condition=Q(parent__isnull=False),
                name="one_transaction_per_command",
            ),
            models.UniqueConstraint(
                fields=["inbound_event"],
                condition=Q(workflow="inbound_event", replay_of__isnull=True),
                name="one_mapping_transaction_per_event",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"]),
            models.Index(fields=["workflow", "status"]),
            # The console home's 30-day figures: transactions started, and completed ones' durations.
            models.Index(fields=["created_at"], name="sync_txn_created"),
            models.Index(fields=["status", "completed_at"], name="sync_txn_status_completed"),
            # The exception queue's order (`problem_since`: when it failed, newest first), over every transaction
            # and over the open problems alone, so a page of the queue reads its 50 rows from an index.
            models.Index(Coalesce("exception_at", "updated_at").desc(), F("id").desc(), name="sync_txn_problem_since"),
            models.Index(
                Coalesce("exception_at", "updated_at").desc(),
                F("id").desc(),
                condition=Q(status__in=["exception", "waiting_retry"]),
                name="sync_txn_problem_queue",
            ),
            # Money at risk and exception ages of unsettled transactions (queue summary, console home, groups),
            # read from the index alone.
            models.Index(
                fields=["status", "currency"],
                include=["id", "value_at_risk", "exception_at"],
                condition=Q(status__in=["pending", "running", "waiting_retry", "exception"]),
                name="sync_txn_unsettled_money",
            ),
            # "Is this member of an exception group still open?", probed by id from a group's members.
            models.Index(
                fields=["id"],
                include=["status", "currency", "value_at_risk"],
                condition=Q(status__in=["pending", "running", "waiting_retry", "exception"]),
                name="sync_txn_unsettled_id",
            ),
            # What a bulk re-run of a team's filter would take (the transaction list's plan summary: re-runnable
            # ones per currency, by owner role and workflow), from an index over the open problems alone: over the
            # wider indexes the planner's choice flipped with ANALYZE's sample (47 ms or 163 ms at 1,000,000 rows).
            models.Index(
                fields=["owner_role", "workflow", "currency"],
                include=["id", "status", "value_at_risk"],
                condition=Q(status__in=["exception", "waiting_retry"]),
                name="sync_txn_rerunnable",
            ),
            # A team's lists (owner role, workflow, status): counted, dated and summed from the index alone.
            models.Index(
                fields=["owner_role", "workflow", "status"],
                include=["created_at", "currency", "value_at_risk"],
                name="sync_txn_team",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_workflow_display()}: {self.subject or self.correlation_id} ({self.get_status_display()})"

    @property
    def effective_input(self) -> dict:
        return self.input_override if self.input_override is not None else self.input


class Step(Timestamped):
    """One step of a transaction: a validation, a canonical write or a call to one target system."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        WAITING_RETRY = "waiting_retry", "Waiting to retry"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    DUE_STATUSES = (Status.PENDING, Status.WAITING_RETRY)

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="steps")
    sequence = models.PositiveIntegerField()
    name = models.CharField(max_length=60)
    title = models.CharField(max_length=200, blank=True)
    target_system = models.ForeignKey(
        ConnectedSystem, null=True, blank=True, on_delete=models.PROTECT, related_name="steps"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When a run message was last queued (the sweep does not re-queue it at once)."
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    leased_by = models.CharField(max_length=120, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    input_override = models.JSONField(
        null=True, blank=True, help_text="Edited input for this step on a re-run (kept in history)."
    )
    output = models.JSONField(default=dict, blank=True)
    request = models.JSONField(default=dict, blank=True, help_text="Last outbound request (secrets masked).")
    response = models.JSONField(default=dict, blank=True, help_text="Last response (secrets masked).")
    error_class = models.CharField(max_length=24, choices=ErrorClass.CHOICES, blank=True)
    error_message = models.TextField(blank=True)
    error_fix = models.TextField(blank=True)
    error_technical = models.TextField(blank=True)

    history = history(excluded_fields=["request", "response", "output"])

    class Meta:
        ordering = ["transaction", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["transaction", "sequence"], name="unique_step_sequence"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="sync_step_due"),
            models.Index(fields=["created_at"], name="sync_step_created"),  # the admin's date drill-down
            models.Index(fields=["status", "lease_expires_at"], name="sync_step_lease"),
        ]

    def __str__(self) -> str:
        return f"{self.transaction.correlation_id} #{self.sequence} {self.name} ({self.get_status_display()})"


class StepAttempt(models.Model):
    """One try of a step, including tries whose worker died (recorded as abandoned when the lease ran out).

    No history table: the attempt log is itself the audit record of what the engine did. Rows are only
    ever written by the engine (a start, then one outcome), never edited by people; the step's own
    history records every change of status that follows from them.
    """

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Abandoned (worker stopped mid-step)"
        SUPERSEDED = "superseded", "Finished after its lease was taken over"

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    worker = models.CharField(max_length=120)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    error_class = models.CharField(max_length=24, choices=ErrorClass.CHOICES, blank=True)
    error_message = models.TextField(blank=True)
    error_technical = models.TextField(blank=True)
    http_calls = models.JSONField(default=list, blank=True, help_text="Every outbound call (masked).")
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["step", "number"]
        constraints = [models.UniqueConstraint(fields=["step", "number"], name="unique_attempt_number")]
        indexes = [
            models.Index(fields=["started_at"], name="sync_attempt_started"),  # the home's 24-hour figures
            models.Index(fields=["outcome", "step", "number"], name="sync_attempt_outcome"),  # the admin, by outcome
        ]

    def __str__(self) -> str:
        return f"{self.step} attempt {self.number} ({self.get_outcome_display()})"


class ExceptionGroup(Timestamped):
    """Exceptions with one cause (workflow, error class and code, target system, the missing thing), as one row.

    The engine files every new exception under its group (`apps/sync/groups.py`); a resolved group opens again
    when the same cause comes back.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        IGNORED = "ignored", "Ignored"

    fingerprint = models.CharField(max_length=64, unique=True, help_text="Hash of the cause; same cause, same group.")
    workflow = models.CharField(max_length=40, choices=Workflow.choices, db_index=True)
    error_class = models.CharField(max_length=24, choices=ErrorClass.CHOICES, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    target_system = models.ForeignKey(
        ConnectedSystem, null=True, blank=True, on_delete=models.PROTECT, related_name="exception_groups"
    )
    missing_key = models.CharField(max_length=300, blank=True, help_text="The missing thing, e.g. value_map:x=y.")
    missing_label = models.CharField(max_length=300, blank=True, help_text="The missing thing in words.")
    context = models.JSONField(default=dict, blank=True, help_text="The latest failure's context (for fix links).")
    title = models.CharField(max_length=500, help_text="The latest failure's message.")
    fix = models.TextField(blank=True)
    owner_role = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="exception_groups"
    )
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    times_seen = models.PositiveIntegerField(default=0, help_text="Failures filed under this group, ever.")
    resolved_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["-last_seen"]
        indexes = [models.Index(fields=["status", "-last_seen"], name="sync_group_status_seen")]

    def __str__(self) -> str:
        return f"{self.get_workflow_display()}: {self.missing_label or self.title}"


class ExceptionGroupMember(Timestamped):
    """A transaction filed under a group (its latest cause), with that failure's context."""

    group = models.ForeignKey(ExceptionGroup, on_delete=models.CASCADE, related_name="members")
    transaction = models.OneToOneField(Transaction, on_delete=models.CASCADE, related_name="exception_membership")
    context = models.JSONField(default=dict, blank=True)
    step_sequence = models.PositiveIntegerField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["group", "-created_at"]
        indexes = [models.Index(fields=["group", "transaction"], name="sync_member_group_txn")]

    def __str__(self) -> str:
        return f"{self.transaction.correlation_id} in group {self.group_id}"


class ExceptionGroupComment(Timestamped):
    """A note on a group by a person (what they found, who they asked)."""

    group = models.ForeignKey(ExceptionGroup, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()

    history = history()

    class Meta:
        ordering = ["group", "created_at"]

    def __str__(self) -> str:
        return f"Comment by {self.author} on group {self.group_id}"


class RerunBatch(Timestamped):
    """A bulk re-run: planned from a filter (or a group), then run by a task with progress; it can be cancelled."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    description = models.CharField(max_length=300)
    filters = models.JSONField(default=dict, blank=True, help_text="The filter the plan was made from.")
    group = models.ForeignKey(ExceptionGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="batches")
    transaction_ids = models.JSONField(default=list, help_text="The transactions planned, in order.")
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    replayed = models.PositiveIntegerField(default=0)
    refused = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = history(excluded_fields=["transaction_ids"])

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "re-run batches"

    def __str__(self) -> str:
        return f"Re-run #{self.pk}: {self.description} ({self.get_status_display()})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.CANCELLED)
