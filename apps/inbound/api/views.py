"""The inbound API: one webhook endpoint and one bulk endpoint per connected system, and the read-only log.

Webhook and bulk requests are authenticated by the sender's signature, not by a console login. Those views
only read, verify and hand over to `apps.inbound.services` / `apps.inbound.bulk`; no domain work runs here.
The log (deliveries and events) is read by integration admins and auditors with their own permissions.
"""

import logging
import mmap
import tempfile
import time

from django.conf import settings
from django.db.models import F
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import ReadOnlyViewSet, problem
from apps.core.masking import visible_body
from apps.core.throttles import InboundThrottle, RejectedDeliveryThrottle
from apps.systems.models import ConnectedSystem, SigningScheme

from .. import bulk, signatures
from ..envelopes import UnreadableDelivery
from ..filters import DeliveryFilter, InboundEventFilter
from ..models import Delivery, InboundEvent
from ..senders import cache_seconds, sender_for
from ..services import active_secrets, receive_webhook, record_rejection, redact_headers
from .serializers import DeliveryDetailSerializer, DeliverySerializer, InboundEventSerializer, ledger_transactions

logger = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)
BULK_TYPES = ("application/json", "application/x-ndjson", "application/jsonl", "application/x-jsonlines")


class TooLarge(Exception):
    pass


class SenderRejections(RejectedDeliveryThrottle):
    """The refused-delivery throttle, without a cache read per good delivery.

    A sender (system and address) found with no refusal at all is remembered as clear for
    `INBOUND_SENDER_CACHE_SECONDS` in this process, so its next deliveries skip the shared cache (a database
    round trip with the default cache). A refusal counted in this process forgets it at once; one counted by
    another web process is seen within those seconds. A sender with any refusal is read every time.
    """

    clear_until: dict[str, float] = {}

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        now = time.monotonic()
        if self.clear_until.get(key, 0) > now:
            return True
        allowed = super().allow_request(request, view)
        if allowed and not self.history and cache_seconds() > 0:
            if len(self.clear_until) > 10_000:
                self.clear_until.clear()
            self.clear_until[key] = now + cache_seconds()
        return allowed

    def record_rejection(self, request, view) -> None:
        self.clear_until.pop(self.get_cache_key(request, view), None)
        super().record_rejection(request, view)


class EventResult(serializers.Serializer):
    event_id = serializers.IntegerField()
    event_type = serializers.CharField()
    status = serializers.CharField()
    duplicate = serializers.BooleanField()


class WebhookAccepted(serializers.Serializer):
    delivery_id = serializers.IntegerField()
    correlation_id = serializers.CharField()
    event_id = serializers.IntegerField(allow_null=True, help_text="The first (usually only) event of the delivery.")
    status = serializers.CharField(allow_null=True)
    duplicate = serializers.BooleanField(help_text="True when every event of the delivery was received before.")
    events = EventResult(many=True)


class BulkAccepted(serializers.Serializer):
    delivery_id = serializers.IntegerField()
    correlation_id = serializers.CharField()
    received = serializers.IntegerField()
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.DictField(), help_text="[{position, errors: [...]}]")
    errors_truncated = serializers.BooleanField()


class Problem(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    correlation_id = serializers.CharField(required=False)


PROBLEMS = {
    400: OpenApiResponse(Problem, description="Malformed JSON or headers"),
    401: OpenApiResponse(Problem, description="Missing, invalid or stale signature"),
    403: OpenApiResponse(Problem, description="Inbound deliveries are disabled for this system"),
    404: OpenApiResponse(Problem, description="Unknown system"),
    413: OpenApiResponse(Problem, description="Body larger than the configured cap"),
    415: OpenApiResponse(Problem, description="Not JSON"),
}


def _media_type(request) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()


def _read_body(request, cap: int) -> bytes:
    """The raw body, refusing anything over `cap` bytes before reading (or parsing) more than that."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > cap:
        raise TooLarge
    body = request._request.read(cap + 1)
    if len(body) > cap:
        raise TooLarge
    return body


def _spool_body(request, cap: int):
    """The raw body spooled to a temporary file and memory-mapped: bytes-like, but never held in the process.

    Read 1 MB at a time, refusing anything over `cap` bytes; an empty body is b"".
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > cap:
        raise TooLarge
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (the map keeps it open; closed when the map is)
    size = 0
    while chunk := request._request.read(min(1 << 20, cap + 1 - size)):
        size += len(chunk)
        if size > cap:
            spool.close()
            raise TooLarge
        spool.write(chunk)
    if not size:
        spool.close()
        return b""
    spool.flush()
    mapped = mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ)
    spool.close()  # the map holds its own reference to the file
    return mapped


def _sender_url(request) -> str:
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if raw:
        return f"{request.scheme}://{request.get_host()}{raw}"
    return request.build_absolute_uri()


def _request_meta(request, body: bytes) -> dict:
    return {
        "received_at": timezone.now(),
        "method": request.method,
        "url": _sender_url(request),
        "headers": redact_headers(request.headers),
        "body_size": len(body),
        "content_type": request.META.get("CONTENT_TYPE", "")[:120],
        "remote_addr": request.META.get("REMOTE_ADDR") or None,
    }


class _SignedEndpoint(APIView):
    """Shared by both endpoints: find the system, bound and read the body, verify the signature."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [InboundThrottle]
    parser_classes: list = []
    accepted_types: tuple = JSON_TYPES
    max_body_setting = "INBOUND_MAX_BODY_BYTES"
    max_body_default = 1024 * 1024

    def refused(self, request) -> None:
        """Count a refused delivery against its sender (see RejectedDeliveryThrottle)."""
        SenderRejections().record_rejection(request, self)

    def read_body(self, request, cap: int):
        return _read_body(request, cap)

    def _prepare(self, request, system_slug):
        """(system, body, verification, meta) or a problem Response."""
        rejected = SenderRejections()
        if not rejected.allow_request(request, self):
            wait = int(rejected.wait() or 60) + 1
            response = problem(
                429,
                "Too many refused deliveries",
                f"Too many deliveries from your address to '{system_slug}' were refused (bad signature or "
                f"unreadable body). Fix the signing secret, then retry in {wait} seconds.",
                request,
            )
            response["Retry-After"] = str(wait)
            return response
        sender = sender_for(system_slug)
        if sender is None:
            return problem(404, "Unknown system", f"No connected system is called '{system_slug}'.", request)
        self.sender, system = sender, sender.system
        if not system.enabled or system.inbound_scheme == SigningScheme.NONE:
            return problem(
                403,
                "Inbound disabled",
                f"{system.name} is not accepting deliveries: it is "
                f"{'disabled' if not system.enabled else 'configured without a signing scheme'}.",
                request,
            )
        media_type = _media_type(request)
        if media_type not in self.accepted_types:
            return problem(
                415,
                "Unsupported media type",
                f"Send the body as {' or '.join(self.accepted_types)}; got '{media_type or 'no content type'}'.",
                request,
            )
        cap = getattr(settings, self.max_body_setting, self.max_body_default)
        try:
            body = self.read_body(request, cap)
        except TooLarge:
            return problem(
                413,
                "Payload too large",
                f"The body is larger than the {cap} bytes this endpoint accepts; split it into smaller deliveries.",
                request,
            )
        meta = _request_meta(request, body)
        signed = signatures.SignedRequest(method=request.method, url=meta["url"], headers=request.headers, body=body)
        try:
            verification = signatures.verify(
                system.inbound_scheme,
                signed,
                active_secrets(system),
                now=timezone.now(),
                replay_window=system.inbound_replay_window_seconds,
            )
        except signatures.SignatureRejected as exc:
            self.refused(request)
            record_rejection(system=system, request_meta=meta, reason=exc.detail, code=exc.code)
            return problem(exc.status, "Signature rejected", exc.detail, request, code=exc.code)
        return system, body, verification, meta


class WebhookView(_SignedEndpoint):
    """POST /api/v1/inbound/<system>/ — a signed webhook delivery from a connected system."""

    @extend_schema(
        operation_id="inbound_webhook",
        summary="Receive a signed webhook delivery",
        description=(
            "Verifies the delivery with the system's signing scheme (Standard Webhooks, HubSpot v1/v2/v3, Stripe, "
            "Basic, clientState or bearer) against any of its active secrets, stores the raw delivery and each event "
            "it carries, and answers at once; the events are processed afterwards. A delivery whose events were all "
            "received before is answered 200 with the original event and `duplicate: true`, and is not processed "
            "again."
        ),
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("system", str, OpenApiParameter.PATH, description="The system's slug")],
        responses={202: WebhookAccepted, 200: WebhookAccepted, **PROBLEMS},
        examples=[
            OpenApiExample(
                "Accepted",
                value={
                    "delivery_id": 41,
                    "correlation_id": "9f1c…",
                    "event_id": 77,
                    "status": "received",
                    "duplicate": False,
                    "events": [],
                },
                response_only=True,
                status_codes=["202"],
            )
        ],
        tags=["inbound"],
    )
    def post(self, request, system):
        if "validationToken" in request.query_params:
            return self._handshake(request, system)
        prepared = self._prepare(request, system)
        if isinstance(prepared, Response):
            return prepared
        connected, body, verification, meta = prepared
        try:
            received = receive_webhook(
                system=connected,
                request_meta=meta,
                verification=verification,
                body=body,
                headers=request.headers,
                delivery_scheme=self.sender.delivery_scheme,
            )
        except UnreadableDelivery as exc:
            self.refused(request)
            return problem(400, "Unreadable delivery", exc.message, request)
        first = received.events[0] if received.events else {}
        payload = {
            "delivery_id": received.delivery.pk,
            "correlation_id": received.delivery.correlation_id,
            "event_id": first.get("event_id"),
            "status": first.get("status"),
            "duplicate": received.all_duplicates,
            "events": received.events,
        }
        return Response(payload, status=200 if received.all_duplicates else 202)

    def _handshake(self, request, system):
        """Microsoft Graph / Business Central subscription validation: echo the token as plain text."""
        connected = ConnectedSystem.objects.filter(slug=system, enabled=True).first()
        if connected is None or connected.inbound_scheme != SigningScheme.CLIENT_STATE:
            return problem(
                400,
                "Unexpected validation request",
                "This system does not use subscription validation handshakes.",
                request,
            )
        return HttpResponse(request.query_params["validationToken"][:1024], content_type="text/plain")


class BulkView(_SignedEndpoint):
    """POST /api/v1/inbound/<system>/bulk — month-end upload of approved time or expense records."""

    accepted_types = BULK_TYPES
    max_body_setting = "INBOUND_BULK_MAX_BODY_BYTES"
    max_body_default = 64 * 1024 * 1024

    def read_body(self, request, cap: int):
        return _spool_body(request, cap)  # month-end uploads run to hundreds of megabytes: never read whole

    @extend_schema(
        operation_id="inbound_bulk",
        summary="Upload approved time or expense records in bulk",
        description=(
            'A JSON array (or {"records": [...]}) or NDJSON of time entry or expense records, signed like the '
            "system's webhooks. Each record is checked on its own: valid records are stored and billed, invalid ones "
            "are reported by position (0-based) and never block the rest. Re-sending a record (same external ID) "
            "counts as a duplicate and is not billed twice. Record fields: see docs/inbound.md."
        ),
        request={"application/json": OpenApiTypes.OBJECT, "application/x-ndjson": OpenApiTypes.STR},
        parameters=[
            OpenApiParameter("system", str, OpenApiParameter.PATH, description="The system's slug"),
            OpenApiParameter(
                "record_type",
                str,
                OpenApiParameter.QUERY,
                enum=list(bulk.RECORD_TYPES),
                description="Type of every record, unless each record has its own 'record_type'.",
            ),
        ],
        responses={202: BulkAccepted, 422: OpenApiResponse(Problem, description="No record was valid"), **PROBLEMS},
        tags=["inbound"],
    )
    def post(self, request, system):
        prepared = self._prepare(request, system)
        if isinstance(prepared, Response):
            return prepared
        connected, body, verification, meta = prepared
        try:
            return self._receive(request, connected, body, verification, meta)
        finally:
            if isinstance(body, mmap.mmap):
                body.close()

    def _receive(self, request, connected, body, verification, meta):
        try:
            report = bulk.receive_bulk(
                system=connected,
                request_meta=meta,
                verification=verification,
                body=body,
                content_type=_media_type(request),
                record_type=request.query_params.get("record_type"),
            )
        except bulk.BulkRefused as exc:
            self.refused(request)
            kept = bytes(body) if len(body) <= bulk.KEPT_REFUSED_BODY_BYTES else None  # a trace, not the upload
            record_rejection(
                system=connected, request_meta=meta, reason=exc.detail, body=kept, kind="bulk", code="bulk_refused"
            )
            return problem(exc.status, "Upload refused", exc.detail, request)
        except UnicodeDecodeError:
            return problem(400, "Upload refused", "The body is not UTF-8 text.", request)
        payload = {**report.as_dict(), "correlation_id": report.delivery.correlation_id if report.delivery else ""}
        if report.received and not report.accepted and not report.duplicates:
            return problem(
                422,
                "No valid record",
                f"None of the {report.received} records could be accepted; see errors.",
                request,
                errors=report.errors,
                rejected=report.error_count,
            )
        return Response(payload, status=202)


RAW_BODY_TYPES = {"application/json", "application/x-ndjson", "application/jsonl", "application/x-jsonlines"}


class DeliveryViewSet(ReadOnlyViewSet):
    """GET /api/v1/inbound-deliveries/ — every delivery received, accepted, duplicate or refused (read-only)."""

    queryset = Delivery.objects.select_related("system").defer("body")
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    search_fields = ["correlation_id", "rejection", "secret_label"]
    ordering_fields = ["received_at", "body_size", "event_count", "duplicate_count", "error_count"]

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    @extend_schema(
        summary="The raw body of a delivery, byte for byte",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        tags=["inbound-deliveries"],
    )
    @action(detail=True, methods=["get"])
    def body(self, request, pk=None):
        delivery = self.get_object()
        media_type = delivery.content_type.split(";")[0].strip().lower()
        body = visible_body(bytes(delivery.body or b""), request.user)  # rates masked for roles without them
        if body is None:
            return problem(
                403,
                "Body not shown",
                "This body is not JSON, so it cannot be shown with its rates and costs masked for your role.",
                request,
            )
        # Served as a download: a sender controls these bytes, so no browser may render them as a page.
        response = HttpResponse(
            body,
            content_type=media_type if media_type in RAW_BODY_TYPES else "application/octet-stream",
        )
        extension = "json" if "json" in media_type else "bin"
        response["Content-Disposition"] = f'attachment; filename="delivery-{delivery.pk}.{extension}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response


class InboundEventViewSet(ReadOnlyViewSet):
    """GET /api/v1/inbound-events/ — the events deliveries carried, with what came of each (read-only)."""

    queryset = (
        InboundEvent.objects.select_related("system", "profile")
        .defer("profile__spec", "profile__sample_payload")
        .annotate(received_at=F("delivery__received_at"))
    )
    serializer_class = InboundEventSerializer
    filterset_class = InboundEventFilter
    search_fields = ["vendor_event_id", "idempotency_key", "correlation_id"]
    ordering_fields = ["created_at", "received_at", "event_type", "status", "occurred_at"]

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        events = page if page is not None else list(queryset)
        context = {**self.get_serializer_context(), "ledger": ledger_transactions(events)}
        data = self.get_serializer(events, many=True, context=context).data
        return self.get_paginated_response(data) if page is not None else Response(data)
