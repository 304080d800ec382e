"""Settings for the Integration Console.

Everything that differs between a laptop, CI and production comes from the environment;
`.env.example` lists every variable. The defaults give the embedded set-up: SQLite under
`var/` and the django-q2 ORM broker, so a fresh machine needs no server.
"""

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from apps.core.limits import API_PAGE_SIZE

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off. Set DEBUG=1 for local work or give a SECRET_KEY "
            "(see .env.example)."
        )
    # Local development only: stable across processes so django-q2's signed payloads verify.
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_q",
    "apps.core",
    "apps.systems",
    "apps.canonical",
    "apps.mapping",
    "apps.inbound",
    "apps.sync",
    "apps.reconciliation",
    "apps.metrics",
    "apps.connectors",
    "apps.sandbox",
    "apps.configuration",
    "apps.demo",
    "apps.console",
]

MIDDLEWARE = [
    "apps.core.middleware.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "apps.core.middleware.ApiProblemMiddleware",
]

ROOT_URLCONF = "integration_console.urls"
WSGI_APPLICATION = "integration_console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.console.context_processors.console",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'integration_console.sqlite3'}"
# Persistent connections carry worker throughput (PITFALLS.md); the test settings turn them off.
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60), conn_health_checks=True)
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions + a 20 s busy timeout: the combination that kept the web process and
    # the django-q2 cluster from "database is locked" errors (PITFALLS.md). Keep transactions short.
    _db["CONN_MAX_AGE"] = 0
    _db["CONN_HEALTH_CHECKS"] = False
    _db["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    # A file, not memory: end-to-end tests start real worker processes that must see the test database.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test_{os.getpid()}.sqlite3")}
else:
    # One test database per test process, so parallel runs (xdist workers, several developers' runs on one
    # server) never drop each other's database.
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}_{os.getpid()}"}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"

# The firm whose console this is (shown in the console header) and the currency its figures are reported in.
FIRM_NAME = os.environ.get("FIRM_NAME", "Northwind Advisory")
REPORTING_CURRENCY = os.environ.get("REPORTING_CURRENCY", "USD")

# Username of the user recorded as "who" for writes made by tasks, commands and webhooks.
SYSTEM_USERNAME = os.environ.get("SYSTEM_USERNAME", "integration-system")

# --- I18N / time -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STATIC_ROOT = VAR_DIR / "static"

# --- Cache (shared by web and workers: django-q2 cluster stats) -------------------------------------
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "integration_console_cache",
    }
}
if os.environ.get("REDIS_URL"):
    CACHES["default"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}

# --- History ---------------------------------------------------------------------------------
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
SIMPLE_HISTORY_ENFORCE_HISTORY_MODEL_PERMISSIONS = True
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.permissions.ModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "EXCEPTION_HANDLER": "apps.core.api.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # apps/core/throttles.py: sign-in attempts per address; deliveries and refused deliveries per system and address.
    "DEFAULT_THROTTLE_RATES": {
        "login": os.environ.get("THROTTLE_LOGIN", "10/min"),
        "inbound": os.environ.get("THROTTLE_INBOUND", "1200/min"),
        "inbound_rejected": os.environ.get("THROTTLE_INBOUND_REJECTED", "20/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "ENUM_NAME_OVERRIDES": {
        "CurrencyEnum": "apps.core.money.CURRENCY_CHOICES",
        "ContractTypeEnum": "apps.canonical.models.commercial.ContractType",
        "SourceProfileStatusEnum": "apps.mapping.models.SourceProfile.Status",
        "DeliveryStatusEnum": "apps.inbound.models.Delivery.Status",
        "InboundEventStatusEnum": "apps.inbound.models.InboundEvent.Status",
        "TransactionStatusEnum": "apps.sync.models.Transaction.Status",
        "StepStatusEnum": "apps.sync.models.Step.Status",
        "SystemKindEnum": "apps.systems.models.SystemKind",
        "DeliveryKindEnum": "apps.inbound.models.Delivery.Kind",
        "RoleEnum": "apps.metrics.models.ROLE_CHOICES",
    },
    "TITLE": "Integration Console API",
    "DESCRIPTION": "Read and act on the canonical store, the mapping tables and the connected systems.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc served from our own static files (drf-spectacular-sidecar): the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Built-in sandbox systems (vendor simulators under /sandbox/) ----------------------------------
# On for development and the demo (the test settings turn it on); production leaves it off unless SANDBOX_ENABLED=1.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", DEBUG)

# --- Secrets ----------------------------------------------------------------------------------
# Connected systems name their credentials and signing secrets by reference (apps/systems/secrets.py), and a
# reference may only point here: environment variables with this prefix, or files in this directory.
SECRET_ENV_PREFIX = os.environ.get("SECRET_ENV_PREFIX", "IC_SECRET_")
SECRETS_DIR = Path(os.environ.get("SECRETS_DIR") or "/run/secrets")  # Docker and systemd mount secrets here

# --- Four-eyes control (docs/four-eyes.md) --------------------------------------------------------
# Which changes need a second person's approval. FOUR_EYES_ON / FOUR_EYES_OFF (comma-separated kinds)
# override the defaults: rate_card_version, ownership_rule (on); source_profile, transaction_replay_amount (off).
FOUR_EYES = {
    "rate_card_version": True,
    "ownership_rule": True,
    "source_profile": False,
    "transaction_replay_amount": False,
    **{kind: True for kind in env_list("FOUR_EYES_ON")},
    **{kind: False for kind in env_list("FOUR_EYES_OFF")},
}

# --- Outbound ---------------------------------------------------------------------------------
# A call that would wait longer than this for its rate-limit token is retried later instead of sleeping.
CONNECTOR_RATE_LIMIT_MAX_WAIT_SECONDS = float(os.environ.get("CONNECTOR_RATE_LIMIT_MAX_WAIT_SECONDS", "2"))

# --- Reconciliation ---------------------------------------------------------------------------
# (REPORTING_CURRENCY, above, is the currency discrepancies carry their value at risk in.)
# Amounts are equal within these tolerances, in the currency's major unit; "*" is the default for any currency.
# RECONCILIATION_TOLERANCES in the environment is the same as JSON, e.g. {"*": {"line": "0.01", "document": "0.05"}}.
RECONCILIATION_TOLERANCES = json.loads(os.environ.get("RECONCILIATION_TOLERANCES") or "null") or {
    "*": {"line": "0.01", "document": "0.05"},
    "JPY": {"line": "1", "document": "5"},
}
RECONCILIATION_PAGE_SIZE = env_int("RECONCILIATION_PAGE_SIZE", 100)
RECONCILIATION_BATCH_SIZE = env_int("RECONCILIATION_BATCH_SIZE", 2000)
RECONCILIATION_RANGE_PASS = env_bool("RECONCILIATION_RANGE_PASS", True)  # checksums per key range first

# --- Inbound ---------------------------------------------------------------------------------
# How long a process remembers a sender's system, secrets and envelope (others forget at once on change).
INBOUND_SENDER_CACHE_SECONDS = float(os.environ.get("INBOUND_SENDER_CACHE_SECONDS", "5"))
INBOUND_MAX_BODY_BYTES = env_int("INBOUND_MAX_BODY_BYTES", 1024 * 1024)
INBOUND_BULK_MAX_BODY_BYTES = env_int("INBOUND_BULK_MAX_BODY_BYTES", 64 * 1024 * 1024)
INBOUND_BULK_MAX_RECORDS = env_int("INBOUND_BULK_MAX_RECORDS", 100_000)
INBOUND_BULK_CHUNK = env_int("INBOUND_BULK_CHUNK", 1000)  # records per chunk transaction of a bulk upload
# PostgreSQL: the webhook intake's one statement and the ledger's one-statement saves are server-side prepared
# statements (parsed and planned once per connection, apps/core/prepared.py). Turn off behind a transaction-pooling
# proxy that cannot keep prepared statements (pgbouncer < 1.21).
PREPARED_STATEMENTS = env_bool("PREPARED_STATEMENTS", True)

# --- Business metrics and alerts ----------------------------------------------------------------
# How many months before the running one the scheduled computation refreshes (late invoices change them).
METRICS_MONTHS_BACK = env_int("METRICS_MONTHS_BACK", 1)
# Alerts and digests go out by email: the console backend (printed) for local work and the demo.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = os.environ.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "integration-console@localhost"

# Refused deliveries kept as rows per system, reason and hour; beyond that they are only counted (RejectionTally).
INBOUND_REJECTED_KEEP_PER_HOUR = env_int("INBOUND_REJECTED_KEEP_PER_HOUR", 50)

# --- django-q2 -------------------------------------------------------------------------------
# ORM broker on the main database: a crash never loses an in-flight task. retry > 3 x timeout and
# queue_limit = workers keep a task from being leased twice while it waits (PITFALLS.md).
Q_WORKERS = env_int("Q_WORKERS", 2)
Q_TIMEOUT = env_int("Q_TIMEOUT", 120)
Q_CLUSTER = {
    "name": os.environ.get("Q_CLUSTER_NAME", "integration-console"),
    "orm": "default",
    "workers": Q_WORKERS,
    "queue_limit": Q_WORKERS,
    "timeout": Q_TIMEOUT,
    "retry": Q_TIMEOUT * 3 + 30,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": env_int("Q_SAVE_LIMIT", 1000),
    "poll": float(os.environ.get("Q_POLL", "0.5")),
    "label": "Task queue",
}

# --- Ledger (apps/sync/engine.py) ----------------------------------------------------------------
# A claimed step's lease: longer than a task may run, so a step inside its time limit never loses it.
SYNC_LEASE_SECONDS = env_int("SYNC_LEASE_SECONDS", Q_TIMEOUT + 60)
SYNC_BACKOFF_BASE_SECONDS = float(os.environ.get("SYNC_BACKOFF_BASE_SECONDS") or 5)  # first retry waits ~this
SYNC_BACKOFF_CAP_SECONDS = float(os.environ.get("SYNC_BACKOFF_CAP_SECONDS") or 900)  # longest wait between retries
SYNC_REQUEUE_AFTER_SECONDS = env_int("SYNC_REQUEUE_AFTER_SECONDS", 120)  # a queued step not started is re-sent
# How long a worker goes on with the next steps of the same transaction before handing them to the queue.
SYNC_FOLLOW_SECONDS = float(os.environ.get("SYNC_FOLLOW_SECONDS") or Q_TIMEOUT / 4)
# Waiting for a vendor's rate limit spends no attempt; this caps how many attempts such waits can add to a step.
SYNC_MAX_ATTEMPTS_WITH_WAITS = env_int("SYNC_MAX_ATTEMPTS_WITH_WAITS", 50)

# --- Logging ---------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "apps.core.logfilters.CorrelationIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["correlation"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django-q": {"level": os.environ.get("Q_LOG_LEVEL", "WARNING")},  # django-q2's logger name
    },
}

# --- Security for production ----------------------------------------------------------------
# HTTPS only unless DEBUG: `manage.py check --deploy --fail-level WARNING` is clean with these defaults
# (tests/core/test_deploy_settings.py). Behind a TLS-terminating proxy set BEHIND_TLS_PROXY=1, or the
# redirect never sees https.
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY") else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]  # load-balancer probes speak plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
