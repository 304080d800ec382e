"""The chaos harness itself, in miniature: its own PostgreSQL, two web processes, two clusters, faults, the count.

`make chaos` runs the real thing (minutes); this proves in CI that the harness starts, breaks things,
recovers and counts. Skipped where Debian's PostgreSQL binaries are not installed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from apps.demo.chaos import postgres_bin

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(postgres_bin() is None, reason="initdb is not installed (/usr/lib/postgresql/*/bin)"),
]


def test_a_tiny_chaos_run_acknowledges_stores_and_completes_every_event_exactly_once(tmp_path):
    report, figures_path = tmp_path / "RELIABILITY.md", tmp_path / "figures.json"
    env = {**os.environ, "DEBUG": "1", "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    argv = [
        sys.executable,
        str(Path(settings.BASE_DIR) / "manage.py"),
        "chaos",
        *("--webhooks", "20", "--duplicates", "4", "--uploads", "1"),
        *("--gunicorn-kills", "1", "--cluster-kills", "1", "--pg-restarts", "1", "--interval", "2"),
        *("--time-limit", "400", "--pg-port", str(54400 + os.getpid() % 500)),
        *("--web-ports", f"{9100 + os.getpid() % 400},{9600 + os.getpid() % 400}"),
        *("--report", str(report), "--json", str(figures_path)),
    ]
    run = subprocess.run(argv, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    figures = json.loads(figures_path.read_text())
    assert (
        figures["webhook_acks"] == figures["events"]["webhook_distinct"] == figures["effects"]["deals_completed"] == 20
    )
    assert figures["events"]["webhook_rows"] == 20  # the duplicates were answered, not stored again
    assert figures["duplicates_acked_as_repeats"] == 4
    assert figures["steps_succeeded_twice"] == 0
    assert not any(figures["duplicates"].values())
    assert (figures["cluster_kills"], figures["pg_restarts"], figures["gunicorn_kills"]) == (1, 1, 1)
    assert "Chaos under load: PASS" in report.read_text()
