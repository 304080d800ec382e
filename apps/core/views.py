"""Liveness/readiness."""

from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """200 when the database answers; used by load balancers and `make demo`."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # report, don't raise: a health check must answer
        return JsonResponse({"status": "unavailable", "database": str(exc)}, status=503)
    return JsonResponse({"status": "ok", "database": connection.vendor})
