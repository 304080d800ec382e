"""The transaction ledger over HTTP: list and trace transactions, re-run, resolve and assign them, one or many."""

from django.http import QueryDict
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import ReadOnlyViewSet
from apps.core.api.approvals import pending_response
from apps.core.limits import BULK_ACTION_LIMIT
from apps.core.masking import can_see_sensitive
from apps.core.models import ChangeRequest
from apps.core.permissions import ModelPermissions

from .. import selectors
from ..filters import DEFAULT_QUEUE, SEARCH_FIELDS, ExceptionGroupFilter, TransactionFilter
from ..groups import live_groups, money_by_group
from ..models import ExceptionGroup, Transaction
from ..routing import may_act
from ..services import ActionRefused, transaction_assign, transaction_replay, transaction_resolve, transactions_replay
from .serializers import (
    AssignSerializer,
    BulkReplayResultSerializer,
    BulkReplaySerializer,
    ExceptionGroupSerializer,
    ReplaySerializer,
    ResolveSerializer,
    TransactionDetailSerializer,
    TransactionSerializer,
)

ACTIONS = ("replay", "resolve", "assign", "bulk_replay")


class TransactionPermissions(ModelPermissions):
    """Reading needs `view`; every action (all are POSTs) needs `change`, whoever may add rows — except that the
    team a transaction is routed to may act on that one transaction (checked per object)."""

    message = "Your role may read transactions but not re-run, resolve or assign them."
    perms_map = {**ModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}

    def has_permission(self, request, view):
        if super().has_permission(request, view):
            return True
        routed = request.method == "POST" and getattr(view, "detail", False)
        return routed and request.user.has_perm("sync.view_transaction")

    def has_object_permission(self, request, view, obj):
        if request.method != "POST" or request.user.has_perm("sync.change_transaction"):
            return super().has_object_permission(request, view, obj)
        return may_act(request.user, obj.owner_role)


class TransactionViewSet(ReadOnlyViewSet):
    """Transactions of the ledger; `?queue=problems` is the exception queue."""

    serializer_class = TransactionSerializer
    filterset_class = TransactionFilter
    permission_classes = [TransactionPermissions]
    search_fields = SEARCH_FIELDS
    ordering_fields = [
        "created_at",
        "updated_at",
        "exception_at",
        "problem_since",
        "value_at_risk",
        "status",
        "workflow",
        "owner_role",
    ]
    ordering = ["-created_at", "-pk"]

    def get_queryset(self):
        if self.action == "list":
            return selectors.transaction_list()
        return selectors.transaction_detail()

    def get_serializer_class(self):
        return TransactionSerializer if self.action == "list" else TransactionDetailSerializer

    def _answer(self, txn: Transaction) -> Response:
        fresh = selectors.transaction_detail().get(pk=txn.pk)
        return Response(TransactionDetailSerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(request=ReplaySerializer, responses=TransactionDetailSerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Re-run from the failed step (or `from_sequence`), as it is or with an edited input; needs a reason."""
        txn = self.get_object()
        params = ReplaySerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        edited = data.get("input_override") is not None or data.get("step_input_override") is not None
        if edited and not can_see_sensitive(request.user):
            shown = [txn.effective_input, *(step.input_override for step in txn.steps.all())]
            if any(selectors.holds_sensitive(value) for value in shown):
                raise exceptions.PermissionDenied(
                    "This transaction's input holds bill or cost rates, which your role may not see, so you may not "
                    "edit it. Re-run it as it is, or ask finance ops or a mapping steward to edit it."
                )
        result = transaction_replay(
            txn=txn,
            actor=request.user,
            reason=data["reason"],
            from_sequence=data.get("from_sequence"),
            input_override=data.get("input_override"),
            step_input_override=data.get("step_input_override"),
        )
        if isinstance(result, ChangeRequest):
            return pending_response(result, request)
        return self._answer(txn)

    @extend_schema(request=ResolveSerializer, responses=TransactionDetailSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Close an exception by hand (`ignore: true` to ignore it); needs a reason."""
        txn = self.get_object()
        params = ResolveSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        transaction_resolve(
            txn=txn, actor=request.user, reason=params.validated_data["reason"], ignore=params.validated_data["ignore"]
        )
        return self._answer(txn)

    @extend_schema(request=AssignSerializer, responses=TransactionDetailSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Give the transaction to a person (`owner`: username), or take it from them (`owner`: null)."""
        txn = self.get_object()
        params = AssignSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        transaction_assign(txn=txn, owner=params.validated_data["owner"], actor=request.user)
        return self._answer(txn)

    @extend_schema(
        request=BulkReplaySerializer, responses=BulkReplayResultSerializer, operation_id="transactions_bulk_replay"
    )
    @action(detail=False, methods=["post"], url_path="replay", url_name="bulk-replay")
    def bulk_replay(self, request):
        """Re-run many transactions as they are: by `ids`, or by a `filter` (open problems unless it names a status)."""
        params = BulkReplaySerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        queryset = Transaction.objects.all()
        refused = []
        if data.get("ids"):
            wanted = set(data["ids"])
            queryset = queryset.filter(pk__in=wanted)
            found = set(queryset.values_list("pk", flat=True))
            refused += [
                {"id": pk, "transaction": None, "reason": f"There is no transaction with id {pk}."}
                for pk in sorted(wanted - found)
            ]
        if data.get("filter"):
            queryset = self._filtered(queryset, data["filter"])
        matched = queryset.count()
        if matched > BULK_ACTION_LIMIT:
            raise ActionRefused(
                f"This selects {matched:,} transactions; re-run at most {BULK_ACTION_LIMIT:,} at a time.",
                fix="Narrow the filter (for example by workflow, error class or created_before) and send it again.",
            )
        selected = list(queryset.order_by("pk"))
        ids = {txn.correlation_id: txn.pk for txn in selected}
        report = transactions_replay(transactions=selected, actor=request.user, reason=data["reason"])
        refused += [
            {"id": ids[item["transaction"]], "transaction": item["transaction"], "reason": item["reason"]}
            for item in report["refused"]
        ]
        body = {"matched": matched, "replayed": report["replayed"], "refused": refused}
        return Response(BulkReplayResultSerializer(body).data, status=status.HTTP_200_OK)

    def _filtered(self, queryset, criteria: dict):
        known = set(TransactionFilter.base_filters)
        unknown = sorted(set(criteria) - known)
        if unknown:
            raise exceptions.ValidationError(
                {"filter": f"Unknown filter {', '.join(unknown)}; use {', '.join(sorted(known))}."}
            )
        query = QueryDict(mutable=True)
        for name, value in criteria.items():
            query.setlist(name, [str(item) for item in value] if isinstance(value, list) else [str(value)])
        if "status" not in query and "queue" not in query:
            query["queue"] = DEFAULT_QUEUE  # a filter without a status means the open problems
        filterset = TransactionFilter(data=query, queryset=queryset, request=self.request)
        if not filterset.is_valid():
            raise exceptions.ValidationError({"filter": filterset.errors})
        return filterset.qs

    @action(detail=True, methods=["get"], url_path="history")
    def history(self, request, pk=None):
        """Who changed the transaction, when and why, with diffs; amounts in its input masked as elsewhere."""
        response = super().history(request, pk)
        response.data = selectors.visible_json(response.data, request.user)
        return response


class ExceptionGroupViewSet(ReadOnlyViewSet):
    """Exception groups: exceptions with one cause; `?status=open` lists what still needs someone."""

    serializer_class = ExceptionGroupSerializer
    filterset_class = ExceptionGroupFilter
    search_fields = ["title", "missing_label", "missing_key"]
    ordering_fields = ["last_seen", "first_seen", "times_seen", "open_count", "status", "workflow"]
    ordering = ["-last_seen", "-pk"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema needs the model, not a query of live counts
            return ExceptionGroup.objects.none()
        return live_groups()

    def get_serializer(self, *args, **kwargs):
        if kwargs.get("many") and args:
            rows = list(args[0])
            kwargs.setdefault("context", self.get_serializer_context())
            kwargs["context"]["money_by_group"] = money_by_group(row.pk for row in rows)
            return super().get_serializer(rows, *args[1:], **kwargs)
        return super().get_serializer(*args, **kwargs)
