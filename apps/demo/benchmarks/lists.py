"""A1: the console and admin lists over a large ledger (issue "Performance", row A1).

`measure(database_url)` fills the ledger of that PostgreSQL database with generated transactions (set-based,
`INSERT … SELECT generate_series`), then requests each list the way a person does — the admin's exception queue
(default view, every transaction, a filtered page, a deep page), the console's transaction list and exception
groups (first, filtered, deep), and the console home — through Django's test client as a superuser, and reports
the 95th percentile of the response time and the number of SQL statements of each page at each size.

The database is a benchmark database: its ledger (transactions, steps, exception groups) is emptied and refilled.
"""

import math
import os
import time

import dj_database_url
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.canonical.models import Project, Resource, TimeEntry
from apps.console import health
from apps.core.limits import LIST_ROW_LIMIT
from apps.inbound.models import Delivery, InboundEvent
from apps.mapping.models import CrossReference
from apps.sync.models import Step, StepAttempt, Transaction
from apps.systems.models import ConnectedSystem

from . import fixture

TIMED_PER_ROUND = 7  # 3 rounds × 7 = 21 timed requests per page and size
DEEP_PAGE = 2000  # the deep page asked for; lists page through LIST_ROW_LIMIT rows at most (apps/core/paginators.py)
BENCH_USER = "bench-lists"
PAGE_SIZE = 50  # the admin's and the console's page size
FILTERED = {"workflow": "time_to_bill", "owner_role": "finance_ops"}

# (page, path, query) — the page names are the ids in the report.
PAGES = [
    ("admin queue (default: open problems)", "/admin/sync/transaction/", {}),
    ("admin queue ?queue=all", "/admin/sync/transaction/", {"queue": "all"}),
    ("admin queue filtered", "/admin/sync/transaction/", {"queue": "all", **FILTERED}),
    (
        "admin queue deep page ?queue=all, deepest page offered",
        "/admin/sync/transaction/",
        {"queue": "all", "p": DEEP_PAGE},
    ),
    ("console transactions (default: exceptions)", "/transactions/", {}),
    ("console transactions ?queue=all", "/transactions/", {"queue": "all"}),
    ("console transactions filtered", "/transactions/", {"queue": "all", **FILTERED}),
    (
        "console transactions deep page ?queue=all, deepest page offered",
        "/transactions/",
        {"queue": "all", "page": DEEP_PAGE},
    ),
    ("console exception groups", "/exceptions/", {}),
    ("console exception groups filtered", "/exceptions/", {"owner_role": "finance_ops"}),
    ("console home", "/", {}),
    # Every other list whose table grows with the ledger: first page, a filtered page, the deepest page offered.
    ("admin steps", "/admin/sync/step/", {}),
    ("admin steps filtered", "/admin/sync/step/", {"status": "failed"}),
    ("admin steps deep page", "/admin/sync/step/", {"p": DEEP_PAGE}),
    ("admin step attempts", "/admin/sync/stepattempt/", {}),
    ("admin step attempts filtered", "/admin/sync/stepattempt/", {"outcome": "failed"}),
    ("admin step attempts deep page", "/admin/sync/stepattempt/", {"p": DEEP_PAGE}),
    ("admin deliveries", "/admin/inbound/delivery/", {}),
    ("admin deliveries filtered", "/admin/inbound/delivery/", {"status": "rejected"}),
    ("admin deliveries deep page", "/admin/inbound/delivery/", {"p": DEEP_PAGE}),
    ("admin inbound events", "/admin/inbound/inboundevent/", {}),
    ("admin inbound events filtered", "/admin/inbound/inboundevent/", {"status": "exception"}),
    ("admin inbound events deep page", "/admin/inbound/inboundevent/", {"p": DEEP_PAGE}),
    ("admin cross references", "/admin/mapping/crossreference/", {}),
    ("admin cross references filtered", "/admin/mapping/crossreference/", {"object_type": "project"}),
    ("admin cross references deep page", "/admin/mapping/crossreference/", {"p": DEEP_PAGE}),
    ("admin time entries", "/admin/canonical/timeentry/", {}),
    ("admin time entries filtered", "/admin/canonical/timeentry/", {"status": "submitted"}),
    ("admin time entries deep page", "/admin/canonical/timeentry/", {"p": DEEP_PAGE}),
    ("console audit", "/audit/", {}),
    ("console audit filtered", "/audit/", {"model": "sync.transaction"}),
    ("console audit deep page", "/audit/", {"page": DEEP_PAGE}),
    ("console timeline search", "/timeline/", {"q": "bench-7"}),
]

# Shares of statuses per 1,000 transactions (the rest completed): a month end with a few percent in trouble.
STATUS_SQL = """
    CASE
        WHEN (i * 7919) % 1000 < 20 THEN 'exception'
        WHEN (i * 7919) % 1000 < 25 THEN 'waiting_retry'
        WHEN (i * 7919) % 1000 < 28 THEN 'pending'
        WHEN (i * 7919) % 1000 < 30 THEN 'running'
        WHEN (i * 7919) % 1000 < 40 THEN 'resolved'
        WHEN (i * 7919) % 1000 < 45 THEN 'ignored'
        ELSE 'completed'
    END
"""
WORKFLOWS = [
    "opportunity_to_project",
    "time_to_bill",
    "invoice_to_erp",
    "payment_to_crm",
    "milestone_to_bill",
    "contract_amendment",
    "customer_update",
    "inbound_event",
    "resource_update",
    "reference_data",
]
ROLES = ["finance_ops", "delivery_ops", "mapping_steward", "integration_admin"]
CURRENCIES = ["USD", "GBP", "EUR"]
GROUPS = 40
FAILED_ONE_IN = "i % 97 = 0"
OBJECT_TYPES = ["project", "customer", "invoice", "time_entry"]
ANALYZED = [
    "sync_transaction",
    "sync_exceptiongroupmember",
    "sync_exceptiongroup",
    "sync_step",
    "sync_stepattempt",
    "inbound_delivery",
    "inbound_inboundevent",
    "mapping_crossreference",
    "canonical_timeentry",
    "sync_historicaltransaction",
]


def _array(values) -> str:
    return "ARRAY[" + ", ".join(f"'{value}'" for value in values) + "]"


def generate(size: int) -> None:
    """Replace the ledger with `size` generated transactions over 60 days, and exception groups for the exceptions."""
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE sync_exceptiongroupmember, sync_exceptiongroupcomment, sync_rerunbatch, sync_exceptiongroup, "
            "sync_stepattempt, sync_step, sync_transaction, sync_historicaltransaction, inbound_inboundevent, "
            "inbound_delivery, mapping_crossreference, canonical_timeentry RESTART IDENTITY CASCADE"
        )
    with fixture.bulk_load(ANALYZED):
        _generate_ledger(size)
        _generate_around(size)
    with connection.cursor() as cursor:
        for table in ANALYZED:
            cursor.execute(f"VACUUM ANALYZE {table}")


def _generate_ledger(size: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO sync_transaction (
                id, created_at, updated_at, workflow, correlation_id, root_correlation_id, status, business_key,
                subject, subject_type, input, state, value_at_risk, currency, owner_role, error_class,
                error_message, error_fix, error_technical, exception_at, completed_at, resolution_reason
            )
            SELECT i, t.created, t.created + interval '5 minutes', t.workflow, 'bench-' || i, 'bench-root-' || i,
                   t.status, 'bench:' || t.workflow || ':' || i, 'Bench ' || t.workflow || ' ' || i, '', '{{}}', '{{}}',
                   CASE WHEN t.workflow IN ('opportunity_to_project', 'time_to_bill', 'invoice_to_erp',
                                            'payment_to_crm', 'milestone_to_bill', 'contract_amendment')
                        THEN ((i * 31) % 5000) * 10 + 100 END,
                   ({_array(CURRENCIES)})[1 + i % 3],
                   ({_array(ROLES)})[1 + (i / 7) % 4],
                   CASE WHEN t.status IN ('exception', 'waiting_retry', 'resolved', 'ignored')
                        THEN (ARRAY['mapping', 'business_rule', 'transient', 'permanent'])[1 + i % 4] ELSE '' END,
                   CASE WHEN t.status IN ('exception', 'waiting_retry', 'resolved', 'ignored')
                        THEN 'No value map entry for key ' || (i % {GROUPS}) ELSE '' END,
                   '', '',
                   CASE WHEN t.status IN ('exception', 'resolved', 'ignored')
                        THEN t.created + interval '5 minutes' END,
                   CASE WHEN t.status = 'completed' THEN t.created + interval '2 minutes' END,
                   ''
            FROM (
                SELECT i,
                       now() - ({size} - i) * (interval '60 days' / {size}) AS created,
                       ({_array(WORKFLOWS)})[1 + (i / 3) % {len(WORKFLOWS)}] AS workflow,
                       {STATUS_SQL} AS status
                FROM generate_series(1::bigint, {size}) AS i
            ) AS t (i, created, workflow, status)
            """
        )
        cursor.execute(
            f"""
            INSERT INTO sync_exceptiongroup (
                id, created_at, updated_at, fingerprint, workflow, error_class, error_code, missing_key,
                missing_label, context, title, fix, owner_role, status, first_seen, last_seen, times_seen
            )
            SELECT g, now() - interval '60 days', now(), 'bench-' || g, ({_array(WORKFLOWS)})[1 + g % 6],
                   'mapping', 'missing_value_map_entry', 'key ' || g, 'Value map entry ' || g, '{{}}',
                   'No value map entry for key ' || g, 'Add the entry to the value map.',
                   ({_array(ROLES)})[1 + g % 4], 'open', now() - interval '60 days', now(), 0
            FROM generate_series(1, {GROUPS}) AS g
            """
        )
        cursor.execute(
            f"""
            INSERT INTO sync_exceptiongroupmember (created_at, updated_at, context, group_id, transaction_id)
            SELECT exception_at, exception_at, '{{}}', (id % {GROUPS}) + 1, id
            FROM sync_transaction WHERE status IN ('exception', 'resolved', 'ignored')
            """
        )
        cursor.execute(
            "UPDATE sync_exceptiongroup g SET times_seen = m.n FROM (SELECT group_id, count(*) AS n "
            "FROM sync_exceptiongroupmember GROUP BY group_id) m WHERE m.group_id = g.id"
        )
        for table in ("sync_transaction", "sync_exceptiongroup", "sync_exceptiongroupmember"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
            )


def _first_id(model) -> int | None:
    return model.objects.order_by("pk").values_list("pk", flat=True).first()


def _generate_around(size: int) -> None:
    """One step, one attempt, one delivery and event, one cross reference, one time entry and one history row of
    the transaction per transaction: the other tables the ledger grows (emptied first, ids 1..size)."""
    fixture.fill(
        Step,
        size,
        {
            "transaction_id": "i",
            "sequence": "1",
            "name": "'post'",
            "title": "'Post to the target'",
            "status": f"CASE WHEN {FAILED_ONE_IN} THEN 'failed' ELSE 'succeeded' END",
            "attempts": "1",
            "idempotency_key": "'bench-step-' || i",
        },
    )
    fixture.fill(
        StepAttempt,
        size,
        {
            "step_id": "i",
            "number": "1",
            "worker": "'bench'",
            "outcome": f"CASE WHEN {FAILED_ONE_IN} THEN 'failed' ELSE 'succeeded' END",
        },
    )
    system = _first_id(ConnectedSystem)
    if system is None:
        system = ConnectedSystem.objects.create(slug="bench-lists", name="Bench lists", kind="psa").pk
    fixture.fill(
        Delivery,
        size,
        {
            "system_id": str(system),
            "status": f"CASE WHEN {FAILED_ONE_IN} THEN 'rejected' ELSE 'accepted' END",
            "method": "'POST'",
            "event_count": "1",
            "correlation_id": "'bench-' || i",
        },
    )
    fixture.fill(
        InboundEvent,
        size,
        {
            "delivery_id": "i",
            "system_id": str(system),
            "event_type": "'project.updated'",
            "status": f"CASE WHEN {FAILED_ONE_IN} THEN 'exception' ELSE 'processed' END",
            "correlation_id": "'bench-' || i",
        },
    )
    fixture.fill(
        CrossReference,
        size,
        {
            "system_id": str(system),
            "object_type": f"({_array(OBJECT_TYPES)})[1 + i % {len(OBJECT_TYPES)}]",
            "object_id": "i",
        },
    )
    project, resource = _first_id(Project), _first_id(Resource)
    if project is not None and resource is not None:
        fixture.fill(
            TimeEntry,
            size,
            {
                "project_id": str(project),
                "resource_id": str(resource),
                "hours": "8",
                "status": "CASE WHEN i % 10 = 0 THEN 'submitted' ELSE 'billed' END",
                "currency": "'USD'",
            },
        )
    history = Transaction.history.model
    tracked = {field.column for field in Transaction._meta.concrete_fields}
    columns = [field.column for field in history._meta.concrete_fields if field.column in tracked]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {history._meta.db_table} ({', '.join(columns)}, history_id, history_date, "
            "history_type, history_change_reason, history_correlation_id) "
            f"SELECT {', '.join(columns)}, id, updated_at, '~', 'Bench', correlation_id FROM sync_transaction"
        )
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{history._meta.db_table}', 'history_id'), {max(size, 1)})"
        )


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _client() -> Client:
    user, _created = get_user_model().objects.get_or_create(
        username=BENCH_USER, defaults={"is_superuser": True, "is_staff": True, "email": "bench@example.com"}
    )
    client = Client()
    client.force_login(user)
    return client


def _use_database(database_url: str) -> None:
    """Point Django's default connection at `database_url` (it must be PostgreSQL)."""
    wanted = dj_database_url.parse(database_url)
    if "postgresql" not in wanted["ENGINE"]:
        raise ValueError(f"The A1 benchmark needs PostgreSQL, not {database_url}")
    current = settings.DATABASES["default"]
    if all(current.get(key) == wanted.get(key) for key in ("ENGINE", "NAME", "HOST", "PORT", "USER")):
        return
    connections.close_all()
    current.update(wanted)
    current["OPTIONS"] = {}  # SQLite's options (timeout, transaction mode) mean nothing to PostgreSQL
    current["TEST"] = {}
    del connections["default"]


def measure(database_url: str, sizes=(10_000, 1_000_000), rounds: int = 3) -> list[dict]:
    """A1 rows: p95 (ms) and SQL statements of every list page at each ledger size, on `database_url`."""
    _use_database(database_url)
    settings.DEBUG = False  # DEBUG keeps every statement in memory: not what production does
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    rows = []
    for size in sizes:
        generate(size)
        client = _client()
        health.history_figures(refresh=True)  # what the 5-minute task keeps in the cache
        samples: dict[str, list[float]] = {page: [] for page, _path, _query in PAGES}
        queries: dict[str, int] = {}
        deep = min(DEEP_PAGE, math.ceil(min(size, LIST_ROW_LIMIT) / PAGE_SIZE))  # the deepest page a list offers
        pages = [
            (page, path, {key: deep if value == DEEP_PAGE else value for key, value in query.items()})
            for page, path, query in PAGES
        ]
        for page, path, query in pages:  # warm up, and count statements once
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, query)
            if response.status_code != 200:
                raise RuntimeError(f"{page} at {size:,}: HTTP {response.status_code}")
            queries[page] = len(captured)
        for _round in range(rounds):
            for page, path, query in pages:
                for _request in range(TIMED_PER_ROUND):
                    started = time.perf_counter()
                    client.get(path, query)
                    samples[page].append(time.perf_counter() - started)
        for page, _path, _query in PAGES:
            rows.append(
                {
                    "id": "A1",
                    "page": page,
                    "size": size,
                    "p95_ms": round(_p95(samples[page]) * 1000, 1),
                    "median_ms": round(sorted(samples[page])[len(samples[page]) // 2] * 1000, 1),
                    "queries": queries[page],
                }
            )
    return rows


def main(sizes=(10_000, 1_000_000), rounds: int = 3) -> None:  # pragma: no cover - a table, run by hand:
    # DATABASE_URL=postgres://…/ic_bench DEBUG=1 python manage.py shell -c \
    #     "from apps.demo.benchmarks.lists import main; main()"
    rows = measure(os.environ["DATABASE_URL"], sizes=sizes, rounds=rounds)
    by_page: dict[str, dict[int, dict]] = {}
    for row in rows:
        by_page.setdefault(row["page"], {})[row["size"]] = row
    print(f"{'page':55} " + " ".join(f"{size:>12,} p95/median ms (q)" for size in sizes))
    for page, figures in by_page.items():
        cells = [
            f"{figures[s]['p95_ms']:>8} / {figures[s]['median_ms']:>7} ({figures[s]['queries']:>2})" for s in sizes
        ]
        print(f"{page:55} " + " ".join(f"{cell:>30}" for cell in cells))
