"""The range first pass (counts and checksums per key range) finds exactly what the full comparison finds."""

import dataclasses
import datetime
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.reconciliation import checks, ranges
from apps.reconciliation.checks import Scope
from apps.reconciliation.models import ReconciliationRun, SnapshotInvoice, SnapshotInvoiceLine

pytestmark = pytest.mark.django_db
PERIOD = "2026-11"
INVOICE_CHECKS = (checks.invoices_missing, checks.invoice_amounts, checks.invoice_lines)


def snapshot(invoices: int, *, seed: int = 7, lines_per_invoice: int = 3):
    """Both sides' snapshots of the same invoices; returns (scope, billing invoices, ERP invoices, ERP lines)."""
    run = ReconciliationRun.objects.create(
        period=PERIOD,
        period_start=datetime.date(2026, 11, 1),
        period_end=datetime.date(2026, 11, 30),
        status="running",
    )
    rng = random.Random(seed)
    rows, lines = {"billing": [], "erp": []}, {"billing": [], "erp": []}
    for n in range(invoices):
        key = f"INV-2026-{n:05d}"
        currency = ("USD", "GBP", "EUR")[n % 3]
        amounts = [Decimal(rng.randint(100, 900_000)) / 100 for _ in range(lines_per_invoice)]
        subtotal = sum(amounts)
        tax = (subtotal * Decimal("0.2")).quantize(Decimal("0.01"))
        for side in ("billing", "erp"):
            rows[side].append(
                SnapshotInvoice(
                    run=run,
                    system=side,
                    invoice_key=key,
                    external_id=f"{side}-{n}",
                    legal_entity_code="NW-UK",
                    period=PERIOD,
                    currency=currency,
                    subtotal=subtotal,
                    tax_total=tax,
                    total=subtotal + tax,
                    status="posted",
                )
            )
            lines[side] += [
                SnapshotInvoiceLine(
                    run=run, system=side, invoice_key=key, line_number=i + 1, currency=currency, amount=amount
                )
                for i, amount in enumerate(amounts)
            ]
    scope = Scope(run.pk, PERIOD, run.period_start, run.period_end, None)
    return scope, rows, lines


def save(rows, lines):
    for side in ("billing", "erp"):
        SnapshotInvoice.objects.bulk_create(rows[side], batch_size=500)  # history-ok: snapshots keep no history
        SnapshotInvoiceLine.objects.bulk_create(lines[side], batch_size=500)  # history-ok: snapshots


def findings(scope) -> list[tuple]:
    found = []
    for check in INVOICE_CHECKS:
        for item in check(scope):
            found.append((str(item["check_type"]), item["business_key"], item["left_amount"], item["right_amount"]))
    return sorted(found, key=str)


def with_first_pass(scope):
    first_pass = ranges.differing_ranges(scope)
    return dataclasses.replace(scope, invoice_keys=first_pass.key_filter()), first_pass


def test_an_unchanged_month_costs_one_grouped_aggregate_per_side_and_table(settings):
    scope, rows, lines = snapshot(600)
    save(rows, lines)
    with CaptureQueriesContext(connection) as queries:
        ranged, first_pass = with_first_pass(scope)
    assert first_pass.prefixes == [] and first_pass.levels == 1 and len(queries) <= 8  # min/max keys, 4 aggregates
    assert findings(ranged) == findings(scope) == []


def test_a_few_differences_are_found_by_descending_only_into_the_ranges_that_differ():
    scope, rows, lines = snapshot(1500)
    rows["erp"][10].subtotal += Decimal("12.00")  # net differs
    rows["erp"][700].tax_total -= Decimal("0.30")  # tax differs beyond the tolerance
    rows["erp"][701].tax_total -= Decimal("0.03")  # within the document tolerance: no finding
    del rows["erp"][1200]  # missing in ERP
    lines["erp"][3 * 400].amount += Decimal("5.00")  # a line differs ...
    lines["erp"][3 * 400 + 1].amount -= Decimal("5.00")  # ... and the next one offsets it
    save(rows, lines)
    ranged, first_pass = with_first_pass(scope)
    assert first_pass.prefixes and len(first_pass.prefixes) <= 5
    assert all(len(prefix) > len("INV-2026-") for prefix in first_pass.prefixes)
    expected = findings(scope)
    assert findings(ranged) == expected
    assert {(check, key) for check, key, _, _ in expected} == {
        ("invoice_total", "INV-2026-00010"),
        ("invoice_tax", "INV-2026-00700"),
        ("invoice_missing_in_erp", "INV-2026-01200"),
        ("invoice_line", "INV-2026-00400/1"),
        ("invoice_line", "INV-2026-00400/2"),
    }


def test_when_most_rows_differ_the_pass_gives_up_and_everything_is_compared():
    scope, rows, lines = snapshot(300)
    for row in rows["erp"][::2]:
        row.subtotal += Decimal("1.00")
    rows["erp"].append(
        SnapshotInvoice(
            run_id=scope.run_id,
            system="erp",
            invoice_key="ZZ-1",
            period=PERIOD,
            currency="USD",
            legal_entity_code="NW-UK",
            subtotal=Decimal("10"),
            total=Decimal("10"),
        )
    )
    save(rows, lines)
    with CaptureQueriesContext(connection) as queries:
        ranged, first_pass = with_first_pass(scope)
    assert first_pass.prefixes is None and ranged.invoice_keys is None
    # The invoices alone show the spread: the pass gives up before grouping a single line (the costly table).
    assert first_pass.queries == 2
    assert not [query for query in queries if SnapshotInvoiceLine._meta.db_table in query["sql"]]
    assert len(findings(ranged)) == 151  # 150 net differences and the invoice only ERP has


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_differences_give_identical_findings_with_and_without_the_pass(seed):
    scope, rows, lines = snapshot(800, seed=seed, lines_per_invoice=2)
    rng = random.Random(seed)
    for index in rng.sample(range(800), 12):
        rows["erp"][index].tax_total += Decimal(rng.choice(["0.04", "0.06", "-3.10", "250.00"]))
    for index in rng.sample(range(1600), 8):
        lines["billing"][index].amount += Decimal(rng.choice(["0.01", "0.02", "-7.00"]))
    for index in sorted(rng.sample(range(800), 3), reverse=True):
        del rows["billing"][index]
    save(rows, lines)
    ranged, first_pass = with_first_pass(scope)
    assert first_pass.prefixes is not None
    assert findings(ranged) == findings(scope)


def test_the_checks_are_planned_for_whole_results_only_while_they_run():
    def fraction():
        with connection.cursor() as cursor:
            cursor.execute("SHOW cursor_tuple_fraction")
            return float(cursor.fetchone()[0])

    if connection.vendor != "postgresql":
        with checks.whole_results():  # nothing to set on SQLite; the checks run as they are
            assert connection.vendor == "sqlite"
        return
    before = fraction()
    with checks.whole_results():
        assert fraction() == 1.0
    assert fraction() == before
