"""Reconciliation under /api/v1/reconciliation/: runs (on demand), discrepancies and their actions, sign-off."""

from django.db import transaction
from django_q.tasks import async_task
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import ReadOnlyViewSet
from apps.core.permissions import ModelPermissions

from .. import selectors
from ..filters import SEARCH_FIELDS, DiscrepancyFilter, PeriodSignOffFilter, ReconciliationRunFilter
from ..models import ReconciliationRun
from ..services import (
    discrepancy_explain,
    discrepancy_rerun,
    reconciliation_run_request,
    sign_off_approve,
    sign_off_prepare,
)
from .serializers import (
    ApproveSerializer,
    DiscrepancySerializer,
    PeriodSignOffSerializer,
    PrepareSerializer,
    ReasonSerializer,
    ReconciliationRunSerializer,
    RerunResultSerializer,
    RunRequestSerializer,
)


def enqueue_run(run_id: int) -> None:
    """Ask a worker to execute the run (the task finds a run already taken and does nothing)."""
    async_task("apps.reconciliation.tasks.run_reconciliation", run_id, task_name=f"reconciliation-{run_id}")


class ActOnPermissions(ModelPermissions):
    """Reading needs `view`; an action (a POST on a row) needs `change`."""

    message = "Your role may read reconciliation results but not act on them."
    perms_map = {**ModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class ReconciliationRunViewSet(ReadOnlyViewSet):
    """Runs with status, progress and duration; POST starts one on demand (202, executed by a worker)."""

    serializer_class = ReconciliationRunSerializer
    filterset_class = ReconciliationRunFilter
    ordering_fields = ["created_at", "finished_at", "period", "status"]
    ordering = ["-created_at", "-pk"]

    def get_queryset(self):
        return selectors.run_list()

    @extend_schema(request=RunRequestSerializer, responses={202: ReconciliationRunSerializer})
    def create(self, request):
        """Reconcile a period now (optionally one legal entity)."""
        params = RunRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        run = reconciliation_run_request(
            period=params.validated_data["period"],
            legal_entity_code=params.validated_data.get("legal_entity") or None,
            trigger=ReconciliationRun.Trigger.API,
            actor=request.user,
            reason=f"Reconciliation of {params.validated_data['period']} requested over the API",
        )
        run_id = run.pk
        transaction.on_commit(lambda: enqueue_run(run_id))
        body = ReconciliationRunSerializer(run, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class DiscrepancyViewSet(ReadOnlyViewSet):
    """Discrepancies, largest value at risk first; re-run what failed or explain what is acceptable."""

    serializer_class = DiscrepancySerializer
    filterset_class = DiscrepancyFilter
    permission_classes = [ActOnPermissions]
    search_fields = SEARCH_FIELDS
    ordering_fields = ["value_at_risk", "first_seen_at", "last_seen_at", "period", "check_type", "difference"]
    ordering = ["-value_at_risk", "pk"]

    def get_queryset(self):
        return selectors.discrepancy_list()

    def _answer(self, pk: int) -> Response:
        return Response(self.get_serializer(selectors.discrepancy_list().get(pk=pk)).data)

    @extend_schema(request=ReasonSerializer, responses=DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def explain(self, request, pk=None):
        """Mark the discrepancy explained with a reason."""
        row = self.get_object()
        params = ReasonSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        discrepancy_explain(discrepancy=row, reason=params.validated_data["reason"], actor=request.user)
        return self._answer(row.pk)

    @extend_schema(request=ReasonSerializer, responses=RerunResultSerializer)
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """Re-run through the ledger the failed transaction(s) behind this discrepancy (only those)."""
        row = self.get_object()
        params = ReasonSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        replayed = discrepancy_rerun(discrepancy=row, actor=request.user, reason=params.validated_data["reason"])
        fresh = selectors.discrepancy_list().get(pk=row.pk)
        body = {"discrepancy": fresh, "transactions": [txn.correlation_id for txn in replayed]}
        return Response(RerunResultSerializer(body, context=self.get_serializer_context()).data)


class PeriodSignOffViewSet(ReadOnlyViewSet):
    """Sign-offs: POST prepares a period; `approve` by another person; voided when a later run changes figures."""

    serializer_class = PeriodSignOffSerializer
    filterset_class = PeriodSignOffFilter
    ordering_fields = ["period", "prepared_at", "approved_at", "status"]
    ordering = ["-prepared_at", "-pk"]

    def get_queryset(self):
        return selectors.sign_off_list()

    def get_permissions(self):
        if self.action == "approve":
            return [ActOnPermissions()]
        return super().get_permissions()

    @extend_schema(request=PrepareSerializer, responses={201: PeriodSignOffSerializer})
    def create(self, request):
        """Prepare a period's reconciliation on its latest complete run."""
        params = PrepareSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        sign_off = sign_off_prepare(
            period=data["period"],
            legal_entity_code=data.get("legal_entity") or None,
            actor=request.user,
            note=data["note"],
        )
        return Response(self.get_serializer(sign_off).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ApproveSerializer, responses=PeriodSignOffSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve a prepared sign-off; refused to the person who prepared it."""
        sign_off = self.get_object()
        params = ApproveSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        approved = sign_off_approve(sign_off=sign_off, actor=request.user, note=params.validated_data["note"])
        return Response(self.get_serializer(selectors.sign_off_list().get(pk=approved.pk)).data)
