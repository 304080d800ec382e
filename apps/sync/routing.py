"""Who may act on an exception: the roles allowed to change transactions, and the team it is routed to.

An exception is routed to a team (its `owner_role`). That team can always act on it (re-run, edit, close,
assign), even when its role does not hold the general "change transaction" permission: a mapping steward
handles the mapping exceptions routed to stewards. Anyone else needs that permission.
"""

from dataclasses import dataclass
from fnmatch import fnmatch

from apps.core.roles import ROLES

from .filters import role_label

CHANGE_TRANSACTION = "sync.change_transaction"


def roles_that_change_transactions() -> list[str]:
    """Roles whose grants include changing sync.transaction."""
    found = []
    for role, spec in ROLES.items():
        for grant in spec["grants"]:
            actions, pattern = grant.split(":", 1)
            app_pattern, model_pattern = pattern.split(".", 1)
            if (
                "change" in actions.split(",")
                and fnmatch("sync", app_pattern)
                and fnmatch("transaction", model_pattern)
            ):
                found.append(role)
                break
    return found


def user_roles(user) -> set[str]:
    if user is None or not user.is_authenticated:
        return set()
    cached = getattr(user, "_console_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=list(ROLES)).values_list("name", flat=True))
        user._console_roles = cached
    return cached


def may_act(user, owner_role: str) -> bool:
    """May this person act on an exception routed to `owner_role`?"""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.has_perm(CHANGE_TRANSACTION) or (bool(owner_role) and owner_role in user_roles(user))


@dataclass(frozen=True)
class Routing:
    owner_role: str
    team: str
    can_act: bool
    who_can: str
    why: str


def routing_for(user, owner_role: str) -> Routing:
    """What the page says about who handles this exception and whether the viewer can act on it."""
    acting = [owner_role] if owner_role else []
    acting += [role for role in roles_that_change_transactions() if role not in acting]
    who = ", ".join(role_label(role) for role in acting)
    team = role_label(owner_role) or "no team"
    can = may_act(user, owner_role)
    if can and owner_role and owner_role in user_roles(user):
        why = f"It is routed to your team ({team})."
    elif can:
        why = "Your role may re-run, edit and close any transaction."
    else:
        mine = ", ".join(role_label(role) for role in sorted(user_roles(user))) or "no role"
        why = (
            f"It is routed to {team}; your role ({mine}) may read it but not act on it. "
            f"Ask someone in {who}, or have an integration admin give you one of those roles."
        )
    return Routing(owner_role=owner_role, team=team, can_act=can, who_can=who, why=why)
