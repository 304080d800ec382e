"""`manage.py demo`: secrets, database, demo firm and the processes it starts and stops."""

import io
import os
import socket
import stat
import sys
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from apps.canonical.models import Invoice
from apps.demo.environment import demo_secret_specs, demo_secrets_ensure, secrets_path
from apps.demo.runner import Supervisor, ensure_port_free, wait_until_healthy
from apps.demo.services import DEMO_PASSWORD, DemoDataError
from apps.inbound.signatures import secret_problem


@pytest.mark.django_db
def test_demo_without_serving_prepares_a_fresh_database_end_to_end():
    out = io.StringIO()
    with mock.patch.dict(os.environ):
        call_command("demo", no_serve=True, stdout=out, stderr=io.StringIO())
        names = demo_secret_specs()
        assert all(os.environ.get(name) for name in names)

    printed = out.getvalue()
    assert "The demo database is ready" in printed
    assert f"password for all: {DEMO_PASSWORD}" in printed
    for username in ("admin", "finance", "delivery", "steward", "auditor", "integration"):
        assert f"  {username} " in printed
    assert Invoice.objects.filter(number="INV-UK-2026-0001").exists()
    assert secrets_path().exists()


@pytest.mark.django_db
def test_demo_refuses_to_run_on_a_server_without_force(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only loaded on a developer machine"):
        call_command("demo", no_serve=True, stdout=io.StringIO())
    assert not Invoice.objects.exists()


def test_demo_secrets_are_generated_once_and_kept_for_the_owner_only():
    first = demo_secrets_ensure()
    second = demo_secrets_ensure()

    assert first == second
    assert set(first) == set(demo_secret_specs())
    assert stat.S_IMODE(secrets_path().stat().st_mode) == 0o600


def test_a_secret_missing_from_the_file_is_added_and_the_others_are_kept():
    first = demo_secrets_ensure()
    lines = secrets_path().read_text().splitlines()
    secrets_path().write_text("\n".join(line for line in lines if "KANTATA_WEBHOOK" not in line) + "\n")

    again = demo_secrets_ensure()

    assert again["IC_SECRET_DEMO_KANTATA_WEBHOOK_TOKEN"] != first["IC_SECRET_DEMO_KANTATA_WEBHOOK_TOKEN"]
    assert {k: v for k, v in again.items() if k != "IC_SECRET_DEMO_KANTATA_WEBHOOK_TOKEN"} == {
        k: v for k, v in first.items() if k != "IC_SECRET_DEMO_KANTATA_WEBHOOK_TOKEN"
    }


def test_each_generated_webhook_secret_fits_its_signing_scheme():
    values = demo_secrets_ensure()
    for name, scheme in demo_secret_specs().items():
        if scheme:
            assert secret_problem(scheme, values[name]) is None, name
    assert values["IC_SECRET_DEMO_SALESFORCE_WEBHOOK_SECRET"].startswith("whsec_")
    assert ":" in values["IC_SECRET_DEMO_NETSUITE_WEBHOOK_BASIC"]


def test_a_broken_secrets_file_is_reported_with_its_line():
    secrets_path().parent.mkdir(parents=True, exist_ok=True)
    secrets_path().write_text("# demo\nDEMO_X=1\nthis is not a setting\n")
    with pytest.raises(DemoDataError, match="Line 3 of .* is not NAME=value"):
        demo_secrets_ensure()


def test_stopping_the_demo_stops_every_process_it_started():
    with Supervisor(stop_timeout=5) as supervisor:
        first = supervisor.start("sleeper one", [sys.executable, "-c", "import time; time.sleep(120)"])
        second = supervisor.start("sleeper two", [sys.executable, "-c", "import time; time.sleep(120)"])
        assert first.running and second.running
    assert not first.running and not second.running


def test_a_console_that_dies_before_answering_is_reported_with_its_exit_code():
    with Supervisor() as supervisor:
        child = supervisor.start("web console", [sys.executable, "-c", "raise SystemExit(3)"])
        with pytest.raises(DemoDataError, match=r"web console stopped before it answered \(exit code 3\)"):
            wait_until_healthy(child, "http://127.0.0.1:9/healthz", timeout=60)


def test_a_port_already_in_use_is_refused_with_another_port_suggested():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DemoDataError, match=f"Port {port} .* already in use") as caught:
            ensure_port_free(port)
    assert f"PORT={port + 1}" in caught.value.fix
