"""The FilterSets of the ledger (transactions, steps, attempts, exception groups), used by the API and the admin lists.

The admin's exception queue is the transaction list filtered by `TransactionFilter` (see apps/core/admin_filters.py):
the same parameter names (`queue`, `owner`, `owner_role`, …) and the same choices as `/api/v1/transactions/`.
"""

import django_filters
from django.db.models import Q, QuerySet

from apps.core.errors import ErrorClass
from apps.core.filters import FilterSet, IsoDateTimeFilter, ListedCharFilter
from apps.core.money import CURRENCY_CHOICES
from apps.core.roles import ROLES

from .models import ExceptionGroup, Step, StepAttempt, Transaction, Workflow
from .selectors import assignable_users

Status = Transaction.Status

# The admin's queue views and the API's `queue` filter: one name, one set of statuses.
QUEUES: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "problems": ("Open problems (exceptions and retrying)", Transaction.PROBLEM_STATUSES),
    "exception": ("Exceptions", (Status.EXCEPTION,)),
    "retrying": ("Retrying", (Status.WAITING_RETRY,)),
    "in_progress": ("In progress", (Status.PENDING, Status.RUNNING)),
    "completed": ("Completed", (Status.COMPLETED,)),
    "resolved": ("Resolved by hand", (Status.RESOLVED,)),
    "ignored": ("Ignored", (Status.IGNORED,)),
    "all": ("All transactions", None),
}
DEFAULT_QUEUE = "problems"
PROBLEM_STATUSES = QUEUES["problems"][1]

# Searched by the admin's search box and the API's `search` parameter.
SEARCH_FIELDS = ["=correlation_id", "=root_correlation_id", "subject", "business_key", "error_message"]

OWNER_ME = "me"
OWNER_NONE = "none"


def role_label(role: str) -> str:
    """'finance_ops' → 'Finance ops'."""
    return role.replace("_", " ").capitalize() if role else ""


ROLE_CHOICES = [(role, role_label(role)) for role in ROLES]


def owner_choices() -> list[tuple[str, str]]:
    """Me, nobody, and the people who may own an exception (not a scan of the transactions)."""
    people = [(user.get_username(), user.get_full_name() or user.get_username()) for user in assignable_users()]
    return [(OWNER_ME, "Assigned to me"), (OWNER_NONE, "Unassigned"), *people]


def in_queue(queryset: QuerySet, queue: str) -> QuerySet:
    """The transactions of one queue view."""
    statuses = QUEUES[queue][1]
    return queryset if statuses is None else queryset.filter(status__in=statuses)


def owned_by(queryset: QuerySet, owner: str, user) -> QuerySet:
    """Filter on the owner: 'me' (the person asking), 'none' (unassigned) or a username."""
    if owner == OWNER_ME:
        return queryset.filter(owner=user) if user is not None and user.is_authenticated else queryset.none()
    if owner == OWNER_NONE:
        return queryset.filter(owner__isnull=True)
    return queryset.filter(owner__username=owner)


class TransactionFilter(FilterSet):
    """Filters of the transaction list in the API and of bulk re-runs by filter."""

    queue = django_filters.ChoiceFilter(
        choices=[(key, label) for key, (label, _) in QUEUES.items()],
        method="filter_queue",
        label="Queue view (problems = exceptions and retrying)",
    )
    status = django_filters.MultipleChoiceFilter(choices=Status.choices, distinct=False)
    workflow = django_filters.MultipleChoiceFilter(choices=Workflow.choices, distinct=False)
    error_class = django_filters.MultipleChoiceFilter(choices=ErrorClass.CHOICES, distinct=False)
    owner_role = django_filters.MultipleChoiceFilter(choices=ROLE_CHOICES, distinct=False)
    owner = ListedCharFilter(method="filter_owner", label="Owner: a username, 'me' or 'none'", choices=owner_choices)
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    exception_before = IsoDateTimeFilter(
        field_name="exception_at", lookup_expr="lt", label="Became an exception before (to find old ones)"
    )
    exception_after = IsoDateTimeFilter(field_name="exception_at", lookup_expr="gt", label="Became an exception after")
    currency = django_filters.MultipleChoiceFilter(
        choices=CURRENCY_CHOICES, label="Currency of the value at risk", distinct=False
    )
    business_key = django_filters.CharFilter()
    correlation_id = django_filters.CharFilter(
        method="filter_correlation_id",
        label="Correlation ID: the transaction's own, or that of the delivery or request that started its chain",
    )
    subject = django_filters.CharFilter(method="filter_subject", label="Subject, business key or message contains")
    inbound_event = django_filters.NumberFilter(field_name="inbound_event_id")
    parent = django_filters.NumberFilter(field_name="parent_id")

    class Meta:
        model = Transaction
        fields: list[str] = []

    def filter_queue(self, queryset, name, value):
        return in_queue(queryset, value) if value else queryset

    def filter_owner(self, queryset, name, value):
        return owned_by(queryset, value.strip(), getattr(self.request, "user", None))

    def filter_correlation_id(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(correlation_id=value) | Q(root_correlation_id=value))

    def filter_subject(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(
            Q(subject__icontains=value) | Q(business_key__icontains=value) | Q(error_message__icontains=value)
        )


class StepFilter(FilterSet):
    """Steps of every transaction (the admin's step list)."""

    status = django_filters.MultipleChoiceFilter(choices=Step.Status.choices, distinct=False)
    error_class = django_filters.MultipleChoiceFilter(choices=ErrorClass.CHOICES, distinct=False)
    correlation_id = django_filters.CharFilter(field_name="transaction__correlation_id")

    class Meta:
        model = Step
        fields = {"target_system": ["exact"], "name": ["exact"], "idempotency_key": ["exact"]}


class StepAttemptFilter(FilterSet):
    """Attempts of every step (the admin's attempt list)."""

    outcome = django_filters.MultipleChoiceFilter(choices=StepAttempt.Outcome.choices, distinct=False)
    error_class = django_filters.MultipleChoiceFilter(choices=ErrorClass.CHOICES, distinct=False)
    correlation_id = django_filters.CharFilter(field_name="step__transaction__correlation_id")

    class Meta:
        model = StepAttempt
        fields = {"worker": ["exact"], "started_at": ["gte", "lt"]}


class ExceptionGroupFilter(FilterSet):
    """Filters of the exception-group list in the API and the console."""

    status = django_filters.MultipleChoiceFilter(choices=ExceptionGroup.Status.choices, distinct=False)
    workflow = django_filters.MultipleChoiceFilter(choices=Workflow.choices, distinct=False)
    error_class = django_filters.MultipleChoiceFilter(choices=ErrorClass.CHOICES, distinct=False)
    error_code = django_filters.CharFilter()
    target_system = django_filters.CharFilter(field_name="target_system__slug", label="Target system (slug)")
    owner_role = django_filters.MultipleChoiceFilter(choices=ROLE_CHOICES, distinct=False)
    assignee = django_filters.CharFilter(method="filter_assignee", label="Assignee: a username, 'me' or 'none'")
    last_seen_after = IsoDateTimeFilter(field_name="last_seen", lookup_expr="gte")
    q = django_filters.CharFilter(method="filter_text", label="Cause, message or missing thing contains")

    class Meta:
        model = ExceptionGroup
        fields: list[str] = []

    def filter_assignee(self, queryset, name, value):
        value = value.strip()
        user = getattr(self.request, "user", None)
        if value == OWNER_ME:
            return queryset.filter(assignee=user) if user is not None and user.is_authenticated else queryset.none()
        if value == OWNER_NONE:
            return queryset.filter(assignee__isnull=True)
        return queryset.filter(assignee__username=value)

    def filter_text(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(
            Q(title__icontains=value) | Q(missing_label__icontains=value) | Q(missing_key__icontains=value)
        )
