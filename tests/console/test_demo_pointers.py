"""`make demo` reports the ledger while the month runs and ends by saying where to click first."""

import io

import pytest

from apps.demo.management.commands.demo import Command
from apps.demo.scenario import drain
from apps.sync.models import ExceptionGroup

pytestmark = pytest.mark.django_db


def test_the_demo_points_at_the_console_and_the_group_holding_up_the_most_money(failing_deal):
    failing_deal(1, region="APAC", amount="100", currency="USD")
    failing_deal(2, region="APAC", amount="100", currency="USD")
    failing_deal(3, region="LATAM", amount="72000", currency="USD")
    command = Command(stdout=io.StringIO())
    lines = command.click_first("http://127.0.0.1:8000")
    biggest = ExceptionGroup.objects.get(missing_key="value_map:region-subsidiary=latam")
    assert "http://127.0.0.1:8000/" in lines[0] and "finance" in lines[0]
    assert lines[1] == f"Then the biggest exception group: http://127.0.0.1:8000/exceptions/{biggest.pk}/"
    assert "(1 open, USD 72,000.00)" in lines[2]


def test_draining_the_ledger_reports_where_it_stands(failing_deal, monkeypatch):
    failing_deal(1)
    monkeypatch.setattr("apps.demo.scenario.sandbox_webhooks_wait", lambda timeout: None)
    said: list[str] = []
    assert drain(inline=True, timeout=5, quiet=0.1, progress=said.append)
    assert said and "1 exception" in said[-1]
