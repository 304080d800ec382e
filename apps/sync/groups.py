"""Exception groups: exceptions with one cause filed as one group, and bulk re-runs planned then run by a task.

A cause is the workflow, the error class and code, the target system and the missing thing (a value-map
key, a role on a rate card, a cross-reference, fields of a command). The engine calls `exception_file` when a
transaction becomes an exception; a resolved group opens again when its cause comes back. When the last open
member of a group completes or is closed by hand, the group is resolved on its own.
"""

import hashlib

from django.db import transaction
from django.db.models import Case, Count, IntegerField, Sum, Value, When
from django.db.models.signals import post_save
from django.utils import timezone

from apps.core.context import audit_context, system_context
from apps.core.errors import BusinessError

from .models import ExceptionGroup, ExceptionGroupComment, ExceptionGroupMember, Step, Transaction

# Member transactions that still need someone (or the engine) to act.
UNSETTLED_STATUSES = (
    Transaction.Status.EXCEPTION,
    Transaction.Status.PENDING,
    Transaction.Status.RUNNING,
    Transaction.Status.WAITING_RETRY,
)
LIVE_GROUP_STATUSES = (ExceptionGroup.Status.OPEN, ExceptionGroup.Status.ACKNOWLEDGED)


def missing_thing(context: dict) -> tuple[str, str]:
    """(key, words) naming what the failure lacks, from the error's context; ("", "") when it names nothing."""
    ctx = context or {}
    if "value_map" in ctx:
        value = str(ctx.get("value", ""))
        if "value" not in ctx:
            return f"value_map:{ctx['value_map']}", f"value map '{ctx['value_map']}' does not exist"
        return (
            f"value_map:{ctx['value_map']}={value.lower()}",
            f"value map '{ctx['value_map']}' has no entry for '{value}'",
        )
    if "role" in ctx:
        holder = f"rate card {ctx['rate_card']}" if ctx.get("rate_card") else f"project {ctx.get('project', '?')}"
        key_holder = ctx.get("rate_card") or f"project:{ctx.get('project', '')}"
        return f"rate:{key_holder}:{str(ctx['role']).strip().lower()}", f"no rate for '{ctx['role']}' on {holder}"
    if "customer_field" in ctx:
        who = ctx.get("customer_external_id") or ctx.get("customer_name", "")
        return (
            f"customer:{ctx.get('system', '')}:{who}:{ctx['customer_field']}",
            f"customer {ctx.get('customer_name') or who} has no {str(ctx['customer_field']).replace('_', ' ')}",
        )
    if "refused" in ctx:
        fields = sorted(ctx["refused"]) if isinstance(ctx["refused"], dict | list) else [str(ctx["refused"])]
        return (
            f"ownership:{ctx.get('object_type', '')}:{','.join(fields)}",
            f"{ctx.get('object_type', 'record')} fields {', '.join(fields)} are owned by another system",
        )
    if "external_id" in ctx and "object_type" in ctx:
        return (
            f"xref:{ctx.get('system', '')}:{ctx['object_type']}:{ctx['external_id']}",
            f"{ctx.get('system', '')} {ctx['object_type']} '{ctx['external_id']}' has no cross-reference",
        )
    if "existing" in ctx and "object_type" in ctx:
        return (
            f"xref-conflict:{ctx.get('system', '')}:{ctx['object_type']}",
            f"{ctx['object_type']} already linked to another {ctx.get('system', '')} record",
        )
    if "missing" in ctx:
        fields = sorted(str(name) for name in ctx["missing"])
        return f"fields:{','.join(fields)}", f"the command lacks {', '.join(fields)}"
    if "profile" in ctx:
        return f"profile:{ctx['profile']}", f"source profile '{ctx['profile']}' cannot map the payload"
    return "", ""


def cause_of(txn: Transaction, step: Step | None, error: BusinessError, error_class: str) -> dict:
    key, label = missing_thing(getattr(error, "context", {}) or {})
    target = step.target_system if step is not None else None
    parts = [txn.workflow, error_class, getattr(error, "code", ""), target.slug if target else "", key]
    return {
        "fingerprint": hashlib.sha256("|".join(parts).encode()).hexdigest(),
        "workflow": txn.workflow,
        "error_class": error_class,
        "error_code": getattr(error, "code", "")[:60],
        "target_system": target,
        "missing_key": key[:300],
        "missing_label": label[:300],
    }


def exception_file(*, txn: Transaction, step: Step | None, error: BusinessError, error_class: str) -> ExceptionGroup:
    """File a transaction that just became an exception under its cause's group (called inside the engine's
    finishing transaction). A resolved group opens again; an ignored one stays ignored but counts it."""
    cause = cause_of(txn, step, error, error_class)
    now = timezone.now()
    context = getattr(error, "context", {}) or {}
    group = ExceptionGroup.objects.select_for_update().filter(fingerprint=cause["fingerprint"]).first()
    if group is None:
        group = ExceptionGroup(**cause, first_seen=now, owner_role=txn.owner_role)
    elif group.status == ExceptionGroup.Status.RESOLVED:
        group.status = ExceptionGroup.Status.OPEN
        group.resolved_at = None
    group.last_seen = now
    group.times_seen += 1
    group.title = error.message[:500]
    group.fix = error.fix
    group.context = context
    group.owner_role = txn.owner_role or group.owner_role
    group.save()
    previous = ExceptionGroupMember.objects.filter(transaction=txn).exclude(group=group).values("group_id").first()
    ExceptionGroupMember.objects.update_or_create(
        transaction=txn,
        defaults={"group": group, "context": context, "step_sequence": step.sequence if step else None},
    )
    if previous is not None:  # it failed for another reason this time: its old group may have nothing left open
        old_group_id = previous["group_id"]
        transaction.on_commit(lambda: exception_group_settle(group_id=old_group_id))
    return group


def _settle_on_close(sender, instance: Transaction, created: bool, **kwargs) -> None:
    """A member left the queue (completed, resolved, ignored): resolve its group when none is left open."""
    if created or instance.status in UNSETTLED_STATUSES:
        return
    membership = ExceptionGroupMember.objects.filter(transaction_id=instance.pk).values("group_id").first()
    if membership is None:
        return
    group_id = membership["group_id"]

    def settle():
        exception_group_settle(group_id=group_id)

    transaction.on_commit(settle)


post_save.connect(_settle_on_close, sender=Transaction, dispatch_uid="sync.groups.settle_on_close")


def exception_group_settle(*, group_id: int) -> ExceptionGroup | None:
    """Resolve a live group whose members are all settled (the engine or a person closed the last one)."""
    with transaction.atomic():
        group = ExceptionGroup.objects.select_for_update().filter(pk=group_id).first()
        if group is None or group.status not in LIVE_GROUP_STATUSES:
            return group
        if group.members.filter(transaction__status__in=UNSETTLED_STATUSES).exists():
            return group
        with system_context(f"Every exception in group {group.pk} completed or was closed"):
            group.status = ExceptionGroup.Status.RESOLVED
            group.resolved_at = timezone.now()
            group.save()
    return group


class GroupActionRefused(BusinessError):
    code = "group_action_refused"


def reason_required(reason: str, what: str) -> None:
    if not reason.strip():
        raise GroupActionRefused(f"Say why you are {what}; auditors read it in the history.")


@transaction.atomic
def exception_group_set_status(*, group: ExceptionGroup, status: str, actor, reason: str) -> ExceptionGroup:
    """Acknowledge, resolve, ignore or reopen a group (the transactions in it are not touched)."""
    reason_required(reason, "changing this group's status")
    if status not in ExceptionGroup.Status.values:
        raise GroupActionRefused(f"'{status}' is not a group status.")
    group = ExceptionGroup.objects.select_for_update().get(pk=group.pk)
    with audit_context(actor=actor, reason=reason):
        group.status = status
        group.resolved_at = timezone.now() if status == ExceptionGroup.Status.RESOLVED else None
        group.save()
    return group


@transaction.atomic
def exception_group_assign(*, group: ExceptionGroup, assignee, actor, reason: str = "") -> ExceptionGroup:
    """Give a group to a person (or to nobody)."""
    group = ExceptionGroup.objects.select_for_update().get(pk=group.pk)
    who = assignee.get_username() if assignee else "nobody"
    with audit_context(actor=actor, reason=reason or f"Assigned to {who}"):
        group.assignee = assignee
        group.save(update_fields=["assignee", "updated_at"])
    return group


@transaction.atomic
def exception_group_comment(*, group: ExceptionGroup, text: str, actor) -> ExceptionGroupComment:
    """Add a note to a group."""
    if not text.strip():
        raise GroupActionRefused("A comment needs some text.")
    with audit_context(actor=actor, reason=f"Comment on exception group {group.pk}"):
        return ExceptionGroupComment.objects.create(group=group, author=actor, text=text.strip())


def open_member_counts() -> dict[int, int]:
    """Open members per group: one pass over the unsettled transactions (a small index) joined to the members."""
    return dict(
        ExceptionGroupMember.objects.filter(transaction__status__in=UNSETTLED_STATUSES)
        .order_by()
        .values_list("group_id")
        .annotate(n=Count("pk"))
    )


def open_member_figures(groups=None) -> tuple[dict[int, int], dict[int, list[tuple[str, object]]]]:
    """Open members per group and their value at risk per currency, in one pass over the members' join.

    `groups` (a queryset) limits it to those groups, a filtered list's, else every group. A list that shows both
    reads them together: the join of the members with the unsettled transactions grows with the ledger, once is
    enough. Counts include members without a value; money leaves a currency out when none of its members has one.
    """
    members = ExceptionGroupMember.objects.filter(transaction__status__in=UNSETTLED_STATUSES)
    if groups is not None:
        members = members.filter(group__in=groups.order_by().values("pk"))
    rows = (
        members.order_by()
        .values_list("group_id", "transaction__currency")
        .annotate(n=Count("pk"), amount=Sum("transaction__value_at_risk"))
    )
    counts: dict[int, int] = {}
    money: dict[int, list] = {}
    for group_id, currency, n, amount in sorted(rows, key=lambda row: (row[0], row[1])):
        counts[group_id] = counts.get(group_id, 0) + n
        if amount is not None:
            money.setdefault(group_id, []).append((currency, amount))
    return counts, money


def with_open_counts(queryset, counts: dict[int, int]):
    """`queryset`'s groups with `open_count` set from `counts` (read first, in one pass) as a value.

    Counting per group (a subquery, or a LEFT JOIN of every member with its transaction) would read every member's
    transaction, the whole ledger's worth.
    """
    open_count = Case(
        *[When(pk=group_id, then=Value(n)) for group_id, n in sorted(counts.items())],
        default=Value(0),
        output_field=IntegerField(),
    )
    return queryset.select_related("target_system", "assignee").annotate(
        open_count=open_count if counts else Value(0, output_field=IntegerField())
    )


def live_groups():
    """Groups still needing attention, with their open count (two queries: the counts, then the groups)."""
    return with_open_counts(ExceptionGroup.objects.all(), open_member_counts()).order_by("-last_seen")


def money_by_group(group_ids) -> dict[int, list[tuple[str, object]]]:
    """Open value at risk per currency of each group."""
    rows = (
        ExceptionGroupMember.objects.filter(group_id__in=list(group_ids), transaction__status__in=UNSETTLED_STATUSES)
        .exclude(transaction__value_at_risk__isnull=True)
        .order_by()
        .values("group_id", "transaction__currency")
        .annotate(amount=Sum("transaction__value_at_risk"))
    )
    result: dict[int, list] = {}
    for row in rows:
        result.setdefault(row["group_id"], []).append((row["transaction__currency"], row["amount"]))
    return result
