"""The floors: the least a system can do for each hot path on the same machine, database and processes.

- W1: a bare DRF endpoint that commits the raw body in one INSERT (a durable acknowledgement, nothing more).
- B1: psycopg `COPY` of the same time rows into a table with the same columns.
- L1: a bare django-q2 task doing one UPDATE, on the same cluster settings as the ledger.
"""

from django.db import connection
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

TABLES = """
CREATE TABLE IF NOT EXISTS bench_floor_delivery (
    id bigserial PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(), body bytea NOT NULL);
CREATE TABLE IF NOT EXISTS bench_floor_time (
    time_entry_external_id text PRIMARY KEY, resource_external_id text, project_external_id text, work_date date,
    hours numeric(6, 2), role text, billable boolean, description text);
CREATE TABLE IF NOT EXISTS bench_floor_task (id bigint PRIMARY KEY, done boolean NOT NULL DEFAULT false);
"""

TIME_COLUMNS = (
    "time_entry_external_id",
    "resource_external_id",
    "project_external_id",
    "work_date",
    "hours",
    "role",
    "billable",
    "description",
)


def create_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(TABLES)


class FloorWebhookView(APIView):
    """POST /bench/floor/webhook/: store the raw body in one INSERT (autocommit) and answer 202."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []

    def post(self, request):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_floor_delivery (body) VALUES (%s) RETURNING id", [request.body])
            (delivery_id,) = cursor.fetchone()
        return Response({"delivery_id": delivery_id}, status=202)


def copy_time_rows(records: list[dict]) -> None:
    """The B1 floor: the same rows into a table of the same columns with one COPY (then emptied again)."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bench_floor_time")
        with cursor.copy(f"COPY bench_floor_time ({', '.join(TIME_COLUMNS)}) FROM STDIN") as copy:
            for record in records:
                copy.write_row([record[column] for column in TIME_COLUMNS])


def prepare_tasks(count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bench_floor_task")
        cursor.execute("INSERT INTO bench_floor_task (id) SELECT generate_series(1, %s)", [count])


def tasks_done() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_floor_task WHERE done")
        return cursor.fetchone()[0]


def floor_task(task_id: int) -> None:
    """The L1 floor: one UPDATE, run by the same django-q2 cluster as the ledger's steps."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bench_floor_task SET done = true WHERE id = %s", [task_id])
