"""django-q2 entry points of the console: take nothing, call one function."""

from .health import history_figures


def refresh_home_figures() -> str:
    """Recompute the home page's 30-day figures and keep them in the cache (scheduled every 5 minutes)."""
    return history_figures(refresh=True)["computed_at"].isoformat()
