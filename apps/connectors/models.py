"""Connector state shared by every worker on every machine."""

from django.db import models

from apps.systems.models import ConnectedSystem


class RateLimitState(models.Model):
    """The outbound token bucket of one system, and how long the system told us to stay away.

    A counter rewritten on every outbound call, not a business record: no history is kept, because a
    history row per call would grow faster than the calls' own capture in the ledger and tell an
    auditor nothing. The ledger's step attempts record every call and every refusal instead.
    """

    system = models.OneToOneField(ConnectedSystem, on_delete=models.CASCADE, related_name="rate_limit_state")
    tokens = models.FloatField(help_text="Calls that may start now; below zero when callers have reserved a wait.")
    refreshed_at = models.DateTimeField(help_text="When `tokens` was last topped up.")
    blocked_until = models.DateTimeField(
        null=True, blank=True, help_text="No call to the system before this time (from its Retry-After)."
    )

    class Meta:
        ordering = ["system__slug"]

    def __str__(self) -> str:
        blocked = f", blocked until {self.blocked_until:%Y-%m-%d %H:%M:%S}" if self.blocked_until else ""
        return f"{self.system.slug}: {self.tokens:.2f} tokens{blocked}"
