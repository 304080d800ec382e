"""Who: legal entities, the customer hierarchy, and the consultants who deliver the work."""

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.history import history
from apps.core.models import Timestamped
from apps.core.money import RATE, CurrencyField


class LegalEntity(Timestamped):
    """A legal entity / subsidiary of the firm that contracts, invoices and books revenue."""

    code = models.CharField(max_length=20, unique=True, help_text="e.g. 'ACME-US'.")
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, e.g. US, GB, DE.")
    currency = CurrencyField(help_text="Functional currency.")
    tax_region = models.CharField(max_length=40, blank=True, help_text="e.g. US-NY, GB, DE.")
    tax_id = models.CharField(max_length=40, blank=True)
    active = models.BooleanField(default=True)

    history = history()

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "legal entities"

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class Customer(Timestamped):
    """A customer account in the hierarchy: a parent group, sold-to and bill-to accounts."""

    class Status(models.TextChoices):
        PROSPECT = "prospect", "Prospect"
        ACTIVE = "active", "Active"
        ON_HOLD = "on_hold", "On hold (credit)"
        INACTIVE = "inactive", "Inactive"

    number = models.CharField(max_length=30, unique=True, help_text="Canonical account number, e.g. C-1001.")
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The group or parent account in the hierarchy.",
    )
    is_sold_to = models.BooleanField(default=True, help_text="Signs contracts.")
    is_bill_to = models.BooleanField(default=True, help_text="Receives invoices.")
    bill_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="billed_for",
        help_text="Where invoices go when this account is not its own bill-to.",
    )
    legal_entity = models.ForeignKey(
        LegalEntity,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customers",
        help_text="The firm's contracting entity for this customer.",
    )
    tax_id = models.CharField(max_length=40, blank=True, help_text="VAT/EIN of the customer.")
    tax_region = models.CharField(max_length=40, blank=True, help_text="e.g. US-NY, GB, DE-BY.")
    region = models.CharField(max_length=40, blank=True, help_text="Sales region as the CRM names it.")
    currency = CurrencyField()
    billing_email = models.EmailField(blank=True)
    billing_address = models.TextField(blank=True)
    country = models.CharField(max_length=2, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    credit_status = models.CharField(max_length=40, blank=True, help_text="As reported back from ERP/AR.")

    history = history()

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    def invoice_recipient(self) -> "Customer":
        """The account that receives this customer's invoices."""
        return self.bill_to or self

    def clean(self):
        ancestor, seen = self.parent, set()
        while ancestor is not None:
            if ancestor.pk == self.pk or ancestor.pk in seen:
                raise ValidationError({"parent": "An account cannot be its own parent, directly or through others."})
            seen.add(ancestor.pk)
            ancestor = ancestor.parent
        if self.bill_to_id and self.bill_to_id == self.pk:
            raise ValidationError({"bill_to": "Leave bill-to empty when the account receives its own invoices."})
        if self.bill_to is not None and not self.bill_to.is_bill_to:
            raise ValidationError({"bill_to": f"{self.bill_to} is not marked as a bill-to account."})


class Resource(Timestamped):
    """A consultant or other resource who records time; cost rates are sensitive."""

    sensitive_fields = ("cost_rate",)

    employee_number = models.CharField(max_length=30, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=80, help_text="Role as rate cards name it, e.g. 'Senior Consultant'.")
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="resources")
    cost_rate = models.DecimalField(**RATE, null=True, blank=True, help_text="Fully loaded hourly cost.")
    cost_currency = CurrencyField(blank=True)
    active = models.BooleanField(default=True)

    history = history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"
