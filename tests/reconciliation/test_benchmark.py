"""The reconciliation benchmark fills both sides, times the checks beside a FULL OUTER JOIN count, and cleans up."""

import pytest
from django.db import connection

from apps.demo.benchmarks.reconciliation import measure
from apps.reconciliation.models import ReconciliationRun, SnapshotInvoiceLine

pytestmark = pytest.mark.django_db


def current_database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


def test_the_benchmark_reports_each_variant_against_the_same_run_baseline():
    rows = measure(current_database_url(), lines=4000, rounds=2)
    by_id = {row["id"]: row for row in rows}
    assert list(by_id) == ["R1", "R2", "R3"]
    assert by_id["R1"]["findings"] == by_id["R2"]["findings"] > 0  # the first pass changes nothing found
    assert by_id["R3"]["findings"] == 0 and by_id["R3"]["range_pass"]["differing_ranges"] == 0
    assert by_id["R1"]["baseline_rows"] == 4000  # every billing line; the ERP lines of missing invoices add none
    for row in rows:
        assert row["rounds"] == 2 and row["seconds_median"] > 0 and row["baseline_seconds_median"] > 0
        assert row["ratio"] is not None and row["python_peak_mb"] > 0
    assert not SnapshotInvoiceLine.objects.exists() and not ReconciliationRun.objects.exists()
