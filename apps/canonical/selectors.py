"""Shared reads of canonical records with the relations their lists and labels need already loaded."""

from django.db.models import Prefetch, QuerySet

from .models import (
    BillingEvent,
    BillingSchedule,
    Contract,
    ContractAmendment,
    ContractLine,
    Customer,
    ExchangeRate,
    Expense,
    Invoice,
    InvoiceLine,
    LegalEntity,
    Milestone,
    Opportunity,
    Payment,
    Project,
    RateCard,
    RateCardLine,
    RateCardVersion,
    Resource,
    RevenueSchedule,
    RevenueScheduleLine,
    Task,
    TimeEntry,
)


def legal_entity_list() -> QuerySet[LegalEntity]:
    """Legal entities."""
    return LegalEntity.objects.all()


def customer_list() -> QuerySet[Customer]:
    """Customers."""
    return Customer.objects.all()


def resource_list() -> QuerySet[Resource]:
    """Resources (consultants)."""
    return Resource.objects.all()


def rate_card_list() -> QuerySet[RateCard]:
    """Rate cards."""
    return RateCard.objects.all()


def rate_card_version_list() -> QuerySet[RateCardVersion]:
    """Rate card versions with their card and their lines."""
    return RateCardVersion.objects.select_related("rate_card").prefetch_related(
        Prefetch("lines", queryset=RateCardLine.objects.order_by("role"))
    )


def rate_card_line_list() -> QuerySet[RateCardLine]:
    """Rate card lines with their version and card."""
    return RateCardLine.objects.select_related("version__rate_card")


def opportunity_list() -> QuerySet[Opportunity]:
    """Opportunities."""
    return Opportunity.objects.all()


def contract_list() -> QuerySet[Contract]:
    """Contracts."""
    return Contract.objects.all()


def contract_line_list() -> QuerySet[ContractLine]:
    """Contract lines with their contract."""
    return ContractLine.objects.select_related("contract")


def contract_amendment_list() -> QuerySet[ContractAmendment]:
    """Contract amendments with their contract."""
    return ContractAmendment.objects.select_related("contract")


def project_list() -> QuerySet[Project]:
    """Projects."""
    return Project.objects.all()


def task_list() -> QuerySet[Task]:
    """Tasks with their project."""
    return Task.objects.select_related("project")


def milestone_list() -> QuerySet[Milestone]:
    """Milestones with their project."""
    return Milestone.objects.select_related("project")


def time_entry_list() -> QuerySet[TimeEntry]:
    """Time entries with the resource and project their label names."""
    return TimeEntry.objects.select_related("resource", "project")


def expense_list() -> QuerySet[Expense]:
    """Expenses with the resource and project their label names."""
    return Expense.objects.select_related("resource", "project")


def billing_schedule_list() -> QuerySet[BillingSchedule]:
    """Billing schedules with their project."""
    return BillingSchedule.objects.select_related("project")


def billing_event_list() -> QuerySet[BillingEvent]:
    """Billing events with their project."""
    return BillingEvent.objects.select_related("project")


def invoice_list() -> QuerySet[Invoice]:
    """Invoices with their customer."""
    return Invoice.objects.select_related("customer")


def invoice_line_list() -> QuerySet[InvoiceLine]:
    """Invoice lines with their invoice."""
    return InvoiceLine.objects.select_related("invoice")


def payment_list() -> QuerySet[Payment]:
    """Payments."""
    return Payment.objects.all()


def exchange_rate_list() -> QuerySet[ExchangeRate]:
    """Exchange rates."""
    return ExchangeRate.objects.all()


def revenue_schedule_list() -> QuerySet[RevenueSchedule]:
    """Revenue schedules with their contract."""
    return RevenueSchedule.objects.select_related("contract")


def revenue_schedule_line_list() -> QuerySet[RevenueScheduleLine]:
    """Revenue schedule lines with their schedule and contract."""
    return RevenueScheduleLine.objects.select_related("schedule__contract")
