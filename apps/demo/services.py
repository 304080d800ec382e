"""The demo firm, Northwind Advisory: its canonical records and its users, loaded idempotently.

Records come from `fixtures/demo/records.yaml` and are matched on natural keys (codes, numbers), so a
second load finds every record unchanged, saves nothing and writes no history row. The firm's systems,
ownership rules, value maps and rate cards are configuration and come in through `import_config`.

Over 500 lines on purpose: the table of demo sections sits beside the one loader that reads it.
"""

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models, transaction

from apps.canonical.models import (
    BillingEvent,
    BillingSchedule,
    Contract,
    ContractAmendment,
    ContractLine,
    Customer,
    Expense,
    Invoice,
    InvoiceLine,
    LegalEntity,
    Milestone,
    Opportunity,
    Payment,
    Project,
    RateCard,
    Resource,
    Task,
    TimeEntry,
)
from apps.configuration.errors import ConfigError
from apps.configuration.parser import load_document
from apps.core.context import system_context
from apps.core.errors import BusinessError
from apps.metrics.models import AlertRule

DEMO_DIR = Path(settings.BASE_DIR) / "fixtures" / "demo"
CONFIG_PATH = DEMO_DIR / "config.yaml"
RECORDS_PATH = DEMO_DIR / "records.yaml"

# Published in the README: these accounts exist only in demo databases (see `refuse_outside_development`).
DEMO_PASSWORD = "demo-password"


class DemoDataError(BusinessError):
    """The demo data file or the database it is loaded into is not as the loader expects."""

    code = "demo_data"


@dataclass(frozen=True)
class DemoUser:
    """One demo login: a person in one role (no role: the superuser)."""

    username: str
    role: str
    first_name: str
    last_name: str
    looks_at: str

    @property
    def is_superuser(self) -> bool:
        return not self.role


DEMO_USERS = (
    DemoUser("admin", "", "Ada", "Admin", "everything (superuser)"),
    DemoUser("finance", "finance_ops", "Fiona", "Finance", "invoices, payments, billing events; sees rates"),
    DemoUser("delivery", "delivery_ops", "Dan", "Delivery", "projects, tasks, milestones, time and expenses"),
    DemoUser("steward", "mapping_steward", "Sam", "Steward", "value maps, rate cards, ownership rules"),
    DemoUser("auditor", "auditor", "Alex", "Auditor", "read-only, every record and its history"),
    DemoUser("integration", "integration_admin", "Ian", "Integration", "connected systems and signing secrets"),
)


def refuse_outside_development(*, force: bool = False) -> None:
    """The demo brings logins with a published password: refuse it on a server unless explicitly forced."""
    if settings.DEBUG or force:
        return
    raise DemoDataError(
        "The demo firm comes with logins whose password is published in the README, so it is only loaded "
        "on a developer machine.",
        fix="Run it with DEBUG=1 (`make demo` does), or pass --force if this database is a throwaway copy.",
        technical="settings.DEBUG is False and --force was not given",
    )


@dataclass
class LoadSummary:
    """How many records of each kind a load created, changed or found as they were."""

    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)

    @property
    def changes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values())

    def lines(self) -> list[str]:
        kinds = list(dict.fromkeys([*self.created, *self.updated, *self.unchanged]))
        return [
            f"{kind}: {self.created[kind]} created, {self.updated[kind]} changed, {self.unchanged[kind]} unchanged"
            for kind in kinds
        ]


@dataclass(frozen=True)
class Ref:
    """A field that names another record by its natural key (see `REFERENCE_KEYS`).

    `note` is added to the record's name in the message when the reference is wrong ("(bill-to)");
    `scope` narrows the search to records sharing something with this one: lookup name → a path into the
    record's key, e.g. {"project": "invoice.project"} finds a billing event of the invoice's project.
    """

    model: type[models.Model]
    note: str = ""
    scope: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """One kind of record in the data file: where it is, its model, how it is matched, named and resolved.

    `key` are the fields a record is matched on (a child's first key field is its link to the parent);
    `name` names a record in messages, formatted with the key values as written in the file (and `{parent}`,
    the parent's name); `refs` are the fields that name other records; `children` are the nested lists;
    `after` makes a child list wait until that top-level section is loaded (for references to it).
    Plain fields are converted by their model field (`to_python`), so dates and decimals come out exact.
    """

    section: str
    model: type[models.Model]
    key: tuple[str, ...]
    name: str
    refs: dict[str, Ref] = field(default_factory=dict)
    children: tuple["Section", ...] = ()
    after: str = ""


# The field a reference gives for each model it can name.
REFERENCE_KEYS = {
    LegalEntity: "code",
    Customer: "number",
    Resource: "employee_number",
    Opportunity: "number",
    Contract: "number",
    RateCard: "code",
    Project: "code",
    Task: "code",
    Milestone: "code",
    ContractAmendment: "version",
    BillingEvent: "description",
    Invoice: "number",
}

# What the demo loads, in this order (a record may only name records loaded before it).
SECTIONS = (
    Section("legal_entities", LegalEntity, ("code",), "legal entity {code}"),
    Section(
        "customers",
        Customer,
        ("number",),
        "customer {number}",
        refs={
            "parent": Ref(Customer, note="parent"),
            "bill_to": Ref(Customer, note="bill-to"),
            "legal_entity": Ref(LegalEntity),
        },
    ),
    Section(
        "resources", Resource, ("employee_number",), "resource {employee_number}", {"legal_entity": Ref(LegalEntity)}
    ),
    Section(
        "opportunities",
        Opportunity,
        ("number",),
        "opportunity {number}",
        refs={"customer": Ref(Customer), "legal_entity": Ref(LegalEntity), "rate_card": Ref(RateCard)},
    ),
    Section(
        "contracts",
        Contract,
        ("number",),
        "contract {number}",
        refs={
            "customer": Ref(Customer),
            "bill_to": Ref(Customer, note="bill-to"),
            "legal_entity": Ref(LegalEntity),
            "opportunity": Ref(Opportunity),
            "rate_card": Ref(RateCard),
        },
        children=(
            Section("amendments", ContractAmendment, ("contract", "version"), "{parent} amendment v{version}"),
            Section(
                "lines",
                ContractLine,
                ("contract", "line_number"),
                "{parent} line {line_number}",
                refs={"introduced_by": Ref(ContractAmendment, scope={"contract": "contract"})},
            ),
        ),
    ),
    Section(
        "projects",
        Project,
        ("code",),
        "project {code}",
        refs={
            "customer": Ref(Customer),
            "contract": Ref(Contract),
            "legal_entity": Ref(LegalEntity),
            "rate_card": Ref(RateCard),
            "project_manager": Ref(Resource, note="project manager"),
        },
        children=(
            Section(
                "tasks",
                Task,
                ("project", "code"),
                "{parent} task {code}",
                refs={"parent": Ref(Task, scope={"project": "project"})},
            ),
            Section("milestones", Milestone, ("project", "code"), "{parent} milestone {code}"),
        ),
    ),
    Section(
        "billing_schedules",
        BillingSchedule,
        ("project", "revision"),
        "billing schedule {project} r{revision}",
        refs={"project": Ref(Project), "contract": Ref(Contract)},
    ),
    Section(
        "invoices",
        Invoice,
        ("number",),
        "invoice {number}",
        refs={
            "customer": Ref(Customer),
            "contract": Ref(Contract),
            "project": Ref(Project),
            "legal_entity": Ref(LegalEntity),
        },
        children=(
            # Invoice lines point at billing events, which point at their invoice: lines come after both.
            Section(
                "lines",
                InvoiceLine,
                ("invoice", "line_number"),
                "{parent} line {line_number}",
                refs={"billing_event": Ref(BillingEvent, scope={"project": "invoice.project"})},
                after="billing_events",
            ),
        ),
    ),
    Section(
        "billing_events",
        BillingEvent,
        ("project", "description"),
        "billing event '{description}' of {project}",
        refs={
            "project": Ref(Project),
            "contract": Ref(Contract),
            "milestone": Ref(Milestone, scope={"project": "project"}),
            "invoice": Ref(Invoice),
        },
    ),
    Section(
        "time_entries",
        TimeEntry,
        ("resource", "project", "work_date", "task"),
        "time entry of {resource} on {project} on {work_date}",
        refs={
            "resource": Ref(Resource),
            "project": Ref(Project),
            "task": Ref(Task, scope={"project": "project"}),
            "billing_event": Ref(BillingEvent, scope={"project": "project"}),
        },
    ),
    Section(
        "expenses",
        Expense,
        ("resource", "project", "incurred_on", "category"),
        "expense of {resource} on {project} on {incurred_on} ({category})",
        refs={
            "resource": Ref(Resource),
            "project": Ref(Project),
            "billing_event": Ref(BillingEvent, scope={"project": "project"}),
        },
    ),
    Section(
        "payments",
        Payment,
        ("reference",),
        "payment {reference}",
        refs={"customer": Ref(Customer), "invoice": Ref(Invoice)},
    ),
)


class _Loader:
    """Upserts the records of one data file as `SECTIONS` describes them, resolving references by natural key."""

    def __init__(self, source: str):
        self.source = source
        self.summary = LoadSummary()
        self.waiting: dict[str, list] = {}  # section name → child lists to load once it is loaded

    def load(self, data: dict) -> None:
        unknown = set(data) - {spec.section for spec in SECTIONS}
        if unknown:
            raise DemoDataError(
                f"{self.source} has sections this loader does not know: {', '.join(sorted(unknown))}.",
                fix=f"Use only: {', '.join(spec.section for spec in SECTIONS)}.",
            )
        for spec in SECTIONS:
            for raw in data.get(spec.section) or []:
                self.record(spec, raw)
            for child, parent, parent_name, rows in self.waiting.pop(spec.section, []):
                for raw in rows:
                    self.record(child, raw, parent=parent, parent_name=parent_name)

    def record(self, spec: Section, raw: dict, *, parent=None, parent_name: str = ""):
        """Load one record of `spec` and its children; returns the record."""
        own = {name: value for name, value in raw.items() if name not in {child.section for child in spec.children}}
        written = {name: own.pop(name, None) for name in spec.key[1 if parent is not None else 0 :]}
        for name, value in written.items():
            if value in (None, "") and name not in spec.refs:
                raise DemoDataError(
                    f"{self.source}: a record in {spec.section} has no {name}.",
                    fix=f"Give every record in {spec.section} its {', '.join(written)}.",
                )
        where = spec.name.format(parent=parent_name, **written)
        key = {spec.key[0]: parent} if parent is not None else {}
        for name, value in written.items():
            key[name] = self.value(spec, where, name, value, key)
        values = {name: self.value(spec, where, name, value, key) for name, value in own.items()}
        obj = self.upsert(spec.model, where, key, values)
        for child in spec.children:
            rows = raw.get(child.section) or []
            if child.after:
                self.waiting.setdefault(child.after, []).append((child, obj, where, rows))
            else:
                for child_raw in rows:
                    self.record(child, child_raw, parent=obj, parent_name=where)
        return obj

    # --- references and values ----------------------------------------------------------------
    def value(self, spec: Section, where: str, name: str, value, key: dict):
        """A field's value as the model wants it: the record a reference names, or the converted value."""
        if name in spec.refs:
            return self.resolve(spec.refs[name], where, value, key)
        return self.convert(spec.model, where, name, value)

    def resolve(self, ref: Ref, where: str, value, key: dict):
        """The record a reference names, or None for an empty reference."""
        if value in (None, ""):
            return None
        if ref.note:
            where = f"{where} ({ref.note})"
        scope = {lookup: _follow(key, path) for lookup, path in ref.scope.items()}
        lookup = {**scope, REFERENCE_KEYS[ref.model]: value}
        obj = ref.model._default_manager.filter(**lookup).first()
        if obj is None:
            label = ref.model._meta.verbose_name
            raise DemoDataError(
                f"{self.source}: {where} refers to {label} '{value}', which does not exist.",
                fix=f"Define {label} '{value}' earlier in the file, or correct the reference.",
                technical=f"{ref.model.__name__}.objects.filter(**{lookup!r}) found nothing",
            )
        return obj

    def convert(self, model, where: str, name: str, value):
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            raise DemoDataError(
                f"{self.source}: {where} has a field '{name}' that a {model._meta.verbose_name} does not have.",
                fix="Correct or remove the field in the data file.",
            ) from None
        if model_field.is_relation:
            raise DemoDataError(
                f"{self.source}: {where} sets '{name}', a reference this loader does not resolve.",
                fix="Remove the field from the data file, or add it to the section's refs in apps/demo/services.py.",
            )
        try:
            return model_field.to_python(value)
        except ValidationError as exc:
            raise DemoDataError(
                f"{self.source}: {where} has an invalid {name}: {' '.join(exc.messages)}",
                fix="Correct the value in the data file.",
            ) from None

    # --- writes -------------------------------------------------------------------------------
    def upsert(self, model, where: str, key: dict, values: dict):
        """Create the record or change the fields that differ; save nothing when nothing differs."""
        obj = model._default_manager.filter(**key).first()
        kind = str(model._meta.verbose_name_plural)
        if obj is None:
            obj = model(**key, **values)
            self.save(obj, where)
            self.summary.created[kind] += 1
            return obj
        changed = {name: value for name, value in values.items() if _differs(obj, name, value)}
        if not changed:
            self.summary.unchanged[kind] += 1
            return obj
        for name, value in changed.items():
            setattr(obj, name, value)
        self.save(obj, where)
        self.summary.updated[kind] += 1
        return obj

    def save(self, obj, where: str) -> None:
        try:
            obj.full_clean()
        except ValidationError as exc:
            problems = "; ".join(
                f"{name}: {' '.join(messages)}" if name != "__all__" else " ".join(messages)
                for name, messages in exc.message_dict.items()
            )
            raise DemoDataError(
                f"{self.source}: {where} is not valid: {problems}",
                fix="Correct the record in the data file.",
                technical=repr(exc.message_dict),
            ) from None
        obj.save()


def _follow(key: dict, path: str):
    """`"invoice.project"` → key["invoice"].project."""
    first, *rest = path.split(".")
    value = key[first]
    for name in rest:
        value = getattr(value, name) if value is not None else None
    return value


def _differs(obj, name: str, value) -> bool:
    model_field = obj._meta.get_field(name)
    if model_field.is_relation:
        return getattr(obj, model_field.attname) != (value.pk if value is not None else None)
    return getattr(obj, name) != value


def read_document(path: Path) -> dict:
    """A demo YAML file, read like configuration documents are: exact decimals, duplicate keys refused."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DemoDataError(
            f"The demo data file {path} cannot be read.", fix="Check that the file exists.", technical=str(exc)
        ) from exc
    try:
        data = load_document(raw, name=Path(path).name).data
    except ConfigError as exc:
        raise DemoDataError(
            f"The demo data file {path} is not valid YAML.", fix="Correct the file.", technical=exc.technical
        ) from exc
    if not isinstance(data, dict):
        raise DemoDataError(f"The demo data file {path} must be a mapping of sections.", fix="Correct the file.")
    return data


def demo_data_load(*, path: Path = RECORDS_PATH) -> LoadSummary:
    """Load the demo firm's canonical records; records that already match are left untouched."""
    data = read_document(path)
    loader = _Loader(Path(path).name)
    with system_context("Demo data load"), transaction.atomic():
        loader.load(data)
    return loader.summary


@transaction.atomic
def demo_users_ensure(*, password: str = DEMO_PASSWORD) -> list[tuple[DemoUser, bool]]:
    """One staff login per role plus the superuser, with the demo password; returns (user, created) pairs."""
    User = get_user_model()
    groups = {group.name: group for group in Group.objects.filter(name__in=[u.role for u in DEMO_USERS if u.role])}
    missing = sorted({u.role for u in DEMO_USERS if u.role} - set(groups))
    if missing:
        raise DemoDataError(
            f"The role groups {', '.join(missing)} do not exist, so the demo users cannot be given their roles.",
            fix="Run `manage.py migrate` first (it creates the role groups).",
        )
    result = []
    for spec in DEMO_USERS:
        wanted = {
            "first_name": spec.first_name,
            "last_name": spec.last_name,
            "email": f"{spec.username}@northwind-advisory.example",
            "is_staff": True,
            "is_superuser": spec.is_superuser,
            "is_active": True,
        }
        user, created = User.objects.get_or_create(username=spec.username, defaults=wanted)
        changed = created or any(getattr(user, name) != value for name, value in wanted.items())
        for name, value in wanted.items():
            setattr(user, name, value)
        if created or not user.check_password(password):
            user.set_password(password)
            changed = True
        if changed:
            user.save()
        wanted_groups = {spec.role} if spec.role else set()
        if set(user.groups.values_list("name", flat=True)) != wanted_groups:
            user.groups.set([groups[name] for name in wanted_groups])
        result.append((spec, created))
    return result


# The demo firm's alert thresholds (docs/metrics.md): emailed with the console backend, so they print in the log.
DEMO_ALERT_RULES = (
    {
        "name": "High-value discrepancy",
        "kind": AlertRule.Kind.DISCREPANCY,
        "threshold": Decimal("1000"),
        "owner_role": "finance_ops",
        "description": "Any open reconciliation discrepancy worth more than 1,000 USD at risk.",
    },
    {
        "name": "Unreconciled value above 5,000 USD",
        "kind": AlertRule.Kind.METRIC,
        "metric": "unreconciled_value",
        "currency": "USD",
        "threshold": Decimal("5000"),
        "renotify_step": Decimal("1000"),
        "owner_role": "finance_ops",
        "description": "A legal entity's open discrepancies for the month add up to more than 5,000 USD.",
    },
    {
        "name": "Sync failure rate above 5 %",
        "kind": AlertRule.Kind.METRIC,
        "metric": "sync_failure_rate",
        "firm_wide": True,
        "threshold": Decimal("5"),
        "renotify_step": Decimal("5"),
        "owner_role": "integration_admin",
        "description": "More than one transaction in twenty became an exception this month.",
    },
)


def demo_alert_rules_ensure() -> list[tuple[AlertRule, bool]]:
    """The demo's alert rules, created when missing; rules already there (perhaps edited) are left as they are."""
    result = []
    with system_context("Demo alert rules"), transaction.atomic():
        for spec in DEMO_ALERT_RULES:
            rule = AlertRule.objects.filter(name=spec["name"]).first()
            created = rule is None
            if created:
                rule = AlertRule(**spec)
                rule.full_clean()
                rule.save()
            result.append((rule, created))
    return result
