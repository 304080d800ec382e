"""Settings of every process `make bench` starts: the project's own, plus the floors' URLs and the bench
workflow, on a database of the bench's own (BENCH_DATABASE_URL, never the demo's)."""

import os
import secrets

import dj_database_url

# Production settings (DEBUG off) want a key; the processes the bench starts inherit this one.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

from integration_console.settings import *  # noqa: E402, F403
from integration_console.settings import INSTALLED_APPS  # noqa: E402

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/integration_console_bench"
)

DEBUG = False  # DEBUG keeps every query in memory: not what production does
SANDBOX_ENABLED = True  # the ledger's outbound calls go to the simulators this same site serves
ROOT_URLCONF = "apps.demo.bench.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "apps.demo.bench.apps.BenchConfig"]
DATABASES = {"default": dj_database_url.parse(BENCH_DATABASE_URL, conn_max_age=60, conn_health_checks=True)}

# Loopback over plain HTTP, as wrk speaks it: no HTTPS redirect, and throughput (not the per-sender throttle,
# apps/core/throttles.py) is what is measured.
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {**REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "inbound": None},  # noqa: F405
}
