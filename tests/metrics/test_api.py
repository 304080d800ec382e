"""The metrics API: each figure with its definition, filters, the CSV export, alert rules, and who may read what."""

import csv
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.context import system_context
from apps.metrics.definitions import DEFINITIONS
from apps.metrics.export import CSV_COLUMNS
from apps.metrics.models import AlertRule
from apps.metrics.services import metric_values_compute, metrics_refresh

from . import builders as b

pytestmark = pytest.mark.django_db


@pytest.fixture
def computed(db):
    """WIP in two entities and currencies last month, computed twice (two snapshots)."""
    uk, us = b.entities()
    period = b.last_month()
    b.time_entry(b.project_in(uk, "GBP"), hours=10, rate=150, work_date=period.start)
    b.time_entry(b.project_in(us, "USD"), hours=8, rate="125.50", work_date=period.start)
    with system_context("test"):
        metric_values_compute(periods=[period], reason="test")
        metric_values_compute(periods=[period], reason="test")
    return period


def test_the_metrics_api_returns_each_figure_with_its_definition(api_as, finance_user, computed):
    response = api_as(finance_user).get("/api/v1/metrics/", {"metric": "wip", "period": computed.label})

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(row["legal_entity"], row["currency"], row["value"]) for row in rows] == [
        ("NW-UK", "GBP", "1500.0000"),
        ("NW-US", "USD", "1004.0000"),
    ]
    first = rows[0]
    assert first["name"] == "Work in progress (WIP)"
    assert first["unit"] == "money"
    assert first["definition"] == DEFINITIONS["wip"].definition
    assert first["period"] == computed.label and first["period_start"] == computed.start.isoformat()
    assert first["legal_entity_name"] == "NW-UK Ltd" and first["sample_size"] == 1


def test_it_filters_by_metric_entity_and_period_and_shows_history_on_request(api_as, finance_user, computed):
    client = api_as(finance_user)

    by_entity = client.get("/api/v1/metrics/", {"entity": "NW-US", "period": computed.label}).json()["results"]
    other_month = client.get("/api/v1/metrics/", {"period": computed.next().label}).json()["results"]
    history = client.get("/api/v1/metrics/", {"metric": "wip", "entity": "NW-UK", "snapshots": "all"}).json()["results"]
    firm = client.get("/api/v1/metrics/", {"firm_wide": "true", "period": computed.label}).json()["results"]

    assert {row["metric"] for row in by_entity} == {"wip"}
    assert {row["legal_entity"] for row in by_entity} == {"NW-US"}
    assert other_month == []
    assert len(history) == 2  # two computations of the same figure
    assert all(row["legal_entity"] is None for row in firm)


def test_a_period_that_is_not_a_month_is_a_readable_error(api_as, finance_user):
    response = api_as(finance_user).get("/api/v1/metrics/", {"period": "last week"})

    assert response.status_code == 422
    assert "not a month" in response.json()["detail"] and "2026-11" in response.json()["fix"]


def test_the_definitions_endpoint_describes_every_metric(api_as, auditor):
    response = api_as(auditor).get("/api/v1/metrics/definitions/")

    assert response.status_code == 200
    codes = {item["code"]: item for item in response.json()}
    assert set(codes) == {
        "project_activation_time",
        "time_to_bill",
        "invoice_lag",
        "sync_failure_rate",
        "unreconciled_value",
        "exception_aging",
        "wip",
        "backlog",
        "dso",
    }
    assert codes["dso"]["unit"] == "days" and codes["sync_failure_rate"]["firm_wide"] is True


def test_the_csv_export_has_the_documented_stable_columns(api_as, finance_user, computed):
    response = api_as(finance_user).get("/api/v1/metrics/export/", {"metric": "wip", "period": computed.label})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="wip_{computed.label}.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert (
        list(rows[0])
        == CSV_COLUMNS
        == [
            "metric",
            "metric_name",
            "unit",
            "period",
            "period_start",
            "period_end",
            "legal_entity",
            "legal_entity_name",
            "currency",
            "value",
            "sample_size",
            "as_of",
            "computed_at",
            "definition",
        ]
    )
    assert [(r["legal_entity"], r["currency"], r["value"]) for r in rows] == [
        ("NW-UK", "GBP", "1500.00"),
        ("NW-US", "USD", "1004.00"),
    ]
    assert rows[0]["period_end"] == computed.end.isoformat()


def test_the_csv_export_works_for_a_bi_tool_asking_for_csv(api, finance_user, computed):
    api.force_authenticate(finance_user)
    response = api.get("/api/v1/metrics/export/", {"metric": "dso", "period": computed.label}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response.content.decode().splitlines() == [",".join(CSV_COLUMNS)]  # computed, but no invoices: no figure


def test_the_csv_export_says_when_a_month_was_never_computed(api_as, finance_user, db):
    response = api_as(finance_user).get("/api/v1/metrics/export/", {"metric": "wip", "period": "2019-01"})

    assert response.status_code == 422
    assert "has not been computed for 2019-01" in response.json()["detail"]
    assert "compute_metrics --period 2019-01" in response.json()["fix"]


@pytest.mark.parametrize(
    ("role_user", "metrics", "alerts"),
    [
        ("finance_user", 200, 200),
        ("auditor", 200, 200),
        ("delivery_user", 200, 403),
        ("outsider", 403, 403),
    ],
)
def test_who_may_read_metrics_and_alerts(request, api_as, computed, role_user, metrics, alerts):
    client = api_as(request.getfixturevalue(role_user))

    assert client.get("/api/v1/metrics/").status_code == metrics
    assert client.get("/api/v1/metrics/export/", {"metric": "wip", "period": computed.label}).status_code == metrics
    assert client.get("/api/v1/alerts/").status_code == alerts
    assert client.get("/api/v1/alert-notifications/").status_code == alerts


def test_finance_sets_alert_thresholds_and_the_auditor_cannot(api_as, finance_user, auditor):
    b.entities()
    rule = {
        "name": "UK WIP",
        "kind": "metric",
        "metric": "wip",
        "legal_entity": "NW-UK",
        "currency": "GBP",
        "threshold": "25000",
        "owner_role": "finance_ops",
    }

    refused = api_as(auditor).post("/api/v1/alert-rules/", rule)
    created = api_as(finance_user).post("/api/v1/alert-rules/", rule, HTTP_X_CHANGE_REASON="Month-end watch")

    assert refused.status_code == 403
    assert created.status_code == 201, created.json()
    saved = AlertRule.objects.get()
    assert saved.threshold == Decimal("25000") and saved.legal_entity.code == "NW-UK"
    assert saved.history.get().history_change_reason == "Month-end watch"
    assert api_as(auditor).get("/api/v1/alert-rules/").json()["results"][0]["name"] == "UK WIP"


def test_an_alert_rule_without_its_metric_is_refused_with_the_reason(api_as, finance_user):
    response = api_as(finance_user).post(
        "/api/v1/alert-rules/",
        {"name": "Broken", "kind": "metric", "threshold": "1", "owner_role": "finance_ops"},
    )

    assert response.status_code == 400
    assert "needs the metric it watches" in response.json()["detail"]


def test_the_alert_log_shows_each_notification_with_its_recipients(api_as, finance_user, make_user):
    make_user("fred.finance", "finance_ops", email="fred@example.com")
    uk, _ = b.entities()
    AlertRule.objects.create(
        name="UK WIP", metric="wip", legal_entity=uk, threshold=Decimal("100"), owner_role="finance_ops"
    )
    b.time_entry(b.project_in(uk, "GBP"), hours=10, rate=150, work_date=timezone.localdate())
    with system_context("test"):
        metrics_refresh(reason="test")

    alerts = api_as(finance_user).get("/api/v1/alerts/", {"status": "open"}).json()["results"]
    notifications = api_as(finance_user).get("/api/v1/alert-notifications/").json()["results"]
    assert [(a["rule"], a["notification_count"], a["owner_role"]) for a in alerts] == [("UK WIP", 1, "finance_ops")]
    assert [(n["kind"], n["recipients"]) for n in notifications] == [("breach", ["fred@example.com"])]
