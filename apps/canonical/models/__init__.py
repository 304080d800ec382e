"""The canonical business objects. Every model keeps history; money is Decimal with a currency."""

from .commercial import (
    Contract,
    ContractAmendment,
    ContractLine,
    ContractType,
    Opportunity,
    RateCard,
    RateCardLine,
    RateCardVersion,
)
from .delivery import Expense, Milestone, Project, Task, TimeEntry
from .finance import (
    BillingEvent,
    BillingSchedule,
    ExchangeRate,
    Invoice,
    InvoiceLine,
    Payment,
    RevenueSchedule,
    RevenueScheduleLine,
)
from .parties import Customer, LegalEntity, Resource

__all__ = [
    "BillingEvent",
    "BillingSchedule",
    "Contract",
    "ContractAmendment",
    "ContractLine",
    "ContractType",
    "Customer",
    "ExchangeRate",
    "Expense",
    "Invoice",
    "InvoiceLine",
    "LegalEntity",
    "Milestone",
    "Opportunity",
    "Payment",
    "Project",
    "RateCard",
    "RateCardLine",
    "RateCardVersion",
    "Resource",
    "RevenueSchedule",
    "RevenueScheduleLine",
    "Task",
    "TimeEntry",
]
