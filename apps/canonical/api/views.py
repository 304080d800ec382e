"""The canonical store over HTTP: read-only for most records; stewards edit rate cards and legal entities."""

from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import ReadOnlyViewSet, TrackedModelViewSet, change_reason
from apps.core.api.approvals import pending_response
from apps.core.models import ChangeRequest

from .. import filters, selectors
from ..services import rate_card_version_approve
from . import serializers


class LegalEntityViewSet(TrackedModelViewSet):
    """Legal entities: read by everyone; created and updated by stewards. Never deleted here (records use them)."""

    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    queryset = selectors.legal_entity_list()
    serializer_class = serializers.LegalEntitySerializer
    filterset_class = filters.LegalEntityFilter
    search_fields = ["code", "name", "tax_id"]
    ordering_fields = ["code", "name", "country", "updated_at"]


class CustomerViewSet(ReadOnlyViewSet):
    queryset = selectors.customer_list()
    serializer_class = serializers.CustomerSerializer
    filterset_class = filters.CustomerFilter
    search_fields = ["number", "name", "tax_id", "billing_email"]
    ordering_fields = ["number", "name", "status", "updated_at"]


class ResourceViewSet(ReadOnlyViewSet):
    queryset = selectors.resource_list()
    serializer_class = serializers.ResourceSerializer
    filterset_class = filters.ResourceFilter
    search_fields = ["employee_number", "name", "email", "role"]
    ordering_fields = ["employee_number", "name", "role", "cost_rate", "updated_at"]


class OpportunityViewSet(ReadOnlyViewSet):
    queryset = selectors.opportunity_list()
    serializer_class = serializers.OpportunitySerializer
    filterset_class = filters.OpportunityFilter
    search_fields = ["number", "name"]
    ordering_fields = ["number", "close_date", "amount", "updated_at"]


class ContractViewSet(ReadOnlyViewSet):
    queryset = selectors.contract_list()
    serializer_class = serializers.ContractSerializer
    filterset_class = filters.ContractFilter
    search_fields = ["number", "name"]
    ordering_fields = ["number", "start_date", "end_date", "total_value", "updated_at"]


class ContractLineViewSet(ReadOnlyViewSet):
    queryset = selectors.contract_line_list()
    serializer_class = serializers.ContractLineSerializer
    filterset_class = filters.ContractLineFilter
    search_fields = ["service_item", "description", "contract__number"]
    ordering_fields = ["contract", "line_number", "amount"]


class ContractAmendmentViewSet(ReadOnlyViewSet):
    queryset = selectors.contract_amendment_list()
    serializer_class = serializers.ContractAmendmentSerializer
    filterset_class = filters.ContractAmendmentFilter
    search_fields = ["description", "contract__number"]
    ordering_fields = ["contract", "version", "effective_from"]


class ProjectViewSet(ReadOnlyViewSet):
    queryset = selectors.project_list()
    serializer_class = serializers.ProjectSerializer
    filterset_class = filters.ProjectFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "status", "start_date", "updated_at"]


class TaskViewSet(ReadOnlyViewSet):
    queryset = selectors.task_list()
    serializer_class = serializers.TaskSerializer
    filterset_class = filters.TaskFilter
    search_fields = ["code", "name", "project__code"]
    ordering_fields = ["project", "code", "name"]


class MilestoneViewSet(ReadOnlyViewSet):
    queryset = selectors.milestone_list()
    serializer_class = serializers.MilestoneSerializer
    filterset_class = filters.MilestoneFilter
    search_fields = ["code", "name", "project__code"]
    ordering_fields = ["due_date", "code", "amount", "completed_on"]


class TimeEntryViewSet(ReadOnlyViewSet):
    queryset = selectors.time_entry_list()
    serializer_class = serializers.TimeEntrySerializer
    filterset_class = filters.TimeEntryFilter
    search_fields = ["description", "role", "resource__name", "project__code"]
    ordering_fields = ["work_date", "hours", "status", "bill_rate", "cost_rate", "updated_at"]


class ExpenseViewSet(ReadOnlyViewSet):
    queryset = selectors.expense_list()
    serializer_class = serializers.ExpenseSerializer
    filterset_class = filters.ExpenseFilter
    search_fields = ["description", "category", "resource__name", "project__code"]
    ordering_fields = ["incurred_on", "amount", "status", "updated_at"]


class BillingScheduleViewSet(ReadOnlyViewSet):
    queryset = selectors.billing_schedule_list()
    serializer_class = serializers.BillingScheduleSerializer
    filterset_class = filters.BillingScheduleFilter
    search_fields = ["project__code"]
    ordering_fields = ["start_date", "revision", "updated_at"]


class BillingEventViewSet(ReadOnlyViewSet):
    queryset = selectors.billing_event_list()
    serializer_class = serializers.BillingEventSerializer
    filterset_class = filters.BillingEventFilter
    search_fields = ["description", "project__code"]
    ordering_fields = ["event_date", "amount", "status", "updated_at"]


class InvoiceViewSet(ReadOnlyViewSet):
    queryset = selectors.invoice_list()
    serializer_class = serializers.InvoiceSerializer
    filterset_class = filters.InvoiceFilter
    search_fields = ["number", "customer__name", "customer__number"]
    ordering_fields = ["number", "issue_date", "due_date", "total", "status", "updated_at"]


class InvoiceLineViewSet(ReadOnlyViewSet):
    queryset = selectors.invoice_line_list()
    serializer_class = serializers.InvoiceLineSerializer
    filterset_class = filters.InvoiceLineFilter
    search_fields = ["description", "service_item", "invoice__number"]
    ordering_fields = ["invoice", "line_number", "amount"]


class PaymentViewSet(ReadOnlyViewSet):
    queryset = selectors.payment_list()
    serializer_class = serializers.PaymentSerializer
    filterset_class = filters.PaymentFilter
    search_fields = ["reference"]
    ordering_fields = ["received_on", "amount", "status", "updated_at"]


class ExchangeRateViewSet(ReadOnlyViewSet):
    queryset = selectors.exchange_rate_list()
    serializer_class = serializers.ExchangeRateSerializer
    filterset_class = filters.ExchangeRateFilter
    ordering_fields = ["effective_date", "base", "quote"]


class RevenueScheduleViewSet(ReadOnlyViewSet):
    queryset = selectors.revenue_schedule_list()
    serializer_class = serializers.RevenueScheduleSerializer
    filterset_class = filters.RevenueScheduleFilter
    search_fields = ["contract__number"]
    ordering_fields = ["contract", "total_amount", "updated_at"]


class RevenueScheduleLineViewSet(ReadOnlyViewSet):
    queryset = selectors.revenue_schedule_line_list()
    serializer_class = serializers.RevenueScheduleLineSerializer
    filterset_class = filters.RevenueScheduleLineFilter
    ordering_fields = ["period_start", "amount"]


class RateCardViewSet(TrackedModelViewSet):
    queryset = selectors.rate_card_list()
    serializer_class = serializers.RateCardSerializer
    filterset_class = filters.RateCardFilter
    search_fields = ["code", "name", "description"]
    ordering_fields = ["code", "name", "updated_at"]


class RateCardVersionViewSet(TrackedModelViewSet):
    """Rate card versions with their lines; POST …/<id>/approve/ approves a draft (refused on overlap or no rates)."""

    queryset = selectors.rate_card_version_list()
    serializer_class = serializers.RateCardVersionSerializer
    filterset_class = filters.RateCardVersionFilter
    search_fields = ["rate_card__code", "rate_card__name", "notes"]
    ordering_fields = ["version", "effective_from", "effective_to", "status", "updated_at"]

    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        version = self.get_object()
        if not request.user.has_perm("canonical.change_ratecardversion"):
            raise exceptions.PermissionDenied("Only a mapping steward may approve rate card versions.")
        version = rate_card_version_approve(version=version, actor=request.user, reason=change_reason(request))
        if isinstance(version, ChangeRequest):
            return pending_response(version, request)
        return Response(self.get_serializer(version).data)


class RateCardLineViewSet(TrackedModelViewSet):
    queryset = selectors.rate_card_line_list()
    serializer_class = serializers.RateCardLineSerializer
    filterset_class = filters.RateCardLineFilter
    search_fields = ["role", "version__rate_card__code"]
    ordering_fields = ["role", "bill_rate", "cost_rate", "updated_at"]
