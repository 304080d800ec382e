"""Transactions with their steps and attempts (read), and the inputs of the actions on them (write)."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.core.limits import BULK_ACTION_LIMIT
from apps.core.money import quantize

from .. import selectors
from ..filters import role_label
from ..groups import money_by_group
from ..models import ExceptionGroup, Step, StepAttempt, Transaction


class VisibleJSONField(serializers.JSONField):
    """A JSON value with sensitive amounts (bill and cost rates) hidden from users who may not see them."""

    def to_representation(self, value):
        request = self.context.get("request")
        return selectors.visible_json(super().to_representation(value), getattr(request, "user", None))


class VisibleCallField(serializers.JSONField):
    """One captured HTTP call (secrets already removed), with sensitive amounts hidden as above."""

    def to_representation(self, value):
        request = self.context.get("request")
        return selectors.visible_call(value or {}, getattr(request, "user", None))


class VisibleCallsField(serializers.JSONField):
    def to_representation(self, value):
        request = self.context.get("request")
        return [selectors.visible_call(call, getattr(request, "user", None)) for call in value or []]


class StepAttemptSerializer(serializers.ModelSerializer):
    """One try of a step, with every HTTP call it made."""

    outcome_display = serializers.CharField(source="get_outcome_display", read_only=True)
    http_calls = VisibleCallsField(read_only=True)

    class Meta:
        model = StepAttempt
        fields = [
            "number",
            "worker",
            "started_at",
            "finished_at",
            "duration_ms",
            "outcome",
            "outcome_display",
            "error_class",
            "error_message",
            "error_technical",
            "retry_at",
            "http_calls",
        ]


class StepSerializer(serializers.ModelSerializer):
    """One step with its last call and its attempt log."""

    target_system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    input_override = VisibleJSONField(read_only=True)
    output = VisibleJSONField(read_only=True)
    request = VisibleCallField(read_only=True)
    response = VisibleCallField(read_only=True)
    attempt_log = StepAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Step
        fields = [
            "id",
            "sequence",
            "name",
            "title",
            "target_system",
            "status",
            "status_display",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "idempotency_key",
            "input_override",
            "output",
            "request",
            "response",
            "error_class",
            "error_message",
            "error_fix",
            "error_technical",
            "attempt_log",
        ]


class TransactionSerializer(serializers.ModelSerializer):
    """A transaction as the queue lists it."""

    workflow_display = serializers.CharField(source="get_workflow_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    owner_role_display = serializers.SerializerMethodField()
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    problem_since = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Transaction
        fields = [
            "id",
            "correlation_id",
            "workflow",
            "workflow_display",
            "status",
            "status_display",
            "subject",
            "subject_type",
            "subject_id",
            "business_key",
            "value_at_risk",
            "currency",
            "owner",
            "owner_role",
            "owner_role_display",
            "error_class",
            "error_message",
            "error_fix",
            "exception_at",
            "problem_since",
            "created_at",
            "updated_at",
            "completed_at",
            "resolved_at",
            "resolved_by",
            "resolution_reason",
            "parent",
            "replay_of",
            "inbound_event",
        ]

    def get_owner_role_display(self, obj) -> str:
        return role_label(obj.owner_role)


class TransactionDetailSerializer(TransactionSerializer):
    """A transaction with its input, what its steps produced, each step and each attempt."""

    input = VisibleJSONField(read_only=True)
    input_override = VisibleJSONField(read_only=True)
    effective_input = VisibleJSONField(read_only=True)
    state = VisibleJSONField(read_only=True)
    steps = StepSerializer(many=True, read_only=True)
    children = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    replays = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta(TransactionSerializer.Meta):
        fields = [
            *TransactionSerializer.Meta.fields,
            "error_technical",
            "input",
            "input_override",
            "effective_input",
            "state",
            "children",
            "replays",
            "steps",
        ]


# --- action inputs -------------------------------------------------------------------------------


class ReasonField(serializers.CharField):
    default_error_messages = {
        "required": "Say why; auditors read it in the history with your name.",
        "blank": "Say why; auditors read it in the history with your name.",
    }

    def __init__(self, **kwargs):
        super().__init__(max_length=500, trim_whitespace=True, **kwargs)


class JSONObjectField(serializers.JSONField):
    default_error_messages = {"not_object": "Send a JSON object ({{…}}) here, not a list or a single value."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        return value


# The largest value a database integer column holds: a bigger id or step number is a 400, not a 500.
MAX_DB_INTEGER = 2**63 - 1


class ReplaySerializer(serializers.Serializer):
    reason = ReasonField()
    from_sequence = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DB_INTEGER, allow_null=True)
    input_override = JSONObjectField(required=False, allow_null=True)
    step_input_override = JSONObjectField(required=False, allow_null=True)


class ResolveSerializer(serializers.Serializer):
    reason = ReasonField()
    ignore = serializers.BooleanField(required=False, default=False)


class AssignSerializer(serializers.Serializer):
    owner = serializers.CharField(allow_null=True, help_text="Username of the new owner, or null to unassign.")

    def validate_owner(self, value):
        if value is None:
            return None
        user = get_user_model().objects.filter(username=value.strip()).first()
        if user is None:
            raise serializers.ValidationError(f"There is no user called '{value}'.")
        if not selectors.assignable_users().filter(pk=user.pk).exists():
            raise serializers.ValidationError(
                f"{value} cannot work on exceptions (inactive, or no permission to re-run or resolve them)."
            )
        return user


class BulkReplaySerializer(serializers.Serializer):
    reason = ReasonField()
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_DB_INTEGER),
        required=False,
        max_length=BULK_ACTION_LIMIT,
    )
    filter = serializers.DictField(required=False, help_text="The same parameters as the list's filters.")

    def validate(self, attrs):
        if not attrs.get("ids") and not attrs.get("filter"):
            raise serializers.ValidationError(
                "Say which transactions to re-run: a list of `ids`, or a `filter` such as "
                '{"workflow": "invoice_to_erp", "error_class": "transient"}.'
            )
        return attrs


class BulkReplayResultSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    replayed = serializers.IntegerField()
    refused = serializers.ListField(child=serializers.DictField())


class ExceptionGroupSerializer(serializers.ModelSerializer):
    """Exceptions with one cause: how many are open, since when, how much money they hold up, who has them."""

    workflow_display = serializers.CharField(source="get_workflow_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    target_system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True)
    open_count = serializers.IntegerField(read_only=True)
    value_at_risk = serializers.SerializerMethodField()

    class Meta:
        model = ExceptionGroup
        fields = [
            "id",
            "workflow",
            "workflow_display",
            "error_class",
            "error_code",
            "target_system",
            "missing_key",
            "missing_label",
            "title",
            "fix",
            "owner_role",
            "status",
            "status_display",
            "assignee",
            "open_count",
            "times_seen",
            "first_seen",
            "last_seen",
            "resolved_at",
            "value_at_risk",
        ]

    def get_value_at_risk(self, obj) -> list[dict]:
        money = self.context.get("money_by_group")
        rows = money.get(obj.pk, []) if money is not None else money_by_group([obj.pk]).get(obj.pk, [])
        return [{"currency": currency, "amount": str(quantize(amount, currency))} for currency, amount in rows]
