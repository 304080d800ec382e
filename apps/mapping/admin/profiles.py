"""Admin for source profiles: stewards edit drafts, preview them against a sample payload and publish them."""

import difflib
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.fields import InvalidJSONInput
from django.http import Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.core.admin import ChangeReasonForm, HistoryAdmin, pending_message
from apps.core.errors import BusinessError
from apps.core.models import ChangeRequest
from apps.inbound.preview import profile_preview

from ..filters import SourceProfileFilter
from ..models import SourceProfile
from ..profiles.validation import validate_spec
from ..services import source_profile_new_version, source_profile_publish
from ..stewarding import command_rows, profile_versions, readable_spec

TIMESTAMPS = ("created_at", "updated_at")


class PrettyJSONField(forms.JSONField):
    """JSON shown indented for people to read and edit; a syntax error says where it is."""

    def __init__(self, *, rows: int = 24, arrange=None, **kwargs):
        attrs = {"rows": rows, "cols": 110, "spellcheck": "false", "class": "json-input vLargeTextField"}
        kwargs.setdefault("widget", forms.Textarea(attrs=attrs))
        super().__init__(**kwargs)
        self.arrange = arrange

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        if value is None:
            return ""
        if self.arrange is not None:
            value = self.arrange(value)
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    f"This is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.", code="invalid"
                ) from None
            raise


class SourceProfileForm(ChangeReasonForm):
    """A profile's spec and sample as pretty JSON; every problem of the spec is a readable form error."""

    spec = PrettyJSONField(
        rows=30,
        arrange=readable_spec,
        help_text="The mapping (docs/source-profiles.md). Vendor, event types and schema version are read from it.",
    )
    sample_payload = PrettyJSONField(
        required=False, rows=12, help_text="A whole delivery as the vendor sends it; the preview starts from it."
    )

    def clean_name(self):
        name = self.cleaned_data["name"]
        if not self.instance.pk and SourceProfile.objects.filter(name=name).exists():
            raise ValidationError(
                f"There is already a profile called '{name}'. Open its active version and edit it: saving starts "
                "the next version as a draft."
            )
        return name

    def clean_spec(self):
        spec = self.cleaned_data.get("spec")
        problems = validate_spec(spec)
        if problems:
            raise ValidationError(problems)
        vendor = self.instance.vendor if self.instance.pk else ""
        if vendor and spec["vendor"].strip().lower() != vendor.lower():
            raise ValidationError(
                f"This profile reads {vendor} payloads, but the spec says vendor '{spec['vendor']}'. A profile's "
                "vendor never changes: add a new profile for another vendor."
            )
        return spec

    def clean(self):
        cleaned = super().clean()
        spec = cleaned.get("spec")
        if isinstance(spec, dict):
            if not self.instance.pk:
                self.instance.vendor = spec["vendor"].strip().lower()
            self.instance.event_types = list(spec["event_types"])
            self.instance.schema_version = spec.get("schema_version", "")
        return cleaned

    def _post_clean(self):
        if self.has_error("spec"):
            return  # the model would only check the spec it holds now and repeat the problem
        super()._post_clean()


class ProfilePreviewForm(forms.Form):
    """A sample delivery (and optionally the fetched record) to run a profile on."""

    payload = PrettyJSONField(
        label="Sample delivery",
        rows=18,
        help_text="The body exactly as the vendor posts it; it is cut into events with the profile's delivery format.",
        error_messages={"required": "Paste a sample delivery to preview the profile on."},
    )
    fetched = PrettyJSONField(
        label="Fetched document",
        required=False,
        rows=8,
        help_text='For thin notifications: the record the source system returns, e.g. {"deal": {…}, "company": {…}}. '
        "Used for every fetch request of the preview (or give {fetch key: document}).",
    )
    on = forms.DateField(
        label="Value maps as of",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Empty: today (a field with its own as_of date uses that).",
    )


class PublishForm(forms.Form):
    reason = forms.CharField(
        label="Why publish this version",
        max_length=500,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Recorded in the history with your name, e.g. 'Read Region__c for EMEA deals (MAP-88)'.",
        error_messages={"required": "Say why you publish this version; auditors read it in the history."},
    )


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def spec_diff(profile: SourceProfile) -> dict:
    """The spec of this version against the active version's, as unified diff lines with their kind."""
    active = SourceProfile.objects.filter(name=profile.name, status=SourceProfile.Status.ACTIVE).first()
    if active is None:
        return {"active": None, "note": "No version of this profile is active.", "lines": []}
    if active.pk == profile.pk:
        return {"active": active, "note": "This is the active version.", "lines": []}
    lines = []
    for line in difflib.unified_diff(
        pretty_json(readable_spec(active.spec)).splitlines(),
        pretty_json(readable_spec(profile.spec)).splitlines(),
        fromfile=f"version {active.version} (active)",
        tofile=f"version {profile.version}",
        lineterm="",
    ):
        if line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = {"+": "added", "-": "removed"}.get(line[:1], "same")
        lines.append({"kind": kind, "text": line})
    note = "" if lines else f"The spec is the same as active version {active.version}'s."
    return {"active": active, "note": note, "lines": lines}


def version_history(profile: SourceProfile) -> list[dict]:
    """Every version of the profile's name for the change page, newest first, with its last change."""
    return [
        {
            "profile": version,
            "url": reverse("admin:mapping_sourceprofile_change", args=[version.pk]),
            "current": version.pk == profile.pk,
            "change": change,
        }
        for version, change in profile_versions(profile)
    ]


@admin.register(SourceProfile)
class SourceProfileAdmin(HistoryAdmin):
    """Stewards edit drafts in place; editing a published or built-in version starts the next draft instead."""

    form = SourceProfileForm
    change_form_template = "admin/mapping/sourceprofile/change_form.html"
    list_display = ["name", "version", "vendor", "status", "builtin", "event_type_list", "schema_version", "updated_at"]
    filterset_class = SourceProfileFilter
    list_filter = ["status", "builtin"]  # vendor is free text: ?vendor=…
    search_fields = ["name", "vendor", "description", "event_types"]
    readonly_fields = list(TIMESTAMPS)

    HEAD = ["name", "version", "vendor", "status", "builtin", "event_types", "schema_version"]
    DERIVED = HEAD[1:]  # set from the spec, by the version numbering and by publishing; never typed in
    SHOWN = ["version_list", "spec_against_active"]

    # --- modes: add, edit a draft, edit a published version (makes a draft), read only ------------------------
    def _mode(self, request, obj) -> str:
        if obj is None:
            return "add"
        if getattr(request, "_history_as_of", False) or not self.has_change_permission(request, obj):
            return "view"
        if obj.status == SourceProfile.Status.DRAFT and not obj.builtin:
            return "draft"
        return "published"

    def get_fieldsets(self, request, obj=None):
        mode = self._mode(request, obj)
        if mode == "add":
            fieldsets = [
                (None, {"fields": ["name", "description", "documentation_url"]}),
                ("Mapping", {"fields": ["spec", "sample_payload"]}),
                (
                    "Set for you",
                    {
                        "fields": self.DERIVED,
                        "description": "A new profile starts as draft version 1; its vendor, event types and "
                        "schema version are read from the spec.",
                    },
                ),
            ]
        elif mode == "view":
            fieldsets = [
                (None, {"fields": self.HEAD}),
                ("Mapping", {"fields": ["spec_json", "sample_payload_json"]}),
                ("Versions", {"fields": self.SHOWN}),
                ("About", {"fields": ["description", "documentation_url", *TIMESTAMPS]}),
            ]
        else:
            mapping = ["spec", "sample_payload"] if mode == "draft" else ["editing_note", "spec", "sample_payload"]
            fieldsets = [
                (None, {"fields": self.HEAD}),
                ("Mapping", {"fields": mapping}),
                ("Versions", {"fields": self.SHOWN}),
                ("About", {"fields": ["description", "documentation_url", *TIMESTAMPS]}),
            ]
        if mode != "view":
            fieldsets.append(("Why", {"fields": ["change_reason"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        mode = self._mode(request, obj)
        if mode == "add":
            return readonly + self.DERIVED
        extra = [*self.HEAD, *self.SHOWN, "editing_note", "spec_json", "sample_payload_json"]
        if mode in ("published", "view"):
            extra += ["description", "documentation_url"]
        return readonly + [name for name in extra if name not in readonly]

    # --- saving --------------------------------------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        if not change:
            obj.version, obj.status, obj.builtin = 1, SourceProfile.Status.DRAFT, False
            super().save_model(request, obj, form, change)
            return
        original = SourceProfile.objects.get(pk=obj.pk)
        if self._mode(request, original) == "draft":
            super().save_model(request, obj, form, change)
            return
        if not [name for name in form.changed_data if name != "change_reason"]:
            return
        # A published or built-in version is never changed: the edit becomes the next version, as a draft.
        request._profile_draft = source_profile_new_version(
            profile=original,
            spec=form.cleaned_data["spec"],
            sample_payload=form.cleaned_data.get("sample_payload"),
            actor=request.user,
            reason=self._reason(request, form, change),
        )

    def log_change(self, request, obj, message):
        draft = getattr(request, "_profile_draft", None)
        if draft is not None:
            return self.log_addition(request, draft, [{"added": {}}])
        return super().log_change(request, obj, message)

    def response_change(self, request, obj):
        draft = getattr(request, "_profile_draft", None)
        if draft is None:
            return super().response_change(request, obj)
        self.message_user(
            request,
            f"Your changes were saved as draft version {draft.version} of {draft.name}; version {obj.version} is "
            "unchanged. Preview the draft, then publish it.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:mapping_sourceprofile_change", args=[draft.pk]))

    def has_delete_permission(self, request, obj=None):
        # Only an unused draft may go; published versions are the record of how events were read.
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or (obj.status == SourceProfile.Status.DRAFT and not obj.builtin and not obj.events.exists())

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk delete would not ask the per-version question above
        return actions

    # --- read-only displays --------------------------------------------------------------------------------------
    @admin.display(description="Event types")
    def event_type_list(self, obj):
        return ", ".join(obj.event_types or [])

    @admin.display(description="Spec")
    def spec_json(self, obj):
        return format_html('<pre class="json-view">{}</pre>', pretty_json(readable_spec(obj.spec)))

    @admin.display(description="Sample payload")
    def sample_payload_json(self, obj):
        if obj.sample_payload is None:
            return "No sample."
        return format_html('<pre class="json-view">{}</pre>', pretty_json(obj.sample_payload))

    @admin.display(description="Editing")
    def editing_note(self, obj):
        kind = "built-in" if obj.builtin else obj.get_status_display().lower()
        latest = SourceProfile.objects.filter(name=obj.name).order_by("-version").values_list("version", flat=True)
        return format_html(
            '<p class="profile-note">Version {} is {} and is never changed. Saving your edits starts draft '
            "version {}; publish it when the preview is right.</p>",
            obj.version,
            kind,
            latest.first() + 1,
        )

    @admin.display(description="All versions")
    def version_list(self, obj):
        return render_to_string("admin/mapping/sourceprofile/versions.html", {"versions": version_history(obj)})

    @admin.display(description="Spec against the active version")
    def spec_against_active(self, obj):
        return render_to_string("admin/mapping/sourceprofile/spec_diff.html", {"diff": spec_diff(obj)})

    # --- preview and publish pages -------------------------------------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/preview/", view(self.preview_view), name="mapping_sourceprofile_preview"),
            path("<path:object_id>/publish/", view(self.publish_view), name="mapping_sourceprofile_publish"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["may_publish"] = bool(
            obj is not None
            and obj.status != SourceProfile.Status.ACTIVE
            and self.has_change_permission(request, obj)
            and not getattr(request, "_history_as_of", False)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _profile_or_404(self, request, object_id) -> SourceProfile:
        profile = self.get_object(request, unquote(object_id))
        if profile is None:
            raise Http404(f"There is no source profile with id {object_id}.")
        return profile

    def _page(self, request, profile, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": profile,
            "title": title,
            "has_view_permission": True,
            "has_change_permission": self.has_change_permission(request, profile),
            **extra,
        }

    def preview_view(self, request, object_id):
        profile = self._profile_or_404(request, object_id)
        if not self.has_view_or_change_permission(request, profile):
            raise PermissionDenied
        form = ProfilePreviewForm(
            request.POST if request.method == "POST" else None,
            initial={"payload": profile.sample_payload},
        )
        preview = None
        if form.is_bound and form.is_valid():
            preview = profile_preview(
                spec=profile.spec,
                payload=form.cleaned_data["payload"],
                fetched=form.cleaned_data.get("fetched"),
                on=form.cleaned_data.get("on"),
            )
            for event in preview["events"]:
                for command in event["commands"]:
                    command["rows"] = command_rows(command["data"])
        context = self._page(request, profile, f"Preview {profile.name} version {profile.version}")
        context.update(form=form, preview=preview)
        return TemplateResponse(request, "admin/mapping/sourceprofile/preview.html", context)

    def publish_view(self, request, object_id):
        profile = self._profile_or_404(request, object_id)
        if not self.has_change_permission(request, profile):
            raise PermissionDenied
        change_url = reverse("admin:mapping_sourceprofile_change", args=[profile.pk])
        if profile.status == SourceProfile.Status.ACTIVE:
            self.message_user(request, f"Version {profile.version} of {profile.name} is already active.")
            return HttpResponseRedirect(change_url)
        problems = validate_spec(profile.spec)
        form = PublishForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid() and not problems:
            previous = SourceProfile.objects.filter(name=profile.name, status=SourceProfile.Status.ACTIVE).first()
            try:
                result = source_profile_publish(profile=profile, actor=request.user, reason=form.cleaned_data["reason"])
            except BusinessError as exc:
                form.add_error(None, exc.message)
            else:
                if isinstance(result, ChangeRequest):
                    self.message_user(request, pending_message([f"{result.summary} (request #{result.pk})"]))
                    return HttpResponseRedirect(change_url)
                retired = f"; version {previous.version} was retired" if previous else ""
                self.message_user(
                    request, f"Version {profile.version} of {profile.name} is now active{retired}.", messages.SUCCESS
                )
                return HttpResponseRedirect(change_url)
        context = self._page(
            request,
            profile,
            f"Publish {profile.name} version {profile.version}",
            form=form,
            problems=problems,
            diff=spec_diff(profile),
        )
        return TemplateResponse(request, "admin/mapping/sourceprofile/publish.html", context)
