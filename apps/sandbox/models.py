"""The built-in sandbox systems: their fault settings, the records they hold, their call log and webhooks."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.core.history import history
from apps.systems import secrets


class SandboxKind(models.TextChoices):
    CRM = "crm", "CRM (Salesforce-like)"
    PSA = "psa", "PSA (Kantata-like)"
    ERP = "erp", "ERP (NetSuite-like)"
    BILLING = "billing", "Billing (Chargebee-like)"
    HUBSPOT = "hubspot", "CRM (HubSpot CRM v3-like)"
    STRIPE = "stripe", "Billing (Stripe-like)"
    BUSINESS_CENTRAL = "business-central", "ERP (Business Central API v2.0-like)"


class Fault(models.TextChoices):
    """The fault a sandbox applied to one call (empty: answered normally)."""

    NONE = "", "None"
    THROTTLED = "throttled", "429 (throttle_next)"
    THROTTLE_WINDOW = "throttle_window", "429 (inside a Retry-After window)"
    FAILED = "failed", "503 (fail_next)"
    ERROR_RATE = "error_rate", "500/503 (error_rate)"
    TIMEOUT = "timeout", "Slept, nothing done (timeout_next)"
    DROPPED = "dropped", "Committed, answer delayed (drop_next)"
    REJECTED = "rejected", "Vendor error (reject_next)"
    RATE_LIMITED = "rate_limited", "429 (requests_per_minute reached)"


class Rejection(models.TextChoices):
    """Which of its documented errors a sandbox answers for reject_next, in that vendor's own shape."""

    VALIDATION = "validation", "Validation (400)"
    DUPLICATE = "duplicate", "Duplicate record (400/409)"
    CONCURRENCY = "concurrency", "Concurrency (record locked or changed: 412/423/429)"
    AUTH = "auth", "Authentication (401)"
    FORBIDDEN = "forbidden", "Permission (403)"
    NOT_FOUND = "not_found", "Not found (404)"


def validate_optional_reference(value) -> None:
    """Empty, or one secret reference such as {"env": "NAME"}."""
    if value in (None, {}):
        return
    secrets.validate_reference(value, where="credential")


class SandboxSystem(models.Model):
    """One simulated vendor system (one row per kind) with its fault settings and outbound webhook target."""

    kind = models.CharField(max_length=16, choices=SandboxKind.choices, unique=True)
    required_credential = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_optional_reference],
        help_text="Empty: any non-empty token or API key is accepted. Otherwise a reference such as "
        '{"env": "IC_SECRET_DEMO_NETSUITE_TOKEN"} whose value callers must present (bearer token, or Basic username).',
    )
    webhook_url = models.URLField(blank=True, help_text="Where this sandbox posts its webhooks (billing only).")
    webhook_credentials = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_optional_reference],
        help_text='A reference such as {"env": "IC_SECRET_DEMO_CHARGEBEE_WEBHOOK_BASIC"} '
        'whose value is "user:password", sent as HTTP Basic with every webhook.',
    )

    latency_ms = models.PositiveIntegerField(default=0, help_text="Added to every answer.")
    error_rate = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of calls (0 to 1) answered 500/503 at random before anything is done.",
    )
    random_seed = models.IntegerField(
        null=True, blank=True, help_text="Makes error_rate's draws repeatable; empty = truly random."
    )
    random_draws = models.PositiveIntegerField(default=0, help_text="Draws made since the seed was set.")
    requests_per_minute = models.PositiveIntegerField(
        default=0,
        help_text="The vendor's rate limit: calls served in any 60 seconds (Chargebee counts the requests of the "
        "past 60 seconds); beyond it a call answers 429 with Retry-After. 0: no limit.",
    )
    fail_next = models.PositiveIntegerField(default=0, help_text="The next N calls answer 503.")
    throttle_next = models.PositiveIntegerField(default=0, help_text="The next N calls answer 429 with Retry-After.")
    retry_after_seconds = models.PositiveIntegerField(default=5)
    throttled_until = models.DateTimeField(
        null=True, blank=True, help_text="Until then every call answers 429 with the seconds remaining."
    )
    timeout_next = models.PositiveIntegerField(
        default=0, help_text="The next N calls sleep timeout_seconds and do nothing."
    )
    timeout_seconds = models.PositiveIntegerField(default=30)
    drop_next = models.PositiveIntegerField(
        default=0, help_text="The next N writes are committed, then answered only after drop_seconds."
    )
    drop_seconds = models.PositiveIntegerField(default=30)
    reject_next = models.PositiveIntegerField(
        default=0, help_text="The next N calls answer the vendor's error chosen in reject_with; nothing is done."
    )
    reject_with = models.CharField(max_length=20, choices=Rejection.choices, default=Rejection.VALIDATION)
    duplicate_webhooks = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Each outbound webhook is delivered this many times."
    )

    history = history()

    class Meta:
        ordering = ["kind"]

    def __str__(self) -> str:
        return self.get_kind_display()

    def has_faults(self, now) -> bool:
        """Whether a call now could meet a fault (so the row must be locked and looked at closely)."""
        return bool(
            self.fail_next
            or self.throttle_next
            or self.timeout_next
            or self.drop_next
            or self.reject_next
            or self.error_rate
            or (self.throttled_until is not None and self.throttled_until > now)
        )


class SandboxRecord(models.Model):
    """One record held by a sandbox system (an Account, a workspace, an invoice, a tax code, ...)."""

    kind = models.CharField(max_length=16, choices=SandboxKind.choices)
    object_type = models.CharField(max_length=40, help_text="The vendor's name: Account, workspaces, invoice, ...")
    internal_id = models.CharField(max_length=40, help_text="The id the sandbox gave the record.")
    external_id = models.CharField(
        max_length=120,
        blank=True,
        default="",
        help_text="The caller's id for it (NetSuite externalId, a charge reference); empty when it has none.",
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        ordering = ["kind", "object_type", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_type", "internal_id"], name="sandbox_record_unique_internal_id"
            ),
            models.UniqueConstraint(
                fields=["kind", "object_type", "external_id"],
                condition=~Q(external_id=""),
                name="sandbox_record_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        external = f" (external {self.external_id})" if self.external_id else ""
        return f"{self.kind} {self.object_type} {self.internal_id}{external}"


class SandboxIdempotencyKey(models.Model):
    """An idempotency key a sandbox has seen, with the answer it gave, replayed for every repeat."""

    kind = models.CharField(max_length=16, choices=SandboxKind.choices)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField()
    headers = models.JSONField(default=dict, blank=True, help_text="Answer headers to replay, e.g. Location.")
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = history()

    class Meta:
        ordering = ["kind", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="sandbox_idempotency_key_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} → {self.status}"


class SandboxCall(models.Model):
    """One request a sandbox received and how it answered.

    Kept without history on purpose: it is the simulator's own high-volume call log, written once per
    request and never edited, so a history row per call would double the writes and tell nothing new.
    """

    kind = models.CharField(max_length=16, choices=SandboxKind.choices)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    query = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True, help_text="Request headers; credentials masked.")
    body = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True, db_index=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    received_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0, help_text="Time until the answer was ready.")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.TextField(blank=True)
    fault = models.CharField(max_length=20, choices=Fault.choices, blank=True, default="")
    replayed = models.BooleanField(default=False, help_text="Answered from a stored idempotency key.")

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [models.Index(fields=["kind", "received_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.method} {self.path} → {self.response_status}"


class WebhookStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class SandboxWebhook(models.Model):
    """One event a sandbox sent (or tried to send) to its webhook URL, with every delivery attempt's status."""

    kind = models.CharField(max_length=16, choices=SandboxKind.choices)
    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=64)
    target_url = models.URLField()
    body = models.JSONField(default=dict)
    copies = models.PositiveIntegerField(default=1, help_text="Times the event is to be delivered (duplicates).")
    attempts = models.PositiveIntegerField(default=0, help_text="HTTP requests made, retries included.")
    delivered = models.PositiveIntegerField(default=0, help_text="Copies the target accepted with a 2xx.")
    status_codes = models.JSONField(default=list, blank=True, help_text="Status of each attempt (null: no answer).")
    status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.PENDING)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_type} {self.event_id} ({self.status})"
