"""What every console page's header shows: the firm, the signed-in person, their roles and what waits for them."""

import functools

from django.conf import settings

from apps.core import approvals
from apps.core.roles import ROLES


def console(request):
    user = getattr(request, "user", None)
    roles: list[str] = []
    pending_approvals = 0
    if user is not None and user.is_authenticated:
        # Counted only when a template asks (the console header and home do, the admin does not), at most once.
        pending_approvals = functools.cache(lambda: approvals.pending_for(user).count())
        roles = sorted(name for name in user.groups.values_list("name", flat=True) if name in ROLES)
        if user.is_superuser and not roles:
            roles = ["superuser"]
    return {
        "firm_name": settings.FIRM_NAME,
        "reporting_currency": settings.REPORTING_CURRENCY,
        "console_roles": [role.replace("_", " ") for role in roles],
        "pending_approvals": pending_approvals,
    }
