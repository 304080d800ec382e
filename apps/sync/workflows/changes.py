"""Changes to existing records: contract amendments, customer updates from CRM or ERP, HR resource changes."""

import datetime

from django.utils import timezone

from apps.canonical.models import (
    BillingSchedule,
    Contract,
    ContractAmendment,
    Customer,
    LegalEntity,
    Opportunity,
    Project,
    RateCard,
    RateCardLine,
    RateCardVersion,
    Resource,
)
from apps.canonical.services import (
    governed_upsert,
    next_number,
    rate_card_version_approve,
    rate_card_version_create,
)
from apps.core.errors import BusinessError
from apps.mapping.models import CrossReference
from apps.mapping.services import cross_reference_record, external_id_for, value_map_lookup
from apps.systems.models import ConnectedSystem, SystemKind
from apps.systems.services import CREATE, UPDATE, assert_may_write

from ..models import Workflow
from ..registry import StepSpec, Subject, WorkflowDefinition, register
from ..steps import StepResult
from . import maps
from .common import by_xref, day, decimal, require, source_system


def _contract_currency(data: dict) -> str:
    """The currency of the contract an amendment changes (amendments carry a new total, not its currency)."""
    amendment = data.get("data", {})
    source = ConnectedSystem.objects.filter(slug=data.get("source_system") or "").first()
    if source is None or not amendment.get("contract_external_id"):
        return ""
    try:
        return _contract_for(source, amendment["contract_external_id"]).currency
    except BusinessError:
        return ""


def _contract_for(source, external_id) -> Contract:
    """The contract an amendment refers to: by the source's own contract ID, or by the deal it came from
    (CPQ documents carry the CRM opportunity ID), or by the console's contract number."""
    contract = by_xref(source, "contract", external_id, required=False)
    if contract is None:
        opportunity = by_xref(source, "opportunity", external_id, required=False)
        opportunity = opportunity or Opportunity.objects.filter(number=str(external_id)).first()
        contract = Contract.objects.filter(opportunity=opportunity).first() if opportunity else None
    contract = contract or Contract.objects.filter(number=str(external_id)).first()
    if contract is None:
        raise BusinessError(
            f"{source.name} contract '{external_id}' is not known to the console.",
            fix="Check the amendment refers to a contract created through opportunity-to-project, then re-run.",
        )
    return contract


@register
class ContractAmendmentWorkflow(WorkflowDefinition):
    name = Workflow.CONTRACT_AMENDMENT
    owner_role = "delivery_ops"

    def plan(self, data):
        return [
            StepSpec("record_amendment", "Check and apply the amendment (and any new rates)"),
            StepSpec("rebaseline_psa", "Re-baseline the project in PSA", target="psa"),
            StepSpec("revise_billing_schedule", "Revise the billing schedule", target="billing"),
        ]

    def subject(self, data):
        amendment = data.get("data", {})
        return Subject(
            business_key=f"amendment:{amendment.get('contract_external_id', '')}:{amendment.get('version', '')}",
            label=f"Amendment v{amendment.get('version', '?')} of contract {amendment.get('contract_external_id', '')}",
            object_type="contract",
            value_at_risk=decimal(amendment.get("new_total_value"), field="new_total_value"),
            currency=amendment.get("currency") or _contract_currency(data),
        )

    def step_record_amendment(self, ctx):
        source = source_system(ctx.transaction)
        data = ctx.input.get("data", {})
        require(data, "contract_external_id", "version", "effective_from", what="contract amendment")
        contract = _contract_for(source, data["contract_external_id"])
        version = int(data["version"])
        effective_from = day(data["effective_from"], field="effective_from")
        done = contract.amendments.filter(version=version, status=ContractAmendment.Status.APPLIED).first()
        if done is not None:
            return StepResult(
                output={"contract_id": contract.pk, "amendment_id": done.pk},
                skipped=f"Amendment v{version} of {contract.number} is already applied.",
            )
        if version != contract.version + 1:
            raise BusinessError(
                f"Contract {contract.number} is at version {contract.version}; amendment v{version} cannot be "
                f"applied before v{contract.version + 1}.",
                fix="Apply the missing amendment first (re-run its transaction), then re-run this one.",
            )
        if effective_from < contract.start_date:
            raise BusinessError(
                f"Amendment v{version} takes effect on {effective_from}, before contract "
                f"{contract.number} starts ({contract.start_date})."
            )
        new_end = day(data.get("new_end_date"), field="new_end_date")
        new_total = decimal(data.get("new_total_value"), field="new_total_value")
        new_rates = data.get("new_rates") or []
        # The source must be allowed to raise the amendment, change the contract's terms, and price work.
        assert_may_write(system=source, object_type="contract_amendment", operation=CREATE, on=effective_from)
        changed = [name for name, value in (("total_value", new_total), ("end_date", new_end)) if value is not None]
        assert_may_write(system=source, object_type="contract", fields=changed + ["version"], on=effective_from)
        if new_rates:
            assert_may_write(system=source, object_type="rate_card", operation=UPDATE, on=effective_from)
        if new_rates and contract.rate_card is None:
            raise BusinessError(
                f"Amendment v{version} changes rates, but contract {contract.number} has no rate card.",
                fix="Give the contract a rate card, then re-run.",
            )

        def apply():
            rate_version = self._new_rates(contract, new_rates, effective_from) if new_rates else None
            amendment = ContractAmendment.objects.filter(
                contract=contract, version=version
            ).first() or ContractAmendment(contract=contract, version=version)
            amendment.effective_from = effective_from
            amendment.description = data.get("description") or f"Amendment v{version}"
            amendment.new_total_value = new_total
            amendment.new_end_date = new_end
            amendment.new_rate_card_version = rate_version
            amendment.status = ContractAmendment.Status.APPLIED
            amendment.applied_at = timezone.now()
            amendment.full_clean()
            amendment.save()
            contract.version = version
            if new_total is not None:
                contract.total_value = new_total
            if new_end is not None:
                contract.end_date = new_end
            contract.full_clean()
            contract.save()
            return {
                "contract_id": contract.pk,
                "amendment_id": amendment.pk,
                "_transaction": {"subject": f"{contract.number} amendment v{version}", "subject_id": contract.pk},
            }

        return StepResult(apply=apply)

    def _new_rates(self, contract: Contract, new_rates: list[dict], effective_from: datetime.date) -> RateCardVersion:
        """Put the amended rates into effect for this contract only, from the amendment date.

        A rate card other contracts also use is never changed for them: the contract first gets its own
        copy of the card (same rates, same history of versions up to the amendment), then the new version.
        """
        card = contract.rate_card
        shared = (
            Contract.objects.filter(rate_card=card).exclude(pk=contract.pk).exists()
            or Project.objects.filter(rate_card=card).exclude(contract=contract).exists()
        )
        if shared:
            card = self._own_copy(contract, card)
        current = (
            RateCardVersion.objects.in_force(effective_from)
            .filter(rate_card=card, status=RateCardVersion.Status.APPROVED)
            .first()
        )
        lines = {line.role: line for line in current.lines.all()} if current else {}
        if current is not None:
            if current.effective_from >= effective_from:
                raise BusinessError(
                    f"Rate card {card.code} version {current.version} starts on {current.effective_from}; "
                    f"the amendment's new rates cannot start before it."
                )
            current.effective_to = effective_from - datetime.timedelta(days=1)
            current.full_clean()
            current.save()
        changes = {str(rate["role"]): rate for rate in new_rates}
        specs = []
        for role in sorted(set(lines) | set(changes)):
            old, change = lines.get(role), changes.get(role, {})
            specs.append(
                {
                    "role": role,
                    "bill_rate": decimal(change.get("bill_rate"), field="bill_rate") or old.bill_rate,
                    "cost_rate": decimal(change.get("cost_rate"), field="cost_rate")
                    or (old.cost_rate if old else None),
                    "currency": change.get("currency") or (old.currency if old else card.currency),
                }
            )
        reason = f"Amendment of contract {contract.number}"
        version = rate_card_version_create(
            rate_card=card, effective_from=effective_from, lines=specs, notes=reason, actor=None, reason=reason
        )
        return rate_card_version_approve(version=version, actor=None, reason=reason)

    def _own_copy(self, contract: Contract, card: RateCard) -> RateCard:
        """A copy of a shared card for one contract, with every approved version, used from now on by it."""
        code = f"{card.code}/{contract.number}"[:40]
        copy = RateCard.objects.filter(code=code).first()
        if copy is None:
            copy = RateCard.objects.create(
                code=code,
                name=f"{card.name} for {contract.number}",
                currency=card.currency,
                description=f"Copied from {card.code} when contract {contract.number} was amended.",
            )
            for version in card.versions.filter(status=RateCardVersion.Status.APPROVED).order_by("version"):
                twin = RateCardVersion.objects.create(
                    rate_card=copy,
                    version=version.version,
                    effective_from=version.effective_from,
                    effective_to=version.effective_to,
                    status=version.status,
                    approved_at=version.approved_at,
                    notes=f"Copy of {card.code} v{version.version}",
                )
                for line in version.lines.all():
                    copied = RateCardLine(
                        version=twin,
                        role=line.role,
                        bill_rate=line.bill_rate,
                        cost_rate=line.cost_rate,
                        currency=line.currency,
                        unit=line.unit,
                    )
                    copied.created_with_its_version = True  # the copy is approved with exactly these rates
                    copied.save()
        contract.rate_card = copy
        contract.save()
        for project in contract.projects.all():
            project.rate_card = copy
            project.save()
        return copy

    def step_rebaseline_psa(self, ctx):
        psa = ctx.target
        contract = Contract.objects.get(pk=ctx.state["contract_id"])
        amendment = ContractAmendment.objects.get(pk=ctx.state["amendment_id"])
        projects = list(contract.projects.all())
        if not projects:
            return StepResult(skipped=f"Contract {contract.number} has no project to re-baseline.")
        connector = ctx.connector()
        for project in projects:
            psa_id = external_id_for(system=psa, obj=project)
            if not psa_id:
                raise BusinessError(
                    f"Project {project.code} has no {psa.name} ID, so it cannot be re-baselined.",
                    fix="Re-run the project's opportunity-to-project transaction first.",
                )
            connector.rebaseline_project(
                psa_id,
                project=project,
                contract=contract,
                amendment=amendment,
                idempotency_key=f"{ctx.idempotency_key}.{project.pk}",
            )

        def apply():
            for project in projects:
                project.baseline_version = amendment.version
                if contract.end_date:
                    project.end_date = contract.end_date
                if contract.total_value is not None:
                    project.budget_amount = contract.total_value
                project.full_clean()
                project.save()
            return {"rebaselined": [project.code for project in projects]}

        return StepResult(apply=apply)

    def step_revise_billing_schedule(self, ctx):
        billing = ctx.target
        contract = Contract.objects.get(pk=ctx.state["contract_id"])
        amendment = ContractAmendment.objects.get(pk=ctx.state["amendment_id"])
        revisions = []
        connector = ctx.connector()
        for project in contract.projects.all():
            current = BillingSchedule.objects.filter(project=project, status=BillingSchedule.Status.ACTIVE).first()
            if current is None:
                continue
            billing_id = external_id_for(system=billing, obj=current)
            revised = BillingSchedule(
                project=project,
                contract=contract,
                billing_method=current.billing_method,
                frequency=current.frequency,
                start_date=max(amendment.effective_from, current.start_date),
                currency=current.currency,
                revision=current.revision + 1,
                status=BillingSchedule.Status.ACTIVE,
            )
            record = connector.revise_billing_schedule(
                billing_id, schedule=revised, idempotency_key=f"{ctx.idempotency_key}.{project.pk}"
            )
            revisions.append((current, revised, record.id))
        if not revisions:
            return StepResult(skipped=f"Contract {contract.number} has no active billing schedule to revise.")

        def apply():
            for current, revised, record_id in revisions:
                current.status = BillingSchedule.Status.SUPERSEDED
                current.save()
                revised.full_clean()
                revised.save()
                cross_reference_record(system=billing, obj=revised, external_id=f"{record_id}#r{revised.revision}")
            return {"schedule_revisions": [revised.revision for _, revised, _ in revisions]}

        return StepResult(apply=apply)


CUSTOMER_FIELDS = {
    "name": "name",
    "tax_id": "tax_id",
    "tax_region": "tax_region",
    "currency": "currency",
    "billing_email": "billing_email",
    "region": "region",
}


@register
class CustomerUpdate(WorkflowDefinition):
    name = Workflow.CUSTOMER_UPDATE
    owner_role = "finance_ops"

    def plan(self, data):
        return [
            StepSpec("apply_change", "Apply the change as the ownership rules allow"),
            StepSpec("push_erp", "Update the customer in ERP", target="erp"),
        ]

    def subject(self, data):
        change = data.get("data", {})
        return Subject(
            business_key=f"customer:{change.get('customer_external_id', '')}",
            label=f"Customer change: {change.get('name') or change.get('customer_external_id', '')}",
            object_type="customer",
        )

    def step_apply_change(self, ctx):
        source = source_system(ctx.transaction)
        data = ctx.input.get("data", {})
        require(data, "customer_external_id", what="customer change")
        customer = by_xref(source, "customer", data["customer_external_id"], required=False)
        values = {
            canonical: data[incoming]
            for incoming, canonical in CUSTOMER_FIELDS.items()
            if data.get(incoming) not in (None, "")
        }
        if data.get("parent_external_id"):
            values["parent"] = by_xref(source, "customer", data["parent_external_id"], what="parent account")
        if customer is None:
            require(data, "name", "currency", what="new customer")
            values.setdefault("number", next_number(Customer, "C"))

        def apply():
            record, created, changed = governed_upsert(Customer, system=source, instance=customer, values=values)
            cross_reference_record(
                system=source,
                obj=record,
                external_id=str(data["customer_external_id"]),
                origin=CrossReference.Origin.INBOUND,
            )
            return {
                "customer_id": record.pk,
                "changed": changed,
                "created": created,
                "_transaction": {"subject": f"Customer {record}", "subject_id": record.pk},
            }

        return StepResult(apply=apply)

    def step_push_erp(self, ctx):
        erp = ctx.target
        source = source_system(ctx.transaction)
        customer = Customer.objects.select_related("legal_entity").get(pk=ctx.state["customer_id"])
        if source.kind == SystemKind.ERP:
            return StepResult(skipped="The change came from ERP itself.")
        if not ctx.state.get("changed"):
            return StepResult(skipped="Nothing changed, so ERP needs no update.")
        known = external_id_for(system=erp, obj=customer)
        if not known:
            return StepResult(skipped=f"{customer} is not in {erp.name} yet; its first project will create it.")
        today = timezone.localdate()
        record = ctx.connector().upsert_customer(
            customer=customer,
            subsidiary_id=value_map_lookup(maps.LEGAL_ENTITY_SUBSIDIARY, customer.legal_entity.code, on=today),
            currency_id=value_map_lookup(maps.CURRENCY_ERP, customer.currency, on=today),
            idempotency_key=ctx.idempotency_key,
            record_id=known,
        )
        return StepResult(output={"erp_customer_id": record.id})


@register
class ResourceUpdate(WorkflowDefinition):
    name = Workflow.RESOURCE_UPDATE
    owner_role = "delivery_ops"

    def plan(self, data):
        return [StepSpec("apply_change", "Record the person as the ownership rules allow")]

    def subject(self, data):
        person = data.get("data", {})
        return Subject(
            business_key=f"resource:{person.get('resource_external_id', '')}",
            label=f"Resource {person.get('name') or person.get('resource_external_id', '')}",
            object_type="resource",
        )

    def step_apply_change(self, ctx):
        source = source_system(ctx.transaction)
        data = ctx.input.get("data", {})
        require(data, "resource_external_id", "name", what="person record")
        resource = by_xref(source, "resource", data["resource_external_id"], required=False)
        if resource is None and data.get("employee_number"):
            resource = Resource.objects.filter(employee_number=str(data["employee_number"])).first()
        values = {"name": data["name"][:200]}
        for field in ("email", "role"):
            if data.get(field):
                values[field] = data[field]
        if "active" in data:
            values["active"] = bool(data["active"])
        if data.get("legal_entity"):
            entity = LegalEntity.objects.filter(code=data["legal_entity"]).first()
            if entity is None:
                raise BusinessError(
                    f"Person {data['name']} belongs to legal entity '{data['legal_entity']}', which is not set up.",
                    fix="Check the HR system's entity mapping.",
                )
            values["legal_entity"] = entity
        if resource is None:
            if "legal_entity" not in values:
                raise BusinessError(
                    f"New person {data['name']} has no legal entity.",
                    fix="Map the HR system's company or location to a legal entity.",
                )
            values["employee_number"] = str(data.get("employee_number") or data["resource_external_id"])[:30]
            values.setdefault("role", "Consultant")

        def apply():
            record, created, changed = governed_upsert(Resource, system=source, instance=resource, values=values)
            cross_reference_record(
                system=source,
                obj=record,
                external_id=str(data["resource_external_id"]),
                origin=CrossReference.Origin.INBOUND,
            )
            return {"resource_id": record.pk, "changed": changed, "created": created}

        return StepResult(apply=apply)
