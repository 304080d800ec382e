"""The exception queue and the transaction trace in the admin: reading them, and re-running, resolving, assigning."""

import datetime
import json
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import BusinessError
from apps.core.masking import MASK
from apps.inbound.models import Delivery, InboundEvent
from apps.sync.engine import claim_step, run_due_steps
from apps.sync.models import Step, StepAttempt, Transaction
from apps.sync.registry import StepSpec, Subject, WorkflowDefinition, register
from apps.sync.services import transaction_assign, transaction_resolve, transaction_start
from apps.sync.steps import Retryable, StepResult

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:sync_transaction_changelist")


@register
class QueueAdminFlow(WorkflowDefinition):
    """Check, then post to ERP; the input says how the post fails ("fail": "business" | "transient")."""

    name = "queue_admin_test"
    owner_role = "finance_ops"

    def plan(self, data):
        return [StepSpec("check", "Check the invoice"), StepSpec("post", "Post the invoice to ERP", target="erp")]

    def subject(self, data):
        return Subject(
            business_key=f"invoice:{data['number']}",
            label=f"Invoice {data['number']}",
            value_at_risk=Decimal(data.get("total", "0")),
            currency=data.get("currency", "USD"),
        )

    def step_check(self, ctx):
        return StepResult(output={"checked": ctx.input["number"]})

    def step_post(self, ctx):
        fail = ctx.input.get("fail")
        body = json.dumps({"tranId": ctx.input["number"], "account": {"id": ctx.input.get("account", "")}})
        call = {
            "method": "POST",
            "url": "https://netsuite.example/services/rest/record/v1/invoice",
            "request_headers": {"Authorization": MASK, "Idempotency-Key": ctx.idempotency_key},
            "request_body": body,
            "status": 400 if fail else 201,
            "response_headers": {"Content-Type": "application/json"},
            "response_body": json.dumps({"title": "Invalid account reference"} if fail else {"id": "9001"}),
            "duration_ms": 87,
            "error": "HTTP 400 from NetSuite" if fail else None,
            "idempotency_key": ctx.idempotency_key,
            "started_at": timezone.now().isoformat(),
        }
        ctx.calls.append(call)
        if fail == "business":
            raise BusinessError(
                f"NetSuite refused invoice {ctx.input['number']}: account '{ctx.input.get('account')}' does not exist.",
                fix="Correct the ERP account on the customer's cross-reference, then re-run.",
                technical="400 INVALID_KEY_OR_REF account",
            )
        if fail == "transient":
            raise Retryable("NetSuite did not answer within 30 s.", technical="ReadTimeout")
        return StepResult(output={"erp_invoice_id": "9001"})


def failed(number="INV-1", *, fail="business", total="1250.00", currency="USD", runs=1, **extra) -> Transaction:
    """A transaction of the test flow, run until it fails."""
    txn = transaction_start(
        workflow="queue_admin_test",
        data={"number": number, "total": total, "currency": currency, "fail": fail, "account": "ACME-9", **extra},
        reason=f"Invoice {number} posted in billing",
    )
    for _ in range(runs):
        txn.steps.filter(status__in=Step.DUE_STATUSES).exclude(next_attempt_at=None).update(
            next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        run_due_steps()
    txn.refresh_from_db()
    return txn


def completed(number="INV-OK") -> Transaction:
    return failed(number, fail=None)


@pytest.fixture
def staff(make_user):
    def make(username, role):
        return make_user(username, role, is_staff=True)

    return make


@pytest.fixture
def finance(staff):
    return staff("fiona.finance", "finance_ops")


@pytest.fixture
def finance_client(client, finance):
    client.force_login(finance)
    return client


@pytest.fixture
def auditor_client(client, auditor):
    client.force_login(auditor)
    return client


def trace_url(txn, suffix="change"):
    return reverse(f"admin:sync_transaction_{suffix}", args=[txn.pk])


def texts(response):
    return [message.message for message in get_messages(response.wsgi_request)]


def test_the_queue_lists_open_problems_newest_first_with_age_owner_and_value_at_risk(finance_client, systems, finance):
    old = failed("INV-OLD", total="18450.00")
    Transaction.objects.filter(pk=old.pk).update(exception_at=timezone.now() - datetime.timedelta(days=2))
    new = failed("INV-NEW", total="980.50", currency="EUR")
    transaction_assign(txn=new, owner=finance, actor=finance)
    retrying = failed("INV-RETRY", fail="transient")
    done = completed()

    response = finance_client.get(QUEUE)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Exception queue" in page
    assert "INV-OLD" in page and "INV-NEW" in page and "INV-RETRY" in page
    assert "INV-OK" not in page  # completed: not a problem
    rows = list(response.context["cl"].result_list)
    assert rows[-1] == old  # the oldest problem last
    assert {row.pk for row in rows} == {old.pk, new.pk, retrying.pk}
    assert "2 d" in page
    assert "USD 18,450.00" in page and "EUR 980.50" in page
    assert "Retrying" in page and "Exception" in page
    assert "does not exist" in page  # the business message
    assert "Business rule" in page  # error class
    assert "Finance ops" in page and "Unassigned" in page
    assert done.pk in {row.pk for row in finance_client.get(QUEUE, {"queue": "all"}).context["cl"].result_list}


def test_the_queue_filters_by_owner_role_workflow_error_class_and_searches(finance_client, finance, systems):
    mine = failed("INV-MINE")
    transaction_assign(txn=mine, owner=finance, actor=finance)
    other = failed("INV-OTHER", fail="transient")

    def listed(**params):
        return {row.subject for row in finance_client.get(QUEUE, params).context["cl"].result_list}

    assert listed(owner="me") == {"Invoice INV-MINE"}
    assert listed(owner="none") == {"Invoice INV-OTHER"}
    assert listed(error_class__exact="transient") == {"Invoice INV-OTHER"}
    assert listed(queue="retrying") == {"Invoice INV-OTHER"}
    assert listed(owner_role="finance_ops") == {"Invoice INV-MINE", "Invoice INV-OTHER"}
    assert listed(owner_role="delivery_ops") == set()
    assert listed(q="INV-MINE") == {"Invoice INV-MINE"}
    assert listed(q=other.correlation_id) == {"Invoice INV-OTHER"}
    assert listed(q="does not exist") == {"Invoice INV-MINE"}


def test_a_real_workflow_fed_a_deal_without_legal_entity_shows_in_the_queue(finance_client, systems):
    deal = {
        "opportunity_external_id": "006TEST",
        "opportunity_name": "Northwind rollout",
        "customer_external_id": "001NW",
        "customer_name": "Northwind",
        "currency": "USD",
        "contract_type": "fixed_fee",
        "amount": "120000",
    }
    txn = transaction_start(
        workflow="opportunity_to_project", data={"source_system": "salesforce", "data": deal}, reason="test"
    )
    run_due_steps()
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.EXCEPTION
    page = finance_client.get(QUEUE).content.decode()
    assert "Northwind rollout" in page
    assert "does not say which legal entity" in page
    assert "USD 120,000.00" in page
    assert "Delivery ops" in page
    trace = finance_client.get(trace_url(txn)).content.decode()
    assert "Fill the legal entity" in trace


@pytest.mark.parametrize("who", ["finance", "auditor"])
def test_every_page_opens_for_finance_and_for_an_auditor(client, who, finance, auditor, systems):
    user = {"finance": finance, "auditor": auditor}[who]
    client.force_login(user)
    txn = failed("INV-PAGES")
    transaction_resolve(txn=failed("INV-CLOSED"), actor=finance, reason="Posted by hand")
    step = txn.steps.get(name="post")
    attempt = step.attempt_log.get()
    history_row = txn.history.latest()
    pages = [
        QUEUE,
        f"{QUEUE}?queue=all",
        f"{QUEUE}?queue=resolved&owner=me",
        f"{QUEUE}?workflow__exact=queue_admin_test&error_class__exact=business_rule&owner_role=finance_ops",
        f"{QUEUE}?q=INV-PAGES",
        f"{QUEUE}?created_at__year={timezone.now().year}",
        trace_url(txn),
        trace_url(txn, "history"),
        reverse("admin:sync_transaction_simple_history", args=[txn.pk, history_row.history_id]),
        reverse("admin:sync_step_changelist"),
        f"{reverse('admin:sync_step_changelist')}?q={txn.correlation_id}",
        reverse("admin:sync_step_change", args=[step.pk]),
        reverse("admin:sync_stepattempt_changelist"),
        reverse("admin:sync_stepattempt_change", args=[attempt.pk]),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
    action_pages = [trace_url(txn, "rerun"), trace_url(txn, "edit_input"), trace_url(txn, "resolve")]
    for url in action_pages:
        assert client.get(url).status_code == (200 if who == "finance" else 403), url


def test_the_trace_shows_the_problem_steps_attempts_calls_and_history(finance_client, finance, systems):
    txn = failed("INV-TRACE")
    step = txn.steps.get(name="post")
    page = finance_client.get(trace_url(txn)).content.decode()
    assert "NetSuite refused invoice INV-TRACE" in page
    assert "Correct the ERP account" in page
    assert "400 INVALID_KEY_OR_REF account" in page  # technical detail, collapsed beside the message
    assert "1. Check the invoice" in page and "2. Post the invoice to ERP" in page
    assert "NetSuite" in page  # the target system
    assert step.idempotency_key in page
    assert "https://netsuite.example/services/rest/record/v1/invoice" in page
    assert "Invalid account reference" in page  # the masked response of the last call
    assert "&quot;number&quot;: &quot;INV-TRACE&quot;" in page  # the original input, laid out
    assert "a re-run starts here" in page
    assert "Invoice INV-TRACE posted in billing" in page  # the history's why
    assert "Re-run" in page and "Edit the input and re-run" in page and "Assign to me" in page


def test_the_attempt_log_keeps_abandoned_tries(finance_client, systems):
    txn = transaction_start(workflow="queue_admin_test", data={"number": "INV-DEAD", "fail": "business"}, reason="test")
    first = txn.steps.get(name="check")
    claim_step(first.pk, worker="worker-that-died:42")
    Step.objects.filter(pk=first.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    run_due_steps()
    assert list(StepAttempt.objects.filter(step=first).values_list("outcome", flat=True)) == ["abandoned", "succeeded"]
    page = finance_client.get(trace_url(txn)).content.decode()
    assert "worker-that-died:42" in page
    assert "Abandoned" in page
    assert "The worker running this attempt stopped before it finished" in page


def test_the_trace_links_the_inbound_event_its_payload_and_the_canonical_subject(finance_client, systems):
    from tests import factories

    delivery = Delivery.objects.create(
        system=systems["billing"],
        status=Delivery.Status.ACCEPTED,
        received_at=timezone.now(),
        method="POST",
        url="https://console.example/api/v1/inbound/chargebee/",
        body=b'{"event_type": "invoice_generated", "content": {"invoice": {"id": "inv_77"}}}',
        body_size=80,
        verified=True,
        correlation_id="c-1",
    )
    event = InboundEvent.objects.create(
        delivery=delivery,
        system=systems["billing"],
        idempotency_key="ev_77",
        vendor_event_id="ev_77",
        event_type="invoice_generated",
        payload={"event_type": "invoice_generated", "content": {"invoice": {"id": "inv_77"}}},
        correlation_id="c-1",
    )
    customer = factories.customer(name="Contoso Ltd")
    txn = transaction_start(
        workflow="queue_admin_test",
        data={"number": "INV-77", "fail": "business"},
        inbound_event=event,
        reason="test",
    )
    Transaction.objects.filter(pk=txn.pk).update(subject_type="customer", subject_id=customer.pk)
    page = finance_client.get(trace_url(txn)).content.decode()
    assert "chargebee invoice_generated ev_77" in page
    assert "inv_77" in page  # the payload
    assert "The raw delivery body" in page and "signature verified" in page
    assert "Contoso Ltd" in page
    assert reverse("admin:canonical_customer_change", args=[customer.pk]) in page


def test_an_auditor_sees_no_action_buttons_and_every_action_answers_403(auditor_client, systems):
    txn = failed("INV-AUDIT")
    trace = auditor_client.get(trace_url(txn)).content.decode()
    assert "Act on it" not in trace and "Assign to me" not in trace and 'name="reason"' not in trace
    assert "NetSuite refused invoice INV-AUDIT" in trace  # reading is fine
    queue = auditor_client.get(QUEUE)
    assert queue.status_code == 200 and 'name="action"' not in queue.content.decode()

    posts = {
        QUEUE: {"action": "replay_selected", "index": 0, "_selected_action": [txn.pk]},
        trace_url(txn, "rerun"): {"reason": "try"},
        trace_url(txn, "edit_input"): {"reason": "try", "scope": "transaction", "data": "{}"},
        trace_url(txn, "resolve"): {"reason": "try", "outcome": "resolve"},
        trace_url(txn, "assign"): {"owner": "me"},
        trace_url(txn): {"status": "resolved"},
    }
    for url, data in posts.items():
        assert auditor_client.post(url, data).status_code == 403, url
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.EXCEPTION and txn.owner is None


def test_bulk_rerun_asks_for_a_reason_shows_the_count_and_reports_refusals(finance_client, finance, systems):
    first, second = failed("INV-A"), failed("INV-B")
    done = completed("INV-DONE")
    selection = {"action": "replay_selected", "index": 0, "_selected_action": [first.pk, second.pk, done.pk]}

    confirm = finance_client.post(f"{QUEUE}?queue=all", selection)
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "2 transactions will be re-run." in page
    assert "Invoice INV-DONE" in page and "only exceptions and retrying transactions can be re-run" in page
    assert first.status == Transaction.Status.EXCEPTION

    no_reason = finance_client.post(f"{QUEUE}?queue=all", {**selection, "confirm": "yes", "reason": "  "})
    assert no_reason.status_code == 200 and "Say why" in no_reason.content.decode()
    assert Transaction.objects.get(pk=first.pk).status == Transaction.Status.EXCEPTION

    response = finance_client.post(
        f"{QUEUE}?queue=all", {**selection, "confirm": "yes", "reason": "NetSuite account fixed (FIN-88)"}
    )
    assert response.status_code == 302
    messages = texts(response)
    assert "Re-run queued for 2 transaction(s)." in messages
    assert any("1 transaction(s) could not be re-run" in text and done.correlation_id in text for text in messages)
    for txn in (first, second):
        txn.refresh_from_db()
        assert txn.status == Transaction.Status.PENDING
        row = txn.history.latest()
        assert (row.history_user, row.history_change_reason) == (finance, "NetSuite account fixed (FIN-88)")
    assert Transaction.objects.get(pk=done.pk).status == Transaction.Status.COMPLETED


def test_bulk_resolve_and_ignore_need_a_reason_and_assign_takes_them(finance_client, finance, systems):
    first, second = failed("INV-R1"), failed("INV-R2")
    ids = [first.pk, second.pk]
    assign = finance_client.post(QUEUE, {"action": "assign_selected_to_me", "index": 0, "_selected_action": ids})
    assert assign.status_code == 302
    assert set(Transaction.objects.filter(pk__in=ids).values_list("owner", flat=True)) == {finance.pk}

    selection = {"action": "ignore_selected", "index": 0, "_selected_action": [first.pk], "confirm": "yes"}
    refused = finance_client.post(QUEUE, {**selection, "reason": ""})
    assert refused.status_code == 200 and "Say why" in refused.content.decode()
    finance_client.post(QUEUE, {**selection, "reason": "Duplicate of INV-R2"})
    first.refresh_from_db()
    assert first.status == Transaction.Status.IGNORED and first.resolution_reason == "Duplicate of INV-R2"

    resolve = {"action": "resolve_selected", "index": 0, "_selected_action": [second.pk]}
    finance_client.post(QUEUE, {**resolve, "confirm": "yes", "reason": "Posted by hand as INV-R2-M"})
    second.refresh_from_db()
    assert second.status == Transaction.Status.RESOLVED and second.resolved_by == finance


def test_edit_the_input_and_rerun_keeps_the_original_and_records_who_and_why(finance_client, finance, systems):
    txn = failed("INV-EDIT")
    original = dict(txn.input)
    url = trace_url(txn, "edit_input")

    form = finance_client.get(url)
    assert form.status_code == 200
    prefilled = json.loads(form.context["form"]["data"].value())
    assert prefilled == original

    broken = finance_client.post(url, {"scope": "transaction", "data": '{"number": "INV-EDIT",}', "reason": "fix"})
    assert broken.status_code == 200
    assert "This is not valid JSON" in broken.content.decode() and "line 1" in broken.content.decode()
    not_object = finance_client.post(url, {"scope": "transaction", "data": "[1, 2]", "reason": "fix"})
    assert "must be a JSON object" in not_object.content.decode()
    no_reason = finance_client.post(url, {"scope": "transaction", "data": "{}", "reason": ""})
    assert "Say why" in no_reason.content.decode()
    assert Transaction.objects.get(pk=txn.pk).input_override is None

    edited = {**original, "fail": None, "account": "ACME-10"}
    response = finance_client.post(
        url, {"scope": "transaction", "data": json.dumps(edited), "reason": "Account corrected per FIN-231"}
    )
    assert response.status_code == 302 and response["Location"] == trace_url(txn)
    txn.refresh_from_db()
    assert txn.input == original
    assert txn.input_override == edited
    row = txn.history.filter(history_change_reason="Account corrected per FIN-231").get()
    assert row.history_user == finance and row.input_override == edited

    run_due_steps()
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.COMPLETED
    trace = finance_client.get(trace_url(txn)).content.decode()
    assert "Edited copy used on re-runs" in trace and "ACME-10" in trace and "ACME-9" in trace


def test_edit_only_the_failed_steps_input(finance_client, systems):
    txn = failed("INV-STEP")
    step_input = {**txn.input, "fail": None}
    finance_client.post(
        trace_url(txn, "edit_input"),
        {"scope": "step", "data": json.dumps(step_input), "reason": "Retry the post without the bad flag"},
    )
    txn.refresh_from_db()
    assert txn.input_override is None
    assert txn.steps.get(name="post").input_override == step_input
    assert txn.steps.get(name="check").input_override is None


def test_rerun_as_is_from_the_trace(finance_client, finance, systems):
    txn = failed("INV-ASIS")
    response = finance_client.post(trace_url(txn, "rerun"), {"reason": "NetSuite was down"})
    assert response.status_code == 302
    assert any("queued" in text for text in texts(response))
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.PENDING and txn.input_override is None
    again = finance_client.post(trace_url(txn, "rerun"), {"reason": "again"})
    assert again.status_code == 200 and "only exceptions and transactions waiting to retry" in again.content.decode()


def test_resolving_needs_a_reason_and_records_who(finance_client, finance, systems):
    txn = failed("INV-CLOSE")
    url = trace_url(txn, "resolve")
    refused = finance_client.post(url, {"outcome": "resolve", "reason": ""})
    assert refused.status_code == 200 and "Say why" in refused.content.decode()
    assert Transaction.objects.get(pk=txn.pk).status == Transaction.Status.EXCEPTION

    response = finance_client.post(url, {"outcome": "resolve", "reason": "Posted by hand in NetSuite as INV-77"})
    assert response.status_code == 302
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.RESOLVED and txn.resolved_by == finance
    assert txn.history.latest().history_change_reason == "Posted by hand in NetSuite as INV-77"
    trace = finance_client.get(trace_url(txn)).content.decode()
    assert "Posted by hand in NetSuite as INV-77" in trace and "Re-run" not in trace


def test_assign_to_me_and_back_from_the_trace(finance_client, finance, systems):
    txn = failed("INV-OWN")
    finance_client.post(trace_url(txn, "assign"), {"owner": "me"})
    txn.refresh_from_db()
    assert txn.owner == finance
    assert "This is yours." in finance_client.get(trace_url(txn)).content.decode()
    finance_client.post(trace_url(txn, "assign"), {"owner": ""})
    txn.refresh_from_db()
    assert txn.owner is None


def test_rates_in_an_input_are_hidden_from_delivery_ops_who_cannot_edit_it(client, staff, systems):
    delivery = staff("dan.delivery", "delivery_ops")
    client.force_login(delivery)
    txn = failed("INV-RATES", new_rates=[{"role": "Architect", "bill_rate": "245.00", "cost_rate": "131.25"}])
    page = client.get(trace_url(txn)).content.decode()
    assert "Architect" in page and MASK in page
    assert "245.00" not in page and "131.25" not in page
    history_row = txn.history.earliest()
    as_of = client.get(reverse("admin:sync_transaction_simple_history", args=[txn.pk, history_row.history_id]))
    assert "245.00" not in as_of.content.decode()
    edit = client.get(trace_url(txn, "edit_input"))
    assert "which your role may not see" in edit.content.decode()
    assert "245.00" not in edit.content.decode()
    assert (
        client.post(trace_url(txn, "edit_input"), {"scope": "transaction", "data": "{}", "reason": "x"}).status_code
        == 403
    )


def test_the_queue_needs_no_query_per_row(finance_client, finance, systems):
    def queries_for_queue() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert finance_client.get(QUEUE).status_code == 200
        return len(captured)

    for n in range(2):
        transaction_assign(txn=failed(f"INV-Q{n}"), owner=finance, actor=finance)
    few = queries_for_queue()
    for n in range(2, 12):
        transaction_assign(txn=failed(f"INV-Q{n}"), owner=finance, actor=finance)
    assert queries_for_queue() == few


def test_the_trace_needs_no_query_per_attempt(finance_client, systems):
    txn = failed("INV-MANY", fail="transient", runs=1)

    def queries_for_trace() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert finance_client.get(trace_url(txn)).status_code == 200
        return len(captured)

    once = queries_for_trace()
    for _ in range(3):
        Step.objects.filter(transaction=txn, status=Step.Status.WAITING_RETRY).update(
            next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        run_due_steps()
    assert txn.steps.get(name="post").attempt_log.count() == 4
    assert queries_for_trace() == once
