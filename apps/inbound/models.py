"""The inbound log: every delivery a source system sent, kept byte for byte, and the events it carried."""

import hashlib

from django.db import models

from apps.core.history import history
from apps.core.models import Timestamped
from apps.systems.models import ConnectedSystem


class Delivery(Timestamped):
    """One HTTP request from a source system: raw body, redacted headers, and how it was verified."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        BULK = "bulk", "Bulk upload"

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        DUPLICATE = "duplicate", "Duplicate (every event seen before)"
        REJECTED = "rejected", "Rejected"

    system = models.ForeignKey(ConnectedSystem, on_delete=models.PROTECT, related_name="deliveries")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WEBHOOK)
    status = models.CharField(max_length=16, choices=Status.choices)
    received_at = models.DateTimeField(db_index=True)
    method = models.CharField(max_length=10)
    url = models.TextField(help_text="The URL as the sender addressed it.")
    headers = models.JSONField(default=dict, help_text="Request headers; credentials and signatures redacted.")
    body = models.BinaryField(blank=True, help_text="Raw bytes as received (not kept for unverified requests).")
    body_sha256 = models.CharField(max_length=64, blank=True)
    body_size = models.PositiveIntegerField(default=0)
    content_type = models.CharField(max_length=120, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    verified = models.BooleanField(default=False)
    scheme = models.CharField(max_length=32, blank=True)
    secret_label = models.CharField(max_length=80, blank=True, help_text="Which active secret verified it.")
    signed_at = models.DateTimeField(null=True, blank=True)
    rejection = models.TextField(blank=True, help_text="Why the delivery was refused.")
    event_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0, help_text="Bulk: records refused.")
    correlation_id = models.CharField(max_length=64, db_index=True)

    # The raw body never changes after it is stored; copying it into every history row would only double storage.
    history = history(excluded_fields=["body"])

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["system", "-received_at"]),
            models.Index(fields=["status", "-received_at"], name="inbound_delivery_status"),  # list filtered by status
        ]

    def __str__(self) -> str:
        return f"{self.system.slug} {self.kind} {self.received_at:%Y-%m-%d %H:%M:%S} ({self.get_status_display()})"

    @staticmethod
    def digest(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()


class InboundEvent(Timestamped):
    """One business event from a delivery, unique per system on the vendor's idempotency key."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received, waiting to be processed"
        MAPPED = "mapped", "Mapped to canonical commands"
        SKIPPED = "skipped", "Skipped (not relevant)"
        EXCEPTION = "exception", "Exception"
        PROCESSED = "processed", "Processed"

    delivery = models.ForeignKey(Delivery, on_delete=models.PROTECT, related_name="events")
    system = models.ForeignKey(ConnectedSystem, on_delete=models.PROTECT, related_name="inbound_events")
    idempotency_key = models.CharField(max_length=255)
    vendor_event_id = models.CharField(max_length=255, blank=True)
    event_type = models.CharField(max_length=120, blank=True)
    schema_version = models.CharField(max_length=40, blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Index of the event in its delivery.")
    occurred_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(help_text="This event's part of the delivery, as sent. Never edited.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    profile = models.ForeignKey(
        "mapping.SourceProfile", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    commands = models.JSONField(default=list, blank=True, help_text="Canonical commands the profile produced.")
    error = models.JSONField(default=dict, blank=True, help_text="Business message, fix and technical detail.")
    correlation_id = models.CharField(max_length=64, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    history = history(excluded_fields=["payload"])  # the payload is never edited

    class Meta:
        ordering = ["-created_at", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "idempotency_key"],
                name="unique_inbound_event_per_system",
                violation_error_message="This system already delivered an event with that idempotency key.",
            )
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            # The admin's list order (newest first) without sorting every event.
            models.Index(fields=["-created_at", "position"], name="inbound_event_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.system.slug} {self.event_type or 'event'} {self.vendor_event_id or self.idempotency_key[:16]}"


class RejectionTally(models.Model):
    """Refused deliveries counted per system, reason and hour, so a flood of bad requests costs one row.

    The first `INBOUND_REJECTED_KEEP_PER_HOUR` refusals of an hour are also kept as deliveries (with their
    headers, for diagnosis); beyond that only this count grows.
    """

    system = models.ForeignKey(ConnectedSystem, on_delete=models.CASCADE, related_name="rejection_tallies")
    hour = models.DateTimeField(help_text="Start of the hour the refusals fall in.")
    reason = models.CharField(max_length=64, help_text="What kind of refusal (signature_invalid, unreadable, …).")
    count = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    last_remote_addr = models.GenericIPAddressField(null=True, blank=True)
    last_detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-hour", "system", "reason"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "hour", "reason"],
                name="unique_rejection_tally_per_system_hour_reason",
                violation_error_message="There is already a tally for this system, hour and reason.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.system.slug} {self.reason} {self.hour:%Y-%m-%d %H:00}: {self.count}"
