"""The business object types every layer talks about, and the canonical model behind each.

Ownership rules, cross-references and source profiles name object types with these values; the
canonical models are looked up lazily by label so this module imports nothing from them.
"""

from django.apps import apps
from django.db import models


class BusinessObject(models.TextChoices):
    CUSTOMER = "customer", "Customer / account"
    LEGAL_ENTITY = "legal_entity", "Legal entity / subsidiary"
    OPPORTUNITY = "opportunity", "Opportunity"
    CONTRACT = "contract", "Contract / engagement"
    CONTRACT_LINE = "contract_line", "Contract line"
    CONTRACT_AMENDMENT = "contract_amendment", "Contract amendment"
    PROJECT = "project", "Project"
    TASK = "task", "Project task"
    MILESTONE = "milestone", "Milestone"
    RESOURCE = "resource", "Resource / consultant"
    RATE_CARD = "rate_card", "Rate card"
    TIME_ENTRY = "time_entry", "Time entry"
    EXPENSE = "expense", "Expense"
    BILLING_SCHEDULE = "billing_schedule", "Billing schedule"
    BILLING_EVENT = "billing_event", "Billing event"
    INVOICE = "invoice", "Invoice"
    PAYMENT = "payment", "Payment"
    REVENUE_SCHEDULE = "revenue_schedule", "Revenue schedule"


MODEL_LABELS = {
    BusinessObject.CUSTOMER: "canonical.Customer",
    BusinessObject.LEGAL_ENTITY: "canonical.LegalEntity",
    BusinessObject.OPPORTUNITY: "canonical.Opportunity",
    BusinessObject.CONTRACT: "canonical.Contract",
    BusinessObject.CONTRACT_LINE: "canonical.ContractLine",
    BusinessObject.CONTRACT_AMENDMENT: "canonical.ContractAmendment",
    BusinessObject.PROJECT: "canonical.Project",
    BusinessObject.TASK: "canonical.Task",
    BusinessObject.MILESTONE: "canonical.Milestone",
    BusinessObject.RESOURCE: "canonical.Resource",
    BusinessObject.RATE_CARD: "canonical.RateCard",
    BusinessObject.TIME_ENTRY: "canonical.TimeEntry",
    BusinessObject.EXPENSE: "canonical.Expense",
    BusinessObject.BILLING_SCHEDULE: "canonical.BillingSchedule",
    BusinessObject.BILLING_EVENT: "canonical.BillingEvent",
    BusinessObject.INVOICE: "canonical.Invoice",
    BusinessObject.PAYMENT: "canonical.Payment",
    BusinessObject.REVENUE_SCHEDULE: "canonical.RevenueSchedule",
}


def model_for(object_type: str):
    """The canonical model class of an object type."""
    return apps.get_model(MODEL_LABELS[BusinessObject(object_type)])


def object_type_of(model_or_instance) -> str:
    """The object type of a canonical model or instance."""
    model = model_or_instance if isinstance(model_or_instance, type) else type(model_or_instance)
    label = f"{model._meta.app_label}.{model.__name__}"
    for object_type, model_label in MODEL_LABELS.items():
        if model_label == label:
            return object_type.value
    raise LookupError(f"{label} is not a canonical business object")


def field_names(object_type: str) -> set[str]:
    """The concrete field names a write to this object type may carry."""
    model = model_for(object_type)
    return {field.name for field in model._meta.concrete_fields if not field.primary_key}
