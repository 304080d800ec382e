"""Opportunity to project: a closed-won deal becomes a customer in ERP, projects in PSA and ERP, a billing schedule.

Over 500 lines on purpose: the six steps and the business checks of step 1 read as one workflow; the checks are
the part to move out next (`ClosedWonDeal` and its checks) when this grows.
"""

from functools import cached_property

from django.db import transaction as db_transaction
from django.utils import timezone

from apps.canonical.models import (
    BillingSchedule,
    Contract,
    ContractType,
    Customer,
    LegalEntity,
    Opportunity,
    Project,
    RateCard,
    RateCardVersion,
)
from apps.canonical.services import governed_upsert, next_number
from apps.core.errors import BusinessError
from apps.core.money import MINOR_UNITS
from apps.mapping.models import CrossReference
from apps.mapping.services import cross_reference_record, external_id_for, value_map_lookup

from ..models import Workflow
from ..registry import StepSpec, Subject, WorkflowDefinition, register
from ..steps import StepResult
from . import maps
from .common import InvalidCommand, by_xref, day, decimal, require, source_system
from .existing import existing_customer

# Where VAT law makes a business customer's tax ID mandatory on the invoice.
VAT_COUNTRIES = {"GB", "DE", "FR", "NL", "IE", "ES", "IT", "BE", "AT", "SE", "DK", "PL"}
SCHEDULE_FREQUENCY = {
    ContractType.MILESTONE: BillingSchedule.Frequency.MILESTONE,
    ContractType.FIXED_FEE: BillingSchedule.Frequency.MILESTONE,
    ContractType.SUBSCRIPTION: BillingSchedule.Frequency.MONTHLY,
    ContractType.RETAINER: BillingSchedule.Frequency.MONTHLY,
    ContractType.TIME_AND_MATERIALS: BillingSchedule.Frequency.MONTHLY,
    ContractType.USAGE: BillingSchedule.Frequency.MONTHLY,
}


def _record(txn, key: str, model):
    pk = txn.state.get(key)
    return model.objects.get(pk=pk) if pk else None


@register
class OpportunityToProject(WorkflowDefinition):
    name = Workflow.OPPORTUNITY_TO_PROJECT
    owner_role = "delivery_ops"

    def plan(self, data):
        return [
            StepSpec("validate", "Validate the deal and record customer, contract and project"),
            StepSpec("upsert_customer_erp", "Create or update the customer in ERP", target="erp"),
            StepSpec("create_project_psa", "Create the project in PSA", target="psa"),
            StepSpec("create_financial_project_erp", "Create the financial project in ERP", target="erp"),
            StepSpec("create_billing_schedule", "Create the billing schedule", target="billing"),
            StepSpec("report_status_crm", "Report the project back to CRM", target="crm", writes_back="opportunity"),
        ]

    def subject(self, data):
        deal = data.get("data", {})
        return Subject(
            business_key=f"opportunity:{deal.get('opportunity_external_id', '')}",
            label=f"{deal.get('opportunity_name', 'Deal')} ({deal.get('customer_name', '')})",
            object_type="opportunity",
            value_at_risk=decimal(deal.get("amount"), field="amount"),
            currency=deal.get("currency", "") or "",
        )

    # --- 1. validate and record ---------------------------------------------------------------
    def step_validate(self, ctx):
        checked = ClosedWonDeal(source_system(ctx.transaction), ctx.input.get("data", {}))
        refuse_on_first_problem(
            checked,
            contract_type_is_known,
            currency_is_supported,
            legal_entity_contracts_the_deal,
            tax_id_where_vat_requires_one,
            customer_not_on_credit_hold,
            customer_group_is_active,
            fixed_price_deal_has_an_amount,
            rate_card_prices_the_work,
        )
        return StepResult(apply=lambda: self._record_deal(checked))

    def _record_deal(self, checked: "ClosedWonDeal") -> dict:
        """The customer, opportunity, contract and project of a deal that passed every check."""
        deal, crm, entity, existing = checked.data, checked.crm, checked.legal_entity, checked.existing_customer
        contract_type, amount, card = checked.contract_type, checked.amount, checked.rate_card
        close_date, start_date = checked.close_date, checked.start_date
        customer, _, _ = governed_upsert(
            Customer,
            system=crm,
            instance=existing,
            on=close_date,
            values=self._customer_values(deal, entity, existing),
        )
        cross_reference_record(
            system=crm, obj=customer, external_id=deal["customer_external_id"], origin=CrossReference.Origin.INBOUND
        )
        opportunity = Opportunity.objects.filter(number=deal["opportunity_external_id"]).first()
        opportunity, _, _ = governed_upsert(
            Opportunity,
            system=crm,
            instance=opportunity,
            on=close_date,
            values={
                "number": deal["opportunity_external_id"],
                "name": deal["opportunity_name"][:200],
                "customer": customer,
                "legal_entity": entity,
                "stage": Opportunity.Stage.CLOSED_WON,
                "amount": amount,
                "currency": deal["currency"],
                "close_date": close_date,
                "contract_type": contract_type,
                "rate_card": card,
                "region": deal.get("region") or "",
            },
        )
        cross_reference_record(
            system=crm,
            obj=opportunity,
            external_id=deal["opportunity_external_id"],
            origin=CrossReference.Origin.INBOUND,
        )
        contract = Contract.objects.filter(opportunity=opportunity).first() or _create(
            Contract,
            number=next_number(Contract, "K"),
            name=deal["opportunity_name"][:200],
            customer=customer,
            legal_entity=entity,
            opportunity=opportunity,
            contract_type=contract_type,
            status=Contract.Status.ACTIVE,
            currency=deal["currency"],
            total_value=amount,
            start_date=start_date,
            end_date=day(deal.get("end_date"), field="end_date"),
            rate_card=card,
        )
        project = Project.objects.filter(contract=contract).first() or _create(
            Project,
            code=next_number(Project, "P", field="code"),
            name=deal["opportunity_name"][:200],
            customer=customer,
            contract=contract,
            legal_entity=entity,
            status=Project.Status.PLANNED,
            billing_method=contract_type,
            rate_card=card,
            currency=deal["currency"],
            start_date=start_date,
            end_date=contract.end_date,
            budget_amount=amount,
        )
        return {
            "customer_id": customer.pk,
            "opportunity_id": opportunity.pk,
            "contract_id": contract.pk,
            "project_id": project.pk,
            "_transaction": {
                "subject_id": opportunity.pk,
                "subject": f"{opportunity.name} → {project.code} ({customer.name})",
            },
        }

    def _customer_values(self, deal, entity, existing) -> dict:
        values = {
            "name": deal["customer_name"][:200],
            "currency": deal["currency"] if existing is None else existing.currency,
            "legal_entity": existing.legal_entity if existing and existing.legal_entity else entity,
        }
        for canonical, incoming in (
            ("tax_id", "customer_tax_id"),
            ("country", "customer_country"),
            ("region", "region"),
            ("billing_email", "billing_email"),
        ):
            if deal.get(incoming):
                values[canonical] = deal[incoming]
        if existing is None:
            values["number"] = next_number(Customer, "C")
            # A customer in the entity's own country is taxed as the entity is (e.g. US-NY); abroad, by its country.
            country = deal.get("customer_country") or entity.country
            values["tax_region"] = entity.tax_region if country == entity.country else country
        return values

    # --- 2. ERP customer ---------------------------------------------------------------------
    def step_upsert_customer_erp(self, ctx):
        customer = _record(ctx.transaction, "customer_id", Customer)
        erp = ctx.target
        today = timezone.localdate()
        entity = customer.legal_entity
        subsidiary = value_map_lookup(maps.LEGAL_ENTITY_SUBSIDIARY, entity.code if entity else "", on=today)
        currency = value_map_lookup(maps.CURRENCY_ERP, customer.currency, on=today)
        connector = ctx.connector()
        output = {}
        known = external_id_for(system=erp, obj=customer)
        if not known:
            match = existing_customer(erp, connector, customer, subsidiary_id=subsidiary)
            if match is not None and match.unique.external_id != customer.number:
                # Already in the ERP under another key: make it ours, so the upsert updates it (no twin).
                connector.adopt_customer(
                    match.unique.id, customer=customer, idempotency_key=f"{ctx.idempotency_key}.adopt"
                )
                output["erp_customer_matched"] = match.as_output()
                known = match.unique.id
        record = connector.upsert_customer(
            customer=customer,
            subsidiary_id=subsidiary,
            currency_id=currency,
            idempotency_key=ctx.idempotency_key,
            record_id=known,
        )
        return StepResult(
            output={"erp_customer_id": record.id, **output},
            apply=lambda: _link(erp, customer, record.id),
        )

    # --- 3. PSA project ----------------------------------------------------------------------
    def step_create_project_psa(self, ctx):
        project = _record(ctx.transaction, "project_id", Project)
        psa = ctx.target
        known = external_id_for(system=psa, obj=project)
        if known:
            return StepResult(output={"psa_project_id": known}, skipped=f"{project.code} already exists in {psa.name}")
        record = ctx.connector().create_project(
            project=project, contract=project.contract, customer=project.customer, idempotency_key=ctx.idempotency_key
        )
        return StepResult(output={"psa_project_id": record.id}, apply=lambda: _link(psa, project, record.id))

    # --- 4. ERP financial project ------------------------------------------------------------
    def step_create_financial_project_erp(self, ctx):
        project = _record(ctx.transaction, "project_id", Project)
        erp = ctx.target
        customer_erp_id = external_id_for(system=erp, obj=project.customer) or ctx.state.get("erp_customer_id")
        subsidiary = value_map_lookup(maps.LEGAL_ENTITY_SUBSIDIARY, project.legal_entity.code, on=timezone.localdate())
        record = ctx.connector().upsert_financial_project(
            project=project,
            customer_erp_id=customer_erp_id,
            subsidiary_id=subsidiary,
            idempotency_key=ctx.idempotency_key,
        )
        # The project's ERP cross-reference is its financial project; PSA keeps its own ID for the project.
        return StepResult(output={"erp_project_id": record.id}, apply=lambda: _link(erp, project, record.id))

    # --- 5. billing schedule -----------------------------------------------------------------
    def step_create_billing_schedule(self, ctx):
        project = _record(ctx.transaction, "project_id", Project)
        billing = ctx.target
        connector = ctx.connector()
        customer = project.contract.invoice_recipient() if project.contract else project.customer
        customer_billing_id = external_id_for(system=billing, obj=customer)
        links, matched = [], None
        if not customer_billing_id:
            match = existing_customer(billing, connector, customer)
            if match is not None:  # already in the billing platform: link it rather than create a twin
                customer_billing_id, matched = match.unique.id, match.as_output()
            else:
                erp_id = ctx.state.get("erp_customer_id")
                record = connector.upsert_customer(
                    customer=customer, erp_customer_id=erp_id, idempotency_key=f"{ctx.idempotency_key}.customer"
                )
                customer_billing_id = record.id
            links.append((customer, customer_billing_id))
        schedule = BillingSchedule.objects.filter(project=project).order_by("-revision").first()
        schedule_billing_id = external_id_for(system=billing, obj=schedule) if schedule else None
        if schedule is None:
            schedule = BillingSchedule(
                project=project,
                contract=project.contract,
                billing_method=project.billing_method,
                frequency=SCHEDULE_FREQUENCY.get(project.billing_method, BillingSchedule.Frequency.MONTHLY),
                start_date=project.start_date or timezone.localdate(),
                currency=project.currency,
                revision=1,
                status=BillingSchedule.Status.DRAFT,
            )
        if not schedule_billing_id:
            record = connector.create_billing_schedule(
                schedule=schedule,
                customer_billing_id=customer_billing_id,
                project_ref=project.code,
                idempotency_key=ctx.idempotency_key,
            )
            schedule_billing_id = record.id

        def apply():
            for obj, external_id in links:
                _link(billing, obj, external_id)
            schedule.status = BillingSchedule.Status.ACTIVE
            schedule.full_clean()
            schedule.save()
            _link(billing, schedule, schedule_billing_id)
            return {"billing_schedule_id": schedule.pk}

        output = {"billing_customer_id": customer_billing_id, "billing_schedule_ref": schedule_billing_id}
        if matched is not None:
            output["billing_customer_matched"] = matched
        return StepResult(output=output, apply=apply)

    # --- 6. status to CRM --------------------------------------------------------------------
    def step_report_status_crm(self, ctx):
        opportunity = _record(ctx.transaction, "opportunity_id", Opportunity)
        project = _record(ctx.transaction, "project_id", Project)
        crm = ctx.target
        crm_id = external_id_for(system=crm, obj=opportunity)
        ctx.connector().update_opportunity(
            crm_id,
            {
                "Project_Status__c": "Project created",
                "PSA_Project_Id__c": ctx.state.get("psa_project_id", ""),
                "ERP_Project_Id__c": ctx.state.get("erp_project_id", ""),
                "Integration_Message__c": f"Project {project.code} set up in PSA, ERP and billing.",
            },
        )

        def apply():
            if project.status == Project.Status.PLANNED:
                project.status = Project.Status.ACTIVE
                project.save()
            return {}

        return StepResult(apply=apply)


def _create(model, **values):
    obj = model(**values)
    obj.full_clean()
    with db_transaction.atomic():
        obj.save()
    return obj


def _link(system, obj, external_id) -> dict:
    cross_reference_record(system=system, obj=obj, external_id=external_id)
    return {}


# --- the business checks of step 1 ------------------------------------------------------------
class ClosedWonDeal:
    """A closed-won deal as step 1 reads it; the records it names are looked up once, when a check first asks."""

    REQUIRED = (
        "opportunity_external_id",
        "opportunity_name",
        "customer_external_id",
        "customer_name",
        "currency",
        "contract_type",
    )

    def __init__(self, crm, data: dict):
        require(data, *self.REQUIRED, what="closed-won deal")
        self.crm = crm
        self.data = data
        self.name = data["opportunity_name"]
        self.contract_type = data["contract_type"]
        self.close_date = day(data.get("close_date"), field="close_date") or timezone.localdate()
        self.start_date = day(data.get("start_date"), field="start_date") or self.close_date

    @cached_property
    def legal_entity(self) -> LegalEntity | None:
        code = self.data.get("legal_entity")
        return LegalEntity.objects.filter(code=code, active=True).first() if code else None

    @cached_property
    def existing_customer(self) -> Customer | None:
        return by_xref(self.crm, "customer", self.data["customer_external_id"], required=False)

    @cached_property
    def amount(self):
        return decimal(self.data.get("amount"), field="amount")

    @cached_property
    def rate_card(self) -> RateCard | None:
        code = self.data.get("rate_card")
        return RateCard.objects.filter(code=code).first() if code else None


def refuse_on_first_problem(deal: ClosedWonDeal, *checks) -> None:
    """Run the checks in order and raise the first problem found; a check may rely on the ones before it."""
    for check in checks:
        problem = check(deal)
        if problem is not None:
            raise problem


def contract_type_is_known(deal: ClosedWonDeal) -> BusinessError | None:
    if deal.contract_type in ContractType.values:
        return None
    return InvalidCommand(
        f"Deal {deal.name} has contract type '{deal.contract_type}', which the console does not "
        f"know. Use one of: {', '.join(ContractType.values)}.",
        fix="Correct the contract type in CRM or map it in the source profile.",
    )


def currency_is_supported(deal: ClosedWonDeal) -> BusinessError | None:
    currency = deal.data["currency"]
    if currency in MINOR_UNITS:
        return None
    return InvalidCommand(
        f"Deal {deal.name} is in currency '{currency}', which is not an ISO 4217 code the console supports."
    )


def legal_entity_contracts_the_deal(deal: ClosedWonDeal) -> BusinessError | None:
    code = deal.data.get("legal_entity")
    if not code:
        return BusinessError(
            f"Deal {deal.name} does not say which legal entity contracts it.",
            fix="Fill the legal entity (or the region that maps to it) on the opportunity, then re-run.",
        )
    if deal.legal_entity is None:
        return BusinessError(
            f"Legal entity '{code}' on deal {deal.name} is not an active legal entity.",
            fix="Check the region→legal entity value map, or set up the legal entity.",
        )
    return None


def tax_id_where_vat_requires_one(deal: ClosedWonDeal) -> BusinessError | None:
    entity, existing = deal.legal_entity, deal.existing_customer
    tax_id = deal.data.get("customer_tax_id") or (existing.tax_id if existing else "")
    if entity.country not in VAT_COUNTRIES or tax_id:
        return None
    return BusinessError(
        f"Customer {deal.data['customer_name']} has no VAT/tax ID, and {entity.name} ({entity.country}) "
        f"cannot invoice a business customer without one.",
        fix="Add the customer's tax ID in CRM (or ERP, if ERP owns it) and re-run.",
        context={
            "customer_field": "tax_id",
            "customer_name": deal.data["customer_name"],
            "customer_external_id": deal.data["customer_external_id"],
            "system": deal.crm.slug,
            "customer": existing.pk if existing else None,
        },
    )


def customer_not_on_credit_hold(deal: ClosedWonDeal) -> BusinessError | None:
    existing = deal.existing_customer
    if existing is None or existing.status != Customer.Status.ON_HOLD:
        return None
    return BusinessError(
        f"Customer {existing} is on credit hold; finance must release it before a project starts.",
        fix="Release the credit hold in ERP, then re-run.",
    )


def customer_group_is_active(deal: ClosedWonDeal) -> BusinessError | None:
    existing = deal.existing_customer
    if existing is None or existing.parent is None or existing.parent.status != Customer.Status.INACTIVE:
        return None
    return BusinessError(
        f"Customer {existing} belongs to inactive group {existing.parent}.",
        fix="Reactivate the group account or move the customer to an active parent.",
    )


def fixed_price_deal_has_an_amount(deal: ClosedWonDeal) -> BusinessError | None:
    amount = deal.amount  # read here, in its turn: an amount that is not a number is refused at this point
    if deal.contract_type not in (ContractType.FIXED_FEE, ContractType.MILESTONE) or amount:
        return None
    return BusinessError(
        f"Deal {deal.name} is {ContractType(deal.contract_type).label.lower()} but has no amount.",
        fix="Enter the contract value on the opportunity in CRM and re-run.",
    )


def rate_card_prices_the_work(deal: ClosedWonDeal) -> BusinessError | None:
    code = deal.data.get("rate_card")
    if not code:
        if deal.contract_type in (ContractType.TIME_AND_MATERIALS, ContractType.RETAINER):
            return BusinessError(
                f"Deal {deal.name} is {ContractType(deal.contract_type).label.lower()} but names no "
                f"rate card, so its time cannot be priced.",
                fix="Select the rate card on the opportunity in CRM, then re-run.",
            )
        return None
    card = deal.rate_card
    if card is None:
        return BusinessError(
            f"Deal {deal.name} names rate card '{code}', which does not exist.",
            fix="Correct the rate card on the opportunity, or create the rate card.",
        )
    on = deal.start_date
    in_force = RateCardVersion.objects.in_force(on).filter(rate_card=card, status=RateCardVersion.Status.APPROVED)
    if not in_force.exists():
        return BusinessError(
            f"Rate card {card.code} has no approved version in force on {on.isoformat()}, the project start.",
            fix=f"Approve a version of {card.code} that covers {on.isoformat()}, then re-run.",
        )
    return None
