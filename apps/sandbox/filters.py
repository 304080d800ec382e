"""FilterSets of the sandbox's read-only logs (records, idempotency keys, webhooks, calls), used by the admin lists."""

from apps.core.filters import FilterSet, ListedCharFilter

from .models import SandboxCall, SandboxIdempotencyKey, SandboxRecord, SandboxWebhook

METHODS = [(method, method) for method in ("GET", "POST", "PUT", "PATCH", "DELETE")]
# What the simulators answer: success, the client errors they raise, and the faults they inject (429, 500, 503).
STATUSES = [(str(code), str(code)) for code in (200, 201, 204, 400, 401, 404, 409, 412, 422, 429, 500, 503)]


class SandboxRecordFilter(FilterSet):
    class Meta:
        model = SandboxRecord
        fields = {"kind": ["exact"], "object_type": ["exact"], "internal_id": ["exact"], "external_id": ["exact"]}


class SandboxIdempotencyKeyFilter(FilterSet):
    status = ListedCharFilter(choices=STATUSES, label="Status")

    class Meta:
        model = SandboxIdempotencyKey
        fields = {"kind": ["exact"], "key": ["exact"], "method": ["exact"]}


class SandboxWebhookFilter(FilterSet):
    class Meta:
        model = SandboxWebhook
        fields = {"kind": ["exact"], "event_type": ["exact"], "status": ["exact"], "event_id": ["exact"]}


class SandboxCallFilter(FilterSet):
    method = ListedCharFilter(choices=METHODS, label="Method")
    response_status = ListedCharFilter(choices=STATUSES, label="Response status")

    class Meta:
        model = SandboxCall
        fields = {
            "kind": ["exact"],
            "fault": ["exact"],
            "replayed": ["exact"],
            "correlation_id": ["exact"],
            "idempotency_key": ["exact"],
            "received_at": ["gte", "lt"],
        }
