"""The REST API under /api/v1/reconciliation/ and `manage.py reconcile`."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_q.models import OrmQ

from apps.reconciliation.models import Discrepancy, ReconciliationRun
from apps.reconciliation.tasks import run_reconciliation

from .conftest import PERIOD
from .test_checks import reconcile
from .test_services import erp_tax

pytestmark = pytest.mark.django_db(transaction=True)
RUNS = "/api/v1/reconciliation/runs/"
DISCREPANCIES = "/api/v1/reconciliation/discrepancies/"
SIGN_OFFS = "/api/v1/reconciliation/sign-offs/"


def test_finance_starts_a_run_on_demand_and_a_worker_executes_it(books, api_as, finance_user):
    books.billing_invoice("INV-1", "GBP", [("100.00", "20.00")])
    client = api_as(finance_user)
    answer = client.post(RUNS, {"period": PERIOD, "legal_entity": "NW-UK"}, format="json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["status"] == "queued" and answer.json()["legal_entity"] == "NW-UK"
    assert OrmQ.objects.count() == 1  # handed to the task queue once committed

    run_id = answer.json()["id"]
    assert run_reconciliation(run_id).endswith("succeeded")
    assert run_reconciliation(run_id).endswith("succeeded")  # a repeated message changes nothing
    run = client.get(f"{RUNS}{run_id}/").json()
    assert (run["status"], run["progress"]) == ("succeeded", 100)
    assert run["duration_seconds"] >= 0 and run["summary"]["open"] == 3
    wrong = client.post(RUNS, {"period": "2026-13"}, format="json")
    assert wrong.status_code == 422 and "not an accounting period" in wrong.json()["detail"]
    assert client.post(RUNS, {"period": "November"}, format="json").status_code == 400


def test_discrepancies_are_listed_with_filters_and_explained_with_a_reason(books, api_as, finance_user):
    books.billing_invoice("INV-1", "GBP", [("100.00", "20.00")])
    books.both("INV-2", "EUR", [("1000.00", "190.00")])
    erp_tax("INV-2", "170.00")
    reconcile()
    client = api_as(finance_user)
    rows = client.get(DISCREPANCIES, {"check_type": "invoice_tax", "status": "open"}).json()["results"]
    assert [(row["business_key"], row["difference"], row["currency"]) for row in rows] == [("INV-2", "20.00", "EUR")]
    assert rows[0]["value_at_risk"] == "21.80" and rows[0]["days_open"] == 0
    by_entity = client.get(DISCREPANCIES, {"legal_entity": "NW-UK", "min_value_at_risk": "100"}).json()["results"]
    assert {row["check_type"] for row in by_entity} >= {"invoice_missing_in_erp"}
    assert all(row["legal_entity"] == "NW-UK" for row in by_entity)

    refused = client.post(f"{DISCREPANCIES}{rows[0]['id']}/explain/", {"reason": ""}, format="json")
    assert refused.status_code == 400
    explained = client.post(f"{DISCREPANCIES}{rows[0]['id']}/explain/", {"reason": "Tax code fix in ERP next week"})
    assert explained.status_code == 200 and explained.json()["status"] == "explained"
    assert explained.json()["explained_by"] == finance_user.username
    rerun = client.post(f"{DISCREPANCIES}{by_entity[0]['id']}/rerun/", {"reason": "try again"}, format="json")
    assert rerun.status_code == 422
    assert rerun["Content-Type"].startswith("application/problem+json")
    assert "nothing to re-run" in rerun.json()["detail"]


def test_roles_read_or_act_as_their_grants_say(books, api_as, delivery_user, auditor, outsider):
    reconcile()
    row = Discrepancy.objects.first()
    assert api_as(auditor).get(DISCREPANCIES).status_code == 200
    assert api_as(delivery_user).get(RUNS).status_code == 200
    assert api_as(outsider).get(DISCREPANCIES).status_code == 403
    assert api_as(auditor).post(RUNS, {"period": PERIOD}, format="json").status_code == 403
    if row is not None:
        assert api_as(delivery_user).post(f"{DISCREPANCIES}{row.pk}/explain/", {"reason": "x"}).status_code == 403
    assert api_as(auditor).post(SIGN_OFFS, {"period": PERIOD}, format="json").status_code == 403


def test_sign_off_over_the_api_needs_a_second_person(books, api_as, make_user):
    preparer = make_user("pat.preparer", "finance_ops")
    approver = make_user("alex.approver", "finance_ops")
    books.both("INV-1", "USD", [("10.00", "0")])
    reconcile()
    prepared = api_as(preparer).post(SIGN_OFFS, {"period": PERIOD, "note": "All agreed"}, format="json")
    assert prepared.status_code == 201 and prepared.json()["status"] == "prepared"
    url = f"{SIGN_OFFS}{prepared.json()['id']}/approve/"
    own = api_as(preparer).post(url, {}, format="json")
    assert own.status_code == 422 and "another person must approve" in own.json()["detail"]
    approved = api_as(approver).post(url, {}, format="json")
    assert approved.status_code == 200 and approved.json()["approved_by"] == "alex.approver"


def test_the_reconcile_command_runs_a_period_for_one_entity(books):
    books.billing_invoice("INV-1", "GBP", [("100.00", "20.00")])
    books.billing_invoice("INV-2", "USD", [("5.00", "0")])
    out = StringIO()
    call_command("reconcile", "--period", PERIOD, "--entity", "NW-UK", stdout=out)
    run = ReconciliationRun.objects.get()
    assert (run.trigger, run.status, run.legal_entity.code) == ("command", "succeeded", "NW-UK")
    assert f"Run #{run.pk} {PERIOD} (NW-UK): Succeeded" in out.getvalue()
    assert set(Discrepancy.objects.values_list("legal_entity__code", flat=True)) == {"NW-UK"}
    with pytest.raises(CommandError, match="no legal entity 'XX'"):
        call_command("reconcile", "--period", PERIOD, "--entity", "XX", stdout=StringIO())


def test_install_schedules_installs_the_daily_reconciliation_once(db):
    from django_q.models import Schedule

    call_command("install_schedules", stdout=StringIO())
    call_command("install_schedules", stdout=StringIO())
    assert (
        Schedule.objects.filter(name="daily reconciliation", func="apps.reconciliation.tasks.reconcile_daily").count()
        == 1
    )
