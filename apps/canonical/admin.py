"""Admin for the canonical records: history with diffs and reasons, masked rates, rate card approval.

Over 500 lines on purpose: the admin of every canonical model, one declaration each, in one place.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count

from apps.core.admin import ChangeReasonForm, HistoryAdmin, HistoryInline, pending_message
from apps.core.errors import BusinessError
from apps.core.models import ChangeRequest

from . import filters
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
from .services import rate_card_version_approve

TIMESTAMPS = ("created_at", "updated_at")


# --- parties ----------------------------------------------------------------------------------


@admin.register(LegalEntity)
class LegalEntityAdmin(HistoryAdmin):
    filterset_class = filters.LegalEntityFilter
    list_display = ["code", "name", "country", "currency", "tax_region", "active"]
    list_filter = ["active", "currency"]  # country is free text: ?country=…
    search_fields = ["code", "name", "tax_id"]
    readonly_fields = list(TIMESTAMPS)


@admin.register(Customer)
class CustomerAdmin(HistoryAdmin):
    filterset_class = filters.CustomerFilter
    list_display = ["number", "name", "parent", "legal_entity", "status", "region", "currency", "is_bill_to"]
    list_filter = ["status", "legal_entity", "currency", "is_sold_to", "is_bill_to"]  # and ?region=…
    list_select_related = ["parent", "legal_entity"]
    search_fields = ["number", "name", "tax_id", "billing_email"]
    autocomplete_fields = ["parent", "bill_to", "legal_entity"]
    readonly_fields = list(TIMESTAMPS)


@admin.register(Resource)
class ResourceAdmin(HistoryAdmin):
    filterset_class = filters.ResourceFilter
    list_display = ["employee_number", "name", "role", "legal_entity", "cost_rate", "cost_currency", "active"]
    list_filter = ["active", "legal_entity"]  # role is free text: ?role=… (or ?role__iexact=…)
    list_select_related = ["legal_entity"]
    search_fields = ["employee_number", "name", "email", "role"]
    autocomplete_fields = ["legal_entity"]
    readonly_fields = list(TIMESTAMPS)


# --- rate cards -------------------------------------------------------------------------------


class FrozenRatesForm(ChangeReasonForm):
    """Refuses, as a form error, a change the model would refuse because the version is approved or retired."""

    def _post_clean(self):
        super()._post_clean()
        refusal = self.instance.frozen_refusal() if getattr(self.instance, "version_id", True) else ""
        if refusal:
            self.add_error(None, f"{refusal} A price change is a new version: create one with the new rates.")


def _frozen(version) -> bool:
    return version is not None and version.status in RateCardVersion.FROZEN


class RateCardVersionInline(HistoryInline):
    model = RateCardVersion
    fields = ["version", "status", "effective_from", "effective_to", "approved_at", "notes"]
    readonly_fields = ["status", "approved_at"]

    def has_change_permission(self, request, obj=None):
        # Approved versions are frozen (a price change is a new version); their own page shows what may change.
        return (
            False
            if obj is not None and obj.versions.filter(status__in=RateCardVersion.FROZEN).exists()
            else (super().has_change_permission(request, obj))
        )

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)


@admin.register(RateCard)
class RateCardAdmin(HistoryAdmin):
    filterset_class = filters.RateCardFilter
    list_display = ["code", "name", "currency", "updated_at"]
    list_filter = ["currency"]
    search_fields = ["code", "name", "description"]
    readonly_fields = list(TIMESTAMPS)
    inlines = [RateCardVersionInline]


class RateCardLineInline(HistoryInline):
    model = RateCardLine
    fields = ["role", "bill_rate", "cost_rate", "currency", "unit"]

    # The rates of an approved or retired version are frozen: shown, never added, changed or deleted here.
    def has_add_permission(self, request, obj=None):
        return not _frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not _frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _frozen(obj) and super().has_delete_permission(request, obj)


@admin.register(RateCardVersion)
class RateCardVersionAdmin(HistoryAdmin):
    filterset_class = filters.RateCardVersionFilter
    list_display = ["rate_card", "version", "status", "effective_from", "effective_to", "line_count", "approved_at"]
    list_filter = ["status", "rate_card"]
    list_select_related = ["rate_card"]
    search_fields = ["rate_card__code", "rate_card__name", "notes"]
    autocomplete_fields = ["rate_card"]
    date_hierarchy = "effective_from"
    # Approval goes through the action, which checks overlaps and that the version has rates.
    readonly_fields = ["status", "approved_at", *TIMESTAMPS]
    fields = ["rate_card", "version", "status", "effective_from", "effective_to", "notes", "approved_at", *TIMESTAMPS]
    inlines = [RateCardLineInline]
    actions = ["approve_versions"]
    form = FrozenRatesForm

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(line_total=Count("lines"))

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if _frozen(obj):
            # Frozen: only the notes, and the end of an open-ended approved version, may still change.
            keep = {"notes"} | ({"effective_to"} if obj.effective_to is None and obj.status == "approved" else set())
            readonly += [
                name for name in ("rate_card", "version", "effective_from", "effective_to") if name not in keep
            ]
        return readonly

    def has_delete_permission(self, request, obj=None):
        return not _frozen(obj) and super().has_delete_permission(request, obj)

    @admin.display(description="Rates", ordering="line_total")
    def line_count(self, obj):
        return obj.line_total

    @admin.action(description="Approve selected versions", permissions=["change"])
    def approve_versions(self, request, queryset):
        approved, pending = [], []
        for version in queryset.select_related("rate_card").order_by("rate_card__code", "version"):
            label = f"Rate card {version.rate_card.code} version {version.version}"
            try:
                result = rate_card_version_approve(
                    version=version,
                    actor=request.user,
                    reason=f"Approved in the admin by {request.user.get_username()}",
                )
            except ValidationError as exc:
                self.message_user(request, f"{label} was not approved: {' '.join(exc.messages)}", messages.ERROR)
            except BusinessError as exc:
                self.message_user(request, f"{label} was not approved: {exc.message}", messages.ERROR)
            else:
                if isinstance(result, ChangeRequest):
                    pending.append(f"{label} (request #{result.pk})")
                else:
                    approved.append(label)
        if pending:
            self.message_user(request, pending_message(pending), messages.WARNING)
        if approved:
            self.message_user(request, f"Approved: {', '.join(approved)}.", messages.SUCCESS)


@admin.register(RateCardLine)
class RateCardLineAdmin(HistoryAdmin):
    filterset_class = filters.RateCardLineFilter
    list_display = ["role", "version", "bill_rate", "cost_rate", "currency", "unit"]
    list_filter = ["version_status", "currency", "rate_card"]
    list_select_related = ["version__rate_card"]
    search_fields = ["role", "version__rate_card__code", "version__rate_card__name"]
    autocomplete_fields = ["version"]
    readonly_fields = list(TIMESTAMPS)
    form = FrozenRatesForm

    def has_change_permission(self, request, obj=None):
        return not (obj is not None and _frozen(obj.version)) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not (obj is not None and _frozen(obj.version)) and super().has_delete_permission(request, obj)


# --- commercial -------------------------------------------------------------------------------


@admin.register(Opportunity)
class OpportunityAdmin(HistoryAdmin):
    filterset_class = filters.OpportunityFilter
    list_display = ["number", "name", "customer", "stage", "amount", "currency", "close_date", "contract_type"]
    list_filter = ["stage", "contract_type", "currency"]  # and ?region=…
    list_select_related = ["customer"]
    search_fields = ["number", "name", "customer__number", "customer__name"]
    autocomplete_fields = ["customer", "legal_entity", "rate_card"]
    date_hierarchy = "close_date"
    readonly_fields = list(TIMESTAMPS)


class ContractLineInline(HistoryInline):
    model = ContractLine
    # Description lives on the line's own page: a row must fit the screen.
    fields = [
        "line_number",
        "service_item",
        "billing_method",
        "quantity",
        "unit_price",
        "amount",
        "currency",
        "introduced_by",
    ]
    autocomplete_fields = ["introduced_by"]


class ContractAmendmentInline(HistoryInline):
    model = ContractAmendment
    fields = [
        "version",
        "effective_from",
        "description",
        "new_total_value",
        "new_end_date",
        "new_rate_card_version",
        "status",
    ]
    autocomplete_fields = ["new_rate_card_version"]


@admin.register(Contract)
class ContractAdmin(HistoryAdmin):
    filterset_class = filters.ContractFilter
    list_display = [
        "number",
        "name",
        "customer",
        "legal_entity",
        "contract_type",
        "status",
        "version",
        "start_date",
        "end_date",
        "total_value",
        "currency",
    ]
    list_filter = ["status", "contract_type", "legal_entity", "currency"]
    list_select_related = ["customer", "legal_entity"]
    search_fields = ["number", "name", "customer__number", "customer__name"]
    autocomplete_fields = ["customer", "bill_to", "legal_entity", "opportunity", "rate_card"]
    date_hierarchy = "start_date"
    readonly_fields = list(TIMESTAMPS)
    inlines = [ContractLineInline, ContractAmendmentInline]


@admin.register(ContractLine)
class ContractLineAdmin(HistoryAdmin):
    filterset_class = filters.ContractLineFilter
    list_display = ["contract", "line_number", "service_item", "billing_method", "quantity", "amount", "currency"]
    list_filter = ["billing_method", "currency"]
    list_select_related = ["contract"]
    search_fields = ["service_item", "description", "contract__number"]
    autocomplete_fields = ["contract", "introduced_by"]
    readonly_fields = list(TIMESTAMPS)


@admin.register(ContractAmendment)
class ContractAmendmentAdmin(HistoryAdmin):
    filterset_class = filters.ContractAmendmentFilter
    list_display = ["contract", "version", "status", "effective_from", "new_total_value", "applied_at"]
    list_filter = ["status"]
    list_select_related = ["contract"]
    search_fields = ["contract__number", "contract__name", "description"]
    autocomplete_fields = ["contract", "new_rate_card_version"]
    date_hierarchy = "effective_from"
    readonly_fields = ["applied_at", *TIMESTAMPS]


# --- delivery ---------------------------------------------------------------------------------


class TaskInline(HistoryInline):
    model = Task
    fields = ["code", "name", "billable", "parent"]
    autocomplete_fields = ["parent"]


class MilestoneInline(HistoryInline):
    model = Milestone
    fields = ["code", "name", "due_date", "amount", "currency", "status", "completed_on"]


@admin.register(Project)
class ProjectAdmin(HistoryAdmin):
    filterset_class = filters.ProjectFilter
    list_display = [
        "code",
        "name",
        "customer",
        "contract",
        "status",
        "billing_method",
        "project_manager",
        "start_date",
        "end_date",
    ]
    list_filter = ["status", "billing_method", "legal_entity", "currency"]
    list_select_related = ["customer", "contract", "project_manager"]
    search_fields = ["code", "name", "customer__number", "customer__name", "contract__number"]
    autocomplete_fields = ["customer", "contract", "legal_entity", "rate_card", "project_manager"]
    date_hierarchy = "start_date"
    readonly_fields = list(TIMESTAMPS)
    inlines = [TaskInline, MilestoneInline]


@admin.register(Task)
class TaskAdmin(HistoryAdmin):
    filterset_class = filters.TaskFilter
    list_display = ["code", "name", "project", "billable", "parent"]
    list_filter = ["billable"]
    list_select_related = ["project", "parent__project"]
    search_fields = ["code", "name", "project__code"]
    autocomplete_fields = ["project", "parent"]
    readonly_fields = list(TIMESTAMPS)


@admin.register(Milestone)
class MilestoneAdmin(HistoryAdmin):
    filterset_class = filters.MilestoneFilter
    list_display = ["code", "name", "project", "due_date", "amount", "currency", "status", "completed_on"]
    list_filter = ["status", "currency"]
    list_select_related = ["project"]
    search_fields = ["code", "name", "project__code"]
    autocomplete_fields = ["project"]
    date_hierarchy = "due_date"
    readonly_fields = list(TIMESTAMPS)


@admin.register(TimeEntry)
class TimeEntryAdmin(HistoryAdmin):
    filterset_class = filters.TimeEntryFilter
    # Newest first from the (work date, id) index; the model's order by resource sorts every entry through a join.
    ordering = ["-work_date", "-id"]
    list_display = [
        "work_date",
        "resource",
        "project",
        "hours",
        "role",
        "status",
        "billable",
        "bill_rate",
        "cost_rate",
        "currency",
    ]
    list_filter = ["status", "billable", "currency"]
    list_select_related = ["resource", "project"]
    search_fields = ["resource__name", "resource__employee_number", "project__code", "description", "role"]
    autocomplete_fields = ["resource", "project", "task"]
    raw_id_fields = ["billing_event"]
    date_hierarchy = "work_date"
    readonly_fields = list(TIMESTAMPS)


@admin.register(Expense)
class ExpenseAdmin(HistoryAdmin):
    filterset_class = filters.ExpenseFilter
    list_display = ["incurred_on", "resource", "project", "category", "amount", "currency", "status", "billable"]
    list_filter = ["status", "billable", "currency"]  # category is free text: ?category=…
    list_select_related = ["resource", "project"]
    search_fields = ["resource__name", "resource__employee_number", "project__code", "description", "category"]
    autocomplete_fields = ["resource", "project"]
    raw_id_fields = ["billing_event"]
    date_hierarchy = "incurred_on"
    readonly_fields = list(TIMESTAMPS)


# --- finance ----------------------------------------------------------------------------------


@admin.register(BillingSchedule)
class BillingScheduleAdmin(HistoryAdmin):
    filterset_class = filters.BillingScheduleFilter
    list_display = ["project", "revision", "billing_method", "frequency", "start_date", "status", "currency"]
    list_filter = ["status", "frequency", "billing_method"]
    list_select_related = ["project"]
    search_fields = ["project__code", "project__name", "contract__number"]
    autocomplete_fields = ["project", "contract"]
    date_hierarchy = "start_date"
    readonly_fields = list(TIMESTAMPS)


@admin.register(BillingEvent)
class BillingEventAdmin(HistoryAdmin):
    filterset_class = filters.BillingEventFilter
    list_display = ["event_date", "project", "source", "description", "amount", "currency", "status", "invoice"]
    list_filter = ["status", "source", "currency"]
    list_select_related = ["project", "invoice__customer"]
    search_fields = ["description", "project__code", "invoice__number"]
    autocomplete_fields = ["project", "contract", "milestone"]
    raw_id_fields = ["invoice"]
    date_hierarchy = "event_date"
    readonly_fields = list(TIMESTAMPS)


class InvoiceLineInline(HistoryInline):
    model = InvoiceLine
    # Service item and tax rate live on the line's own page: a row must fit the screen.
    fields = [
        "line_number",
        "description",
        "quantity",
        "unit_price",
        "amount",
        "tax_code",
        "tax_amount",
        "billing_event",
    ]
    raw_id_fields = ["billing_event"]


@admin.register(Invoice)
class InvoiceAdmin(HistoryAdmin):
    filterset_class = filters.InvoiceFilter
    list_display = [
        "number",
        "customer",
        "legal_entity",
        "issue_date",
        "due_date",
        "total",
        "amount_paid",
        "currency",
        "status",
    ]
    list_filter = ["status", "legal_entity", "currency"]
    list_select_related = ["customer", "legal_entity"]
    search_fields = ["number", "customer__number", "customer__name"]
    autocomplete_fields = ["customer", "contract", "project", "legal_entity"]
    date_hierarchy = "issue_date"
    readonly_fields = ["posted_at", *TIMESTAMPS]
    inlines = [InvoiceLineInline]


@admin.register(InvoiceLine)
class InvoiceLineAdmin(HistoryAdmin):
    filterset_class = filters.InvoiceLineFilter
    list_display = ["invoice", "line_number", "description", "quantity", "unit_price", "amount", "tax_amount"]
    list_filter = []  # tax codes are free text: ?tax_code=… filters, as in the API
    list_select_related = ["invoice__customer"]
    search_fields = ["invoice__number", "description", "service_item"]
    raw_id_fields = ["invoice", "billing_event"]
    readonly_fields = list(TIMESTAMPS)


@admin.register(Payment)
class PaymentAdmin(HistoryAdmin):
    filterset_class = filters.PaymentFilter
    list_display = ["reference", "customer", "invoice", "received_on", "amount", "currency", "method", "status"]
    list_filter = ["status", "currency"]  # method is free text: ?method=…
    list_select_related = ["customer", "invoice__customer"]
    search_fields = ["reference", "customer__number", "customer__name", "invoice__number"]
    autocomplete_fields = ["customer"]
    raw_id_fields = ["invoice"]
    date_hierarchy = "received_on"
    readonly_fields = list(TIMESTAMPS)


class RevenueScheduleLineInline(HistoryInline):
    model = RevenueScheduleLine
    fields = ["period_start", "amount", "recognized"]


@admin.register(RevenueSchedule)
class RevenueScheduleAdmin(HistoryAdmin):
    filterset_class = filters.RevenueScheduleFilter
    list_display = ["contract", "project", "method", "total_amount", "currency"]
    list_filter = ["method", "currency"]
    list_select_related = ["contract", "project"]
    search_fields = ["contract__number", "contract__name", "project__code"]
    autocomplete_fields = ["contract", "project"]
    readonly_fields = list(TIMESTAMPS)
    inlines = [RevenueScheduleLineInline]


@admin.register(ExchangeRate)
class ExchangeRateAdmin(HistoryAdmin):
    filterset_class = filters.ExchangeRateFilter
    list_display = ["effective_date", "base", "quote", "rate", "source"]
    list_filter = ["base", "quote"]  # source is free text: ?source=…
    search_fields = ["base", "quote", "source"]
    date_hierarchy = "effective_date"
    readonly_fields = list(TIMESTAMPS)


@admin.register(RevenueScheduleLine)
class RevenueScheduleLineAdmin(HistoryAdmin):
    filterset_class = filters.RevenueScheduleLineFilter
    list_display = ["schedule", "period_start", "amount", "recognized"]
    list_filter = ["recognized"]
    list_select_related = ["schedule__contract"]
    search_fields = ["schedule__contract__number"]
    autocomplete_fields = ["schedule"]
    date_hierarchy = "period_start"
    readonly_fields = list(TIMESTAMPS)
