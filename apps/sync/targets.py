"""Routing a workflow's steps to systems: which legal entity a transaction is about, and the system its step writes to.

The choice itself (routes in force, else the single enabled system) is `apps.systems.routing`; this module
finds the legal entity from what the transaction recorded so far, so a step routes per entity. A step that
writes back to a record (the deal a project came from, the account whose balance changed) goes to the system
that holds that record: a deal won in HubSpot is reported to HubSpot even when Salesforce is also a CRM.
"""

from apps.canonical.models import BillingEvent, Contract, Customer, Invoice, Milestone, Payment, Project
from apps.core.objects import BusinessObject
from apps.mapping.models import CrossReference
from apps.systems.models import ConnectedSystem
from apps.systems.routing import RouteChoice, RouteMissing, choose_system

from .models import Transaction

# The canonical records a workflow's state may name, most specific first, and how each knows its entity.
_ENTITY_SOURCES = (
    ("invoice_id", Invoice, "legal_entity__code"),
    ("project_id", Project, "legal_entity__code"),
    ("milestone_id", Milestone, "project__legal_entity__code"),
    ("billing_event_ids", BillingEvent, "project__legal_entity__code"),
    ("contract_id", Contract, "legal_entity__code"),
    ("payment_id", Payment, "invoice__legal_entity__code"),
    ("customer_id", Customer, "legal_entity__code"),
)


def legal_entity_code(txn: Transaction) -> str:
    """The code of the legal entity a transaction is about, from its recorded records or its input ('' if none)."""
    state = txn.state or {}
    for key, model, path in _ENTITY_SOURCES:
        pk = state.get(key)
        if isinstance(pk, list):  # e.g. the billing events a time-to-bill run recorded: the first one decides
            pk = pk[0] if pk else None
        if pk:
            code = model.objects.filter(pk=pk).values_list(path, flat=True).first()
            if code:
                return code
    code = (txn.effective_input or {}).get("legal_entity")
    return code if isinstance(code, str) else ""


def planned_system(*, workflow: str, kind: str | None, data: dict) -> ConnectedSystem | None:
    """The system a step is expected to write to when the transaction starts (its step re-routes when it runs).

    None when no system is enabled, or when the choice needs a route that is missing (the step says so).
    """
    if kind is None:
        return None
    entity = data.get("legal_entity") if isinstance(data, dict) else None
    try:
        choice = choose_system(workflow=workflow, kind=kind, legal_entity=entity if isinstance(entity, str) else "")
    except RouteMissing:
        return None
    return choice.system if choice else None


# Where a transaction's state names the record a step writes back to: the state key, or a record that names it.
_WRITE_BACK_SOURCES = {
    BusinessObject.OPPORTUNITY: (("opportunity_id", None, ""),),
    BusinessObject.CUSTOMER: (
        ("customer_id", None, ""),
        ("invoice_id", Invoice, "customer_id"),
        ("payment_id", Payment, "customer_id"),
    ),
}


def _written_back_id(txn: Transaction, object_type: str) -> int | None:
    state = txn.state or {}
    for key, model, path in _WRITE_BACK_SOURCES.get(object_type, ()):
        pk = state.get(key)
        if pk and model is not None:
            pk = model.objects.filter(pk=pk).values_list(path, flat=True).first()
        if pk:
            return pk
    return None


def holder_choice(txn: Transaction, kind: str, object_type: str) -> RouteChoice | None:
    """The one enabled system of `kind` that holds the record the step writes back to; None if none or several."""
    pk = _written_back_id(txn, object_type)
    if pk is None:
        return None
    holders = list(
        ConnectedSystem.objects.filter(
            kind=kind,
            enabled=True,
            pk__in=CrossReference.objects.filter(object_type=object_type, object_id=pk).values("system_id"),
        )[:2]
    )
    if len(holders) != 1:
        return None
    label = BusinessObject(object_type).label.lower()
    return RouteChoice(holders[0], reason=f"{holders[0].name} holds the {label} this step updates")


def route_step(txn: Transaction, kind: str, *, writes_back: str = "") -> RouteChoice | None:
    """The system a running step writes to and why; raises RouteMissing when ambiguous.

    A step that writes back to a record goes to the one system of the kind holding it; otherwise routes decide.
    """
    if writes_back:
        choice = holder_choice(txn, kind, writes_back)
        if choice is not None:
            return choice
    return choose_system(workflow=txn.workflow, kind=kind, legal_entity=legal_entity_code(txn))
