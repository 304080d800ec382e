"""The console home: business and technical health, ordered for the signed-in person's role."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.sync.groups import open_member_figures, with_open_counts
from apps.sync.models import ExceptionGroup
from apps.sync.routing import user_roles

from .. import charts, health

# Which sections a role sees first; everyone sees all of them.
ORDER = {
    "finance_ops": ["money", "flow", "groups", "trend", "reconciliation", "technical"],
    "delivery_ops": ["flow", "money", "groups", "trend", "technical", "reconciliation"],
    "mapping_steward": ["groups", "money", "trend", "flow", "technical", "reconciliation"],
    "integration_admin": ["technical", "trend", "groups", "money", "flow", "reconciliation"],
    "auditor": ["money", "flow", "trend", "groups", "reconciliation", "technical"],
}
DEFAULT_ORDER = ORDER["finance_ops"]
PRIORITY = ["finance_ops", "delivery_ops", "mapping_steward", "integration_admin", "auditor"]


def _order_for(roles: set[str]) -> list[str]:
    for role in PRIORITY:
        if role in roles:
            return ORDER[role]
    return DEFAULT_ORDER


def _top_groups(roles: set[str], *, limit: int = 6) -> tuple[list[dict], bool]:
    """The live groups with most open exceptions: the team's own when it has any, else everyone's."""
    counts, money = open_member_figures()  # counts and money in one pass over the open members
    live = with_open_counts(ExceptionGroup.objects.all(), counts)
    live = live.filter(status__in=[ExceptionGroup.Status.OPEN, ExceptionGroup.Status.ACKNOWLEDGED], open_count__gt=0)
    own = live.filter(owner_role__in=roles) if roles else live.none()
    mine = own.exists()
    rows = list((own if mine else live).order_by("-open_count", "-last_seen")[:limit])
    return [{"group": group, "money": money.get(group.pk, [])} for group in rows], mine


@login_required
def home(request):
    roles = user_roles(request.user)
    can_read_ledger = request.user.has_perm("sync.view_transaction")
    context = {"active": "home", "order": _order_for(roles), "can_read_ledger": can_read_ledger}
    if can_read_ledger:
        groups, own = _top_groups(roles)
        kept = health.history_figures()
        days = kept["trend"]
        aging = health.aging()
        context.update(
            {
                "money": health.money_stuck(),
                "wip": health.wip(request.user),
                "durations": kept["durations"],
                "failure": kept["failure"],
                "kept_at": kept["computed_at"],
                "aging": aging,
                "aging_chart": charts.histogram(aging),
                "trend_chart": charts.trend_chart(days),
                "trend_total": sum(day["total"] for day in days),
                "trend_failed": sum(day["failed"] for day in days),
                "technical": health.technical(),
                "groups": groups,
                "groups_are_own": own,
                "reconciliation": health.reconciliation_figures(request.user),
            }
        )
    return render(request, "console/home.html", context)
