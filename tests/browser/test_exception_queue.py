"""In a real browser: finance ops works the exception queue; an auditor reads a trace and finds nothing to press."""

import json
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.errors import BusinessError
from apps.core.masking import MASK
from apps.sync.engine import run_due_steps
from apps.sync.models import Transaction
from apps.sync.registry import StepSpec, Subject, WorkflowDefinition, register
from apps.sync.services import transaction_assign, transaction_start
from apps.sync.steps import Retryable, StepResult

pytestmark = pytest.mark.browser


@register
class BrowserInvoicePosting(WorkflowDefinition):
    """An invoice posting whose ERP call fails while the input names an unknown ERP account."""

    name = "queue_browser_test"
    owner_role = "finance_ops"

    def plan(self, data):
        return [
            StepSpec("check", "Check and record the invoice"),
            StepSpec("post", "Post the invoice to ERP receivables", target="erp"),
            StepSpec("report", "Report the open balance to CRM", target="crm"),
        ]

    def subject(self, data):
        return Subject(
            business_key=f"invoice:{data['number']}",
            label=f"Invoice {data['number']} ({data['customer']})",
            value_at_risk=Decimal(data["total"]),
            currency=data["currency"],
        )

    def step_check(self, ctx):
        return StepResult(output={"invoice_number": ctx.input["number"]})

    def step_post(self, ctx):
        account = ctx.input["erp_account"]
        if account == "SLOW":
            raise Retryable(
                "NetSuite did not answer within 30 s; the posting will be tried again.",
                technical="ReadTimeout: HTTPSConnectionPool(host='td2864.suitetalk.api.netsuite.com'): read timeout=30",
            )
        ok = account.startswith("CUS-")
        body = {"tranId": ctx.input["number"], "entity": {"id": account}, "total": ctx.input["total"]}
        ctx.calls.append(
            {
                "method": "POST",
                "url": "https://td2864.suitetalk.api.netsuite.com/services/rest/record/v1/invoice",
                "request_headers": {
                    "Authorization": MASK,
                    "Content-Type": "application/json",
                    "Idempotency-Key": ctx.idempotency_key,
                    "X-Correlation-ID": ctx.correlation_id,
                },
                "request_body": json.dumps(body),
                "status": 201 if ok else 400,
                "response_headers": {"Content-Type": "application/json"},
                "response_body": json.dumps(
                    {"id": "88120"}
                    if ok
                    else {
                        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
                        "title": "Bad Request",
                        "o:errorDetails": [
                            {"detail": f"Invalid Field Value {account} for the following field: entity"}
                        ],
                    }
                ),
                "duration_ms": 412,
                "error": None if ok else "NetSuite answered 400 Bad Request",
                "idempotency_key": ctx.idempotency_key,
                "started_at": timezone.now().isoformat(),
            }
        )
        if not ok:
            raise BusinessError(
                f"NetSuite refused invoice {ctx.input['number']}: customer account '{account}' does not exist "
                f"in NetSuite.",
                fix="Correct the customer's NetSuite account (the ERP cross-reference), or edit the input and re-run.",
                technical=f"400 INVALID_KEY_OR_REF: Invalid Field Value {account} for the following field: entity",
            )
        return StepResult(output={"erp_invoice_id": "88120"})

    def step_report(self, ctx):
        return StepResult(output={"crm_updated": True})


def start(workflow, data):
    return transaction_start(workflow=workflow, data=data, reason="Received from the billing platform")


@pytest.fixture
def exceptions(systems, make_user):
    """A few real exceptions: a deal without legal entity, an invoice for an unknown customer, a refused posting."""
    finance = make_user("fiona.finance", "finance_ops", is_staff=True, first_name="Fiona", last_name="Finance")
    make_user("alex.auditor", "auditor", is_staff=True)
    deal = start(
        "opportunity_to_project",
        {
            "source_system": "salesforce",
            "data": {
                "opportunity_external_id": "0065g00000AbCdE",
                "opportunity_name": "Northwind ERP rollout",
                "customer_external_id": "0015g00000NwInd",
                "customer_name": "Northwind Traders",
                "currency": "USD",
                "contract_type": "fixed_fee",
                "amount": "120000",
            },
        },
    )
    unknown_customer = start(
        "invoice_to_erp",
        {
            "source_system": "chargebee",
            "data": {
                "invoice_external_id": "inv_2026_0042",
                "number": "INV-2026-0042",
                "customer_external_id": "cust_AzZ9",
                "currency": "USD",
                "total": "18450.00",
            },
        },
    )
    posting = start(
        "queue_browser_test",
        {
            "number": "INV-2026-0117",
            "customer": "Contoso",
            "erp_account": "CONTOSO",
            "total": "7325.50",
            "currency": "EUR",
        },
    )
    second = start(
        "queue_browser_test",
        {
            "number": "INV-2026-0118",
            "customer": "Fabrikam",
            "erp_account": "FABRIKAM",
            "total": "2100.00",
            "currency": "GBP",
        },
    )
    slow = start(
        "queue_browser_test",
        {
            "number": "INV-2026-0120",
            "customer": "Tailspin",
            "erp_account": "SLOW",
            "total": "940.00",
            "currency": "USD",
        },
    )
    run_due_steps()
    transaction_assign(txn=unknown_customer, owner=finance, actor=finance)
    for txn in (deal, unknown_customer, posting, second):
        txn.refresh_from_db()
        assert txn.status == Transaction.Status.EXCEPTION, txn.error_message
    slow.refresh_from_db()
    assert slow.status == Transaction.Status.WAITING_RETRY
    return {"deal": deal, "unknown_customer": unknown_customer, "posting": posting, "second": second, "slow": slow}


def test_finance_ops_works_the_queue_and_an_auditor_only_reads(page, log_in, screenshot, exceptions):
    posting = exceptions["posting"]

    log_in("fiona.finance")
    page.goto("/admin/sync/transaction/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 5
    queue = page.locator("#changelist").inner_text()
    assert "Northwind ERP rollout" in queue and "USD 120,000.00" in queue
    assert "Chargebee customer account 'cust_AzZ9' is not known to the console" in queue
    assert "Fiona Finance" in queue
    assert "EUR 7,325.50" in queue
    summary = page.locator(".sync-summary").inner_text()
    assert "5 transactions" in summary and "Retrying" in summary
    screenshot("exception-queue-finance")

    page.click("text=Invoice INV-2026-0120 (Tailspin)")
    assert "it will be retried" in page.locator(".sync-problem").inner_text().lower()
    assert "next automatic try at" in page.locator(".sync-problem").inner_text()
    screenshot("transaction-trace-retrying")
    page.go_back()

    page.click("text=Invoice INV-2026-0117 (Contoso)")
    page.wait_for_selector(".sync-trace")
    assert "does not exist in NetSuite" in page.locator(".sync-problem").inner_text()
    page.click("#step-2 details.sync-call summary")
    page.click(".sync-problem details summary")
    assert "Invalid Field Value CONTOSO" in page.locator("#step-2").inner_text()
    screenshot("transaction-trace-finance")

    page.click("text=Edit the input and re-run…")
    textarea = page.locator("#id_data")
    assert json.loads(textarea.input_value())["erp_account"] == "CONTOSO"
    textarea.fill(textarea.input_value().replace('"CONTOSO"', '"CUS-10442"'))
    page.fill("#id_reason", "Contoso's NetSuite customer is CUS-10442 (FIN-231)")
    screenshot("transaction-edit-input")
    page.click("input[type=submit][value='Save the edit and re-run']")
    page.wait_for_selector(".messagelist")
    run_due_steps()
    page.reload()
    assert "Completed" in page.locator(".sync-facts").inner_text()
    assert "CUS-10442" in page.locator("#edited-input").inner_text()
    assert "CONTOSO" in page.locator("#original-input").inner_text()
    assert "Contoso's NetSuite customer is CUS-10442 (FIN-231)" in page.locator(".sync-history").inner_text()
    screenshot("transaction-trace-after-edit")
    page.click("text=History with diffs")
    history = page.locator("#change-history").inner_text()
    assert "Contoso's NetSuite customer is CUS-10442 (FIN-231)" in history and "fiona.finance" in history
    screenshot("transaction-history")

    page.goto("/admin/sync/transaction/")
    for label in ("Invoice INV-2026-0118 (Fabrikam)", "Invoice INV-2026-0042"):
        page.locator("#result_list tr", has_text=label).locator("input.action-select").check()
    page.select_option("select[name=action]", "replay_selected")
    page.click("button[name=index]")
    page.wait_for_selector("#bulk-count")
    assert "2 transactions will be re-run." in page.locator("#bulk-count").inner_text()
    page.fill("#id_reason", "Customer master corrected in NetSuite")
    screenshot("bulk-rerun-confirm")
    page.click("input[type=submit][value='Yes, re-run 2 transactions']")
    page.wait_for_selector(".messagelist")
    assert "Re-run queued for 2 transaction(s)." in page.locator(".messagelist").inner_text()
    screenshot("exception-queue-after-bulk-rerun")

    log_in("alex.auditor")
    page.goto(f"/admin/sync/transaction/{exceptions['deal'].pk}/change/")
    trace = page.locator(".sync-trace").inner_text()
    assert "does not say which legal entity contracts it" in trace
    assert page.locator(".sync-actions").count() == 0
    assert page.locator("select[name=action]").count() == 0
    screenshot("transaction-trace-auditor")
    page.goto("/admin/sync/transaction/")
    assert page.locator("select[name=action]").count() == 0
    assert posting.pk  # the edited posting left the queue
    assert "Contoso" not in page.locator("#result_list").inner_text()
