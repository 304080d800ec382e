"""API building blocks shared by every app: problem+json errors, permissions, masking, history, tracked writes."""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.db.models.deletion import ProtectedError, RestrictedError
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, filters, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

from ..context import audit_context
from ..errors import BusinessError
from ..history_diff import HISTORY_TYPES, field_changes, m2m_prefetches, previous_rows
from ..masking import can_see_sensitive, mask_json, masked_fields_for, sensitive_payload_keys
from ..middleware import PROBLEM_CONTENT_TYPE

CHANGE_REASON_HEADER = "X-Change-Reason"
_NO_FIELD_KEYS = {NON_FIELD_ERRORS, api_settings.NON_FIELD_ERRORS_KEY}


def _flatten(errors, prefix="") -> list[dict]:
    """DRF's nested error structure as a flat list of {field, message}."""
    flat = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            if key in _NO_FIELD_KEYS:
                flat.extend(_flatten(value, prefix))
            else:
                flat.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(errors, list):
        if all(not isinstance(item, dict | list) for item in errors):
            flat.extend({"field": prefix or None, "message": str(item)} for item in errors)
        else:
            for index, item in enumerate(errors):
                flat.extend(_flatten(item, f"{prefix}[{index}]"))
    else:
        flat.append({"field": prefix or None, "message": str(errors)})
    return flat


def problem(status_code: int, title: str, detail: str, request=None, **extra) -> Response:
    body = {"type": extra.pop("type", "about:blank"), "title": title, "status": status_code, "detail": detail}
    if request is not None:
        body["correlation_id"] = getattr(request, "correlation_id", None)
    body.update({key: value for key, value in extra.items() if value is not None})
    return Response(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc, context):
    """Every API error as RFC 9457 problem+json with a readable `detail`."""
    request = context.get("request")
    if isinstance(exc, BusinessError):
        return problem(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            "Business rule not met",
            exc.message,
            request,
            fix=exc.fix or None,
            technical=exc.technical or None,
            code=exc.code,
        )
    if isinstance(exc, ProtectedError | RestrictedError):
        return problem(
            status.HTTP_409_CONFLICT,
            "Still in use",
            _in_use_detail(exc),
            request,
            fix="Remove or re-point the records that use it first, or end its validity instead of deleting it.",
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        return problem(
            response.status_code, "Invalid input", detail or "The input is not valid.", request, errors=errors
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    titles = {
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        406: "Not acceptable",
        413: "Payload too large",
        415: "Unsupported media type",
        429: "Too many requests",
    }
    result = problem(response.status_code, titles.get(response.status_code, "Error"), str(detail), request)
    for header in ("Retry-After", "WWW-Authenticate", "Allow"):
        if header in response:
            result[header] = response[header]
    return result


def _in_use_detail(exc) -> str:
    """'Rate card STD-US is still used by contract K-1, project P-2.' from a Protected/RestrictedError."""
    blockers = list(exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects)
    names = [f"{obj._meta.verbose_name} {obj}" for obj in blockers[:5]]
    more = f" and {len(blockers) - 5} more" if len(blockers) > 5 else ""
    return f"It cannot be deleted: it is still used by {', '.join(names)}{more}."


class ChangeReasonMissing(exceptions.ValidationError):
    """A write without a reason: auditors read why every change was made, so the API never makes one up."""

    def __init__(self):
        super().__init__(
            {
                CHANGE_REASON_HEADER: (
                    f"Say why you make this change in the {CHANGE_REASON_HEADER} header "
                    f"(for example '{CHANGE_REASON_HEADER}: Price list 2027 per PRICE-7'); it is kept in the "
                    "history with your name."
                )
            }
        )


def change_reason(request) -> str:
    """The reason a caller gave in X-Change-Reason; a write without one is refused (400)."""
    given = (request.headers.get(CHANGE_REASON_HEADER) or "").strip()
    if not given:
        raise ChangeReasonMissing()
    return given[:500]


def _label(name: str) -> str:
    return name.replace("_", " ")


class MaskedModelSerializer(serializers.ModelSerializer):
    """Replaces the model's sensitive fields with null for users without the permission, and says so.

    The same users may not write those fields: a request that carries one is refused with 403.
    """

    def to_internal_value(self, data):
        request = self.context.get("request")
        hidden = masked_fields_for(getattr(request, "user", None), self.Meta.model)
        sent = sorted(hidden & set(data)) if isinstance(data, dict) else []
        if sent:
            raise exceptions.PermissionDenied(
                f"Your role may not see or set {', '.join(_label(name) for name in sent)} "
                f"(sensitive amounts). Leave {'them' if len(sent) > 1 else 'it'} out of the request, "
                "or ask a finance user or mapping steward to set "
                f"{'them' if len(sent) > 1 else 'it'}."
            )
        return super().to_internal_value(data)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        hidden = masked_fields_for(user, self.Meta.model) & set(data)
        if hidden:
            for name in hidden:
                data[name] = None
            data["masked_fields"] = sorted(hidden)
        json_fields = _json_fields(self.Meta.model) & set(data)
        if json_fields and not can_see_sensitive(user):
            # Payloads, captured calls, ledger input/output: rates inside them are hidden by key.
            keys = _payload_keys(self.root)
            for name in json_fields:
                data[name] = mask_json(data[name], keys)
        return data


def _json_fields(model) -> set[str]:
    return {field.name for field in model._meta.concrete_fields if isinstance(field, models.JSONField)}


def _payload_keys(root) -> frozenset[str]:
    """The sensitive payload keys, read once per response (a list serializer shares them)."""
    if not hasattr(root, "_sensitive_payload_keys"):
        root._sensitive_payload_keys = sensitive_payload_keys()
    return root._sensitive_payload_keys


def history_serializer_for(model):
    """A read-only serializer for a model's history rows, masking what the model masks."""
    history_model = model.history.model

    class HistorySerializer(MaskedModelSerializer):
        history_user = serializers.StringRelatedField()

        class Meta:
            model = history_model
            fields = "__all__"

    HistorySerializer.__name__ = f"{history_model.__name__}Serializer"
    return HistorySerializer


def history_rows(obj, rows, user) -> list[dict]:
    """History rows of one object, newest first, each with its field-level changes against the previous row.

    The previous rows are loaded for the whole page at once (history_diff), not once per row.
    """
    hidden = masked_fields_for(user, type(obj))
    serializer = history_serializer_for(type(obj))
    rows = list(rows)
    previous = previous_rows(type(obj).history.model, rows)
    result = []
    for row in rows:
        item = {
            "history_id": row.history_id,
            "history_date": row.history_date,
            "history_type": HISTORY_TYPES[row.history_type],
            "history_user": str(row.history_user) if row.history_user_id else None,
            "history_change_reason": row.history_change_reason,
            "correlation_id": row.history_correlation_id,
            "changes": [
                {"field": change.field, "old": change.old, "new": change.new, "masked": change.masked}
                for change in field_changes(row, previous.get(row.history_id), hidden, user=user)
            ],
        }
        item["record"] = serializer(row, context={"request": _UserOnly(user)}).data
        result.append(item)
    return result


class _UserOnly:
    """The part of a request a serializer's masking needs."""

    def __init__(self, user):
        self.user = user


class HistoryActionMixin:
    """Adds GET <resource>/<id>/history/: who changed what, when, why, with diffs (masked as the record is)."""

    from rest_framework.decorators import action as _action

    @_action(detail=True, methods=["get"], url_path="history")
    def history(self, request, pk=None):
        obj = self.get_object()
        opts = type(obj).history.model._meta
        if not request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}"):
            raise exceptions.PermissionDenied("You may not read the history of this record.")
        rows = (
            obj.history.select_related("history_user")
            .prefetch_related(*m2m_prefetches(opts.model))
            .order_by("-history_date", "-history_id")
        )
        page = self.paginate_queryset(rows)
        data = history_rows(obj, page if page is not None else rows, request.user)
        return self.get_paginated_response(data) if page is not None else Response(data)


class TrackedModelSerializer(MaskedModelSerializer):
    """Writes validate with the model's full_clean() and save only when a value changed (each save is history).

    Call it inside `audit_context` (TrackedModelViewSet does) so the history row names who and why.
    """

    def _split_many(self, validated_data):
        many = {}
        for field in self.Meta.model._meta.many_to_many:
            if field.name in validated_data:
                many[field.name] = validated_data.pop(field.name)
        return many

    def create(self, validated_data):
        many = self._split_many(validated_data)
        instance = self.Meta.model(**validated_data)
        instance.full_clean()
        instance.save()
        for name, values in many.items():
            getattr(instance, name).set(values)
        return instance

    def update(self, instance, validated_data):
        many = self._split_many(validated_data)
        changed = [name for name, value in validated_data.items() if getattr(instance, name) != value]
        for name in changed:
            setattr(instance, name, validated_data[name])
        if changed:
            instance.full_clean()
            instance.save()
        for name, values in many.items():
            manager = getattr(instance, name)
            if {obj.pk for obj in manager.all()} != {obj.pk for obj in values}:
                manager.set(values)
        return instance


class MaskedOrderingFilter(filters.OrderingFilter):
    """Ordering, minus the sensitive fields the user may not see (sorting by them would reveal them)."""

    def get_valid_fields(self, queryset, view, context=None):
        valid = super().get_valid_fields(queryset, view, context)
        request = (context or {}).get("request")
        hidden = masked_fields_for(getattr(request, "user", None), queryset.model)
        return [item for item in valid if item[0] not in hidden]


class ReadableNotFoundMixin:
    """A 404 that names what was looked for ("There is no rate card version with id 42, or you may not see it.")."""

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            lookup = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
            name = self.get_queryset().model._meta.verbose_name
            raise exceptions.NotFound(f"There is no {name} with id {lookup}, or you may not see it.") from None


class ReadOnlyViewSet(ReadableNotFoundMixin, HistoryActionMixin, viewsets.ReadOnlyModelViewSet):
    """List, retrieve and history of one model; filter with its FilterSet, order by visible fields."""

    filter_backends = [DjangoFilterBackend, MaskedOrderingFilter, filters.SearchFilter]


class TrackedModelViewSet(ReadableNotFoundMixin, HistoryActionMixin, viewsets.ModelViewSet):
    """Read-write viewset whose writes are atomic and recorded with actor=request.user and the caller's reason."""

    filter_backends = [DjangoFilterBackend, MaskedOrderingFilter, filters.SearchFilter]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and self.action in (
            "create",
            "update",
            "partial_update",
            "destroy",
        ):
            change_reason(request)

    def audit(self):
        return audit_context(actor=self.request.user, reason=change_reason(self.request))

    def perform_create(self, serializer):
        with self.audit(), transaction.atomic():
            serializer.save()

    def perform_update(self, serializer):
        with self.audit(), transaction.atomic():
            serializer.save()

    def perform_destroy(self, instance: models.Model):
        with self.audit(), transaction.atomic():
            instance.delete()
