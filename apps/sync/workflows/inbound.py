"""Inbound event → canonical commands: fetch thin notifications, apply the source profile, start workflows."""

import re
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from apps.core.errors import MappingError
from apps.inbound.models import InboundEvent
from apps.mapping.models import SourceProfile
from apps.mapping.profiles.engine import apply_profile
from apps.mapping.services import profile_for_event

from ..models import Workflow
from ..registry import StepSpec, Subject, WorkflowDefinition, register
from ..services import transaction_start
from ..steps import StepResult

MONEY_FIELDS = ("amount", "total", "new_total_value")

COMMAND_WORKFLOWS = {
    "opportunity.won": Workflow.OPPORTUNITY_TO_PROJECT,
    "customer.changed": Workflow.CUSTOMER_UPDATE,
    "resource.changed": Workflow.RESOURCE_UPDATE,
    "time_entry.approved": Workflow.TIME_TO_BILL,
    "expense.approved": Workflow.TIME_TO_BILL,
    "milestone.completed": Workflow.MILESTONE_TO_BILL,
    "invoice.posted": Workflow.INVOICE_TO_ERP,
    "payment.received": Workflow.PAYMENT_TO_CRM,
    "contract.amended": Workflow.CONTRACT_AMENDMENT,
}


def command_input(command: dict, *, source_system: str) -> tuple[str, dict]:
    """The workflow and the transaction input for one canonical command."""
    workflow = COMMAND_WORKFLOWS[command["type"]]
    if workflow == Workflow.TIME_TO_BILL:
        return workflow, {"source_system": source_system, "entries": [command]}
    return workflow, {"source_system": source_system, **command}


@register
class InboundEventWorkflow(WorkflowDefinition):
    name = Workflow.INBOUND_EVENT
    owner_role = "mapping_steward"

    def plan(self, data):
        return [StepSpec("map", "Read the event with its source profile", max_attempts=6)]

    def subject(self, data):
        system = data.get("system_name") or data.get("system", "")
        event_type = data.get("event_type", "") or "(no type)"
        return Subject(
            business_key=f"inbound:{data.get('system', '')}:{data.get('idempotency_key', '')}",
            label=f"{system} event {event_type} {data.get('vendor_event_id', '')[:40]}".rstrip(),
            object_type="",
        )

    def step_map(self, ctx):
        event = InboundEvent.objects.select_related("system").get(pk=ctx.transaction.input["event_id"])
        system = event.system
        payload = ctx.input.get("payload_override", event.payload)
        on = (event.occurred_at or event.created_at or timezone.now()).date()
        profile = profile_for_event(system=system, event_type=event.event_type, schema_version=event.schema_version)
        if profile is None:
            reason = f"No active source profile reads '{event.event_type}' events from {system.name}."
            return StepResult(skipped=reason, apply=lambda: _mark(event, InboundEvent.Status.SKIPPED, reason=reason))
        result = apply_profile(
            profile.spec, payload, on=on, source_event_id=event.vendor_event_id, occurred_at=event.occurred_at
        )
        if result.needs_fetch and not result.errors:
            connector = ctx.connector(system)
            fetched = {request.key: fetch_document(connector, request) for request in result.needs_fetch}
            result = apply_profile(
                profile.spec,
                payload,
                fetched=fetched,
                on=on,
                source_event_id=event.vendor_event_id,
                occurred_at=event.occurred_at,
            )
        rendered = result.as_dict()
        if result.errors:
            first = result.errors[0]
            more = f" (and {len(result.errors) - 1} more problem(s))" if len(result.errors) > 1 else ""
            raise MappingError(
                f"{system.name} {event.event_type} could not be read with profile {profile.name} "
                f"v{profile.version}: {first.message}{more}",
                fix=first.fix or "Correct the profile, a value map or the event's payload, then re-run.",
                technical="; ".join(
                    f"{issue.location or issue.field} @ {issue.path}: {issue.message}" for issue in result.errors
                ),
                context={
                    "errors": rendered["errors"],
                    "profile": profile.name,
                    "version": profile.version,
                    **_value_map_missed(profile.spec, result.errors, on),
                    **_money_held_up(result.incomplete),
                },
            )
        if result.needs_fetch:
            raise MappingError(
                f"{system.name} sent a thin notification and the fetched record still lacks what profile "
                f"{profile.name} needs.",
                technical=str(rendered["needs_fetch"]),
            )
        if not result.commands:
            reason = "; ".join(skip.reason for skip in result.skipped) or "The profile produced no command."
            return StepResult(
                output={"commands": 0},
                skipped=reason,
                apply=lambda: _mark(event, InboundEvent.Status.SKIPPED, reason=reason, profile=profile),
            )
        commands = rendered["commands"]

        def apply():
            _mark(event, InboundEvent.Status.MAPPED, profile=profile, commands=commands)
            started = []
            for index, command in enumerate(commands):
                if command["type"] not in COMMAND_WORKFLOWS:
                    continue
                workflow, data = command_input(command, source_system=system.slug)
                child = transaction_start(
                    workflow=workflow,
                    data=data,
                    inbound_event=event,
                    parent=ctx.transaction,
                    command_index=index,
                    reason=f"{command['type']} from {system.name} event {event.vendor_event_id or event.pk}",
                )
                started.append(child.correlation_id)
            return {"commands": len(commands), "started": started}

        return StepResult(output={"profile": f"{profile.name} v{profile.version}"}, apply=apply)

    def on_exception(self, txn, error):
        event = txn.inbound_event
        if event is not None:
            profile = SourceProfile.objects.filter(
                name=error.context.get("profile", ""), version=error.context.get("version") or 0
            ).first()
            _mark(event, InboundEvent.Status.EXCEPTION, error=error.as_dict(), profile=profile)
        amount, currency = error.context.get("value_at_risk"), error.context.get("currency", "")
        if txn.value_at_risk is None and amount and currency:
            # The event's own money (the deal's amount, the invoice's total) is what this exception holds up.
            txn.value_at_risk, txn.currency = Decimal(amount), currency
            txn.save(update_fields=["value_at_risk", "currency", "updated_at"])


def _money_held_up(commands) -> dict:
    """The amount and currency of the first command that failed to map, when it got that far."""
    for command in commands:
        data = command.data
        for name in MONEY_FIELDS:
            if data.get(name) not in (None, "") and data.get("currency"):
                try:
                    return {"value_at_risk": str(Decimal(str(data[name]))), "currency": str(data["currency"])}
                except (InvalidOperation, ValueError):
                    continue
    return {}


def _value_map_missed(spec: dict, errors, on) -> dict:
    """The value map and key a mapping error missed, read from the profile at the issue's location."""
    for issue in errors:
        node = spec
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", issue.location or ""):
            if part.startswith("["):
                index = int(part[1:-1])
                node = node[index] if isinstance(node, list) and index < len(node) else None
            else:
                node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict) and node.get("value_map"):
            # The lookup's date (the mapping's as_of, e.g. the close date) is in the message; else the event's.
            dated = re.search(r"\bon (\d{4}-\d{2}-\d{2})", issue.message)
            return {"value_map": node["value_map"], "value": issue.value, "on": dated[1] if dated else on.isoformat()}
    return {}


def fetch_document(connector, request) -> dict:
    """The record a thin notification points at, with its includes: {object: record, include: record, …}."""
    if hasattr(connector, "fetch_document"):
        return connector.fetch_document(request.object, request.id, params=request.params, include=request.include)
    record = connector.fetch(request.object, request.id)
    document = {request.object: record}
    for name in request.include:
        # Vendors link a related record by "<Name>Id" (Salesforce) or "<name>_id" on the main record.
        reference = record.get(f"{name}Id") or record.get(f"{name}_id") or record.get(f"{name.lower()}_id")
        if reference:
            document[name] = connector.fetch(name, str(reference))
    return document


def _mark(event: InboundEvent, status: str, *, reason: str = "", profile=None, commands=None, error=None):
    event.status = status
    event.processed_at = timezone.now()
    if profile is not None:
        event.profile = profile
    if commands is not None:
        event.commands = commands
    event.error = error or ({"message": reason} if reason else {})
    event.save()
    return {}
