"""The inbound log, read-only: what each sender sent (raw, headers redacted), how it was verified, what came of it.

These rows are the audit record of every delivery; nobody adds, changes or deletes them here.
"""

import json

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import BinaryField
from django.db.models.functions import Substr
from django.http import Http404, HttpResponse
from django.template.defaultfilters import filesizeformat, pluralize, truncatechars
from django.urls import NoReverseMatch, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join

from apps.core.admin import HistoryAdmin
from apps.core.masking import can_see_sensitive, visible_body, visible_json
from apps.mapping.stewarding import command_rows

from .api.serializers import ledger_transactions
from .filters import DeliveryFilter, InboundEventFilter
from .models import Delivery, InboundEvent, RejectionTally

BODY_PREVIEW_BYTES = 64 * 1024
EVENTS_SHOWN = 100
PRE = (
    "max-height: 36rem; overflow: auto; margin: 0; padding: 8px 10px; max-width: 70rem; white-space: pre-wrap; "
    "word-break: break-all; font-size: 0.75rem; background: var(--darkened-bg); "
    "border: 1px solid var(--hairline-color)"
)


def admin_link(viewname: str, pk, text) -> str:
    """A link to an admin page, or the text alone when that page does not exist (yet)."""
    try:
        return format_html('<a href="{}">{}</a>', reverse(viewname, args=[pk]), text)
    except NoReverseMatch:
        return format_html("{}", text)


def pretty(value) -> str:
    return format_html('<pre style="{}">{}</pre>', PRE, json.dumps(value, indent=2, ensure_ascii=False))


class InboundLogAdmin(HistoryAdmin):
    """Read-only for everyone: the log is evidence of what was received, never edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(InboundLogAdmin):
    list_display = [
        "received_at",
        "system_slug",
        "kind",
        "status_short",
        "verification",
        "event_summary",
        "size",
        "rejection_summary",
    ]
    filterset_class = DeliveryFilter
    list_filter = ["status", "kind", "system", "verified", "scheme"]
    list_select_related = ["system"]
    search_fields = ["correlation_id", "=body_sha256", "rejection", "secret_label", "url"]
    date_hierarchy = "received_at"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "system",
                    "kind",
                    "status",
                    "received_at",
                    "method",
                    "url",
                    "remote_addr",
                    "content_type",
                    "size",
                    "body_sha256",
                    "correlation_id",
                ]
            },
        ),
        ("Verification", {"fields": ["verified", "scheme", "secret_label", "signed_at", "rejection"]}),
        ("Events", {"fields": ["event_count", "duplicate_count", "error_count", "event_list"]}),
        ("Headers (credentials and signatures redacted)", {"fields": ["headers_display"]}),
        ("Body as received", {"fields": ["body_display"]}),
    ]
    readonly_fields = [
        "size",
        "system_slug",
        "status_short",
        "verification",
        "event_summary",
        "rejection_summary",
        "event_list",
        "headers_display",
        "body_display",
    ]

    def get_queryset(self, request):
        # The raw body can be megabytes (bulk uploads): lists never load it, the page loads only its head.
        return super().get_queryset(request).defer("body")

    def get_object(self, request, object_id, from_field=None):
        delivery = super().get_object(request, object_id, from_field)
        if delivery is not None and delivery.pk is not None:
            head = (
                Delivery.objects.filter(pk=delivery.pk)
                .annotate(head=Substr("body", 1, BODY_PREVIEW_BYTES + 1, output_field=BinaryField()))
                .values_list("head", flat=True)
                .get()
            )
            delivery.body_head = bytes(head or b"")
            delivery.viewer = request.user  # the body is shown masked to users who may not see rates
        return delivery

    def get_urls(self):
        return [
            path(
                "<path:object_id>/body/",
                self.admin_site.admin_view(self.body_view),
                name="inbound_delivery_body",
            ),
            *super().get_urls(),
        ]

    def body_view(self, request, object_id):
        """The raw bytes exactly as received, as a download (never rendered by the browser)."""
        delivery = Delivery.objects.filter(pk=unquote(object_id)).only("pk", "body", "content_type").first()
        if delivery is None:
            raise Http404(f"There is no delivery with id {object_id}.")
        if not self.has_view_permission(request, delivery):
            raise PermissionDenied
        extension = "json" if "json" in delivery.content_type else "bin"
        body = visible_body(bytes(delivery.body or b""), request.user)
        if body is None:
            raise PermissionDenied("This body is not JSON, so it cannot be shown with its rates masked.")
        response = HttpResponse(body, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="delivery-{delivery.pk}.{extension}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @admin.display(description="System", ordering="system__slug")
    def system_slug(self, obj):
        return obj.system.slug

    @admin.display(description="Status", ordering="status")
    def status_short(self, obj):
        return obj.status.capitalize()

    @admin.display(description="Events", ordering="event_count")
    def event_summary(self, obj):
        parts = [f"{obj.event_count} event{pluralize(obj.event_count)}"]
        if obj.duplicate_count:
            parts.append(f"{obj.duplicate_count} seen before")
        if obj.error_count:
            parts.append(f"{obj.error_count} refused")
        return ", ".join(parts)

    @admin.display(description="Size", ordering="body_size")
    def size(self, obj):
        return filesizeformat(obj.body_size)

    @admin.display(description="Verified by")
    def verification(self, obj):
        if not obj.verified:
            return "Not verified"
        return f"{obj.scheme} ({obj.secret_label})" if obj.secret_label else obj.scheme

    @admin.display(description="Rejection")
    def rejection_summary(self, obj):
        return truncatechars(obj.rejection, 70) if obj.rejection else ""

    @admin.display(description="Events in this delivery")
    def event_list(self, obj):
        events = list(obj.events.only("pk", "event_type", "vendor_event_id", "status", "position")[: EVENTS_SHOWN + 1])
        if not events:
            return "None: a delivery whose events were all received before points at the first copies."
        rows = format_html_join(
            "",
            "<li>{} · {} · {}</li>",
            (
                (
                    admin_link("admin:inbound_inboundevent_change", event.pk, f"#{event.position}"),
                    event.event_type or "event",
                    event.get_status_display(),
                )
                for event in events[:EVENTS_SHOWN]
            ),
        )
        more = ""
        if len(events) > EVENTS_SHOWN:
            url = reverse("admin:inbound_inboundevent_changelist") + f"?delivery__id__exact={obj.pk}"
            more = format_html('<li><a href="{}">All {} events</a></li>', url, obj.event_count)
        return format_html('<ul style="margin: 0; padding-left: 18px">{}{}</ul>', rows, more)

    @admin.display(description="Headers")
    def headers_display(self, obj):
        return pretty(obj.headers)

    @admin.display(description="Body")
    def body_display(self, obj):
        if not obj.body_sha256:
            return "Not kept: the body of a delivery that failed verification is never stored."
        if not obj.body_size:
            return "Empty."
        head = getattr(obj, "body_head", b"")
        download = format_html(
            '<a href="{}">Download the raw bytes ({})</a>',
            reverse("admin:inbound_delivery_body", args=[obj.pk]),
            filesizeformat(obj.body_size),
        )
        viewer = getattr(obj, "viewer", None)
        if len(head) <= BODY_PREVIEW_BYTES:
            try:
                return format_html("{}<p>{}</p>", pretty(visible_json(json.loads(head), viewer)), download)
            except (ValueError, UnicodeDecodeError):
                pass
        if not can_see_sensitive(viewer):
            shown = visible_body(head, viewer) if len(head) <= BODY_PREVIEW_BYTES else None
            if shown is None:
                return format_html(
                    "<p>The preview is hidden: this body cannot be shown with its rates masked. {}</p>", download
                )
            head = shown
        text = head[:BODY_PREVIEW_BYTES].decode("utf-8", errors="replace")
        note = (
            format_html(
                "<p>Showing the first {} of {}. {}</p>",
                filesizeformat(BODY_PREVIEW_BYTES),
                filesizeformat(obj.body_size),
                download,
            )
            if obj.body_size > BODY_PREVIEW_BYTES
            else format_html("<p>Not JSON; shown as text. {}</p>", download)
        )
        return format_html('<pre style="{}">{}</pre>{}', PRE, text, note)


@admin.register(InboundEvent)
class InboundEventAdmin(InboundLogAdmin):
    list_display = ["received", "system_slug", "event_type", "vendor_id", "status_short", "profile_version", "ledger"]
    filterset_class = InboundEventFilter
    list_filter = ["status", "system", ("type", "event type"), ("profile_version", "profile")]
    search_fields = ["vendor_event_id", "=idempotency_key", "correlation_id", "event_type"]
    date_hierarchy = "created_at"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "system",
                    "event_type",
                    "vendor_event_id",
                    "idempotency_key",
                    "schema_version",
                    "occurred_at",
                    "received",
                    "delivery_link",
                    "position",
                    "correlation_id",
                ]
            },
        ),
        ("What came of it", {"fields": ["status", "profile_version", "processed_at", "ledger_detail"]}),
        ("Produced commands", {"fields": ["commands_display"]}),
        ("Error", {"fields": ["error_display"]}),
        ("Payload as sent", {"fields": ["payload_display"]}),
    ]
    readonly_fields = [
        "received",
        "system_slug",
        "status_short",
        "delivery_link",
        "profile_version",
        "ledger",
        "ledger_detail",
        "vendor_id",
        "commands_display",
        "error_display",
        "payload_display",
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            # The delivery comes by select_related, not as annotations: an aggregate over the list (the date
            # drill-down's MIN/MAX) then reads the events alone instead of joining a million deliveries.
            .select_related("system", "profile", "delivery")
            .defer(
                "payload",
                "commands",
                "error",
                "profile__spec",
                "profile__sample_payload",
                "delivery__body",
                "delivery__headers",
            )
            .prefetch_related("transactions")
        )

    @admin.display(description="Received", ordering="delivery__received_at")
    def received(self, obj):
        # A computed column is shown as plain text on the detail page, so format it as the admin formats dates.
        return formats.localize(timezone.template_localtime(obj.delivery.received_at))

    @admin.display(description="System", ordering="system__slug")
    def system_slug(self, obj):
        return obj.system.slug

    @admin.display(description="Status", ordering="status")
    def status_short(self, obj):
        return obj.status.replace("_", " ").capitalize()

    @admin.display(description="Vendor event ID", ordering="vendor_event_id")
    def vendor_id(self, obj):
        return truncatechars(obj.vendor_event_id or obj.idempotency_key, 40)

    @admin.display(description="Profile", ordering="profile__name")
    def profile_version(self, obj):
        if obj.profile_id is None:
            return "—"
        return admin_link(
            "admin:mapping_sourceprofile_change", obj.profile_id, f"{obj.profile.name} v{obj.profile.version}"
        )

    @admin.display(description="Delivery")
    def delivery_link(self, obj):
        return admin_link("admin:inbound_delivery_change", obj.delivery_id, f"Delivery {obj.delivery_id}")

    @admin.display(description="Ledger")
    def ledger(self, obj):
        transactions = list(obj.transactions.all())
        if not transactions and obj.delivery.kind == Delivery.Kind.BULK:
            return admin_link("admin:inbound_delivery_change", obj.delivery_id, "with its bulk upload")
        links = [(admin_link("admin:sync_transaction_change", t.pk, t.get_status_display()),) for t in transactions]
        return format_html_join(", ", "{}", links) or "—"

    @admin.display(description="Ledger transactions")
    def ledger_detail(self, obj):
        transactions = ledger_transactions([obj]).get(obj.pk, [])
        if not transactions:
            return "None yet."
        rows = format_html_join(
            "",
            "<li>{} · {} · {}</li>",
            (
                (
                    admin_link("admin:sync_transaction_change", txn.pk, txn.correlation_id),
                    txn.get_workflow_display(),
                    txn.get_status_display(),
                )
                for txn in transactions
            ),
        )
        return format_html('<ul style="margin: 0; padding-left: 18px">{}</ul>', rows)

    @admin.display(description="Commands")
    def commands_display(self, obj):
        if not obj.commands:
            return "None."
        tables = []
        for index, command in enumerate(visible_json(obj.commands, getattr(obj, "viewer", None)), start=1):
            rows = format_html_join(
                "",
                '<tr><td style="font-family: monospace">{}</td><td><strong>{}</strong></td></tr>',
                command_rows(command.get("data") or {}),
            )
            tables.append(
                format_html(
                    '<p style="margin: 8px 0 4px"><strong>{}. {}</strong> (source event {})</p><table>{}</table>',
                    index,
                    command.get("type", ""),
                    command.get("source_event_id") or "—",
                    rows,
                )
            )
        return format_html_join("", "{}", ((table,) for table in tables))

    @admin.display(description="Error")
    def error_display(self, obj):
        if not obj.error:
            return "None."
        technical = obj.error.get("technical") or ""
        return format_html(
            '<p style="margin: 0; color: var(--error-fg); font-weight: 600">{}</p><p>Fix: {}</p>{}',
            obj.error.get("message", ""),
            obj.error.get("fix") or "—",
            format_html('<pre style="{}">{}</pre>', PRE, technical) if technical else "",
        )

    @admin.display(description="Payload")
    def payload_display(self, obj):
        return pretty(visible_json(obj.payload, getattr(obj, "viewer", None)))

    def get_object(self, request, object_id, from_field=None):
        event = super().get_object(request, object_id, from_field)
        if event is not None:
            event.viewer = request.user  # payload and commands are shown masked to users who may not see rates
        return event


@admin.register(RejectionTally)
class RejectionTallyAdmin(admin.ModelAdmin):
    """Refused deliveries counted per system, reason and hour (the first ones of each hour are also deliveries)."""

    list_display = ["hour", "system", "reason", "count", "last_at", "last_remote_addr"]
    list_filter = ["reason", "system"]
    list_select_related = ["system"]
    date_hierarchy = "hour"
    readonly_fields = [field.name for field in RejectionTally._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
