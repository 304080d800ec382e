"""The steward's mapping tables over HTTP: cross-references and value maps (read-write), reference values (read),
and source profiles (read, preview, new version, publish)."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import ReadOnlyViewSet, TrackedModelViewSet, change_reason
from apps.core.api.approvals import pending_response
from apps.core.models import ChangeRequest
from apps.inbound.preview import profile_preview

from .. import selectors
from ..filters import (
    CrossReferenceFilter,
    ReferenceValueFilter,
    SourceProfileFilter,
    ValueMapEntryFilter,
    ValueMapFilter,
)
from ..models import SourceProfile
from ..services import source_profile_new_version, source_profile_publish
from ..stewarding import profile_versions
from .serializers import (
    CrossReferenceSerializer,
    NewVersionSerializer,
    PreviewResultSerializer,
    ProfilePreviewRequestSerializer,
    PublishSerializer,
    ReferenceValueSerializer,
    SourceProfileSerializer,
    SourceProfileVersionSerializer,
    SpecPreviewRequestSerializer,
    ValueMapEntrySerializer,
    ValueMapSerializer,
)


class CrossReferenceViewSet(TrackedModelViewSet):
    queryset = selectors.cross_reference_list()
    serializer_class = CrossReferenceSerializer
    filterset_class = CrossReferenceFilter
    search_fields = ["external_id", "system__slug"]
    ordering_fields = ["object_type", "object_id", "external_id", "last_synced_at", "updated_at"]


class ValueMapViewSet(TrackedModelViewSet):
    queryset = selectors.value_map_list()
    serializer_class = ValueMapSerializer
    filterset_class = ValueMapFilter
    search_fields = ["name", "source_label", "target_label", "description"]
    ordering_fields = ["name", "updated_at"]


class ValueMapEntryViewSet(TrackedModelViewSet):
    queryset = selectors.value_map_entry_list()
    serializer_class = ValueMapEntrySerializer
    filterset_class = ValueMapEntryFilter
    search_fields = ["source_value", "target_value", "note", "value_map__name"]
    ordering_fields = ["source_value", "target_value", "effective_from", "updated_at"]


class ReferenceValueViewSet(ReadOnlyViewSet):
    """Code lists pulled from connected systems; the reference data batch writes them, people read them."""

    queryset = selectors.reference_value_list()
    serializer_class = ReferenceValueSerializer
    filterset_class = ReferenceValueFilter
    search_fields = ["code", "name", "external_id"]
    ordering_fields = ["kind", "code", "name", "updated_at"]


class CanReadProfiles(permissions.BasePermission):
    """Reading and previewing profiles (a preview writes nothing) needs the view permission."""

    message = "You may not read source profiles."

    def has_permission(self, request, view):
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and (user.has_perm("mapping.view_sourceprofile") or user.has_perm("mapping.change_sourceprofile"))
        )


class CanChangeProfiles(permissions.BasePermission):
    """Starting and publishing versions needs the change permission (mapping stewards)."""

    message = "Only mapping stewards may start or publish versions of a source profile."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("mapping.change_sourceprofile"))


PROFILE_PROBLEMS = {
    400: OpenApiResponse(description="Invalid input, e.g. a spec with problems (each listed in `errors`)"),
    403: OpenApiResponse(description="Not allowed for your role"),
    404: OpenApiResponse(description="No such profile"),
}


class SourceProfileViewSet(ReadOnlyViewSet):
    """Versions of the source profiles; a published version never changes, an edit starts the next draft."""

    queryset = SourceProfile.objects.all()
    serializer_class = SourceProfileSerializer
    filterset_class = SourceProfileFilter
    search_fields = ["name", "vendor", "description"]
    ordering_fields = ["name", "version", "vendor", "status", "created_at", "updated_at"]

    def get_permissions(self):
        if self.action in ("preview", "preview_spec"):
            return [CanReadProfiles()]
        if self.action in ("new_version", "publish"):
            return [CanChangeProfiles()]
        return super().get_permissions()

    def _preview(self, spec, payload, params) -> Response:
        result = profile_preview(spec=spec, payload=payload, fetched=params.get("fetched"), on=params.get("on"))
        return Response(result)

    @extend_schema(
        operation_id="source_profiles_preview",
        summary="Preview a saved profile version on a sample delivery",
        description="Cuts the sample (default: the profile's own) into events with the profile's delivery format "
        "and applies the profile to each, as inbound and the sync layer would. Writes nothing.",
        request=ProfilePreviewRequestSerializer,
        responses={200: PreviewResultSerializer, **PROFILE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        profile = self.get_object()
        params = ProfilePreviewRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        payload = params.validated_data.get("payload")
        if payload is None:
            payload = profile.sample_payload
        if payload is None:
            raise serializers.ValidationError({"payload": "This profile has no sample delivery; send a payload."})
        return self._preview(profile.spec, payload, params.validated_data)

    @extend_schema(
        operation_id="source_profiles_preview_spec",
        summary="Preview an unsaved spec on a sample delivery",
        description="The same as a profile's preview, for a spec being written. A spec with problems is refused "
        "with 400 and every problem, located in the spec.",
        request=SpecPreviewRequestSerializer,
        responses={200: PreviewResultSerializer, **PROFILE_PROBLEMS},
    )
    @action(detail=False, methods=["post"], url_path="preview")
    def preview_spec(self, request):
        params = SpecPreviewRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        return self._preview(params.validated_data["spec"], params.validated_data["payload"], params.validated_data)

    @extend_schema(
        summary="Start the next version of a profile as a draft",
        description="The version it starts from stays as it is. The reason is taken from `reason` or the "
        "X-Change-Reason header and recorded with your name.",
        request=NewVersionSerializer,
        responses={201: SourceProfileSerializer, **PROFILE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request, pk=None):
        profile = self.get_object()
        params = NewVersionSerializer(data=request.data, context={"profile": profile, "request": request})
        params.is_valid(raise_exception=True)
        data = params.validated_data
        draft = source_profile_new_version(
            profile=profile,
            spec=data["spec"],
            sample_payload=data.get("sample_payload"),
            actor=request.user,
            reason=(data.get("reason") or "").strip() or change_reason(request),
        )
        location = reverse("sourceprofile-detail", args=[draft.pk])
        body = self.get_serializer(draft).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(
        summary="Publish a profile version",
        description="Makes this version the active one of its name and retires the previous active version. "
        "A reason is required. Publishing the active version again changes nothing.",
        request=PublishSerializer,
        responses={
            200: SourceProfileSerializer,
            202: OpenApiResponse(description="Four-eyes: stored for a second person's approval"),
            422: OpenApiResponse(description="The spec has problems"),
        },
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        profile = self.get_object()
        params = PublishSerializer(data=request.data, context={"request": request})
        params.is_valid(raise_exception=True)
        if profile.status != SourceProfile.Status.ACTIVE:
            result = source_profile_publish(profile=profile, actor=request.user, reason=params.validated_data["reason"])
            if isinstance(result, ChangeRequest):
                return pending_response(result, request)
            profile.refresh_from_db()
        return Response(self.get_serializer(profile).data)

    @extend_schema(
        summary="Every version of this profile's name",
        responses={200: SourceProfileVersionSerializer(many=True)},
    )
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        profile = self.get_object()
        rows = profile_versions(profile)
        context = {"last_changes": {version.pk: change for version, change in rows}}
        data = SourceProfileVersionSerializer([version for version, _ in rows], many=True, context=context).data
        return Response(data)
