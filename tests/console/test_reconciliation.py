"""The console's reconciliation page: runs, discrepancies by check with money at risk, and each role's actions."""

import datetime
from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.canonical.models import Invoice
from apps.reconciliation.models import Check, Discrepancy, PeriodSignOff, ReconciliationRun

from .. import factories

PAGE = "/reconciliation/"
PERIOD = "2026-11"


def finished_run(entity, *, status=ReconciliationRun.Status.SUCCEEDED, not_compared=(), period=PERIOD):
    now = timezone.now()
    return ReconciliationRun.objects.create(
        period=period,
        period_start=datetime.date(2026, 11, 1),
        period_end=datetime.date(2026, 11, 30),
        legal_entity=entity,
        status=status,
        progress=100,
        stage="Done",
        started_at=now - datetime.timedelta(seconds=42),
        finished_at=now,
        not_compared=list(not_compared),
        summary={"open": 3},
        figures_digest="abc",
    )


def discrepancy(run, check, key, *, left, right, currency="GBP", at_risk, days_open=0, **fields):
    seen = timezone.now() - datetime.timedelta(days=days_open)
    left = None if left is None else Decimal(left)
    right = None if right is None else Decimal(right)
    return Discrepancy.objects.create(
        check_type=check,
        business_key=key,
        legal_entity=run.legal_entity,
        period=run.period,
        period_close_date=run.period_end,
        currency=currency,
        left_system="billing",
        right_system="erp",
        left_amount=left,
        right_amount=right,
        difference=(left or 0) - (right or 0),
        reporting_currency="USD",
        value_at_risk=Decimal(at_risk),
        description=f"{key} differs",
        detail=fields.pop("detail", {}),
        first_seen_at=seen,
        last_seen_at=timezone.now(),
        first_seen_run=run,
        last_seen_run=run,
        **fields,
    )


@pytest.fixture
def books(db, settings):
    settings.REPORTING_CURRENCY = "USD"
    entity = factories.legal_entity("NW-UK", currency="GBP", country="GB")
    run = finished_run(entity)
    missing = discrepancy(
        run,
        Check.INVOICE_MISSING_IN_ERP,
        "INV-1001",
        left="1200.00",
        right=None,
        at_risk="1512.00",
        days_open=4,
        detail={"invoice": "INV-1001", "customer": "C-042"},
    )
    tax = discrepancy(run, Check.INVOICE_TAX, "INV-1002", left="200.00", right="180.00", at_risk="25.20")
    rollup = discrepancy(run, Check.PERIOD_TOTAL, "NW-UK:2026-11:GBP", left="5000.00", right="3800.00", at_risk="1512")
    return {"entity": entity, "run": run, "missing": missing, "tax": tax, "rollup": rollup}


def test_finance_sees_the_latest_run_and_each_discrepancy_with_both_values_and_its_age(client, books, finance_user):
    client.force_login(finance_user)
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Succeeded" in html and "42 s" in html and "every system compared" in html
    assert "GBP 1,200.00" in html and "GBP 200.00" in html and "GBP 180.00" in html and "GBP 20.00" in html
    assert "USD 1,512.00" in html
    assert "d past close" in html  # November closed before today (the demo clock is December 2026)
    row = page.context["rows"][0]
    assert row["d"].business_key == "INV-1001" and row["d"].days_open == 4
    assert "?q=INV-1001" in html and f"admin/reconciliation/discrepancy/{books['missing'].pk}/" in html


def test_value_at_risk_counts_roll_up_checks_apart_so_money_is_not_added_twice(client, books, finance_user):
    client.force_login(finance_user)
    page = client.get(PAGE)
    assert page.context["total"] == Decimal("1537.20")  # 1,512.00 + 25.20; the period total is left out
    assert [group["check"] for group in page.context["groups"]] == [Check.INVOICE_MISSING_IN_ERP, Check.INVOICE_TAX]
    assert [group["check"] for group in page.context["rollups"]] == [Check.PERIOD_TOTAL]
    assert "not added again" in page.content.decode()


def test_the_list_filters_with_the_api_parameters(client, books, finance_user):
    client.force_login(finance_user)
    page = client.get(PAGE, {"check_type": Check.INVOICE_TAX})
    assert [item["d"].business_key for item in page.context["rows"]] == ["INV-1002"]
    page = client.get(PAGE, {"min_value_at_risk": "1000"})
    assert {item["d"].business_key for item in page.context["rows"]} == {"INV-1001", "NW-UK:2026-11:GBP"}
    assert client.get(PAGE, {"status": "closed"}).context["rows"] == []


def test_a_partial_run_says_which_system_and_period_were_not_compared(client, books, finance_user):
    finished_run(
        books["entity"],
        status=ReconciliationRun.Status.PARTIAL,
        period="2026-12",
        not_compared=[
            {
                "system": "netsuite",
                "name": "NetSuite",
                "period": "2026-12",
                "reason": "HTTP 503",
                "checks": ["invoice_tax"],
            }
        ],
    )
    client.force_login(finance_user)
    html = client.get(PAGE).content.decode()
    assert "NetSuite" in html and "2026-12: HTTP 503" in html and "skipped: invoice_tax" in html


def test_finance_explains_a_discrepancy_with_a_reason(client, books, finance_user):
    client.force_login(finance_user)
    url = reverse("console:reconciliation-discrepancy-act", args=[books["tax"].pk, "explain"])
    answer = client.post(url, {"reason": "Tax rounding agreed with the auditors"}, follow=True)
    books["tax"].refresh_from_db()
    assert books["tax"].status == Discrepancy.Status.EXPLAINED and books["tax"].explained_by == finance_user
    assert books["tax"].history.first().history_user == finance_user
    assert "marked explained" in answer.content.decode()


def test_an_explanation_without_a_reason_is_refused_with_the_reason_why(client, books, finance_user):
    client.force_login(finance_user)
    url = reverse("console:reconciliation-discrepancy-act", args=[books["tax"].pk, "explain"])
    answer = client.post(url, {"reason": " "}, follow=True)
    assert "Say why this difference is acceptable" in answer.content.decode()
    books["tax"].refresh_from_db()
    assert books["tax"].status == Discrepancy.Status.OPEN


def test_re_running_with_no_failed_transaction_says_there_is_nothing_to_re_run(client, books, finance_user):
    client.force_login(finance_user)
    url = reverse("console:reconciliation-discrepancy-act", args=[books["missing"].pk, "rerun"])
    answer = client.post(url, {"reason": "ERP was down"}, follow=True)
    assert "nothing to re-run" in answer.content.decode()


def test_run_now_queues_a_run_and_the_page_polls_its_progress(client, books, finance_user):
    client.force_login(finance_user)
    with mock.patch("apps.console.views.reconciliation.async_task") as queue:
        answer = client.post(reverse("console:reconciliation-run"), {"period": "2026-12", "legal_entity": "NW-UK"})
    run = ReconciliationRun.objects.get(period="2026-12")
    assert run.status == ReconciliationRun.Status.QUEUED and run.requested_by == finance_user
    assert answer.url.endswith(f"?run={run.pk}#run-progress")
    page = client.get(answer.url).content.decode()
    assert f'data-poll="/reconciliation/runs/{run.pk}/progress/"' in page
    progress = client.get(f"/reconciliation/runs/{run.pk}/progress/").json()
    assert progress["status"] == "queued" and progress["finished"] is False
    queue.assert_not_called()  # queued on commit, so a worker never sees an uncommitted run


def test_a_second_run_of_a_busy_scope_is_refused_with_the_reason(client, books, finance_user):
    client.force_login(finance_user)
    with mock.patch("apps.console.views.reconciliation.async_task"):
        client.post(reverse("console:reconciliation-run"), {"period": "2026-12", "legal_entity": "NW-UK"})
        answer = client.post(
            reverse("console:reconciliation-run"), {"period": "2026-12", "legal_entity": "NW-UK"}, follow=True
        )
    assert "already queued" in answer.content.decode()


def test_the_preparer_cannot_approve_and_sees_why_while_a_colleague_approves(client, books, finance_user, make_user):
    client.force_login(finance_user)
    client.post(reverse("console:reconciliation-sign-off-prepare"), {"period": PERIOD, "legal_entity": "NW-UK"})
    sign_off = PeriodSignOff.objects.get()
    html = client.get(PAGE).content.decode()
    assert "You prepared this reconciliation; another person must approve it." in html
    refused = client.post(reverse("console:reconciliation-sign-off-approve", args=[sign_off.pk]), follow=True)
    assert "another person must approve it" in refused.content.decode()
    sign_off.refresh_from_db()
    assert sign_off.status == PeriodSignOff.Status.PREPARED
    colleague = make_user("carla.controller", "finance_ops")
    client.force_login(colleague)
    client.post(reverse("console:reconciliation-sign-off-approve", args=[sign_off.pk]))
    sign_off.refresh_from_db()
    assert sign_off.status == PeriodSignOff.Status.APPROVED and sign_off.approved_by == colleague


def test_a_voided_approval_is_shown_with_the_run_that_voided_it(client, books, finance_user, make_user):
    later = finished_run(books["entity"])
    PeriodSignOff.objects.create(
        period=PERIOD,
        legal_entity=books["entity"],
        run=books["run"],
        figures_digest="old",
        status=PeriodSignOff.Status.VOIDED,
        prepared_by=finance_user,
        prepared_at=timezone.now(),
        voided_by_run=later,
        voided_at=timezone.now(),
    )
    client.force_login(finance_user)
    html = client.get(PAGE).content.decode()
    assert "Voided: a later run changed the figures" in html and f"run #{later.pk}" in html


def test_delivery_ops_reads_but_gets_no_actions(client, books, delivery_user):
    client.force_login(delivery_user)
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert "INV-1001" in html and "Run now" not in html and "Mark explained" not in html
    assert "Prepare for sign-off" not in html
    url = reverse("console:reconciliation-discrepancy-act", args=[books["tax"].pk, "explain"])
    assert client.post(url, {"reason": "x"}).status_code == 403
    assert client.post(reverse("console:reconciliation-run"), {"period": PERIOD}).status_code == 403


def test_an_auditor_reads_and_is_told_why_they_cannot_approve(client, books, auditor, finance_user):
    PeriodSignOff.objects.create(
        period=PERIOD,
        legal_entity=books["entity"],
        run=books["run"],
        figures_digest="abc",
        prepared_by=finance_user,
        prepared_at=timezone.now(),
    )
    client.force_login(auditor)
    html = client.get(PAGE).content.decode()
    assert "Your role may read sign-offs but not approve them" in html and "Run now" not in html
    sign_off = PeriodSignOff.objects.get()
    assert client.post(reverse("console:reconciliation-sign-off-approve", args=[sign_off.pk])).status_code == 403


def test_an_integration_admin_may_start_a_run_but_not_explain(client, books, integration_admin):
    client.force_login(integration_admin)
    html = client.get(PAGE).content.decode()
    assert "Run now" in html and "Mark explained" not in html


def test_the_nav_links_to_reconciliation_and_outsiders_are_refused(client, books, finance_user, outsider):
    client.force_login(finance_user)
    assert 'href="/reconciliation/"' in client.get("/").content.decode()
    client.force_login(outsider)
    assert client.get(PAGE).status_code == 403
    client.logout()
    assert client.get(PAGE).status_code == 302


# --- the timeline names reconciliation findings ---------------------------------------------------------------


def test_the_timeline_of_an_invoice_shows_its_reconciliation_findings_with_amounts(client, books, finance_user):
    customer = factories.customer(number="C-042", name="Globex Ltd", currency="GBP", legal_entity=books["entity"])
    Invoice.objects.create(
        number="INV-1001",
        customer=customer,
        legal_entity=books["entity"],
        issue_date=datetime.date(2026, 11, 12),
        due_date=datetime.date(2026, 12, 12),
        currency="GBP",
        subtotal=Decimal("1000"),
        total=Decimal("1200"),
        status="posted",
    )
    ar = discrepancy(
        books["run"],
        Check.AR_BALANCE,
        "C-042:GBP:erp-vs-billing",
        left="0.00",
        right="1200.00",
        at_risk="1512.00",
        detail={"customer": "C-042"},
    )
    client.force_login(finance_user)
    page = client.get("/timeline/", {"q": "INV-1001"})
    findings = {entry.title.split("— ")[1]: entry for entry in page.context["trail"].entries if entry.kind == "finding"}
    assert set(findings) == {"INV-1001", ar.business_key}  # the invoice, and its customer's open balance
    assert "billing GBP 1,200.00, erp —" in findings["INV-1001"].detail
    assert "USD 1,512.00 at risk" in findings["INV-1001"].detail and findings["INV-1001"].status == "open"
    html = page.content.decode()
    assert "2 reconciliation findings" in html and "/reconciliation/?business_key=INV-1001" in html

    page = client.get("/timeline/", {"q": "C-042"})
    keys = {entry.title.split("— ")[1] for entry in page.context["trail"].entries if entry.kind == "finding"}
    assert keys == {"INV-1001", ar.business_key}


def test_a_key_only_reconciliation_knows_opens_its_finding_on_the_timeline(client, books, finance_user):
    client.force_login(finance_user)
    page = client.get("/timeline/", {"q": "NW-UK:2026-11:GBP"})
    trail = page.context["trail"]
    assert trail.start.found_as == "reconciliation finding"
    assert [entry.kind for entry in trail.entries] == ["finding"]
    assert "GBP 5,000.00" in trail.entries[0].detail and "GBP 1,200.00" in trail.entries[0].detail
