"""The console's lists over a growing ledger: the same statements for 10 transactions as for 200."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.core.paginators import CappedPaginator
from apps.sync.groups import money_by_group, open_member_counts
from tests.factories import ledger

pytestmark = pytest.mark.django_db

TRANSACTIONS = reverse("console:transactions")
GROUPS = reverse("console:exceptions")
PAGES = [
    TRANSACTIONS,
    f"{TRANSACTIONS}?queue=all",
    f"{TRANSACTIONS}?queue=all&workflow=time_to_bill&owner_role=finance_ops",
    GROUPS,
    f"{GROUPS}?owner_role=finance_ops",
    reverse("console:home"),
]


def statements(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


def test_every_console_list_runs_the_same_statements_for_10_transactions_as_for_200(client, admin_user):
    client.force_login(admin_user)
    ledger(10)
    statements(client, reverse("console:home"))  # the 30-day figures are kept in the cache after the first visit
    few = {url: statements(client, url) for url in PAGES}
    ledger(190, start=10)
    many = {url: statements(client, url) for url in PAGES}
    assert many == few
    assert statements(client, f"{TRANSACTIONS}?queue=all&page=4") == statements(
        client, f"{TRANSACTIONS}?queue=all&page=2"
    )


def test_the_transaction_list_past_the_row_limit_says_more_than_and_stops_at_the_last_page(
    client, admin_user, monkeypatch
):
    client.force_login(admin_user)
    monkeypatch.setattr(CappedPaginator, "row_limit", 60)
    ledger(130)
    page = client.get(f"{TRANSACTIONS}?queue=all&page=9")
    assert page.context["page"].number == 2  # 60 rows at 50 a page: the last page it offers
    assert "more than 60 transactions match" in page.content.decode()


def test_the_exception_group_list_counts_only_open_members(client, admin_user):
    client.force_login(admin_user)
    ledger(14)  # 4 exceptions and 2 resolved, filed under two groups; 2 retrying and 2 pending are in no group
    rows = client.get(GROUPS).context["rows"]
    assert sorted(row["group"].open_count for row in rows) == [2, 2]


def test_the_exception_group_list_reads_open_counts_and_money_in_one_pass_matching_the_per_group_figures(
    client, admin_user
):
    client.force_login(admin_user)
    created = ledger(40)
    open_ones = [t for t in created if t.status == "exception"]  # the groups hold exceptions and resolved ones
    with CaptureQueriesContext(connection) as captured:
        rows = client.get(GROUPS).context["rows"]
    assert sum("sync_exceptiongroupmember" in query["sql"] for query in captured) == 1
    assert sum(row["group"].open_count for row in rows) == len(open_ones)
    for row in rows:
        group = row["group"]
        assert group.open_count == open_member_counts().get(group.pk, 0)
        assert row["money"] == sorted(money_by_group([group.pk]).get(group.pk, []))
    money = {currency: amount for row in rows for currency, amount in row["money"]}
    assert sum(money.values()) == sum(t.value_at_risk for t in open_ones)
    # Filtered to a role that owns no group: no rows.
    assert client.get(f"{GROUPS}?owner_role=delivery_ops").context["rows"] == []
