"""One timeline per business key: whatever id a person pastes, the whole trail across systems.

`timeline_candidates(q)` reads the query as a correlation id (a delivery's, from the inbound 202 answer, or a
transaction's), an external id of any system (cross-references), a canonical number or code (opportunity,
contract, project, invoice, customer, payment), a customer name, or a transaction's business key.
`timeline_for(key, user)` then gathers, for one of those starting points:

- the canonical records that belong to it (a customer's deals, contracts, projects, time, invoices,
  payments; a deal's contract, its amendments, projects and what was billed on them; …);
- every transaction about them: the ones whose subject they are, the ones whose business key names one of
  their external ids, and the ones that wrote them (a history row carries the writing transaction's
  correlation id), with their parents (the mapping of the inbound event) and children (split commands);
- the inbound deliveries and events behind those transactions, every step, every outbound call;
- the canonical changes (history rows) and cross-references of the records;
- the reconciliation findings about them: discrepancies whose business key or detail names one of their
  invoices, customers or projects, with status and amounts.

A correlation id leads to its chain: the delivery, its events, the transactions they started and their
children, and the records those transactions changed.

Over 500 lines on purpose: resolving any id and gathering every kind of trail entry are one read, kept together.
"""

import datetime
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from django.apps import apps
from django.db.models import Prefetch, Q
from django.urls import reverse
from django.utils.text import capfirst

from apps.canonical.models import (
    BillingEvent,
    BillingSchedule,
    Contract,
    ContractAmendment,
    Expense,
    Invoice,
    Milestone,
    Opportunity,
    Payment,
    Project,
    TimeEntry,
)
from apps.core.history_diff import HISTORY_TYPES, field_changes, previous_rows
from apps.core.masking import masked_fields_for
from apps.core.objects import MODEL_LABELS, BusinessObject, model_for
from apps.inbound.models import Delivery, InboundEvent
from apps.mapping.models import CrossReference
from apps.reconciliation.models import Discrepancy
from apps.sync.models import Step, StepAttempt, Transaction
from apps.sync.selectors import visible_call

MAX_ENTRIES = 1500
MAX_FINDINGS = 200
MAX_ROWS_PER_MODEL = 2000
# The business keys the workflows give their transactions, by the external id they carry.
KEY_PREFIXES = (
    "opportunity",
    "invoice",
    "payment",
    "milestone",
    "customer",
    "resource",
    "time_entry.approved",
    "expense.approved",
)
NUMBER_FIELDS = {
    BusinessObject.OPPORTUNITY: "number",
    BusinessObject.CONTRACT: "number",
    BusinessObject.PROJECT: "code",
    BusinessObject.INVOICE: "number",
    BusinessObject.CUSTOMER: "number",
    BusinessObject.PAYMENT: "reference",
}
AMENDED = (BusinessObject.CONTRACT, BusinessObject.OPPORTUNITY)
NAME_SEARCH = (BusinessObject.CUSTOMER, BusinessObject.OPPORTUNITY, BusinessObject.PROJECT, BusinessObject.CONTRACT)


@dataclass(frozen=True)
class Candidate:
    """A starting point the query may mean: "customer:12", "delivery:7", "transaction:40"."""

    key: str
    label: str
    found_as: str


@dataclass
class Entry:
    """One line of the timeline."""

    at: datetime.datetime | None
    kind: str  # delivery, event, transaction, step, call, change, link
    title: str
    system: str = ""
    status: str = ""
    detail: str = ""
    url: str = ""
    correlation_id: str = ""
    changes: list = field(default_factory=list)


@dataclass
class Trail:
    """What the timeline page shows for one starting point."""

    start: Candidate
    entries: list[Entry]
    records: dict[str, set[int]]
    transactions: list[Transaction]
    truncated: bool = False

    def count(self, kind: str) -> int:
        return sum(1 for entry in self.entries if entry.kind == kind)


# --- what the query may mean --------------------------------------------------------------------------


def _record_label(object_type: str, obj) -> str:
    return f"{BusinessObject(object_type).label.split(' /')[0]} {obj}"


def timeline_candidates(q: str) -> list[Candidate]:
    """Every starting point the query may mean, most specific first; related ones are folded into one."""
    q = (q or "").strip()
    if not q:
        return []
    found: dict[str, Candidate] = {}

    def add(key, label, how):
        found.setdefault(key, Candidate(key, label, how))

    for delivery in Delivery.objects.filter(correlation_id=q).select_related("system")[:5]:
        add(
            f"delivery:{delivery.pk}",
            f"Delivery from {delivery.system.name} at {delivery.received_at:%Y-%m-%d %H:%M}",
            "correlation id of an inbound delivery",
        )
    for txn in Transaction.objects.filter(correlation_id=q)[:5]:
        add(f"transaction:{txn.pk}", str(txn), "correlation id of a transaction")
    for xref in CrossReference.objects.filter(external_id=q).select_related("system")[:20]:
        obj = model_for(xref.object_type).objects.filter(pk=xref.object_id).first()
        if obj is not None:
            add(f"{xref.object_type}:{xref.object_id}", _record_label(xref.object_type, obj), f"{xref.system.name} id")
    for object_type, number in NUMBER_FIELDS.items():
        for obj in model_for(object_type).objects.filter(**{f"{number}__iexact": q})[:5]:
            add(f"{object_type}:{obj.pk}", _record_label(object_type, obj), f"{number} of the {object_type}")
    if not found and len(q) >= 3:
        for object_type in NAME_SEARCH:
            matches = list(model_for(object_type).objects.filter(name__icontains=q)[:10])
            for obj in matches:
                add(f"{object_type}:{obj.pk}", _record_label(object_type, obj), "name")
            if matches:
                break
    if not found:
        keys = [q, *(f"{prefix}:{q}" for prefix in KEY_PREFIXES)]  # exact keys: the index answers, no scan
        for txn in Transaction.objects.filter(business_key__in=keys)[:10]:
            add(f"transaction:{txn.pk}", str(txn), "business key of a transaction")
    if not found:
        for row in Discrepancy.objects.filter(business_key=q)[:10]:
            add(f"discrepancy:{row.pk}", str(row), "business key of a reconciliation finding")
    return _fold(list(found.values()))


def _fold(candidates: list[Candidate]) -> list[Candidate]:
    """When one candidate's records include every other candidate (a deal and its contract), keep that one."""
    if len(candidates) < 2:
        return candidates
    record_keys = [c for c in candidates if c.key.split(":")[0] in BusinessObject.values]
    if len(record_keys) != len(candidates):
        return candidates
    for candidate in candidates:
        object_type, pk = candidate.key.split(":")
        records = _records_of(object_type, int(pk))
        if all(int(other.key.split(":")[1]) in records.get(other.key.split(":")[0], set()) for other in candidates):
            return [candidate]
    return candidates


# --- which records belong to a starting point -------------------------------------------------------


class _Records:
    def __init__(self):
        self.ids: dict[str, set[int]] = {}

    def add(self, object_type: str, pks) -> list[int]:
        known = self.ids.setdefault(str(object_type), set())
        new = [pk for pk in pks if pk is not None and pk not in known]
        known.update(new)
        return new

    def has(self, object_type: str, pk) -> bool:
        return pk in self.ids.get(str(object_type), set())


def _records_of(object_type: str, pk: int) -> dict[str, set[int]]:
    records = _Records()
    if object_type == BusinessObject.CUSTOMER:
        _customer(records, [pk])
    elif object_type == BusinessObject.OPPORTUNITY:
        _opportunity(records, [pk])
    elif object_type == BusinessObject.CONTRACT:
        _contract(records, [pk])
    elif object_type == BusinessObject.PROJECT:
        _project(records, [pk])
    elif object_type == BusinessObject.INVOICE:
        _invoice(records, [pk])
    else:
        records.add(object_type, [pk])
        obj = model_for(object_type).objects.filter(pk=pk).first()
        for name in ("project_id", "invoice_id", "customer_id", "contract_id"):
            related = getattr(obj, name, None)
            if related:
                records.add(name.removesuffix("_id"), [related])
    return records.ids


def _customer(records: _Records, pks):
    pks = records.add(BusinessObject.CUSTOMER, pks)
    if not pks:
        return
    _opportunity(records, Opportunity.objects.filter(customer__in=pks).values_list("pk", flat=True))
    _contract(records, Contract.objects.filter(Q(customer__in=pks) | Q(bill_to__in=pks)).values_list("pk", flat=True))
    _project(records, Project.objects.filter(customer__in=pks).values_list("pk", flat=True))
    _invoice(records, Invoice.objects.filter(customer__in=pks).values_list("pk", flat=True))
    records.add(BusinessObject.PAYMENT, Payment.objects.filter(customer__in=pks).values_list("pk", flat=True))


def _opportunity(records: _Records, pks):
    pks = records.add(BusinessObject.OPPORTUNITY, pks)
    if not pks:
        return
    records.add(BusinessObject.CUSTOMER, Opportunity.objects.filter(pk__in=pks).values_list("customer_id", flat=True))
    _contract(records, Contract.objects.filter(opportunity__in=pks).values_list("pk", flat=True))


def _contract(records: _Records, pks):
    pks = records.add(BusinessObject.CONTRACT, pks)
    if not pks:
        return
    for customer, opportunity in Contract.objects.filter(pk__in=pks).values_list("customer_id", "opportunity_id"):
        records.add(BusinessObject.CUSTOMER, [customer])
        records.add(BusinessObject.OPPORTUNITY, [opportunity])
    records.add(
        BusinessObject.CONTRACT_AMENDMENT,
        ContractAmendment.objects.filter(contract__in=pks).values_list("pk", flat=True),
    )
    _project(records, Project.objects.filter(contract__in=pks).values_list("pk", flat=True))
    _invoice(records, Invoice.objects.filter(contract__in=pks).values_list("pk", flat=True))
    records.add(
        BusinessObject.BILLING_SCHEDULE, BillingSchedule.objects.filter(contract__in=pks).values_list("pk", flat=True)
    )


def _project(records: _Records, pks):
    pks = records.add(BusinessObject.PROJECT, pks)
    if not pks:
        return
    contracts = [c for c in Project.objects.filter(pk__in=pks).values_list("contract_id", flat=True) if c]
    records.add(BusinessObject.CUSTOMER, Project.objects.filter(pk__in=pks).values_list("customer_id", flat=True))
    records.add(BusinessObject.CONTRACT, contracts)
    records.add(
        BusinessObject.CONTRACT_AMENDMENT,
        ContractAmendment.objects.filter(contract__in=contracts).values_list("pk", flat=True),
    )
    records.add(BusinessObject.TIME_ENTRY, TimeEntry.objects.filter(project__in=pks).values_list("pk", flat=True))
    records.add(BusinessObject.EXPENSE, Expense.objects.filter(project__in=pks).values_list("pk", flat=True))
    records.add(BusinessObject.MILESTONE, Milestone.objects.filter(project__in=pks).values_list("pk", flat=True))
    records.add(
        BusinessObject.BILLING_SCHEDULE, BillingSchedule.objects.filter(project__in=pks).values_list("pk", flat=True)
    )
    records.add(BusinessObject.BILLING_EVENT, BillingEvent.objects.filter(project__in=pks).values_list("pk", flat=True))
    _invoice(records, Invoice.objects.filter(project__in=pks).values_list("pk", flat=True))


def _invoice(records: _Records, pks):
    pks = records.add(BusinessObject.INVOICE, pks)
    if not pks:
        return
    records.add(BusinessObject.PAYMENT, Payment.objects.filter(invoice__in=pks).values_list("pk", flat=True))
    records.add(BusinessObject.CUSTOMER, Invoice.objects.filter(pk__in=pks).values_list("customer_id", flat=True))


# --- the transactions and their chain ---------------------------------------------------------------


def _with_family(seed: set[int], *, up: bool = True) -> set[int]:
    """The transactions, their ancestors (if `up`), and all their descendants and replays."""
    found = set(seed)
    frontier = set(seed)
    while up and frontier:
        parents = set(
            Transaction.objects.filter(pk__in=frontier, parent__isnull=False).values_list("parent_id", flat=True)
        )
        frontier = parents - found
        found |= frontier
    frontier = set(found)
    while frontier:
        below = set(
            Transaction.objects.filter(Q(parent__in=frontier) | Q(replay_of__in=frontier)).values_list("pk", flat=True)
        )
        frontier = below - found
        found |= frontier
    return found


def _transactions_of_records(records: dict[str, set[int]], correlation_ids: set[str], xrefs) -> set[int]:
    query = Q(correlation_id__in=correlation_ids) if correlation_ids else Q(pk__in=[])
    for object_type, pks in records.items():
        if pks:
            query |= Q(subject_type=object_type, subject_id__in=pks)
    external_ids = {xref.external_id for xref in xrefs}
    deal_ids = {xref.external_id for xref in xrefs if xref.object_type in AMENDED}
    for object_type, pks in records.items():
        number = NUMBER_FIELDS.get(object_type)
        if number and pks:
            numbers = set(model_for(object_type).objects.filter(pk__in=pks).values_list(number, flat=True))
            external_ids |= numbers
            if object_type in AMENDED:
                deal_ids |= numbers
    keys = [f"{prefix}:{external_id}" for prefix in KEY_PREFIXES for external_id in external_ids]
    if keys:
        query |= Q(business_key__in=keys)
    for deal_id in deal_ids:  # an amendment names its contract by the contract's or the deal's id
        query |= Q(business_key__startswith=f"amendment:{deal_id}:")
    return set(Transaction.objects.filter(query).values_list("pk", flat=True))


def _history_models():
    for object_type, label in MODEL_LABELS.items():
        yield object_type.value, apps.get_model(label)


# --- the trail --------------------------------------------------------------------------------------


def timeline_for(key: str, user) -> Trail | None:
    """The whole trail of one starting point (a key from `timeline_candidates`), oldest first."""
    kind, _, raw_pk = key.partition(":")
    try:
        pk = int(raw_pk)
    except ValueError:
        return None
    entries: list[Entry] = []
    if kind == "delivery":
        delivery = Delivery.objects.filter(pk=pk).select_related("system").first()
        if delivery is None:
            return None
        start = Candidate(key, f"Delivery from {delivery.system.name}", "correlation id")
        seed = set(
            Transaction.objects.filter(
                Q(inbound_event__delivery=delivery) | Q(business_key__startswith=f"bulk:{delivery.pk}:")
            ).values_list("pk", flat=True)
        )
        txn_ids = _with_family(seed, up=False)
        records, history_rows = _records_changed_by(txn_ids)
        delivery_ids = {delivery.pk}
    elif kind == "transaction":
        txn = Transaction.objects.filter(pk=pk).first()
        if txn is None:
            return None
        start = Candidate(key, str(txn), "transaction")
        txn_ids = _with_family({pk})
        records, history_rows = _records_changed_by(txn_ids)
        delivery_ids = set()
    elif kind == "discrepancy":
        row = Discrepancy.objects.filter(pk=pk).first()
        if row is None:
            return None
        start = Candidate(key, str(row), "reconciliation finding")
        txn_ids, records, history_rows, delivery_ids = set(), {}, {}, set()
        entries += [_finding_entry(row)]
    elif kind in BusinessObject.values:
        obj = model_for(kind).objects.filter(pk=pk).first()
        if obj is None:
            return None
        start = Candidate(key, _record_label(kind, obj), "record")
        records = _records_of(kind, pk)
        history_rows = _history_rows(records)
        xrefs = list(_xrefs(records))
        correlation_ids = {row.history_correlation_id for rows in history_rows.values() for row in rows}
        correlation_ids |= {xref.history_correlation_id for xref in _xref_history(xrefs)}
        txn_ids = _with_family(_transactions_of_records(records, correlation_ids, xrefs))
        delivery_ids = set()
    else:
        return None
    transactions = _transactions(txn_ids)
    delivery_ids |= {txn.inbound_event.delivery_id for txn in transactions if txn.inbound_event_id}
    delivery_ids |= {_bulk_delivery(txn) for txn in transactions} - {None}
    entries += _inbound_entries(delivery_ids)
    entries += _transaction_entries(transactions, user)
    entries += _change_entries(history_rows, user)
    xrefs = list(_xrefs(records))
    entries += [_xref_entry(row) for row in _xref_history(xrefs)]
    entries += [_finding_entry(row) for row in _findings(records)]
    entries.sort(key=lambda entry: (entry.at is None, entry.at or datetime.datetime.min, entry.kind))
    truncated = len(entries) > MAX_ENTRIES
    return Trail(
        start=start, entries=entries[:MAX_ENTRIES], records=records, transactions=transactions, truncated=truncated
    )


def _records_changed_by(txn_ids: set[int]):
    correlation_ids = list(Transaction.objects.filter(pk__in=txn_ids).values_list("correlation_id", flat=True))
    records = _Records()
    for txn in Transaction.objects.filter(pk__in=txn_ids).exclude(subject_id=None).exclude(subject_type=""):
        if txn.subject_type in BusinessObject.values:
            records.add(txn.subject_type, [txn.subject_id])
    if correlation_ids:
        for object_type, model in _history_models():
            written = model.history.filter(history_correlation_id__in=correlation_ids).values_list("id", flat=True)
            records.add(object_type, set(written[:MAX_ROWS_PER_MODEL]))
    history_rows = _history_rows(records.ids)
    return records.ids, history_rows


def _history_rows(records: dict[str, set[int]]) -> dict[str, list]:
    rows = {}
    for object_type, pks in records.items():
        if not pks:
            continue
        model = model_for(object_type)
        found = list(
            model.history.filter(id__in=pks)
            .select_related("history_user")
            .order_by("history_date")[:MAX_ROWS_PER_MODEL]
        )
        if found:
            rows[object_type] = found
    return rows


def _xrefs(records: dict[str, set[int]]):
    query = Q(pk__in=[])
    for object_type, pks in records.items():
        if pks:
            query |= Q(object_type=object_type, object_id__in=pks)
    return CrossReference.objects.filter(query).select_related("system")


def _xref_history(xrefs):
    if not xrefs:
        return []
    return list(
        CrossReference.history.filter(id__in=[xref.pk for xref in xrefs], history_type="+").select_related("system")
    )


def _transactions(txn_ids: set[int]) -> list[Transaction]:
    attempts = StepAttempt.objects.order_by("number")
    steps = Step.objects.select_related("target_system").prefetch_related(Prefetch("attempt_log", queryset=attempts))
    return list(
        Transaction.objects.filter(pk__in=txn_ids)
        .select_related("inbound_event__system")
        .prefetch_related(Prefetch("steps", queryset=steps.order_by("sequence")))
        .order_by("created_at")
    )


def _trace_url(txn) -> str:
    return reverse("admin:sync_transaction_change", args=[txn.pk])


def _inbound_entries(delivery_ids: set[int]) -> list[Entry]:
    if not delivery_ids:
        return []
    entries = []
    deliveries = Delivery.objects.filter(pk__in=delivery_ids).select_related("system").defer("body")
    for delivery in deliveries:
        entries.append(
            Entry(
                at=delivery.received_at,
                kind="delivery",
                title=f"{delivery.get_kind_display()} received from {delivery.system.name}",
                system=delivery.system.slug,
                status=delivery.status,
                detail=f"{delivery.event_count} event(s), {delivery.body_size} bytes, "
                f"{'verified' if delivery.verified else 'not verified'} ({delivery.scheme or 'no signature'})",
                url=reverse("admin:inbound_delivery_change", args=[delivery.pk]),
                correlation_id=delivery.correlation_id,
            )
        )
    events = InboundEvent.objects.filter(delivery__in=delivery_ids).select_related("system").defer("payload")
    for event in events[:MAX_ROWS_PER_MODEL]:
        error = (event.error or {}).get("message", "") if isinstance(event.error, dict) else ""
        entries.append(
            Entry(
                at=event.created_at,
                kind="event",
                title=f"Event {event.event_type or 'received'} {event.vendor_event_id}".strip(),
                system=event.system.slug,
                status=event.status,
                detail=error or f"{len(event.commands or [])} canonical command(s)",
                url=reverse("admin:inbound_inboundevent_change", args=[event.pk]),
                correlation_id=event.correlation_id,
            )
        )
    return entries


def _transaction_entries(transactions: list[Transaction], user) -> list[Entry]:
    entries = []
    for txn in transactions:
        url = _trace_url(txn)
        money = f"{txn.value_at_risk:,.2f} {txn.currency}" if txn.value_at_risk is not None and txn.currency else ""
        entries.append(
            Entry(
                at=txn.created_at,
                kind="transaction",
                title=f"{txn.get_workflow_display()}: {txn.subject or txn.business_key}",
                status=txn.status,
                detail=" · ".join(part for part in (money, txn.error_message) if part),
                url=url,
                correlation_id=txn.correlation_id,
            )
        )
        source = txn.inbound_event.system.slug if txn.inbound_event_id else ""
        for step in txn.steps.all():
            system = step.target_system.slug if step.target_system_id else source
            if step.started_at or step.finished_at:
                entries.append(
                    Entry(
                        at=step.finished_at or step.started_at,
                        kind="step",
                        title=f"Step {step.sequence}. {step.title or step.name}",
                        system=system,
                        status=step.status,
                        detail=step.error_message or (f"{step.duration_ms} ms" if step.duration_ms is not None else ""),
                        url=url,
                        correlation_id=txn.correlation_id,
                    )
                )
            for attempt in step.attempt_log.all():
                for call in attempt.http_calls or []:
                    shown = visible_call(call, user)
                    entries.append(
                        Entry(
                            at=_parse(shown.get("started_at")) or attempt.started_at,
                            kind="call",
                            title=f"{shown.get('method', '')} {_path(shown.get('url', ''))}",
                            system=system,
                            status=str(shown.get("status") or shown.get("error") or ""),
                            detail=f"attempt {attempt.number}, {shown.get('duration_ms', '?')} ms"
                            + (f" · {shown['error']}" if shown.get("error") else ""),
                            url=url,
                            correlation_id=txn.correlation_id,
                        )
                    )
    return entries


def _change_entries(history_rows: dict[str, list], user) -> list[Entry]:
    entries = []
    for object_type, rows in history_rows.items():
        model = model_for(object_type)
        hidden = masked_fields_for(user, model)
        before = previous_rows(model.history.model, rows)
        name = capfirst(str(model._meta.verbose_name))
        number = NUMBER_FIELDS.get(object_type) or ("name" if hasattr(rows[0], "name") else "")
        for row in rows:
            label = getattr(row, number, "") if number else ""
            changes = field_changes(row, before.get(row.history_id), hidden, user=user)
            shown = [change for change in changes if change.field not in ("updated_at", "created_at")]
            entries.append(
                Entry(
                    at=row.history_date,
                    kind="change",
                    title=f"{name} {label or '#' + str(row.id)} {HISTORY_TYPES[row.history_type]}",
                    status=HISTORY_TYPES[row.history_type],
                    detail=row.history_change_reason or "",
                    url=f"{reverse('console:audit')}?model={model._meta.label_lower}&object_id={row.id}",
                    correlation_id=row.history_correlation_id,
                    changes=shown,
                )
            )
    return entries


def _xref_entry(row) -> Entry:
    return Entry(
        at=row.history_date,
        kind="link",
        title=f"{BusinessObject(row.object_type).label.split(' /')[0]} #{row.object_id} is {row.external_id} "
        f"in {row.system.name}",
        system=row.system.slug,
        status=row.origin,
        detail=row.history_change_reason or "",
        correlation_id=row.history_correlation_id,
    )


def _findings(records: dict[str, set[int]]):
    """Discrepancies whose business key or detail names one of the records' invoices, customers or projects."""
    names = {
        "invoice": set(Invoice.objects.filter(pk__in=records.get("invoice", ())).values_list("number", flat=True)),
        "customer": set(
            model_for(BusinessObject.CUSTOMER)
            .objects.filter(pk__in=records.get("customer", ()))
            .values_list("number", flat=True)
        ),
        "project": set(Project.objects.filter(pk__in=records.get("project", ())).values_list("code", flat=True)),
    }
    names = {what: {name for name in found if name} for what, found in names.items()}
    if not any(names.values()):
        return []
    where = Q(business_key__in=names["invoice"] | names["project"])
    for what, found in names.items():
        if found:
            where |= Q(**{f"detail__{what}__in": sorted(found)})
    return list(
        Discrepancy.objects.filter(where).select_related("legal_entity").order_by("-last_seen_at")[:MAX_FINDINGS]
    )


def _finding_entry(row: Discrepancy) -> Entry:
    def amount(value):
        return "—" if value is None else f"{row.currency} {value:,.2f}"

    age = f"open {row.days_open} d" if row.status != Discrepancy.Status.CLOSED else f"closed {row.closed_at:%Y-%m-%d}"
    return Entry(
        at=row.first_seen_at,
        kind="finding",
        title=f"Reconciliation: {row.get_check_type_display()} — {row.business_key}",
        system=f"{row.left_system} vs {row.right_system}",
        status=row.status,
        detail=f"{row.left_system} {amount(row.left_amount)}, {row.right_system} {amount(row.right_amount)}, "
        f"difference {amount(row.difference)} ({row.reporting_currency} {row.value_at_risk:,.2f} at risk); "
        f"{row.period}, {age}, last seen {row.last_seen_at:%Y-%m-%d}.",
        url=f"{reverse('console:reconciliation')}?"
        + urlencode({"business_key": row.business_key, "status": list(Discrepancy.Status.values)}, doseq=True),
    )


def _path(url: str) -> str:
    """A call's URL without scheme and host: the system column already says where it went."""
    parts = urlsplit(url or "")
    return f"{parts.path}{'?' + parts.query if parts.query else ''}" if parts.netloc else (url or "")


def _bulk_delivery(txn) -> int | None:
    """A month-end batch names its bulk delivery in its business key ("bulk:<delivery id>:<chunk>")."""
    prefix, _, rest = txn.business_key.partition(":")
    delivery_id = rest.partition(":")[0]
    return int(delivery_id) if prefix == "bulk" and delivery_id.isdigit() else None


def _parse(value):
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
