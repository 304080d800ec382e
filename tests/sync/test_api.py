"""The transaction API: the queue with its filters, the trace of one transaction, and the actions on them."""

import datetime
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.errors import BusinessError
from apps.core.masking import MASK
from apps.sync.engine import run_due_steps
from apps.sync.models import Step, Transaction
from apps.sync.registry import StepSpec, Subject, WorkflowDefinition, register
from apps.sync.services import transaction_assign, transaction_start
from apps.sync.steps import Retryable, StepResult

pytestmark = pytest.mark.django_db

LIST = "/api/v1/transactions/"


@register
class QueueApiFlow(WorkflowDefinition):
    """Check, then post to ERP; the input's "fail" says how the post fails."""

    name = "queue_api_test"
    owner_role = "finance_ops"

    def plan(self, data):
        return [StepSpec("check", "Check the payment"), StepSpec("post", "Apply the payment in ERP", target="erp")]

    def subject(self, data):
        return Subject(
            business_key=f"payment:{data['ref']}",
            label=f"Payment {data['ref']}",
            value_at_risk=Decimal(data.get("amount", "100.00")),
            currency="USD",
        )

    def step_check(self, ctx):
        return StepResult(output={"checked": True})

    def step_post(self, ctx):
        ctx.calls.append(
            {
                "method": "POST",
                "url": "https://netsuite.example/services/rest/record/v1/customerPayment",
                "request_headers": {"Authorization": MASK},
                "request_body": json.dumps({"ref": ctx.input["ref"]}),
                "status": 503 if ctx.input.get("fail") else 201,
                "response_body": "{}",
                "duration_ms": 12,
                "error": None,
                "idempotency_key": ctx.idempotency_key,
            }
        )
        if ctx.input.get("fail") == "business":
            raise BusinessError(f"Payment {ctx.input['ref']} names an invoice ERP does not know.", fix="Post it first.")
        if ctx.input.get("fail") == "transient":
            raise Retryable("NetSuite is unavailable (503).")
        return StepResult(output={"applied": True})


def failed(ref="PAY-1", *, fail="business", **extra) -> Transaction:
    txn = transaction_start(
        workflow="queue_api_test", data={"ref": ref, "fail": fail, **extra}, reason=f"Payment {ref} received"
    )
    run_due_steps()
    txn.refresh_from_db()
    return txn


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.fixture
def finance(api_as, finance_user):
    return api_as(finance_user)


def listed(client, **params) -> set[str]:
    response = client.get(LIST, params)
    assert response.status_code == 200, response.content
    return {row["subject"] for row in response.json()["results"]}


def test_the_list_filters_like_the_queue(finance, finance_user, delivery_user, systems):
    mine = failed("PAY-MINE")
    transaction_assign(txn=mine, owner=finance_user, actor=finance_user)
    retrying = failed("PAY-RETRY", fail="transient")
    done = failed("PAY-DONE", fail=None)
    real = transaction_start(
        workflow="invoice_to_erp",
        data={
            "source_system": "chargebee",
            "data": {
                "invoice_external_id": "inv_404",
                "number": "INV-404",
                "customer_external_id": "cust_x",
                "currency": "USD",
                "total": "18450.00",
            },
        },
        reason="test",
    )
    run_due_steps()
    real.refresh_from_db()
    assert real.status == Transaction.Status.EXCEPTION and real.error_class == "mapping"

    everything = {"Payment PAY-MINE", "Payment PAY-RETRY", "Payment PAY-DONE", "Invoice INV-404"}
    assert listed(finance) == everything
    assert listed(finance, queue="problems") == everything - {"Payment PAY-DONE"}
    assert listed(finance, status="waiting_retry") == {"Payment PAY-RETRY"}
    assert listed(finance, status=["exception", "completed"]) == {
        "Payment PAY-MINE",
        "Payment PAY-DONE",
        "Invoice INV-404",
    }
    assert listed(finance, workflow="invoice_to_erp") == {"Invoice INV-404"}
    assert listed(finance, error_class="mapping") == {"Invoice INV-404"}
    assert listed(finance, error_class="transient") == {"Payment PAY-RETRY"}
    assert listed(finance, owner_role="finance_ops") == everything
    assert listed(finance, owner_role="delivery_ops") == set()
    assert listed(finance, owner="me") == {"Payment PAY-MINE"}
    assert listed(finance, owner=finance_user.username) == {"Payment PAY-MINE"}
    assert listed(finance, owner="none") == everything - {"Payment PAY-MINE"}
    assert listed(finance, business_key="payment:PAY-RETRY") == {"Payment PAY-RETRY"}
    assert listed(finance, correlation_id=done.correlation_id) == {"Payment PAY-DONE"}
    assert listed(finance, subject="inv-404") == {"Invoice INV-404"}
    assert listed(finance, subject="unavailable") == {"Payment PAY-RETRY"}
    assert listed(finance, search=retrying.correlation_id) == {"Payment PAY-RETRY"}
    tomorrow = (timezone.now() + datetime.timedelta(days=1)).isoformat()
    assert listed(finance, created_before=tomorrow) == everything
    assert listed(finance, created_after=tomorrow) == set()
    bad = problem(finance.get(LIST, {"workflow": "no_such_flow"}), 400)
    assert "workflow" in bad["detail"]


def test_the_list_row_says_what_the_queue_shows(finance, systems):
    txn = failed("PAY-ROW", amount="2500.00")
    row = finance.get(LIST).json()["results"][0]
    assert row["id"] == txn.pk
    assert row["status"] == "exception" and row["status_display"] == "Exception"
    assert row["workflow"] == "queue_api_test"
    assert row["value_at_risk"] == "2500.00" and row["currency"] == "USD"
    assert row["owner"] is None and row["owner_role"] == "finance_ops" and row["owner_role_display"] == "Finance ops"
    assert row["error_message"] == "Payment PAY-ROW names an invoice ERP does not know."
    assert row["error_fix"] == "Post it first."
    assert row["exception_at"] and row["problem_since"]
    assert "steps" not in row and "input" not in row


def test_retrieve_has_the_input_each_step_and_every_attempt_with_its_calls(finance, systems):
    txn = failed("PAY-TRACE")
    body = finance.get(f"{LIST}{txn.pk}/").json()
    assert body["input"] == {"ref": "PAY-TRACE", "fail": "business"}
    assert body["input_override"] is None and body["effective_input"] == body["input"]
    assert body["state"] == {"checked": True}
    assert [step["name"] for step in body["steps"]] == ["check", "post"]
    post = body["steps"][1]
    assert post["status"] == "failed" and post["target_system"] == "netsuite"
    assert post["attempts"] == 1 and post["idempotency_key"] == f"{txn.correlation_id}.2"
    assert post["error_message"] == "Payment PAY-TRACE names an invoice ERP does not know."
    assert post["request"]["url"].endswith("/customerPayment")
    assert post["request"]["request_headers"] == {"Authorization": MASK}
    attempt = post["attempt_log"][0]
    assert attempt["number"] == 1 and attempt["outcome"] == "failed"
    assert attempt["http_calls"][0]["status"] == 503


def test_replay_as_is_records_who_and_why(finance, finance_user, systems):
    txn = failed("PAY-AGAIN")
    response = finance.post(f"{LIST}{txn.pk}/replay/", {"reason": "ERP invoice now posted"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"
    row = Transaction.objects.get(pk=txn.pk).history.latest()
    assert (row.history_user, row.history_change_reason) == (finance_user, "ERP invoice now posted")


def test_replay_with_an_edited_input_keeps_the_original(finance, systems):
    txn = failed("PAY-EDIT")
    edited = {"ref": "PAY-EDIT", "fail": None}
    response = finance.post(f"{LIST}{txn.pk}/replay/", {"reason": "Flag removed", "input_override": edited})
    assert response.status_code == 200
    body = response.json()
    assert body["input"] == {"ref": "PAY-EDIT", "fail": "business"}
    assert body["input_override"] == edited and body["effective_input"] == edited
    run_due_steps()
    assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.COMPLETED


def test_replay_with_an_edited_step_input_and_a_chosen_step(finance, systems):
    txn = failed("PAY-STEP")
    response = finance.post(
        f"{LIST}{txn.pk}/replay/",
        {"reason": "Only the post", "from_sequence": 2, "step_input_override": {"ref": "PAY-STEP"}},
    )
    assert response.status_code == 200
    assert response.json()["steps"][1]["input_override"] == {"ref": "PAY-STEP"}
    assert Transaction.objects.get(pk=txn.pk).input_override is None


def test_bad_input_is_answered_with_readable_problems(finance, systems):
    txn = failed("PAY-BAD")
    url = f"{LIST}{txn.pk}/replay/"
    malformed = finance.post(url, data='{"reason": "x", "input_override": {', content_type="application/json")
    assert "JSON parse error" in problem(malformed, 400)["detail"]
    not_object = problem(finance.post(url, {"reason": "x", "input_override": [1, 2]}), 400)
    assert "input_override: Send a JSON object" in not_object["detail"]
    no_reason = problem(finance.post(url, {"input_override": {}}), 400)
    assert "reason: Say why" in no_reason["detail"]
    no_step = problem(finance.post(url, {"reason": "x", "from_sequence": 9}), 422)
    assert "has no step 9" in no_step["detail"]
    assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.EXCEPTION


def test_a_completed_transaction_cannot_be_replayed(finance, systems):
    done = failed("PAY-FINE", fail=None)
    body = problem(finance.post(f"{LIST}{done.pk}/replay/", {"reason": "again"}), 422)
    assert "is completed; only exceptions and transactions waiting to retry can be re-run" in body["detail"]


def test_resolve_and_ignore_need_a_reason(finance, finance_user, systems):
    first, second = failed("PAY-R1"), failed("PAY-R2")
    assert "reason" in problem(finance.post(f"{LIST}{first.pk}/resolve/", {"reason": " "}), 400)["detail"]
    resolved = finance.post(f"{LIST}{first.pk}/resolve/", {"reason": "Applied by hand in NetSuite"})
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_by"] == finance_user.username
    ignored = finance.post(f"{LIST}{second.pk}/resolve/", {"reason": "Test payment", "ignore": True})
    assert ignored.json()["status"] == "ignored"
    again = problem(finance.post(f"{LIST}{second.pk}/resolve/", {"reason": "twice"}), 422)
    assert "already ignored" in again["detail"]


def test_assign_to_a_person_who_may_act_or_to_nobody(finance, finance_user, delivery_user, auditor, systems):
    txn = failed("PAY-OWN")
    url = f"{LIST}{txn.pk}/assign/"
    assert finance.post(url, {"owner": delivery_user.username}).json()["owner"] == delivery_user.username
    assert Transaction.objects.get(pk=txn.pk).history.latest().history_user == finance_user
    assert finance.post(url, {"owner": None}).json()["owner"] is None
    assert "no user called" in problem(finance.post(url, {"owner": "nobody.here"}), 400)["detail"]
    assert "cannot work on exceptions" in problem(finance.post(url, {"owner": auditor.username}), 400)["detail"]


def test_bulk_replay_by_ids_reports_what_it_refused(finance, finance_user, systems):
    first, second = failed("PAY-B1"), failed("PAY-B2")
    done = failed("PAY-B3", fail=None)
    response = finance.post(f"{LIST}replay/", {"reason": "ERP back", "ids": [first.pk, second.pk, done.pk, 999_999]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["matched"] == 3 and body["replayed"] == 2
    refused = {item["id"]: item["reason"] for item in body["refused"]}
    assert "There is no transaction with id 999999." == refused[999_999]
    assert "is completed" in refused[done.pk]
    assert Transaction.objects.get(pk=first.pk).history.latest().history_change_reason == "ERP back"


def test_bulk_replay_by_filter_takes_open_problems_only(finance, systems):
    retrying = failed("PAY-F1", fail="transient")
    business = failed("PAY-F2")
    failed("PAY-F3", fail=None)
    body = finance.post(
        f"{LIST}replay/", {"reason": "NetSuite outage over", "filter": {"error_class": ["transient"]}}
    ).json()
    assert body == {"matched": 1, "replayed": 1, "refused": []}
    assert Transaction.objects.get(pk=retrying.pk).status == Transaction.Status.PENDING
    assert Transaction.objects.get(pk=business.pk).status == Transaction.Status.EXCEPTION
    by_key = finance.post(
        f"{LIST}replay/",
        {"reason": "Invoice posted", "filter": {"business_key": "payment:PAY-F2", "status": "exception"}},
    ).json()
    assert by_key == {"matched": 1, "replayed": 1, "refused": []}
    by_workflow = finance.post(f"{LIST}replay/", {"reason": "x", "filter": {"workflow": "invoice_to_erp"}}).json()
    assert by_workflow == {"matched": 0, "replayed": 0, "refused": []}


def test_bulk_replay_refuses_a_vague_or_unknown_selection(finance, systems):
    failed("PAY-V")
    assert "Say which transactions" in problem(finance.post(f"{LIST}replay/", {"reason": "x"}), 400)["detail"]
    typo = problem(finance.post(f"{LIST}replay/", {"reason": "x", "filter": {"workflw": "x"}}), 400)
    assert "Unknown filter workflw" in typo["detail"]
    bad_value = problem(finance.post(f"{LIST}replay/", {"reason": "x", "filter": {"status": "broken"}}), 400)
    assert "filter" in bad_value["detail"]
    assert "reason" in problem(finance.post(f"{LIST}replay/", {"ids": [1]}), 400)["detail"]


def test_people_who_may_only_read_are_refused_every_action_with_403(api_as, auditor, outsider, systems):
    txn = failed("PAY-READ")
    reader = api_as(auditor)
    assert reader.get(f"{LIST}{txn.pk}/").status_code == 200
    for url, data in [
        (f"{LIST}{txn.pk}/replay/", {"reason": "x"}),
        (f"{LIST}{txn.pk}/resolve/", {"reason": "x"}),
        (f"{LIST}{txn.pk}/assign/", {"owner": None}),
        (f"{LIST}replay/", {"reason": "x", "ids": [txn.pk]}),
    ]:
        body = problem(reader.post(url, data), 403)
        assert "may read transactions but not re-run, resolve or assign" in body["detail"]
    assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.EXCEPTION
    problem(api_as(outsider).get(LIST), 403)
    assert problem(api_as(auditor).get(f"{LIST}424242/"), 404)["detail"].startswith("There is no transaction")


def test_token_authentication_works_for_actions(finance_user, systems):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    txn = failed("PAY-TOKEN")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=finance_user).key}")
    assert client.post(f"{LIST}{txn.pk}/resolve/", {"reason": "Closed by the month-end script"}).status_code == 200
    assert APIClient().get(LIST).status_code in (401, 403)


def test_the_history_says_who_did_what_and_why(finance, finance_user, systems):
    txn = failed("PAY-HIST")
    finance.post(f"{LIST}{txn.pk}/replay/", {"reason": "Fixed the invoice in ERP"})
    rows = finance.get(f"{LIST}{txn.pk}/history/").json()["results"]
    newest = rows[0]
    assert newest["history_user"] == finance_user.username
    assert newest["history_change_reason"] == "Fixed the invoice in ERP"
    assert {"field": "status", "old": "exception", "new": "pending", "masked": False} in newest["changes"]


def test_rates_in_an_input_are_hidden_from_delivery_ops(api_as, delivery_user, finance, systems):
    txn = failed("PAY-RATES", new_rates=[{"role": "Architect", "bill_rate": "245.00"}])
    delivery = api_as(delivery_user)
    body = delivery.get(f"{LIST}{txn.pk}/").json()
    assert body["input"]["new_rates"] == [{"role": "Architect", "bill_rate": MASK}]
    assert "245.00" not in json.dumps(delivery.get(f"{LIST}{txn.pk}/history/").json())
    assert finance.get(f"{LIST}{txn.pk}/").json()["input"]["new_rates"][0]["bill_rate"] == "245.00"
    refused = problem(delivery.post(f"{LIST}{txn.pk}/replay/", {"reason": "x", "input_override": {"ref": "x"}}), 403)
    assert "bill or cost rates" in refused["detail"]
    assert delivery.post(f"{LIST}{txn.pk}/replay/", {"reason": "As is"}).status_code == 200


def test_the_list_and_the_trace_need_no_query_per_row(finance, finance_user, systems, django_assert_max_num_queries):
    for n in range(3):
        transaction_assign(txn=failed(f"PAY-Q{n}"), owner=finance_user, actor=finance_user)
    with django_assert_max_num_queries(6) as few:
        assert finance.get(LIST).status_code == 200
    for n in range(3, 25):
        transaction_assign(txn=failed(f"PAY-Q{n}", fail="transient"), owner=finance_user, actor=finance_user)
    with django_assert_max_num_queries(len(few)):
        assert len(finance.get(LIST).json()["results"]) == 25

    txn = Transaction.objects.filter(status=Transaction.Status.WAITING_RETRY).first()
    with django_assert_max_num_queries(10) as once:
        finance.get(f"{LIST}{txn.pk}/")
    for _ in range(3):
        Step.objects.filter(transaction=txn, status=Step.Status.WAITING_RETRY).update(
            next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        run_due_steps()
    with django_assert_max_num_queries(len(once)):
        body = finance.get(f"{LIST}{txn.pk}/").json()
    assert len(body["steps"][1]["attempt_log"]) == 4
