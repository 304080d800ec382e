"""Exception groups: one row per cause, with re-run of a whole group and bulk re-run by filter."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def group_list(request):
    return render(request, "console/exceptions/list.html", {"active": "exceptions"})
