"""Admin for connected systems, their signing secrets (shown by reference only) and ownership rules."""

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html_join

from apps.core.admin import HistoryAdmin, HistoryInline, pending_message
from apps.core.models import ChangeRequest

from . import secrets
from .filters import ConnectedSystemFilter, OwnershipRuleFilter, RouteFilter, SigningSecretFilter
from .models import ConnectedSystem, OwnershipRule, Route, SigningSecret
from .selectors import describe_credentials
from .services import ownership_rule_save, route_save

TIMESTAMPS = ("created_at", "updated_at")


class SigningSecretInline(HistoryInline):
    model = SigningSecret
    fields = ["label", "reference", "reference_description", "active", "not_after"]
    readonly_fields = ["reference_description"]

    @admin.display(description="Where the secret lives")
    def reference_description(self, obj):
        return secrets.describe(obj.reference) if obj.pk else "—"


@admin.register(ConnectedSystem)
class ConnectedSystemAdmin(HistoryAdmin):
    list_display = ["slug", "name", "kind", "vendor", "enabled", "outbound_auth", "inbound_scheme", "updated_at"]
    filterset_class = ConnectedSystemFilter
    list_filter = ["kind", "enabled", "outbound_auth", "inbound_scheme"]  # vendor is free text: ?vendor=…
    search_fields = ["slug", "name", "vendor", "base_url"]
    readonly_fields = ["credentials_description", "secret_references", *TIMESTAMPS]
    fieldsets = [
        (None, {"fields": ["slug", "name", "kind", "vendor", "base_url", "enabled", "notes"]}),
        ("Existing records", {"fields": ["match_customers_by"]}),
        (
            "Outbound calls",
            {
                "fields": [
                    "outbound_auth",
                    "outbound_credentials",
                    "credentials_description",
                    "rate_limit_per_minute",
                    "rate_limit_burst",
                    "connect_timeout_seconds",
                    "read_timeout_seconds",
                ]
            },
        ),
        (
            "Inbound webhooks",
            {"fields": ["inbound_scheme", "inbound_replay_window_seconds", "secret_references", "source_profiles"]},
        ),
        ("Timestamps", {"fields": list(TIMESTAMPS), "classes": ["collapse"]}),
    ]
    inlines = [SigningSecretInline]

    @admin.display(description="Credentials are read from")
    def credentials_description(self, obj):
        return describe_credentials(obj.outbound_credentials)

    @admin.display(description="Signing secrets are read from")
    def secret_references(self, obj):
        if not obj.pk:
            return "Add signing secrets below; each names where its secret lives, never the secret."
        rows = [
            (secret.label, secrets.describe(secret.reference), "active" if secret.active else "inactive")
            for secret in obj.signing_secrets.all()
        ]
        if not rows:
            return "No signing secrets"
        return format_html_join("", "<div>{}: {} ({})</div>", rows)


@admin.register(SigningSecret)
class SigningSecretAdmin(HistoryAdmin):
    list_display = ["label", "system", "reference_description", "active", "not_after", "updated_at"]
    filterset_class = SigningSecretFilter
    list_filter = ["active", "system"]
    list_select_related = ["system"]
    search_fields = ["label", "system__slug", "system__name"]
    autocomplete_fields = ["system"]
    readonly_fields = ["reference_description", *TIMESTAMPS]
    fields = ["system", "label", "reference", "reference_description", "active", "not_after", *TIMESTAMPS]

    @admin.display(description="Where the secret lives")
    def reference_description(self, obj):
        return secrets.describe(obj.reference)


@admin.register(OwnershipRule)
class OwnershipRuleAdmin(HistoryAdmin):
    list_display = ["object_type", "field", "owner", "effective_from", "effective_to", "updated_at"]
    filterset_class = OwnershipRuleFilter
    list_filter = ["object_type", "owner"]  # dates: the date hierarchy, or ?in_force_on=…
    list_select_related = ["owner"]
    search_fields = ["object_type", "field", "rationale", "owner__slug", "owner__name"]
    autocomplete_fields = ["owner", "may_create", "may_update"]
    date_hierarchy = "effective_from"
    readonly_fields = list(TIMESTAMPS)
    fields = [
        "object_type",
        "field",
        "owner",
        "may_create",
        "may_update",
        "effective_from",
        "effective_to",
        "rationale",
        *TIMESTAMPS,
    ]

    def save_model(self, request, obj, form, change):
        if change and not [name for name in form.changed_data if name != "change_reason"]:
            return
        # The service takes the per-object-type lock, so two stewards cannot save overlapping rules at once.
        result = ownership_rule_save(
            rule=obj,
            may_create=form.cleaned_data.get("may_create", []),
            may_update=form.cleaned_data.get("may_update", []),
            actor=request.user,
            reason=self._reason(request, form, change),
        )
        if isinstance(result, ChangeRequest):
            request._four_eyes_request = result  # nothing was saved: the responses below say so

    def log_addition(self, request, obj, message):
        if not hasattr(request, "_four_eyes_request"):
            return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not hasattr(request, "_four_eyes_request"):
            return super().log_change(request, obj, message)

    def _pending_response(self, request):
        change_request = request._four_eyes_request
        self.message_user(request, pending_message([f"{change_request.summary} (request #{change_request.pk})"]))
        return HttpResponseRedirect(reverse("admin:core_changerequest_change", args=[change_request.pk]))

    def response_add(self, request, obj, post_url_continue=None):
        if hasattr(request, "_four_eyes_request"):
            return self._pending_response(request)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if hasattr(request, "_four_eyes_request"):
            return self._pending_response(request)
        return super().response_change(request, obj)

    def save_related(self, request, form, formsets, change):
        if hasattr(request, "_four_eyes_request"):
            return
        # The grants were saved by ownership_rule_save; only inline formsets (none today) remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


@admin.register(Route)
class RouteAdmin(HistoryAdmin):
    list_display = ["target_kind", "workflow_label", "entity_label", "system", "effective_from", "effective_to"]
    filterset_class = RouteFilter
    list_filter = ["target_kind", "system"]  # ?workflow=…, ?legal_entity=…, ?in_force_on=…
    list_select_related = ["system"]
    search_fields = ["workflow", "legal_entity", "rationale", "system__slug", "system__name"]
    autocomplete_fields = ["system"]
    date_hierarchy = "effective_from"
    readonly_fields = list(TIMESTAMPS)
    fields = ["target_kind", "workflow", "legal_entity", "system", "effective_from", "effective_to", "rationale"]

    @admin.display(description="Workflow", ordering="workflow")
    def workflow_label(self, obj):
        return obj.workflow or "every workflow"

    @admin.display(description="Legal entity", ordering="legal_entity")
    def entity_label(self, obj):
        return obj.legal_entity or "every legal entity"

    def save_model(self, request, obj, form, change):
        if change and not [name for name in form.changed_data if name != "change_reason"]:
            return
        # The service takes the per-kind lock, so two people cannot save overlapping routes at once.
        route_save(route=obj, actor=request.user, reason=self._reason(request, form, change))
