"""The demo firm, Northwind Advisory: its canonical records and its users, loaded idempotently.

Records come from `fixtures/demo/records.yaml` and are matched on natural keys (codes, numbers), so a
second load finds every record unchanged, saves nothing and writes no history row. The firm's systems,
ownership rules, value maps and rate cards are configuration and come in through `import_config`.
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


class _Loader:
    """Upserts the records of one data file, resolving references by natural key."""

    def __init__(self, source: str):
        self.source = source
        self.summary = LoadSummary()

    # --- references ---------------------------------------------------------------------------
    def ref(self, model, where: str, value, **scope):
        """The record a reference names, or None for an empty reference."""
        if value in (None, ""):
            return None
        lookup = {**scope, **{self.key_field(model): value}}
        obj = model._default_manager.filter(**lookup).first()
        if obj is None:
            label = model._meta.verbose_name
            raise DemoDataError(
                f"{self.source}: {where} refers to {label} '{value}', which does not exist.",
                fix=f"Define {label} '{value}' earlier in the file, or correct the reference.",
                technical=f"{model.__name__}.objects.filter(**{lookup!r}) found nothing",
            )
        return obj

    @staticmethod
    def key_field(model) -> str:
        return {
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
        }[model]

    # --- writes -------------------------------------------------------------------------------
    def upsert(self, model, where: str, lookup: dict, raw: dict, refs: dict | None = None):
        """Create the record or change the fields that differ; save nothing when nothing differs."""
        values = self.values(model, where, raw, refs or {})
        lookup = {
            **self.values(model, where, {k: v for k, v in lookup.items() if not _is_record(v)}, {}),
            **{k: v for k, v in lookup.items() if _is_record(v)},
        }
        obj = model._default_manager.filter(**lookup).first()
        kind = str(model._meta.verbose_name_plural)
        if obj is None:
            obj = model(**lookup, **values)
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

    def values(self, model, where: str, raw: dict, refs: dict) -> dict:
        values = {}
        for name, value in raw.items():
            if name in refs:
                values[name] = refs[name](value)
                continue
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
                    fix="Remove the field from the data file, or teach apps/demo/services.py to resolve it.",
                )
            try:
                values[name] = model_field.to_python(value)
            except ValidationError as exc:
                raise DemoDataError(
                    f"{self.source}: {where} has an invalid {name}: {' '.join(exc.messages)}",
                    fix="Correct the value in the data file.",
                ) from None
        return values

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


def _is_record(value) -> bool:
    return value is None or isinstance(value, models.Model)


def _differs(obj, name: str, value) -> bool:
    model_field = obj._meta.get_field(name)
    if model_field.is_relation:
        return getattr(obj, model_field.attname) != (value.pk if value is not None else None)
    return getattr(obj, name) != value


def _split(raw: dict, *children: str) -> tuple[dict, dict]:
    """A record's own fields, and its nested child lists."""
    own = {name: value for name, value in raw.items() if name not in children}
    return own, {name: raw.get(name) or [] for name in children}


SECTIONS = (
    "legal_entities",
    "customers",
    "resources",
    "opportunities",
    "contracts",
    "projects",
    "billing_schedules",
    "invoices",
    "billing_events",
    "time_entries",
    "expenses",
    "payments",
)


def _load(data: dict, loader: _Loader) -> None:
    ref = loader.ref
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise DemoDataError(
            f"{loader.source} has sections this loader does not know: {', '.join(sorted(unknown))}.",
            fix=f"Use only: {', '.join(SECTIONS)}.",
        )

    for raw in data.get("legal_entities") or []:
        own = dict(raw)
        code = own.pop("code")
        loader.upsert(LegalEntity, f"legal entity {code}", {"code": code}, own)

    for raw in data.get("customers") or []:
        own = dict(raw)
        number = own.pop("number")
        where = f"customer {number}"
        loader.upsert(
            Customer,
            where,
            {"number": number},
            own,
            {
                "parent": lambda value, where=where: ref(Customer, f"{where} (parent)", value),
                "bill_to": lambda value, where=where: ref(Customer, f"{where} (bill-to)", value),
                "legal_entity": lambda value, where=where: ref(LegalEntity, where, value),
            },
        )

    for raw in data.get("resources") or []:
        own = dict(raw)
        number = own.pop("employee_number")
        where = f"resource {number}"
        loader.upsert(
            Resource,
            where,
            {"employee_number": number},
            own,
            {"legal_entity": lambda value, where=where: ref(LegalEntity, where, value)},
        )

    for raw in data.get("opportunities") or []:
        own = dict(raw)
        number = own.pop("number")
        where = f"opportunity {number}"
        loader.upsert(
            Opportunity,
            where,
            {"number": number},
            own,
            {
                "customer": lambda value, where=where: ref(Customer, where, value),
                "legal_entity": lambda value, where=where: ref(LegalEntity, where, value),
                "rate_card": lambda value, where=where: ref(RateCard, where, value),
            },
        )

    for raw in data.get("contracts") or []:
        own, children = _split(raw, "amendments", "lines")
        number = own.pop("number")
        where = f"contract {number}"
        contract = loader.upsert(
            Contract,
            where,
            {"number": number},
            own,
            {
                "customer": lambda value, where=where: ref(Customer, where, value),
                "bill_to": lambda value, where=where: ref(Customer, f"{where} (bill-to)", value),
                "legal_entity": lambda value, where=where: ref(LegalEntity, where, value),
                "opportunity": lambda value, where=where: ref(Opportunity, where, value),
                "rate_card": lambda value, where=where: ref(RateCard, where, value),
            },
        )
        for amendment in children["amendments"]:
            own = dict(amendment)
            version = own.pop("version")
            loader.upsert(
                ContractAmendment, f"{where} amendment v{version}", {"contract": contract, "version": version}, own
            )
        for line in children["lines"]:
            own = dict(line)
            line_number = own.pop("line_number")
            line_where = f"{where} line {line_number}"
            loader.upsert(
                ContractLine,
                line_where,
                {"contract": contract, "line_number": line_number},
                own,
                {
                    "introduced_by": lambda value, line_where=line_where, contract=contract: ref(
                        ContractAmendment, line_where, value, contract=contract
                    )
                },
            )

    for raw in data.get("projects") or []:
        own, children = _split(raw, "tasks", "milestones")
        code = own.pop("code")
        where = f"project {code}"
        project = loader.upsert(
            Project,
            where,
            {"code": code},
            own,
            {
                "customer": lambda value, where=where: ref(Customer, where, value),
                "contract": lambda value, where=where: ref(Contract, where, value),
                "legal_entity": lambda value, where=where: ref(LegalEntity, where, value),
                "rate_card": lambda value, where=where: ref(RateCard, where, value),
                "project_manager": lambda value, where=where: ref(Resource, f"{where} (project manager)", value),
            },
        )
        for task in children["tasks"]:
            own = dict(task)
            task_code = own.pop("code")
            task_where = f"{where} task {task_code}"
            loader.upsert(
                Task,
                task_where,
                {"project": project, "code": task_code},
                own,
                {
                    "parent": lambda value, task_where=task_where, project=project: ref(
                        Task, task_where, value, project=project
                    )
                },
            )
        for milestone in children["milestones"]:
            own = dict(milestone)
            milestone_code = own.pop("code")
            loader.upsert(
                Milestone, f"{where} milestone {milestone_code}", {"project": project, "code": milestone_code}, own
            )

    for raw in data.get("billing_schedules") or []:
        own = dict(raw)
        project = ref(Project, "a billing schedule", own.pop("project"))
        revision = own.pop("revision")
        where = f"billing schedule {project.code} r{revision}"
        loader.upsert(
            BillingSchedule,
            where,
            {"project": project, "revision": revision},
            own,
            {"contract": lambda value, where=where: ref(Contract, where, value)},
        )

    invoice_lines = []
    for raw in data.get("invoices") or []:
        own, children = _split(raw, "lines")
        number = own.pop("number")
        where = f"invoice {number}"
        invoice = loader.upsert(
            Invoice,
            where,
            {"number": number},
            own,
            {
                "customer": lambda value, where=where: ref(Customer, where, value),
                "contract": lambda value, where=where: ref(Contract, where, value),
                "project": lambda value, where=where: ref(Project, where, value),
                "legal_entity": lambda value, where=where: ref(LegalEntity, where, value),
            },
        )
        invoice_lines += [(invoice, line) for line in children["lines"]]

    for raw in data.get("billing_events") or []:
        own = dict(raw)
        project = ref(Project, "a billing event", own.pop("project"))
        description = own.pop("description")
        where = f"billing event '{description}' of {project.code}"
        loader.upsert(
            BillingEvent,
            where,
            {"project": project, "description": description},
            own,
            {
                "contract": lambda value, where=where: ref(Contract, where, value),
                "milestone": lambda value, where=where, project=project: ref(Milestone, where, value, project=project),
                "invoice": lambda value, where=where: ref(Invoice, where, value),
            },
        )

    # Invoice lines point at billing events, which point at their invoice: lines come after both.
    for invoice, line in invoice_lines:
        own = dict(line)
        line_number = own.pop("line_number")
        where = f"invoice {invoice.number} line {line_number}"
        loader.upsert(
            InvoiceLine,
            where,
            {"invoice": invoice, "line_number": line_number},
            own,
            {
                "billing_event": lambda value, where=where, invoice=invoice: ref(
                    BillingEvent, where, value, project=invoice.project
                )
            },
        )

    for raw in data.get("time_entries") or []:
        own = dict(raw)
        resource = ref(Resource, "a time entry", own.pop("resource"))
        project = ref(Project, "a time entry", own.pop("project"))
        work_date = own.pop("work_date")
        task = ref(Task, f"time entry of {resource.employee_number}", own.pop("task", None), project=project)
        where = f"time entry of {resource.employee_number} on {project.code} on {work_date}"
        loader.upsert(
            TimeEntry,
            where,
            {"resource": resource, "project": project, "work_date": work_date, "task": task},
            own,
            {
                "billing_event": lambda value, where=where, project=project: ref(
                    BillingEvent, where, value, project=project
                )
            },
        )

    for raw in data.get("expenses") or []:
        own = dict(raw)
        resource = ref(Resource, "an expense", own.pop("resource"))
        project = ref(Project, "an expense", own.pop("project"))
        incurred_on = own.pop("incurred_on")
        category = own.pop("category")
        where = f"expense of {resource.employee_number} on {project.code} on {incurred_on} ({category})"
        loader.upsert(
            Expense,
            where,
            {"resource": resource, "project": project, "incurred_on": incurred_on, "category": category},
            own,
            {
                "billing_event": lambda value, where=where, project=project: ref(
                    BillingEvent, where, value, project=project
                )
            },
        )

    for raw in data.get("payments") or []:
        own = dict(raw)
        reference = own.pop("reference")
        where = f"payment {reference}"
        loader.upsert(
            Payment,
            where,
            {"reference": reference},
            own,
            {
                "customer": lambda value, where=where: ref(Customer, where, value),
                "invoice": lambda value, where=where: ref(Invoice, where, value),
            },
        )


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
        _load(data, loader)
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
