"""The exception queue over a big ledger: the same statements for 10 rows as for 200, counts that stop at a limit,
and a date drill-down without a DISTINCT over the list."""

import datetime

import pytest
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.core.paginators import CappedPaginator
from apps.sync import batches, selectors
from apps.sync.models import Step, StepAttempt, Transaction
from tests.factories import ledger

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:sync_transaction_changelist")
PAGES = [
    QUEUE,
    f"{QUEUE}?queue=all",
    f"{QUEUE}?queue=all&workflow=time_to_bill&owner_role=finance_ops",
    f"{QUEUE}?created_at__year={timezone.now().year}",
]


def statements(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


def test_every_view_of_the_exception_queue_runs_the_same_statements_for_10_rows_as_for_200(client, admin_user):
    client.force_login(admin_user)
    ledger(10)
    few = {url: statements(client, url) for url in PAGES}
    ledger(190, start=10)
    many = {url: statements(client, url) for url in PAGES}
    assert many == few
    assert max(many.values()) <= 20
    assert statements(client, f"{QUEUE}?queue=all&p=4") == statements(client, f"{QUEUE}?queue=all&p=2")


def test_the_queue_summary_counts_each_status_and_sums_only_open_money(client, admin_user):
    client.force_login(admin_user)
    created = ledger(14)
    response = client.get(f"{QUEUE}?queue=all")
    summary = response.context["queue_summary"]
    assert summary["total"] == 14
    assert summary["total_label"] == "14"
    open_usd = sum(
        t.value_at_risk for t in created if t.currency == "USD" and t.status not in ("completed", "resolved")
    )
    assert f"USD {open_usd:,.2f}" in summary["at_risk"]
    by_status = selectors.queue_summary(Transaction.objects.all())["by_status"]
    assert by_status == {"exception": 4, "waiting_retry": 2, "completed": 4, "resolved": 2, "pending": 2}


def test_a_queue_holding_more_than_the_row_limit_says_so_instead_of_counting_everything():
    ledger(30)  # 9 exceptions, 5 retrying, 8 completed, 4 resolved, 4 pending
    summary = selectors.queue_summary(Transaction.objects.all(), limit=5)
    assert summary["by_status"] == {"exception": 5, "waiting_retry": 5, "completed": 5, "resolved": 4, "pending": 4}
    assert summary["capped"] == {"exception", "completed"}
    assert summary["total_label"] == "more than 23"
    paginator = CappedPaginator(Transaction.objects.filter(status="completed").order_by("pk"), 2, row_limit=5)
    assert paginator.count == 5 and paginator.capped
    assert paginator.num_pages == 3
    assert paginator.count_label == "more than 5"
    whole = CappedPaginator(Transaction.objects.order_by("pk"), 50)
    assert whole.count == 30 and not whole.capped and whole.count_label == "30"


def test_the_whole_ledger_paged_past_the_limit_stops_at_the_last_page_it_offers(client, admin_user, monkeypatch):
    client.force_login(admin_user)
    monkeypatch.setattr(CappedPaginator, "row_limit", 60)
    ledger(130)
    page = client.get(f"{QUEUE}?queue=all&p=2")
    assert page.status_code == 200
    assert "pages stop after 60 rows" in page.content.decode()
    assert client.get(f"{QUEUE}?queue=all&p=3").status_code == 302  # beyond the limit: back to the list


def test_the_date_drill_down_offers_the_months_between_the_first_and_last_row_without_distinct(client, admin_user):
    client.force_login(admin_user)
    ledger(5)
    year = timezone.now().year
    Transaction.objects.filter(correlation_id="list-0").update(
        created_at=datetime.datetime(year, 1, 15, tzinfo=datetime.UTC)
    )
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"{QUEUE}?queue=all&created_at__year={year}")
    assert response.status_code == 200
    listed = [
        query["sql"].upper() for query in captured.captured_queries if '"SYNC_TRANSACTION"' in query["sql"].upper()
    ]
    distinct = [sql for sql in listed if "DISTINCT" in sql]
    assert not distinct
    html = response.content.decode()
    assert (
        f"created_at__month=1&amp;created_at__year={year}" in html
        or f"created_at__year={year}&amp;created_at__month=1" in html
    )
    assert "January" in html


def _page_ids(paginator, number: int) -> list[int]:
    return [row.pk for row in paginator.page(number).object_list]


def test_a_page_past_the_first_is_read_by_its_keys_in_one_statement_with_the_rows_a_plain_offset_gives():
    ledger(23)
    listed = selectors.transaction_list().select_related("owner").order_by("-problem_since", "-pk")
    deferred, plain = CappedPaginator(listed, 5), Paginator(listed, 5)
    for number in range(1, deferred.num_pages + 1):
        assert _page_ids(deferred, number) == _page_ids(plain, number), number
    assert deferred.count == 23  # counted: what follows is the page alone
    with CaptureQueriesContext(connection) as captured:
        rows = list(deferred.page(3).object_list)
    assert len(rows) == 5 and len(captured) == 1
    outer, inner = captured.captured_queries[0]["sql"].upper().split(" IN (SELECT", 1)
    assert "OFFSET" not in outer and "OFFSET 10" in inner  # only the keys are skipped, the join reads 5 rows
    assert "OWNER" not in inner.split("ORDER BY")[0].replace("OWNER_ROLE", "")  # no join in the subquery


def test_a_distinct_list_pages_with_a_plain_offset():
    ledger(12)
    listed = Transaction.objects.filter(steps__isnull=True).distinct().order_by("-pk")
    paginator = CappedPaginator(listed, 3)
    assert _page_ids(paginator, 2) == _page_ids(Paginator(listed, 3), 2)
    with CaptureQueriesContext(connection) as captured:
        list(paginator.page(2).object_list)
    assert " IN (SELECT" not in captured.captured_queries[0]["sql"].upper()


def test_the_attempts_list_pages_filters_and_sorts_deep_pages_like_the_first(admin_client, monkeypatch):
    monkeypatch.setattr(admin.site._registry[StepAttempt], "list_per_page", 4)
    for txn in ledger(7):
        step = Step.objects.create(transaction=txn, sequence=1, name="post", idempotency_key=f"deep-{txn.pk}")
        for number in (1, 2):
            outcome = "failed" if number == 1 else "succeeded"
            StepAttempt.objects.create(step=step, number=number, worker="w", outcome=outcome, started_at=timezone.now())
    everything = list(StepAttempt.objects.order_by("-step_id", "-number"))
    url = reverse("admin:sync_stepattempt_changelist")

    def listed(query: str) -> list[int]:
        response = admin_client.get(f"{url}?{query}")
        assert response.status_code == 200, query
        return [row.pk for row in response.context["cl"].result_list]

    assert listed("p=2") == [attempt.pk for attempt in everything[4:8]]
    assert listed("p=4") == [attempt.pk for attempt in everything[12:14]]
    failed = [attempt.pk for attempt in everything if attempt.outcome == "failed"]
    assert listed("outcome=failed&p=2") == failed[4:7]
    sorted_list = admin_client.get(f"{url}?o=0&p=2").context["cl"]  # sorted by the "Attempt" column
    assert "number" in str(sorted_list.queryset.query).split("ORDER BY")[1]
    assert [row.pk for row in sorted_list.result_list] == [row.pk for row in sorted_list.queryset[4:8]]
    html = admin_client.get(f"{url}?p=2").content.decode()
    assert "?p=1" in html and "?p=3" in html and "?p=4" in html  # the page links are Django's own


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan")
def test_a_team_filters_rerun_plan_summary_is_read_from_the_open_problems_index_alone():
    """The transaction list's plan summary (re-runnable ones per currency for a workflow and owner role) can be
    answered from `sync_txn_rerunnable` without reading the table, so its plan does not hang on ANALYZE's sample."""
    created = ledger(40)
    rerunnable = Transaction.objects.filter(
        workflow="time_to_bill", owner_role="finance_ops", status__in=("exception", "waiting_retry")
    )
    expected = [
        t
        for t in created
        if t.workflow == "time_to_bill" and t.owner_role == "finance_ops" and t.status in ("exception", "waiting_retry")
    ]
    summary = batches.plan_summary(rerunnable)
    assert expected and summary["count"] == len(expected)
    assert dict(summary["money"]) == {"USD": sum(t.value_at_risk for t in expected)}
    totals = rerunnable.order_by().values("currency").annotate(n=Count("pk"), amount=Sum("value_at_risk"))
    sql, params = totals.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sync_transaction")  # the estimates of these 40 rows, not of an earlier test's table
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using sync_txn_rerunnable" in plan, plan
