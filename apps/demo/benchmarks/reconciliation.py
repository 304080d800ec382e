"""Reconciliation at volume: the invoice checks against a bare FULL OUTER JOIN count over the same snapshot tables.

`measure(database_url, lines, rounds)` fills both sides' snapshot tables of a throwaway run with `lines` invoice
lines each (five lines an invoice) straight in SQL (INSERT … SELECT over generate_series on PostgreSQL, a
recursive CTE on SQLite), with a few per cent of differences on the ERP side: 2 % of lines off by 1.00, 0.5 % of
invoices missing, 1 % with a different tax. It then times, in interleaved rounds (baseline, then each variant,
round after round, so a noisy neighbour hurts all of them alike):

- the baseline: `SELECT COUNT(*)` of a FULL OUTER JOIN of the billing and ERP lines on (invoice, line);
- R1: the invoice checks (missing, amounts, lines) and the period totals, with the range first pass;
- R2: the same without the range first pass;
- R3: an unchanged month (ERP a copy of billing), with the range first pass.

Each row gives the median and range in seconds, the ratio to the baseline's median, the findings, and the
Python peak memory of one more untimed pass (tracemalloc) beside the process's peak RSS. The snapshot rows and
runs it made are deleted at the end.
"""

import contextlib
import dataclasses
import datetime
import resource
import statistics
import time
import tracemalloc

import dj_database_url
from django.core.management import call_command
from django.db import connection, connections, transaction

from apps.core.context import system_context
from apps.reconciliation import checks, ranges
from apps.reconciliation.models import ReconciliationRun, SnapshotInvoice, SnapshotInvoiceLine

PERIOD = "2026-11"
LINES_PER_INVOICE = 5
TARGET_RATIO = 3.0
TARGET_PEAK_MB = 200
CHECKS = (checks.invoices_missing, checks.invoice_amounts, checks.invoice_lines, checks.period_totals)


@contextlib.contextmanager
def _database(database_url: str):
    """Use `database_url` as the default database for the duration (the one already in use is left as it is)."""
    wanted = dj_database_url.parse(database_url)
    current = connections.settings["default"]
    if all(current.get(key) == wanted.get(key) for key in ("ENGINE", "NAME", "HOST", "PORT")):
        yield
        return
    connections["default"].close()
    saved = current
    connections.settings["default"] = {**saved, **wanted, "OPTIONS": wanted.get("OPTIONS", {}), "CONN_MAX_AGE": 0}
    del connections["default"]
    try:
        yield
    finally:
        connections["default"].close()
        connections.settings["default"] = saved
        del connections["default"]


def _ensure_schema() -> None:
    if SnapshotInvoiceLine._meta.db_table not in connection.introspection.table_names():
        call_command("migrate", interactive=False, verbosity=0)


def _series(count: int) -> str:
    """A row source `s(n)` of 1..count in this database's dialect."""
    if connection.vendor == "postgresql":
        return f"generate_series(1, {int(count)}) AS s(n)"
    return f"(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {int(count)}) SELECT n FROM c) s"


def _key(expression: str) -> str:
    if connection.vendor == "postgresql":
        return f"'INV-' || lpad(({expression})::text, 8, '0')"
    return f"'INV-' || printf('%%08d', {expression})"  # %% : the query is run with parameters


def _fill(run_id: int, lines: int, *, differences: bool) -> None:
    """Both sides' lines and invoices of one run; the ERP side differs in a few per cent unless told otherwise."""
    line_table = SnapshotInvoiceLine._meta.db_table
    invoice_table = SnapshotInvoice._meta.db_table
    invoice_no = f"((n - 1) / {LINES_PER_INVOICE} + 1)"
    amount = "CAST(((CAST(n AS BIGINT) * 7919) %% 100000 + 100) AS NUMERIC) / 100"  # %% : run with parameters
    with connection.cursor() as cursor:
        for side in ("billing", "erp"):
            shift = "0"
            where = ""
            if side == "erp" and differences:
                shift = "CASE WHEN n %% 50 = 0 THEN 1 ELSE 0 END"
                where = f"WHERE {invoice_no} %% 200 <> 0"
            cursor.execute(
                f"INSERT INTO {line_table} (run_id, system, invoice_key, line_number, currency, amount, tax_amount, "
                f"reference) SELECT %s, %s, {_key(invoice_no)}, (n - 1) %% {LINES_PER_INVOICE} + 1, 'GBP', "
                f"{amount} + {shift}, ROUND({amount} * 0.2, 2), '' FROM {_series(lines)} {where}",
                [run_id, side],
            )
            cursor.execute(
                f"INSERT INTO {invoice_table} (run_id, system, external_id, invoice_key, customer_key, "
                "legal_entity_code, period, issued_on, currency, subtotal, tax_total, total, amount_paid, balance, "
                "status) SELECT run_id, system, invoice_key, invoice_key, 'C-1', 'NW-UK', %s, NULL, 'GBP', "
                "SUM(amount), SUM(tax_amount), SUM(amount + tax_amount), 0, SUM(amount + tax_amount), 'posted' "
                f"FROM {line_table} WHERE run_id = %s AND system = %s GROUP BY run_id, system, invoice_key",
                [PERIOD, run_id, side],
            )
        if differences:
            cursor.execute(
                f"UPDATE {invoice_table} SET tax_total = tax_total + 0.5, total = total + 0.5 "
                "WHERE run_id = %s AND system = 'erp' AND invoice_key LIKE %s",
                [run_id, "%37"],
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {line_table}")
            cursor.execute(f"ANALYZE {invoice_table}")


def _full_outer_join_count(run_id: int) -> int:
    table = SnapshotInvoiceLine._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM (SELECT invoice_key, line_number FROM {table} WHERE run_id = %s AND system = "
            f"'billing') b FULL OUTER JOIN (SELECT invoice_key, line_number FROM {table} WHERE run_id = %s AND "
            "system = 'erp') e ON b.invoice_key = e.invoice_key AND b.line_number = e.line_number",
            [run_id, run_id],
        )
        return cursor.fetchone()[0]


def _scope(run: ReconciliationRun) -> checks.Scope:
    return checks.Scope(run.pk, run.period, run.period_start, run.period_end, None)


def _reconcile(run: ReconciliationRun, *, first_pass: bool) -> int:
    """The invoice checks as a run does them; returns the number of findings (Python only sees those)."""
    scope = _scope(run)
    ranged = scope
    if first_pass:
        ranged = dataclasses.replace(scope, invoice_keys=ranges.differing_ranges(scope).key_filter())
    found = 0
    with checks.whole_results():
        for check in CHECKS:
            for _ in check(ranged if check is not checks.period_totals else scope):
                found += 1
    return found


def _timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def _peak_mb(function) -> float:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _new_run(label: str) -> ReconciliationRun:
    with system_context(f"Benchmark: {label}"):
        return ReconciliationRun.objects.create(
            period=PERIOD,
            period_start=datetime.date(2026, 11, 1),
            period_end=datetime.date(2026, 11, 30),
            trigger=ReconciliationRun.Trigger.COMMAND,
            status=ReconciliationRun.Status.RUNNING,
            stage="benchmark",
        )


def _drop(runs: list[ReconciliationRun]) -> None:
    ids = [run.pk for run in runs]
    with transaction.atomic():
        SnapshotInvoiceLine.objects.filter(run_id__in=ids).delete()  # history-ok: snapshots keep no history
        SnapshotInvoice.objects.filter(run_id__in=ids).delete()  # history-ok: snapshots keep no history
    with system_context("Benchmark finished"):
        for run in runs:
            run.delete()


def measure(database_url: str, lines: int = 1_000_000, rounds: int = 3) -> list[dict]:
    """Time the reconciliation's invoice checks against a bare FULL OUTER JOIN count; see the module docstring."""
    with _database(database_url):
        _ensure_schema()
        connection.force_debug_cursor = False
        runs = []
        try:
            changed, unchanged = _new_run("a few per cent differ"), _new_run("unchanged month")
            runs = [changed, unchanged]
            fill_seconds, _ = _timed(lambda: _fill(changed.pk, lines, differences=True))
            fill_seconds += _timed(lambda: _fill(unchanged.pk, lines, differences=False))[0]
            variants = {
                "R1": (changed, True),
                "R2": (changed, False),
                "R3": (unchanged, True),
            }
            baseline, samples, findings = [], {key: [] for key in variants}, {}
            joined = None
            for _ in range(max(rounds, 1)):
                seconds, joined = _timed(lambda: _full_outer_join_count(changed.pk))
                baseline.append(seconds)
                for key, (run, first_pass) in variants.items():
                    seconds, found = _timed(
                        lambda run=run, first_pass=first_pass: _reconcile(run, first_pass=first_pass)
                    )
                    samples[key].append(seconds)
                    findings[key] = found
            peaks = {
                key: _peak_mb(lambda run=run, first_pass=first_pass: _reconcile(run, first_pass=first_pass))
                for key, (run, first_pass) in variants.items()
            }
            first = ranges.differing_ranges(_scope(changed))
            clean = ranges.differing_ranges(_scope(unchanged))
        finally:
            if runs:
                _drop(runs)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        base = statistics.median(baseline)
        names = {
            "R1": "Invoice checks (missing, amounts, lines, period totals) with the range first pass, a few % differ",
            "R2": "Invoice checks without the range first pass, a few % differ",
            "R3": "Invoice checks with the range first pass, unchanged month",
        }
        passes = {"R1": first, "R2": None, "R3": clean}
        rows = []
        for key, values in samples.items():
            median = statistics.median(values)
            ratio = median / base if base else None
            range_pass = passes[key]
            rows.append(
                {
                    "id": key,
                    "name": names[key],
                    "database": connection.vendor,
                    "lines_per_side": lines,
                    "rounds": len(values),
                    "seconds_median": round(median, 3),
                    "seconds_range": [round(min(values), 3), round(max(values), 3)],
                    "baseline": "SELECT COUNT(*) of billing lines FULL OUTER JOIN ERP lines on (invoice, line)",
                    "baseline_seconds_median": round(base, 3),
                    "baseline_seconds_range": [round(min(baseline), 3), round(max(baseline), 3)],
                    "baseline_rows": joined,
                    "ratio": round(ratio, 2) if ratio is not None else None,
                    "target_ratio": TARGET_RATIO,
                    "ratio_ok": ratio is not None and ratio <= TARGET_RATIO,
                    "findings": findings[key],
                    "python_peak_mb": round(peaks[key], 3),
                    "process_peak_rss_mb": round(rss_mb, 1),
                    "memory_ok": peaks[key] <= TARGET_PEAK_MB,
                    "range_pass": None
                    if range_pass is None
                    else {
                        "queries": range_pass.queries,
                        "levels": range_pass.levels,
                        "differing_ranges": "all" if range_pass.prefixes is None else len(range_pass.prefixes),
                    },
                    "fill_seconds": round(fill_seconds, 1),
                }
            )
        return rows
