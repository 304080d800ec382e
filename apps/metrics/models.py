"""Business metric snapshots, alert thresholds, the alerts they raised and every notification sent."""

from django.core.exceptions import ValidationError
from django.db import models

from apps.canonical.models import LegalEntity
from apps.core.history import history
from apps.core.models import Timestamped
from apps.core.money import CurrencyField
from apps.core.roles import ROLES

from .definitions import DEFINITIONS, Metric

FIGURE = {"max_digits": 20, "decimal_places": 4}
ROLE_CHOICES = [(name, name.replace("_", " ").capitalize()) for name in ROLES]


class MetricSnapshot(models.Model):
    """One computation of one metric for one period; its figures (none, one or many) are its values.

    Snapshots are never changed: each computation adds one, so the newest snapshot of a metric and period
    holds the current figures (a figure that fell to nothing disappears with it) and older ones are history.
    """

    metric = models.CharField(max_length=40, choices=Metric.choices)
    period = models.DateField(help_text="First day of the month the figures are for.")
    computed_at = models.DateTimeField()
    as_of = models.DateTimeField(help_text="The moment point-in-time figures are taken at (period end or now).")
    figure_count = models.PositiveIntegerField(default=0)

    history = history()

    class Meta:
        ordering = ["-computed_at", "metric", "-period"]
        indexes = [models.Index(fields=["metric", "period", "-computed_at"], name="metrics_snapshot_latest")]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.period:%Y-%m} computed {self.computed_at:%Y-%m-%d %H:%M}"


class MetricValue(models.Model):
    """One figure of one metric for one legal entity (empty: firm-wide), period and currency, as computed then."""

    snapshot = models.ForeignKey(MetricSnapshot, on_delete=models.CASCADE, related_name="values")
    metric = models.CharField(max_length=40, choices=Metric.choices)
    legal_entity = models.ForeignKey(
        LegalEntity, null=True, blank=True, on_delete=models.PROTECT, related_name="metric_values"
    )
    period = models.DateField(help_text="First day of the month the figure is for.")
    currency = CurrencyField(blank=True, help_text="For money figures: the currency of the amount.")
    value = models.DecimalField(**FIGURE)
    sample_size = models.PositiveIntegerField(default=0, help_text="How many records the figure is computed from.")
    computed_at = models.DateTimeField()

    history = history()

    class Meta:
        ordering = ["-period", "metric", "legal_entity__code", "currency", "-computed_at"]
        indexes = [models.Index(fields=["metric", "period", "computed_at"], name="metrics_value_period")]

    def __str__(self) -> str:
        entity = self.legal_entity.code if self.legal_entity_id else "firm"
        money = f" {self.currency}" if self.currency else ""
        return f"{self.get_metric_display()} {entity} {self.period:%Y-%m}: {self.value}{money}"

    @property
    def definition(self):
        return DEFINITIONS[self.metric]


class AlertRule(Timestamped):
    """A threshold on a metric, or on the value at risk of a new discrepancy, and the role it notifies."""

    class Kind(models.TextChoices):
        METRIC = "metric", "Metric threshold"
        DISCREPANCY = "discrepancy", "Discrepancy value at risk"

    class Comparison(models.TextChoices):
        ABOVE = "above", "Breached when above the threshold"
        BELOW = "below", "Breached when below the threshold"

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.METRIC)
    metric = models.CharField(max_length=40, choices=Metric.choices, blank=True)
    legal_entity = models.ForeignKey(
        LegalEntity, null=True, blank=True, on_delete=models.PROTECT, help_text="Empty: every legal entity."
    )
    firm_wide = models.BooleanField(
        default=False, help_text="Watch only the firm-wide figure (sync failure rate, exception aging)."
    )
    currency = CurrencyField(blank=True, help_text="Money thresholds: the currency they are in. Empty: any.")
    comparison = models.CharField(max_length=8, choices=Comparison.choices, default=Comparison.ABOVE)
    threshold = models.DecimalField(**FIGURE)
    renotify_step = models.DecimalField(
        **FIGURE,
        default=0,
        help_text="Notify again only when the figure is worse than the last one notified by more than this "
        "(0: any worsening).",
    )
    owner_role = models.CharField(max_length=40, choices=ROLE_CHOICES, help_text="Whose members are emailed.")
    active = models.BooleanField(default=True)
    description = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if self.kind == self.Kind.METRIC and not self.metric:
            raise ValidationError({"metric": "A metric threshold needs the metric it watches."})
        if self.kind == self.Kind.DISCREPANCY:
            if self.metric:
                raise ValidationError({"metric": "A discrepancy rule watches value at risk; leave the metric empty."})
            if self.comparison != self.Comparison.ABOVE:
                raise ValidationError({"comparison": "A discrepancy rule fires on a value at risk above a threshold."})
        if self.firm_wide and self.legal_entity_id:
            raise ValidationError({"firm_wide": "Watch either one legal entity or the firm-wide figure, not both."})
        if self.firm_wide and self.metric and not DEFINITIONS[self.metric].firm_wide:
            raise ValidationError(
                {"firm_wide": f"{DEFINITIONS[self.metric].name} has no firm-wide figure, only one per legal entity."}
            )
        if self.renotify_step is not None and self.renotify_step < 0:
            raise ValidationError({"renotify_step": "The step before notifying again cannot be negative."})

    def breached_by(self, value) -> bool:
        if self.comparison == self.Comparison.ABOVE:
            return value > self.threshold
        return value < self.threshold

    def worse_than(self, value, previous) -> bool:
        """Whether `value` is worse than `previous` by more than the re-notification step."""
        if self.comparison == self.Comparison.ABOVE:
            return value - previous > self.renotify_step
        return previous - value > self.renotify_step


class Alert(Timestamped):
    """A breach of one rule by one subject (a metric figure or a discrepancy): notified once, again if worse."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLEARED = "cleared", "Cleared"

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="alerts")
    subject_key = models.CharField(
        max_length=200, help_text="What breached: 'wip:ACME-US:2026-11:USD' or 'discrepancy:42'."
    )
    subject = models.CharField(max_length=300, help_text="The breach in words, as the email says it.")
    legal_entity = models.ForeignKey(LegalEntity, null=True, blank=True, on_delete=models.PROTECT)
    period = models.DateField(null=True, blank=True)
    currency = CurrencyField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    current_value = models.DecimalField(**FIGURE, help_text="The figure when last evaluated.")
    notified_value = models.DecimalField(**FIGURE, null=True, blank=True, help_text="The figure last notified.")
    notified_at = models.DateTimeField(null=True, blank=True)
    notification_count = models.PositiveIntegerField(default=0)
    first_breached_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["-first_breached_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject_key"],
                name="one_alert_per_rule_and_subject",
                violation_error_message="This rule already has an alert for that subject.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule.name}: {self.subject} ({self.get_status_display()})"


class AlertNotification(models.Model):
    """One email sent: a breach, a worsening, or a daily digest; the proof of who was told what and when."""

    class Kind(models.TextChoices):
        BREACH = "breach", "New breach"
        WORSENED = "worsened", "Worsened"
        DIGEST = "digest", "Daily digest"

    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    role = models.CharField(max_length=40, choices=ROLE_CHOICES)
    digest_date = models.DateField(null=True, blank=True, help_text="Digests: the day they cover.")
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    value = models.DecimalField(**FIGURE, null=True, blank=True)
    sent_at = models.DateTimeField()

    history = history()

    class Meta:
        ordering = ["-sent_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["role", "digest_date"],
                condition=models.Q(kind="digest"),
                name="one_digest_per_role_and_day",
                violation_error_message="This role already had its digest for that day.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.role} at {self.sent_at:%Y-%m-%d %H:%M}: {self.subject}"
