"""One FilterSet per canonical model, used by the API (and by console lists). Sensitive amounts are not filters."""

import django_filters

from apps.core.filters import FilterSet

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

DATES = ["exact", "gte", "lte"]
TEXT = ["exact", "iexact", "icontains"]


class InForceOnFilterSet(FilterSet):
    """Adds `in_force_on=<date>` to effective-dated models."""

    in_force_on = django_filters.DateFilter(method="filter_in_force_on", label="In force on (date)")

    def filter_in_force_on(self, queryset, name, value):
        return queryset.in_force(value)


class LegalEntityFilter(FilterSet):
    class Meta:
        model = LegalEntity
        fields = {"code": ["exact"], "country": ["exact"], "currency": ["exact"], "active": ["exact"]}


class CustomerFilter(FilterSet):
    class Meta:
        model = Customer
        fields = {
            "is_sold_to": ["exact"],
            "number": ["exact"],
            "name": TEXT,
            "status": ["exact"],
            "parent": ["exact", "isnull"],
            "bill_to": ["exact", "isnull"],
            "legal_entity": ["exact"],
            "region": ["exact"],
            "currency": ["exact"],
            "is_bill_to": ["exact"],
        }


class ResourceFilter(FilterSet):
    class Meta:
        model = Resource
        fields = {
            "employee_number": ["exact"],
            "name": TEXT,
            "role": ["exact", "iexact"],
            "legal_entity": ["exact"],
            "active": ["exact"],
        }


class RateCardFilter(FilterSet):
    class Meta:
        model = RateCard
        fields = {"code": ["exact"], "name": TEXT, "currency": ["exact"]}


class RateCardVersionFilter(InForceOnFilterSet):
    rate_card_code = django_filters.CharFilter(field_name="rate_card__code", label="Rate card code")

    class Meta:
        model = RateCardVersion
        fields = {
            "rate_card": ["exact"],
            "version": ["exact"],
            "status": ["exact"],
            "effective_from": DATES,
            "effective_to": [*DATES, "isnull"],
        }


class RateCardLineFilter(FilterSet):
    rate_card = django_filters.ModelChoiceFilter(
        field_name="version__rate_card", queryset=RateCard.objects.all(), label="Rate card id"
    )
    rate_card_code = django_filters.CharFilter(field_name="version__rate_card__code", label="Rate card code")
    version_status = django_filters.ChoiceFilter(
        field_name="version__status", choices=RateCardVersion.Status.choices, label="Version status"
    )

    class Meta:
        model = RateCardLine
        fields = {"version": ["exact"], "role": ["exact", "iexact"], "currency": ["exact"]}


class OpportunityFilter(FilterSet):
    class Meta:
        model = Opportunity
        fields = {
            "currency": ["exact"],
            "number": ["exact"],
            "customer": ["exact"],
            "stage": ["exact"],
            "contract_type": ["exact"],
            "close_date": DATES,
            "region": ["exact"],
        }


class ContractFilter(FilterSet):
    class Meta:
        model = Contract
        fields = {
            "currency": ["exact"],
            "number": ["exact"],
            "customer": ["exact"],
            "legal_entity": ["exact"],
            "contract_type": ["exact"],
            "status": ["exact"],
            "rate_card": ["exact"],
            "start_date": DATES,
            "end_date": [*DATES, "isnull"],
        }


class ContractLineFilter(FilterSet):
    class Meta:
        model = ContractLine
        fields = {"currency": ["exact"], "contract": ["exact"], "service_item": ["exact"], "billing_method": ["exact"]}


class ContractAmendmentFilter(FilterSet):
    class Meta:
        model = ContractAmendment
        fields = {"contract": ["exact"], "status": ["exact"], "effective_from": DATES}


class ProjectFilter(FilterSet):
    class Meta:
        model = Project
        fields = {
            "currency": ["exact"],
            "code": ["exact"],
            "customer": ["exact"],
            "contract": ["exact"],
            "legal_entity": ["exact"],
            "status": ["exact"],
            "billing_method": ["exact"],
            "project_manager": ["exact"],
            "start_date": DATES,
        }


class TaskFilter(FilterSet):
    class Meta:
        model = Task
        fields = {"project": ["exact"], "code": ["exact"], "billable": ["exact"], "parent": ["exact", "isnull"]}


class MilestoneFilter(FilterSet):
    class Meta:
        model = Milestone
        fields = {
            "currency": ["exact"],
            "project": ["exact"],
            "status": ["exact"],
            "due_date": DATES,
            "completed_on": DATES,
        }


class TimeEntryFilter(FilterSet):
    project_code = django_filters.CharFilter(field_name="project__code", label="Project code")

    class Meta:
        model = TimeEntry
        fields = {
            "currency": ["exact"],
            "project": ["exact"],
            "resource": ["exact"],
            "task": ["exact"],
            "status": ["exact"],
            "billable": ["exact"],
            "work_date": DATES,
            "billing_event": ["exact", "isnull"],
        }


class ExpenseFilter(FilterSet):
    class Meta:
        model = Expense
        fields = {
            "currency": ["exact"],
            "project": ["exact"],
            "resource": ["exact"],
            "status": ["exact"],
            "category": ["exact"],
            "billable": ["exact"],
            "incurred_on": DATES,
            "billing_event": ["exact", "isnull"],
        }


class BillingScheduleFilter(FilterSet):
    class Meta:
        model = BillingSchedule
        fields = {
            "billing_method": ["exact"],
            "project": ["exact"],
            "contract": ["exact"],
            "status": ["exact"],
            "frequency": ["exact"],
        }


class BillingEventFilter(FilterSet):
    class Meta:
        model = BillingEvent
        fields = {
            "currency": ["exact"],
            "project": ["exact"],
            "contract": ["exact"],
            "milestone": ["exact"],
            "source": ["exact"],
            "status": ["exact"],
            "event_date": DATES,
            "invoice": ["exact", "isnull"],
        }


class InvoiceFilter(FilterSet):
    class Meta:
        model = Invoice
        fields = {
            "number": ["exact"],
            "customer": ["exact"],
            "contract": ["exact"],
            "project": ["exact"],
            "legal_entity": ["exact"],
            "status": ["exact"],
            "currency": ["exact"],
            "issue_date": DATES,
            "due_date": DATES,
        }


class InvoiceLineFilter(FilterSet):
    class Meta:
        model = InvoiceLine
        fields = {"invoice": ["exact"], "service_item": ["exact"], "tax_code": ["exact"], "billing_event": ["exact"]}


class PaymentFilter(FilterSet):
    class Meta:
        model = Payment
        fields = {
            "currency": ["exact"],
            "method": ["exact"],
            "reference": ["exact"],
            "customer": ["exact"],
            "invoice": ["exact", "isnull"],
            "status": ["exact"],
            "received_on": DATES,
        }


class ExchangeRateFilter(FilterSet):
    class Meta:
        model = ExchangeRate
        fields = {"base": ["exact"], "quote": ["exact"], "effective_date": DATES, "source": ["exact"]}


class RevenueScheduleFilter(FilterSet):
    class Meta:
        model = RevenueSchedule
        fields = {"currency": ["exact"], "contract": ["exact"], "project": ["exact"], "method": ["exact"]}


class RevenueScheduleLineFilter(FilterSet):
    class Meta:
        model = RevenueScheduleLine
        fields = {"schedule": ["exact"], "period_start": DATES, "recognized": ["exact"]}
