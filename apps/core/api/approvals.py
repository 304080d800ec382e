"""/api/v1/approvals/: four-eyes change requests — the pending ones I may decide, approve and reject."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from .. import approvals
from ..models import ChangeRequest
from . import CHANGE_REASON_HEADER, HistoryActionMixin, ReadableNotFoundMixin


class ChangeRequestSerializer(serializers.ModelSerializer):
    """A change waiting for (or decided by) a second person."""

    requested_by = serializers.StringRelatedField()
    decided_by = serializers.StringRelatedField()
    object_type = serializers.SerializerMethodField()
    may_decide = serializers.SerializerMethodField()

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "kind",
            "status",
            "summary",
            "object_type",
            "object_id",
            "diff",
            "payload",
            "requested_by",
            "request_reason",
            "correlation_id",
            "decided_by",
            "decision_reason",
            "decided_at",
            "created_at",
            "may_decide",
        ]
        read_only_fields = fields

    def get_object_type(self, obj) -> str | None:
        return obj.content_type.model if obj.content_type_id else None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        user = getattr(self.context.get("request"), "user", None)
        data["diff"] = approvals.visible_diff(instance, user)
        data["payload"] = approvals.visible_payload(instance, user)
        return data

    def get_may_decide(self, obj) -> bool:
        request = self.context.get("request")
        return obj.status == ChangeRequest.Status.PENDING and approvals.may_decide(getattr(request, "user", None), obj)


class DecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


def pending_response(change_request: ChangeRequest, request) -> Response:
    """202: the change was stored for a second person's approval, not applied."""
    data = ChangeRequestSerializer(change_request, context={"request": request}).data
    data["detail"] = (
        f"Four-eyes control: {change_request.summary} waits for a second person's approval "
        f"(request #{change_request.pk}); it is not applied yet."
    )
    return Response(data, status=status.HTTP_202_ACCEPTED)


def _decision_reason(request) -> str:
    params = DecisionSerializer(data=request.data if isinstance(request.data, dict) else {})
    params.is_valid(raise_exception=True)
    given = (params.validated_data.get("reason") or "").strip()
    return given or (request.headers.get(CHANGE_REASON_HEADER) or "").strip()[:2000]


class ApprovalViewSet(ReadableNotFoundMixin, HistoryActionMixin, viewsets.ReadOnlyModelViewSet):
    """Change requests. The list shows the pending ones you may decide (`?scope=all`: every one you may see,
    yours included); POST …/<id>/approve/ applies the change, …/<id>/reject/ turns it down with a reason."""

    queryset = ChangeRequest.objects.none()  # the real one depends on who asks (get_queryset)
    serializer_class = ChangeRequestSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        user = self.request.user
        if self.action == "list" and self.request.query_params.get("scope") != "all":
            queryset = approvals.pending_for(user)
        else:
            queryset = approvals.visible_to(user)
        kind = self.request.query_params.get("kind")
        if kind:
            queryset = queryset.filter(kind=kind)
        return queryset.select_related("requested_by", "decided_by", "content_type")

    @extend_schema(request=DecisionSerializer, responses=ChangeRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        change_request = self._decidable()
        decided = approvals.approval_approve(
            change_request=change_request, actor=request.user, reason=_decision_reason(request)
        )
        return Response(ChangeRequestSerializer(decided, context={"request": request}).data)

    @extend_schema(request=DecisionSerializer, responses=ChangeRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        change_request = self._decidable()
        decided = approvals.approval_reject(
            change_request=change_request, actor=request.user, reason=_decision_reason(request)
        )
        return Response(ChangeRequestSerializer(decided, context={"request": request}).data)

    def _decidable(self) -> ChangeRequest:
        change_request = self.get_object()
        if change_request.kind not in approvals.decidable_kinds(self.request.user):
            raise exceptions.PermissionDenied("Your role may not decide this kind of change.")
        return change_request


router = SimpleRouter(trailing_slash=True)
router.register("approvals", ApprovalViewSet, basename="approval")
urlpatterns = router.urls
