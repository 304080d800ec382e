"""Time, expense and milestone to bill: eligibility, billing events, and batched charges to the billing platform.

Month-end volumes arrive as bulk uploads of thousands of entries; they are processed ~1,000 entries
per transaction with set-based reads and bulk writes, and the billing platform receives one batch of
charges per customer, never one call per entry. An entry that fails its checks is split out into a
transaction of its own, so one bad entry never holds back the rest of the batch.

Over 500 lines on purpose: time, expense and milestone billing share their eligibility checks and writers.
"""

import datetime
from collections import defaultdict
from decimal import Decimal

from django.utils import timezone

from apps.canonical.models import (
    BillingEvent,
    ContractType,
    Customer,
    Expense,
    Milestone,
    Project,
    RateCardVersion,
    Resource,
    TimeEntry,
)
from apps.canonical.services import governed_upsert, rate_for
from apps.connectors.interfaces import Charge
from apps.core.errors import BusinessError, OwnershipConflict
from apps.core.history import copy_create_tracked, update_tracked
from apps.core.money import quantize
from apps.inbound.models import InboundEvent
from apps.mapping.models import CrossReference
from apps.mapping.services import cross_reference_record, cross_references_record, external_id_for
from apps.systems.models import ConnectedSystem
from apps.systems.services import CREATE, UPDATE, may_write

from ..intake import bulk_chunk_key
from ..models import Workflow
from ..registry import StepSpec, Subject, WorkflowDefinition, register
from ..services import transaction_start
from ..steps import StepResult
from .common import InvalidCommand, by_xref, day, decimal, source_system

# Contract types whose time is billed per hour; the others bill on milestones, fixed fees or the retainer.
HOURLY = {ContractType.TIME_AND_MATERIALS, ContractType.USAGE}
EXPENSES_BILLABLE = {
    ContractType.TIME_AND_MATERIALS,
    ContractType.USAGE,
    ContractType.FIXED_FEE,
    ContractType.MILESTONE,
    ContractType.RETAINER,
}


def _entries(txn) -> list[dict]:
    """The commands of this transaction: inline, or read from the bulk upload's stored events."""
    data = txn.effective_input
    if "entries" in data:
        return data["entries"]
    events = InboundEvent.objects.filter(pk__in=data.get("event_ids", [])).order_by("pk")
    return [dict(commands[0], inbound_event_id=pk) for pk, commands in events.values_list("pk", "commands") if commands]


def _external_id(entry: dict) -> str:
    data = entry.get("data", {})
    return str(data.get("time_entry_external_id") or data.get("expense_external_id") or "")


def _entry_value(source_slug, entry: dict) -> tuple[Decimal | None, str]:
    """What a time entry or expense will bill: its amount, or its hours at the rate card in force on the day
    (None when no rate covers it yet: that is usually why it is stuck)."""
    data = entry.get("data", {})
    amount = decimal(data.get("amount"), field="amount")
    if amount is not None:
        return amount, data.get("currency") or ""
    hours = decimal(data.get("hours"), field="hours")
    source = ConnectedSystem.objects.filter(slug=source_slug or "").first()
    project = by_xref(source, "project", data.get("project_external_id"), required=False) if source else None
    if hours is None or project is None:
        return None, ""
    role = data.get("role")
    if not role and data.get("resource_external_id"):
        resource = by_xref(source, "resource", data["resource_external_id"], required=False)
        role = resource.role if resource else ""
    on = day(data.get("work_date"), field="work_date")
    if not role or on is None or project.rate_card is None:
        return None, project.currency
    try:
        line = rate_for(card=project.rate_card, role=role, on=on)
    except BusinessError:
        return None, project.currency
    return quantize(hours * line.bill_rate, line.currency or project.currency), line.currency or project.currency


def _period(on: datetime.date) -> tuple[datetime.date, datetime.date]:
    start = on.replace(day=1)
    end = (start + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)
    return start, end


class _Lookups:
    """Everything a batch needs, read with a handful of queries instead of several per entry."""

    def __init__(self, source, entries):
        def ids(key):
            return {str(e["data"].get(key)) for e in entries if e.get("data", {}).get(key)}

        def by_external(object_type, external_ids, model, related=()):
            links = dict(
                CrossReference.objects.filter(
                    system=source, object_type=object_type, external_id__in=external_ids
                ).values_list("external_id", "object_id")
            )
            records = model.objects.select_related(*related).in_bulk(list(links.values()))
            return {ext: records.get(pk) for ext, pk in links.items()}

        self.resources = by_external("resource", ids("resource_external_id"), Resource)
        self.projects = by_external(
            "project", ids("project_external_id"), Project, related=("contract", "customer", "rate_card")
        )
        self.time_entries = by_external("time_entry", ids("time_entry_external_id"), TimeEntry)
        self.expenses = by_external("expense", ids("expense_external_id"), Expense)
        self.seen_time = set(self.time_entries)
        self.seen_expense = set(self.expenses)
        self.source = source
        self._decisions = {}
        card_ids = {p.rate_card_id for p in self.projects.values() if p and p.rate_card_id}
        self.versions = defaultdict(list)
        for version in (
            RateCardVersion.objects.filter(rate_card_id__in=card_ids, status=RateCardVersion.Status.APPROVED)
            .select_related("rate_card")
            .prefetch_related("lines")
        ):
            self.versions[version.rate_card_id].append(version)

    def may_write(self, object_type: str, operation: str, fields: tuple, on: datetime.date):
        """The ownership decision, asked once per batch for each (object, operation, fields, day)."""
        key = (object_type, operation, fields, on)
        if key not in self._decisions:
            self._decisions[key] = may_write(
                system=self.source, object_type=object_type, fields=fields, on=on, operation=operation
            )
        return self._decisions[key]

    def rate(self, project: Project, role: str, on: datetime.date):
        for version in self.versions.get(project.rate_card_id, []):
            if version.applies_on(on):
                for line in version.lines.all():
                    if line.role.strip().lower() == role.strip().lower():
                        return line
                break
        raise BusinessError(
            f"Project {project.code} has no approved rate card version for role '{role}' on {on.isoformat()}.",
            fix=f"Approve a version of rate card {project.rate_card.code if project.rate_card else '(none)'} with a "
            f"rate for '{role}' covering {on.isoformat()}, then re-run.",
            context={"project": project.code, "role": role, "on": on.isoformat()},
        )


def _check_create(lookups: _Lookups, object_type: str, label: str, on: datetime.date) -> None:
    """A new entry needs the source's create right on its type (ownership rules)."""
    decision = lookups.may_write(object_type, CREATE, (), on)
    if decision.refused:
        raise OwnershipConflict(
            f"{decision.message()} {label[0].upper()}{label[1:]} was not recorded.",
            fix="Record it in the owning system, or have a mapping steward change the ownership rule and re-run.",
            technical=f"refused={decision.refused}",
            context={"refused": decision.refused, "object_type": object_type, "on": on.isoformat()},
        )


def _check_change(lookups: _Lookups, object_type: str, record, incoming: dict, on: datetime.date) -> None:
    """An entry sent again with other billed values: only a system that may update those fields may change them.

    A refused change is an ownership conflict naming both values. (An allowed one is still not re-billed here:
    the entry was recorded and billed once.)
    """
    if record is None:
        return
    changes = {name: value for name, value in incoming.items() if value is not None and getattr(record, name) != value}
    if not changes:
        return
    decision = lookups.may_write(object_type, UPDATE, tuple(sorted(changes)), on)
    if not decision.refused:
        return
    source = lookups.source
    conflicts = [
        {
            "field": name,
            "incoming": str(changes[name]),
            "current": str(getattr(record, name)),
            "owner": decision.owners[name],
        }
        for name in sorted(decision.refused)
    ]
    details = "; ".join(
        f"{c['field']}: {source.name} sent {c['incoming']}, the record has {c['current']} (owned by {c['owner']})"
        for c in conflicts
    )
    raise OwnershipConflict(
        f"{source.name} may not change {', '.join(c['field'] for c in conflicts)} of {record}: {details}.",
        fix="Keep the recorded value (resolve), make the change in the owning system, or have a mapping steward "
        "change the ownership rule and re-run.",
        technical=f"refused={decision.refused}",
        context={"conflicts": conflicts, "object_type": object_type, "object_id": record.pk},
    )


def _check_project(project: Project | None, external_id: str, source) -> Project:
    if project is None:
        raise BusinessError(
            f"{source.name} project '{external_id}' is not known to the console, so its entries cannot be billed.",
            fix="Check the project was created through opportunity-to-project (or add its cross-reference), "
            "then re-run.",
        )
    if project.status != Project.Status.ACTIVE:
        raise BusinessError(
            f"Project {project.code} is {project.get_status_display().lower()}; only active projects are billed.",
            fix=f"Activate project {project.code} (or move the entry to an active project), then re-run.",
        )
    if project.contract is None:
        raise BusinessError(
            f"Project {project.code} has no contract, so nothing says how to bill it.",
            fix="Link the project to its contract, then re-run.",
        )
    return project


def _billable_groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """One billing event per project, role (or expense category), month and rate: how invoices show time."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for facts in rows:
        if not facts["billable"]:
            continue
        start, _ = _period(facts["on"])
        if facts["kind"] == "time":
            key = ("time", facts["project"].pk, facts["role"], start, facts["line"].bill_rate)
        else:
            key = ("expense", facts["project"].pk, facts["category"], start, facts["currency"])
        groups[key].append(facts)
    return groups


def _billing_event(key: tuple, members: list[dict]) -> BillingEvent:
    """The billing event of one group: its hours at the group's rate, or its expenses at cost."""
    project = members[0]["project"]
    start, end = _period(members[0]["on"])
    if key[0] == "time":
        line = members[0]["line"]
        hours = sum((m["hours"] for m in members), Decimal(0))
        return BillingEvent(
            project=project,
            contract=project.contract,
            source=BillingEvent.Source.TIME,
            event_date=end,
            description=f"{key[2]} time {start:%b %Y}: {hours} h at {line.bill_rate}",
            quantity=hours,
            unit_price=line.bill_rate,
            amount=quantize(hours * line.bill_rate, line.currency),
            currency=line.currency,
        )
    amount = sum((m["amount"] for m in members), Decimal(0))
    return BillingEvent(
        project=project,
        contract=project.contract,
        source=BillingEvent.Source.EXPENSE,
        event_date=end,
        description=f"{key[2]} expenses {start:%b %Y}",
        quantity=1,
        unit_price=amount,
        amount=amount,
        currency=key[4],
    )


def _time_entry(f: dict, event: BillingEvent | None, now) -> TimeEntry:
    line = f["line"]
    return TimeEntry(
        resource=f["resource"],
        project=f["project"],
        work_date=f["on"],
        hours=f["hours"],
        role=f["role"],
        billable=f["billable"],
        description=f["description"][:500],
        status=TimeEntry.Status.APPROVED,
        approved_at=now,
        bill_rate=line.bill_rate if line else None,
        cost_rate=line.cost_rate if line else f["resource"].cost_rate,
        currency=line.currency if line else f["project"].currency,
        billing_event=event,
    )


def _expense(f: dict, event: BillingEvent | None, now) -> Expense:
    return Expense(
        resource=f["resource"],
        project=f["project"],
        incurred_on=f["on"],
        category=f["category"][:60],
        description=f["description"][:500],
        amount=f["amount"],
        currency=f["currency"],
        billable=f["billable"],
        status=Expense.Status.APPROVED,
        approved_at=now,
        billing_event=event,
    )


def _inbound_link(source, object_type: str, obj, f: dict, now) -> CrossReference:
    return CrossReference(
        system=source,
        object_type=object_type,
        object_id=obj.pk,
        external_id=f["external_id"],
        origin=CrossReference.Origin.INBOUND,
        last_synced_at=now,
    )


@register
class TimeToBill(WorkflowDefinition):
    name = Workflow.TIME_TO_BILL
    owner_role = "finance_ops"

    def plan(self, data):
        return [
            StepSpec("record_entries", "Check billing eligibility and record entries and billing events"),
            StepSpec("post_charges", "Send billable amounts to the billing platform", target="billing"),
        ]

    def subject(self, data):
        if "event_ids" in data:
            return Subject(
                business_key=bulk_chunk_key(data.get("delivery_id", ""), data.get("chunk", 0)),
                label=f"Month-end batch of {len(data['event_ids'])} entries",
            )
        entries = data.get("entries", [])
        if len(entries) == 1:
            entry = entries[0].get("data", {})
            kind = "Expense" if entries[0].get("type") == "expense.approved" else "Time entry"
            hours = f"{entry.get('hours')} h " if entry.get("hours") else ""
            when = entry.get("work_date") or entry.get("incurred_on") or ""
            project = entry.get("project_external_id", "")
            value, currency = _entry_value(data.get("source_system"), entries[0])
            return Subject(
                business_key=f"{entries[0].get('type')}:{_external_id(entries[0])}",
                label=f"{kind} {_external_id(entries[0])}: {hours}{when} on project {project}",
                object_type="expense" if kind == "Expense" else "time_entry",
                value_at_risk=value,
                currency=currency,
            )
        values = [_entry_value(data.get("source_system"), entry) for entry in entries]
        currencies = {currency for value, currency in values if value is not None}
        if len(currencies) == 1 and all(value is not None for value, _ in values):
            return Subject(
                label=f"Batch of {len(entries)} entries",
                value_at_risk=sum(value for value, _ in values),
                currency=currencies.pop(),
            )
        return Subject(label=f"Batch of {len(entries)} entries")

    def step_record_entries(self, ctx):
        txn = ctx.transaction
        source = source_system(txn)
        entries = _entries(txn)
        lookups = _Lookups(source, entries)
        good: list[tuple[dict, dict]] = []
        bad: list[tuple[int, dict, BusinessError]] = []
        for index, entry in enumerate(entries):
            try:
                good.append((entry, self._evaluate(entry, lookups, source)))
            except (BusinessError, InvalidCommand) as error:
                bad.append((index, entry, error))
        if bad and len(entries) == 1:
            raise bad[0][2]

        def apply():
            events = self._write(good, source)
            for index, entry, error in bad:
                transaction_start(
                    workflow=Workflow.TIME_TO_BILL,
                    data={"source_system": source.slug, "entries": [entry]},
                    parent=txn,
                    command_index=index,
                    reason=f"Split out of a batch: {error.message}",
                )
            return {"billing_event_ids": [event.pk for event in events], "recorded": len(good), "split_out": len(bad)}

        return StepResult(apply=apply)

    def _evaluate(self, entry: dict, lookups: _Lookups, source) -> dict:
        data = entry.get("data", {})
        external_id = _external_id(entry)
        if not external_id:
            raise InvalidCommand(
                "An entry has no external ID, so it could be billed twice.",
                fix="Map the source system's entry ID in the source profile.",
            )
        resource = lookups.resources.get(str(data.get("resource_external_id")))
        if resource is None:
            raise BusinessError(
                f"{source.name} person '{data.get('resource_external_id')}' is not a known resource.",
                fix="Load the person from the HR system (or add the cross-reference), then re-run.",
            )
        project = _check_project(
            lookups.projects.get(str(data.get("project_external_id"))), data.get("project_external_id"), source
        )
        contract = project.contract
        if entry.get("type") == "expense.approved":
            amount = decimal(data.get("amount"), field="amount")
            if amount is None or amount <= 0:
                raise InvalidCommand(f"Expense {external_id} has no positive amount.")
            on = day(data.get("incurred_on"), field="incurred_on")
            billable = bool(data.get("billable", True)) and contract.contract_type in EXPENSES_BILLABLE
            if external_id in lookups.seen_expense:
                _check_change(
                    lookups,
                    "expense",
                    lookups.expenses.get(external_id),
                    {"amount": amount, "currency": data.get("currency") or project.currency, "incurred_on": on},
                    on,
                )
                return {"duplicate": True}
            _check_create(lookups, "expense", f"expense {external_id}", on)
            return {
                "kind": "expense",
                "external_id": external_id,
                "resource": resource,
                "project": project,
                "on": on,
                "amount": amount,
                "currency": data.get("currency") or project.currency,
                "category": data.get("category") or "Expense",
                "billable": billable,
                "description": data.get("description") or "",
            }
        hours = decimal(data.get("hours"), field="hours")
        if hours is None or not (0 < hours <= 24):
            raise InvalidCommand(f"Time entry {external_id} has {data.get('hours')} hours; give 0 < hours ≤ 24.")
        on = day(data.get("work_date"), field="work_date")
        role = data.get("role") or resource.role
        if external_id in lookups.seen_time:
            _check_change(
                lookups, "time_entry", lookups.time_entries.get(external_id), {"hours": hours, "work_date": on}, on
            )
            return {"duplicate": True}
        _check_create(lookups, "time_entry", f"time entry {external_id}", on)
        billable = bool(data.get("billable", True)) and contract.contract_type in HOURLY
        line = lookups.rate(project, role, on) if billable else None
        if project.start_date and on < project.start_date:
            raise BusinessError(
                f"Time entry {external_id} is dated {on}, before project {project.code} started "
                f"on {project.start_date}.",
                fix="Correct the work date in PSA and re-approve.",
            )
        return {
            "kind": "time",
            "external_id": external_id,
            "resource": resource,
            "project": project,
            "on": on,
            "hours": hours,
            "role": role,
            "billable": billable,
            "line": line,
            "description": data.get("description") or "",
        }

    def _write(self, good, source) -> list[BillingEvent]:
        """The accepted entries' billing events, time entries, expenses and cross-references, written set-based."""
        now = timezone.now()
        rows = [facts for _, facts in good if not facts.get("duplicate")]
        groups = _billable_groups(rows)
        events = [_billing_event(key, members) for key, members in groups.items()]
        copy_create_tracked(BillingEvent, events)
        event_for = {
            id(facts): event for members, event in zip(groups.values(), events, strict=True) for facts in members
        }
        time_rows = [f for f in rows if f["kind"] == "time"]
        expense_rows = [f for f in rows if f["kind"] == "expense"]
        entries = copy_create_tracked(TimeEntry, [_time_entry(f, event_for.get(id(f)), now) for f in time_rows])
        expenses = copy_create_tracked(Expense, [_expense(f, event_for.get(id(f)), now) for f in expense_rows])
        links = [_inbound_link(source, "time_entry", e, f, now) for e, f in zip(entries, time_rows, strict=True)]
        links += [_inbound_link(source, "expense", e, f, now) for e, f in zip(expenses, expense_rows, strict=True)]
        copy_create_tracked(CrossReference, links)
        return events

    def step_post_charges(self, ctx):
        event_ids = ctx.state.get("billing_event_ids", [])
        return post_charges(ctx, event_ids)

    def on_complete(self, txn):
        _mark_bulk_processed(txn)


def post_charges(ctx, event_ids: list[int]) -> StepResult:
    """Send pending billing events to the billing platform: one batch per invoice recipient."""
    billing = ctx.target
    # A month-end batch is a thousand events of a few projects: read the projects once, not with every event.
    events = list(
        BillingEvent.objects.filter(pk__in=event_ids, status=BillingEvent.Status.PENDING)
        .only("pk", "project_id", "description", "amount", "currency", "event_date", "status")
        .order_by("pk")
    )
    if not events:
        return StepResult(skipped="No billable amounts to send (non-billable or already sent).")
    projects = Project.objects.select_related("customer", "contract__bill_to", "contract__customer")
    recipients = {}
    for project in projects.filter(pk__in={event.project_id for event in events}):
        recipients[project.pk] = project.contract.invoice_recipient() if project.contract else project.customer
    by_customer = defaultdict(list)
    for event in events:
        by_customer[recipients[event.project_id]].append(event)
    connector = ctx.connector()
    sent: list[tuple[BillingEvent, str]] = []
    for customer, batch in by_customer.items():
        customer_billing_id = external_id_for(system=billing, obj=customer)
        if not customer_billing_id:
            raise BusinessError(
                f"Customer {customer} has no account in {billing.name}, so its charges cannot be sent.",
                fix="Re-run the customer's opportunity-to-project transaction (it creates the billing account), "
                "then re-run this one.",
            )
        currency = batch[0].currency
        charges = [
            Charge(
                reference=f"BE-{event.pk}",
                description=event.description,
                amount=event.amount,
                currency=event.currency,
                date_from=event.event_date.replace(day=1),
                date_to=event.event_date,
            )
            for event in batch
        ]
        records = connector.post_charges(
            customer_billing_id=customer_billing_id,
            currency=currency,
            charges=charges,
            idempotency_key=f"{ctx.idempotency_key}.{customer.pk}",
        )
        by_reference = {record.data.get("reference", ""): record.id for record in records}
        sent.extend((event, by_reference.get(f"BE-{event.pk}", "")) for event in batch)

    def apply():
        for event, _ in sent:
            event.status = BillingEvent.Status.SENT
        update_tracked(BillingEvent, [event.pk for event, _ in sent], status=BillingEvent.Status.SENT)
        cross_references_record(system=billing, links=[(event, charge_id) for event, charge_id in sent if charge_id])
        return {"charges_sent": len(sent), "amount_sent": str(sum((e.amount for e, _ in sent), Decimal(0)))}

    return StepResult(apply=apply)


@register
class MilestoneToBill(WorkflowDefinition):
    name = Workflow.MILESTONE_TO_BILL
    owner_role = "finance_ops"

    def plan(self, data):
        return [
            StepSpec("record_milestone", "Check the milestone and record its billing event"),
            StepSpec("post_charges", "Send the milestone amount to the billing platform", target="billing"),
            StepSpec("invoice_now", "Ask the billing platform to invoice the milestone", target="billing"),
        ]

    def subject(self, data):
        milestone = data.get("data", {})
        return Subject(
            business_key=f"milestone:{milestone.get('milestone_external_id', '')}",
            label=f"Milestone {milestone.get('name', '')} on project {milestone.get('project_external_id', '')}",
            object_type="milestone",
            value_at_risk=decimal(milestone.get("amount"), field="amount"),
            currency=milestone.get("currency") or "",
        )

    def step_record_milestone(self, ctx):
        source = source_system(ctx.transaction)
        data = ctx.input.get("data", {})
        project = _check_project(
            by_xref(source, "project", data.get("project_external_id"), required=False),
            data.get("project_external_id"),
            source,
        )
        contract = project.contract
        if contract.contract_type not in (ContractType.MILESTONE, ContractType.FIXED_FEE):
            raise BusinessError(
                f"Project {project.code} is billed {contract.get_contract_type_display().lower()}, not on "
                f"milestones; milestone '{data.get('name')}' will not be invoiced.",
                fix="Resolve this exception if the milestone is for tracking only, or correct the contract type.",
            )
        completed_on = day(data.get("completed_on"), field="completed_on") or timezone.localdate()
        milestone = by_xref(source, "milestone", data.get("milestone_external_id"), required=False)
        amount = decimal(data.get("amount"), field="amount")
        if amount is None and milestone is not None:
            amount = milestone.amount
        if amount is None or amount <= 0:
            raise BusinessError(
                f"Milestone '{data.get('name')}' on project {project.code} has no amount to bill.",
                fix="Enter the milestone amount in PSA (or on the milestone here) and re-run.",
            )
        if milestone is not None and milestone.status == Milestone.Status.BILLED:
            return StepResult(skipped=f"Milestone {milestone} was already billed.")
        currency = data.get("currency") or project.currency

        def apply():
            nonlocal milestone
            values = {"status": Milestone.Status.COMPLETED, "completed_on": completed_on, "amount": amount}
            if milestone is None:
                values.update(
                    project=project,
                    code=str(data.get("milestone_external_id"))[:40],
                    name=(data.get("name") or "Milestone")[:200],
                    currency=currency,
                )
            # Ownership: creating needs the source's create right, changing the amount its update right.
            milestone, _, _ = governed_upsert(
                Milestone, system=source, instance=milestone, values=values, on=completed_on
            )
            cross_reference_record(
                system=source,
                obj=milestone,
                external_id=str(data.get("milestone_external_id")),
                origin=CrossReference.Origin.INBOUND,
            )
            event = BillingEvent(
                project=project,
                contract=contract,
                milestone=milestone,
                source=BillingEvent.Source.MILESTONE,
                event_date=completed_on,
                description=f"Milestone: {milestone.name}",
                quantity=1,
                unit_price=amount,
                amount=amount,
                currency=currency,
            )
            event.full_clean()
            event.save()
            return {
                "billing_event_ids": [event.pk],
                "milestone_id": milestone.pk,
                "customer_id": (contract.invoice_recipient()).pk,
            }

        return StepResult(apply=apply)

    def step_post_charges(self, ctx):
        return post_charges(ctx, ctx.state.get("billing_event_ids", []))

    def step_invoice_now(self, ctx):
        billing = ctx.target
        customer = Customer.objects.get(pk=ctx.state["customer_id"])
        customer_billing_id = external_id_for(system=billing, obj=customer)
        invoices = ctx.connector().invoice_charges(
            customer_billing_id=customer_billing_id, idempotency_key=ctx.idempotency_key
        )
        milestone = Milestone.objects.get(pk=ctx.state["milestone_id"])

        def apply():
            milestone.status = Milestone.Status.BILLED
            milestone.save()
            return {"billing_invoice_ids": [invoice.id for invoice in invoices]}

        return StepResult(apply=apply)


def _mark_bulk_processed(txn) -> None:
    event_ids = txn.input.get("event_ids")
    if not event_ids:
        return
    waiting = InboundEvent.objects.filter(pk__in=event_ids).exclude(status=InboundEvent.Status.PROCESSED)
    update_tracked(
        InboundEvent,
        waiting.values_list("pk", flat=True),
        status=InboundEvent.Status.PROCESSED,
        processed_at=timezone.now(),
    )
