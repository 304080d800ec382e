"""The timeline: one search box for any id, one trail across systems."""

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render

from apps.console.selectors.timeline_trail import timeline_candidates, timeline_for

KINDS = [
    ("delivery", "Inbound deliveries"),
    ("event", "Inbound events"),
    ("transaction", "Transactions"),
    ("step", "Steps"),
    ("call", "Outbound calls"),
    ("change", "Record changes"),
    ("link", "Cross-references"),
    ("finding", "Reconciliation findings"),
]


@login_required
@permission_required("sync.view_transaction", raise_exception=True)
def timeline(request):
    q = (request.GET.get("q") or "").strip()
    chosen = (request.GET.get("key") or "").strip()
    candidates = [] if chosen else timeline_candidates(q)
    trail = None
    if chosen:
        trail = timeline_for(chosen, request.user)
    elif len(candidates) == 1:
        trail = timeline_for(candidates[0].key, request.user)
    context = {
        "active": "timeline",
        "search_q": q,
        "q": q,
        "candidates": candidates if len(candidates) > 1 else [],
        "trail": trail,
        "nothing_found": bool(q) and not candidates and trail is None,
        "kinds": [(kind, label, trail.count(kind)) for kind, label in KINDS] if trail else [],
    }
    return render(request, "console/timeline/trail.html", context)
