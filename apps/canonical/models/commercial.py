"""What was sold: opportunities, contracts with lines and versioned amendments, and rate cards."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from apps.core.errors import BusinessError
from apps.core.history import history
from apps.core.models import EffectiveDated, EffectiveQuerySet, Timestamped
from apps.core.money import AMOUNT, QUANTITY, RATE, CurrencyField

from .parties import Customer, LegalEntity


class RateCard(Timestamped):
    """A named price list (e.g. 'Standard US 2026'); its rates live in effective-dated versions."""

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    currency = CurrencyField()
    description = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class RateCardFrozen(BusinessError):
    """An approved (or retired) rate card version and its rates never change: a price change is a new version."""

    code = "rate_card_frozen"


LINE_PRICE_FIELDS = ("version_id", "role", "bill_rate", "cost_rate", "currency", "unit")


def _new_version_fix(version) -> str:
    return (
        f"A price change is a new version: create a version of rate card {version.rate_card.code} with the new "
        "rates, starting the day they apply, and approve it (the old version ends the day before)."
    )


class RateCardVersion(EffectiveDated, Timestamped):
    """One version of a rate card, in force over a period once approved; approved versions never overlap."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        RETIRED = "retired", "Retired"

    rate_card = models.ForeignKey(RateCard, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    approved_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)

    objects = EffectiveQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["rate_card__code", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["rate_card", "version"],
                name="unique_rate_card_version",
                violation_error_message="This rate card already has a version with that number.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.rate_card.code} v{self.version} ({self.get_status_display()}, {self.period_label()})"

    FROZEN = (Status.APPROVED, Status.RETIRED)

    def save(self, *args, **kwargs):
        refusal = self.frozen_refusal()
        if refusal:
            raise RateCardFrozen(refusal, fix=_new_version_fix(self), technical=f"rate card version {self.pk}")
        super().save(*args, **kwargs)

    def frozen_refusal(self, *, deleting: bool = False) -> str:
        """Why this change (or deletion) is refused because the stored version is approved or retired; '' if not.

        Allowed on an approved version: retiring it, ending it when it is open-ended, and its notes.
        """
        if self.pk is None:
            return ""
        stored = (
            RateCardVersion.objects.filter(pk=self.pk)
            .values("status", "rate_card_id", "version", "effective_from", "effective_to")
            .first()
        )
        if stored is None or stored["status"] not in self.FROZEN:
            return ""
        label = f"Rate card {self.rate_card.code} version {stored['version']} is {stored['status']}"
        if deleting:
            return f"{label}, so it cannot be deleted: invoices and replays are priced from it."
        problems = []
        if stored["rate_card_id"] != self.rate_card_id or stored["version"] != self.version:
            problems.append("it cannot move to another rate card or number")
        if stored["effective_from"] != self.effective_from:
            problems.append(f"its start ({stored['effective_from']}) cannot move")
        if stored["effective_to"] is not None and stored["effective_to"] != self.effective_to:
            problems.append(f"its end ({stored['effective_to']}) cannot move")
        if stored["status"] == self.Status.RETIRED and self.status != self.Status.RETIRED:
            problems.append("a retired version cannot come back")
        elif stored["status"] == self.Status.APPROVED and self.status == self.Status.DRAFT:
            problems.append("it cannot go back to draft")
        if stored["status"] == self.Status.RETIRED and stored["effective_to"] != self.effective_to:
            problems.append("its end cannot change")
        if not problems:
            return ""
        return f"{label}: {'; '.join(dict.fromkeys(problems))}."

    def clean(self):
        self.clean_period()
        if self.status == self.Status.APPROVED and self.rate_card_id and self.effective_from:
            clash = (
                RateCardVersion.objects.filter(rate_card_id=self.rate_card_id, status=self.Status.APPROVED)
                .overlapping(self.effective_from, self.effective_to)
                .exclude(pk=self.pk)
                .first()
            )
            if clash is not None:
                raise ValidationError(
                    f"Rate card {self.rate_card.code} version {self.version} ({self.period_label()}) overlaps "
                    f"approved version {clash.version} ({clash.period_label()}). Approved versions of one rate "
                    f"card may not overlap: end version {clash.version} the day before this one starts, or "
                    f"change this version's dates."
                )


class RateCardLine(Timestamped):
    """The bill and cost rate for one role in one rate card version."""

    sensitive_fields = ("bill_rate", "cost_rate")

    version = models.ForeignKey(RateCardVersion, on_delete=models.CASCADE, related_name="lines")
    role = models.CharField(max_length=80)
    bill_rate = models.DecimalField(**RATE, help_text="Hourly rate billed to the customer.")
    cost_rate = models.DecimalField(**RATE, null=True, blank=True, help_text="Hourly cost for margin reporting.")
    currency = CurrencyField()
    unit = models.CharField(max_length=16, default="hour")

    history = history()

    class Meta:
        ordering = ["version", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "role"],
                name="unique_rate_card_line_role",
                violation_error_message="This rate card version already has a rate for that role.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.version.rate_card.code} v{self.version.version}: {self.role}"

    def save(self, *args, **kwargs):
        refusal = self.frozen_refusal()
        if refusal:
            raise RateCardFrozen(refusal, fix=_new_version_fix(self.version), technical=f"rate card line {self.pk}")
        super().save(*args, **kwargs)

    def frozen_refusal(self, *, deleting: bool = False) -> str:
        """Why adding, changing or deleting this rate is refused (its version is approved or retired); '' if not.

        Lines are added to an approved version only together with the version itself (a configuration import
        creating a version as approved marks its new lines `created_with_its_version`), never to one that exists.
        """
        stored = None
        if self.pk is not None:
            stored = RateCardLine.objects.filter(pk=self.pk).values(*LINE_PRICE_FIELDS).first()
        version_ids = {self.version_id, stored["version_id"] if stored else None} - {None}
        frozen = dict(
            RateCardVersion.objects.filter(pk__in=version_ids, status__in=RateCardVersion.FROZEN).values_list(
                "pk", "status"
            )
        )
        if not frozen:
            return ""
        if stored is None and getattr(self, "created_with_its_version", False):
            return ""  # written together with a version created approved (a configuration import)
        version = self.version
        label = f"Rate card {version.rate_card.code} version {version.version} is {frozen.get(version.pk, 'approved')}"
        if deleting:
            return f"{label}, so its rate for role '{self.role}' cannot be deleted."
        if stored is None:
            return f"{label}, so no rate can be added to it (role '{self.role}')."
        changed = [
            name.replace("_id", "").replace("_", " ")
            for name in LINE_PRICE_FIELDS
            if stored[name] != getattr(self, name)
        ]
        if not changed:
            return ""
        return f"{label}, so the {', '.join(changed)} of role '{stored['role']}' cannot change."

    def clean(self):
        if self.bill_rate is not None and self.bill_rate < 0:
            raise ValidationError({"bill_rate": "A bill rate cannot be negative."})
        if self.cost_rate is not None and self.cost_rate < 0:
            raise ValidationError({"cost_rate": "A cost rate cannot be negative."})


@receiver(pre_delete, sender=RateCardVersion)
@receiver(pre_delete, sender=RateCardLine)
def refuse_deleting_frozen_rates(sender, instance, **kwargs):
    """Also covers deletes that bypass delete(): querysets, cascades from a rate card, admin bulk actions."""
    refusal = instance.frozen_refusal(deleting=True)
    if refusal:
        version = instance if isinstance(instance, RateCardVersion) else instance.version
        raise RateCardFrozen(refusal, fix=_new_version_fix(version), technical=f"{sender.__name__} {instance.pk}")


class ContractType(models.TextChoices):
    FIXED_FEE = "fixed_fee", "Fixed fee"
    TIME_AND_MATERIALS = "time_and_materials", "Time & materials"
    RETAINER = "retainer", "Retainer"
    SUBSCRIPTION = "subscription", "Subscription"
    MILESTONE = "milestone", "Milestone"
    USAGE = "usage", "Usage"


class Opportunity(Timestamped):
    """A CRM deal; closed-won starts the opportunity-to-project workflow."""

    class Stage(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED_WON = "closed_won", "Closed won"
        CLOSED_LOST = "closed_lost", "Closed lost"

    number = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="opportunities")
    legal_entity = models.ForeignKey(LegalEntity, null=True, blank=True, on_delete=models.PROTECT)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.OPEN)
    amount = models.DecimalField(**AMOUNT, null=True, blank=True)
    currency = CurrencyField()
    close_date = models.DateField(null=True, blank=True)
    contract_type = models.CharField(max_length=24, choices=ContractType.choices, blank=True)
    rate_card = models.ForeignKey(RateCard, null=True, blank=True, on_delete=models.PROTECT)
    region = models.CharField(max_length=40, blank=True)

    history = history()

    class Meta:
        ordering = ["-close_date", "number"]
        verbose_name_plural = "opportunities"

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class Contract(Timestamped):
    """An engagement contract; its current terms are the latest applied amendment (see `version`)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    number = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="contracts", help_text="Sold-to.")
    bill_to = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="billed_contracts",
        help_text="Empty: the sold-to account's bill-to.",
    )
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="contracts")
    opportunity = models.ForeignKey(Opportunity, null=True, blank=True, on_delete=models.SET_NULL)
    contract_type = models.CharField(max_length=24, choices=ContractType.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    currency = CurrencyField()
    total_value = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="Empty for open-ended T&M.")
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    rate_card = models.ForeignKey(RateCard, null=True, blank=True, on_delete=models.PROTECT, related_name="contracts")
    payment_terms_days = models.PositiveIntegerField(default=30)
    version = models.PositiveIntegerField(default=1, help_text="Current version: 1 + applied amendments.")

    history = history()

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    def clean(self):
        if self.end_date and self.start_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": "The contract cannot end before it starts."})
        if self.contract_type == ContractType.TIME_AND_MATERIALS and not self.rate_card_id:
            raise ValidationError({"rate_card": "A time & materials contract needs a rate card."})

    def invoice_recipient(self) -> Customer:
        return self.bill_to or self.customer.invoice_recipient()


class ContractLine(Timestamped):
    """One service line of a contract: what is billed, how, and for how much."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField()
    service_item = models.CharField(max_length=80, help_text="Service item code as the CRM/CPQ names it.")
    description = models.CharField(max_length=300, blank=True)
    billing_method = models.CharField(max_length=24, choices=ContractType.choices)
    quantity = models.DecimalField(**QUANTITY, default=1)
    unit_price = models.DecimalField(**RATE, null=True, blank=True)
    amount = models.DecimalField(**AMOUNT, null=True, blank=True)
    currency = CurrencyField()
    introduced_by = models.ForeignKey(
        "ContractAmendment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="lines",
        help_text="The amendment that added or last changed this line (empty: original contract).",
    )

    history = history()

    class Meta:
        ordering = ["contract", "line_number"]
        constraints = [models.UniqueConstraint(fields=["contract", "line_number"], name="unique_contract_line_number")]

    def __str__(self) -> str:
        return f"{self.contract.number} line {self.line_number}: {self.service_item}"


class ContractAmendment(Timestamped):
    """A numbered change to a contract's terms; applying it makes its version the contract's current one."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        APPLIED = "applied", "Applied"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="amendments")
    version = models.PositiveIntegerField(help_text="The contract version this amendment creates (2, 3, …).")
    effective_from = models.DateField()
    description = models.TextField()
    new_total_value = models.DecimalField(**AMOUNT, null=True, blank=True)
    new_end_date = models.DateField(null=True, blank=True)
    new_rate_card_version = models.ForeignKey(
        RateCardVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="amendments"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    applied_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["contract", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "version"],
                name="unique_contract_amendment_version",
                violation_error_message="This contract already has an amendment with that version.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.contract.number} amendment v{self.version}"
