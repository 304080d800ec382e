"""Connected systems, their inbound signing secrets (by reference), and system-of-record ownership rules."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from apps.core.history import history
from apps.core.models import EffectiveDated, EffectiveQuerySet, Timestamped
from apps.core.objects import BusinessObject, field_names, model_for

from . import secrets
from .workflow_targets import workflow_targets


class SystemKind(models.TextChoices):
    CRM = "crm", "CRM"
    CPQ = "cpq", "CPQ / proposal"
    PSA = "psa", "PSA"
    ERP = "erp", "ERP"
    BILLING = "billing", "Billing"
    HRIS = "hris", "HR system"
    BI = "bi", "BI / analytics"


class SigningScheme(models.TextChoices):
    """How a system signs the webhooks it sends us (names are the configuration document's)."""

    NONE = "none", "None (inbound disabled)"
    STANDARD_WEBHOOKS = "standard-webhooks", "Standard Webhooks v1"
    HUBSPOT_V1 = "hubspot-v1", "HubSpot v1"
    HUBSPOT_V2 = "hubspot-v2", "HubSpot v2"
    HUBSPOT_V3 = "hubspot-v3", "HubSpot v3"
    STRIPE = "stripe", "Stripe-style (t=…,v1=…)"
    BASIC = "basic", "HTTP Basic"
    CLIENT_STATE = "client-state", "Shared clientState token"
    BEARER = "bearer", "Bearer token"


class OutboundAuth(models.TextChoices):
    NONE = "none", "None"
    BEARER = "bearer", "Bearer token"
    BASIC = "basic", "HTTP Basic"
    API_KEY = "api-key", "API key header"
    OAUTH2_CLIENT_CREDENTIALS = "oauth2-client-credentials", "OAuth 2 client credentials"


class CustomerMatchRule(models.TextChoices):
    """How an existing customer in a target is recognised before a new one is created there."""

    EXTERNAL_ID = "external_id", "Our customer number in the target's external ID field"
    TAX_ID = "tax_id", "Same tax / VAT ID"
    EMAIL = "email", "Same billing e-mail address"
    EMAIL_DOMAIN = "email_domain", "Same billing e-mail domain (not free-mail)"
    NAME = "name", "Exact name within the legal entity"


def validate_match_rules(value) -> None:
    """A list of distinct match rule names."""
    if not isinstance(value, list) or not all(isinstance(rule, str) for rule in value):
        raise ValidationError('Give a list of match rules, e.g. ["tax_id", "name"].')
    unknown = [rule for rule in value if rule not in CustomerMatchRule.values]
    if unknown:
        raise ValidationError(
            f"Unknown match rule {', '.join(repr(rule) for rule in unknown)}; "
            f"the rules are {', '.join(CustomerMatchRule.values)}."
        )
    if len(set(value)) != len(value):
        raise ValidationError("Each match rule may be listed once.")


class ConnectedSystem(Timestamped):
    """A CRM, PSA, ERP, billing or HR system the console talks to; credentials are references only."""

    slug = models.SlugField(max_length=50, unique=True, help_text="Short stable key, e.g. 'salesforce' or 'netsuite'.")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=SystemKind.choices)
    vendor = models.CharField(max_length=50, help_text="e.g. salesforce, hubspot, kantata, netsuite, chargebee.")
    base_url = models.URLField(blank=True, help_text="API root used by the connector.")
    enabled = models.BooleanField(default=True, help_text="Disabled systems receive no calls and accept no webhooks.")

    outbound_auth = models.CharField(max_length=32, choices=OutboundAuth.choices, default=OutboundAuth.NONE)
    outbound_credentials = models.JSONField(
        default=dict,
        blank=True,
        validators=[secrets.validate_credentials],
        help_text='A reference such as {"env": "IC_SECRET_NETSUITE_TOKEN"}, or parts: '
        '{"username": {"env": "IC_SECRET_X_USER"}, "password": {"env": "IC_SECRET_X_PASS"}}. Never the secret itself.',
    )
    credentials_host = models.CharField(
        max_length=255,
        blank=True,
        editable=False,
        help_text="The host (and port) the base URL named when the credentials were attached; the credentials "
        "are only ever sent there.",
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Calls per minute shared by all workers; empty = no limit."
    )
    rate_limit_burst = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)])
    connect_timeout_seconds = models.DecimalField(max_digits=6, decimal_places=2, default=5)
    read_timeout_seconds = models.DecimalField(max_digits=6, decimal_places=2, default=30)

    inbound_scheme = models.CharField(max_length=32, choices=SigningScheme.choices, default=SigningScheme.NONE)
    inbound_replay_window_seconds = models.PositiveIntegerField(
        default=300, help_text="Signed deliveries older than this are refused as replays."
    )
    source_profiles = models.JSONField(
        default=list,
        blank=True,
        help_text="Names of the source profiles this system's events are read with. "
        "Empty: every active profile for the system's vendor (the built-ins and the firm's own).",
    )
    match_customers_by = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_match_rules],
        help_text="Before creating a customer here, look for an existing one by these rules, in order "
        '(e.g. ["external_id", "tax_id", "name"]): one match is linked, several are an exception. '
        "Empty: always create.",
    )
    notes = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def save(self, *args, **kwargs):
        self.bind_credentials_host()
        super().save(*args, **kwargs)

    def bind_credentials_host(self) -> None:
        """Record where the credentials may go when they are attached (or changed); a later base URL change
        alone does not move them: whoever changes only the address cannot have the credentials sent there."""
        if not self.outbound_credentials:
            self.credentials_host = ""
            return
        stored = None
        if self.pk:
            stored = type(self).objects.filter(pk=self.pk).values("outbound_credentials", "credentials_host").first()
        if stored is None or stored["outbound_credentials"] != self.outbound_credentials or not self.credentials_host:
            self.credentials_host = url_host(self.base_url)

    def active_signing_secrets(self, at=None):
        """Secrets that verify deliveries now: active and not past their retirement time."""
        at = at or timezone.now()
        return [
            secret
            for secret in self.signing_secrets.all()
            if secret.active and (secret.not_after is None or secret.not_after > at)
        ]


def url_host(url: str) -> str:
    """The host and port of a URL, lower case ('' for none): what credentials are bound to."""
    parts = urlsplit(url or "")
    return parts.netloc.lower().rsplit("@", 1)[-1]


class SigningSecret(Timestamped):
    """One secret a system may sign webhooks with; several may be active at once during a rotation."""

    system = models.ForeignKey(ConnectedSystem, on_delete=models.CASCADE, related_name="signing_secrets")
    label = models.CharField(max_length=80, help_text="e.g. 'primary 2026' or 'rotation 2026-11'.")
    reference = models.JSONField(
        validators=[secrets.validate_reference],
        help_text='Where the secret lives: {"env": "IC_SECRET_HUBSPOT_CLIENT_SECRET"} '
        'or {"file": "/run/secrets/hubspot"}.',
    )
    active = models.BooleanField(default=True)
    not_after = models.DateTimeField(
        null=True, blank=True, help_text="Stop accepting this secret after this time (end of a rotation)."
    )

    history = history()

    class Meta:
        ordering = ["system__slug", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "label"],
                name="unique_signing_secret_label",
                violation_error_message="This system already has a signing secret with that label.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.system.slug}: {self.label} ({secrets.describe(self.reference)})"


class OwnershipRule(EffectiveDated, Timestamped):
    """Which system owns an object type (or one of its fields) over a period, and who else may write it."""

    object_type = models.CharField(max_length=32, choices=BusinessObject.choices)
    field = models.CharField(
        max_length=64, blank=True, default="", help_text="Empty: the rule covers the whole object."
    )
    owner = models.ForeignKey(
        ConnectedSystem, on_delete=models.PROTECT, related_name="owned_rules", help_text="The system of record."
    )
    may_create = models.ManyToManyField(
        ConnectedSystem, blank=True, related_name="create_grants", help_text="Other systems allowed to create it."
    )
    may_update = models.ManyToManyField(
        ConnectedSystem, blank=True, related_name="update_grants", help_text="Other systems allowed to update it."
    )
    rationale = models.TextField(blank=True, help_text="Why this system owns it (governance decision, ticket).")

    objects = EffectiveQuerySet.as_manager()
    history = history(m2m_fields=[may_create, may_update])

    class Meta:
        ordering = ["object_type", "field", "effective_from"]
        indexes = [models.Index(fields=["object_type", "field", "effective_from"])]

    def __str__(self) -> str:
        scope = f"{self.object_type}.{self.field}" if self.field else self.object_type
        return f"{scope} owned by {self.owner.slug} ({self.period_label()})"

    @property
    def scope_label(self) -> str:
        label = BusinessObject(self.object_type).label.lower()
        return f"field '{self.field}' of {label}" if self.field else label

    def clean(self):
        self.clean_period()
        if self.field and self.object_type and self.field not in field_names(self.object_type):
            known = ", ".join(sorted(field_names(self.object_type)))
            raise ValidationError(
                {
                    "field": f"A {BusinessObject(self.object_type).label.lower()} has no field '{self.field}'. "
                    f"Known fields: {known}."
                }
            )
        if self.object_type and self.effective_from:
            clash = (
                OwnershipRule.objects.filter(object_type=self.object_type, field=self.field)
                .overlapping(self.effective_from, self.effective_to)
                .exclude(pk=self.pk)
                .select_related("owner")
                .first()
            )
            if clash is not None:
                raise ValidationError(
                    f"The {self.scope_label} already has an ownership rule for {clash.period_label()} "
                    f"(owner {clash.owner.name}). Rules for the same object and field may not overlap: "
                    f"end the existing rule the day before this one starts, or change this rule's dates."
                )


class Route(EffectiveDated, Timestamped):
    """Which system a workflow's steps of one kind write to, optionally for one legal entity, over a period.

    Empty `workflow` means every workflow; empty `legal_entity` means every legal entity. The most specific
    route in force wins: workflow and entity, then entity, then workflow, then neither (`apps.systems.routing`).
    """

    workflow = models.CharField(
        max_length=40, blank=True, default="", help_text="Workflow name, e.g. invoice_to_erp; empty: every workflow."
    )
    target_kind = models.CharField(max_length=16, choices=SystemKind.choices, help_text="The kind of system written.")
    legal_entity = models.CharField(
        max_length=20, blank=True, default="", help_text="Legal entity code, e.g. NW-UK; empty: every legal entity."
    )
    system = models.ForeignKey(ConnectedSystem, on_delete=models.PROTECT, related_name="routes")
    rationale = models.TextField(blank=True, help_text="Why (e.g. 'the UK entity invoices from its own ERP').")

    objects = EffectiveQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["target_kind", "workflow", "legal_entity", "effective_from"]
        indexes = [models.Index(fields=["target_kind", "workflow", "legal_entity", "effective_from"])]

    def __str__(self) -> str:
        return f"{self.scope_label} → {self.system.slug if self.system_id else '?'} ({self.period_label()})"

    @property
    def scope_label(self) -> str:
        workflow = self.workflow or "every workflow"
        entity = f", legal entity {self.legal_entity}" if self.legal_entity else ""
        kind = SystemKind(self.target_kind).label if self.target_kind in SystemKind.values else self.target_kind
        return f"{kind} of {workflow}{entity}"

    def clean(self):
        self.clean_period()
        errors = {}
        if self.system_id and self.target_kind and self.system.kind != self.target_kind:
            errors["system"] = (
                f"{self.system.name} is a {self.system.get_kind_display()} system; this route chooses among "
                f"{SystemKind(self.target_kind).label} systems."
            )
        workflows = workflow_targets()
        if self.workflow and workflows and self.workflow not in workflows:
            errors["workflow"] = (
                f"There is no workflow called '{self.workflow}'. The workflows are {', '.join(sorted(workflows))}."
            )
        elif self.workflow in workflows and self.target_kind and self.target_kind not in workflows[self.workflow]:
            writes = ", ".join(sorted(workflows[self.workflow])) or "no system"
            errors["target_kind"] = (
                f"The workflow {self.workflow} writes to {writes} systems only, not to {self.target_kind}."
            )
        if (
            self.legal_entity
            and not model_for(BusinessObject.LEGAL_ENTITY).objects.filter(code=self.legal_entity).exists()
        ):
            errors["legal_entity"] = f"There is no legal entity with the code '{self.legal_entity}'."
        if errors:
            raise ValidationError(errors)
        if self.target_kind and self.effective_from:
            clash = (
                Route.objects.filter(
                    target_kind=self.target_kind, workflow=self.workflow, legal_entity=self.legal_entity
                )
                .overlapping(self.effective_from, self.effective_to)
                .exclude(pk=self.pk)
                .select_related("system")
                .first()
            )
            if clash is not None:
                raise ValidationError(
                    f"The {self.scope_label} already has a route for {clash.period_label()} (to {clash.system.name}). "
                    f"Two routes for the same scope may not overlap: end the existing one the day before this "
                    f"one starts, or change this route's dates."
                )
