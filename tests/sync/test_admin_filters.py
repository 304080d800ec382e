"""The exception queue filters with the API's TransactionFilter: same names, declared choices, one bulk limit."""

import datetime
import uuid

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.core.limits import BULK_ACTION_LIMIT
from apps.sync.models import Transaction

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:sync_transaction_changelist")
LIST = "/api/v1/transactions/"


def exception(subject: str, *, owner_role="finance_ops", **fields) -> Transaction:
    return Transaction.objects.create(
        workflow="opportunity_to_project",
        correlation_id=uuid.uuid4().hex,
        status=Transaction.Status.EXCEPTION,
        subject=subject,
        owner_role=owner_role,
        error_class="business_rule",
        error_message=f"{subject} was refused",
        exception_at=timezone.now(),
        **fields,
    )


@pytest.fixture
def finance(make_user):
    return make_user("fiona.finance", "finance_ops", is_staff=True, first_name="Fiona", last_name="Finance")


@pytest.fixture
def finance_client(client, finance):
    client.force_login(finance)
    return client


def listed(client, url, **params) -> set[str]:
    response = client.get(url, params)
    assert response.status_code == 200, response.get("Location")
    if url == LIST:
        return {row["subject"] for row in response.json()["results"]}
    return {row.subject for row in response.context["cl"].result_list}


def test_the_queue_answers_the_apis_filter_parameters_with_the_same_rows(finance_client, finance, api_as):
    old = exception("Invoice INV-OLD")
    Transaction.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=10))
    exception("Invoice INV-NEW", owner=finance)
    exception("Deal D-1", owner_role="delivery_ops")
    yesterday = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    api = api_as(finance)
    for params in [
        {"created_after": yesterday},
        {"subject": "inv-"},
        {"owner": finance.username},
        {"owner_role": "delivery_ops"},
        {"status": "exception", "owner": "none"},
    ]:
        assert listed(finance_client, QUEUE, **params) == listed(api, LIST, **params), params
    assert listed(finance_client, QUEUE, created_after=yesterday) == {"Invoice INV-NEW", "Deal D-1"}


def test_a_filter_the_sidebar_does_not_offer_shows_with_a_link_to_drop_it(finance_client):
    exception("Invoice INV-9")
    page = finance_client.get(QUEUE, {"subject": "INV-9"}).content.decode()
    assert "Also filtered by" in page
    assert "subject, business key or message contains: INV-9" in page


def test_a_value_the_filterset_refuses_says_so_instead_of_listing_everything(finance_client):
    response = finance_client.get(QUEUE, {"owner_role": "nobody"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_the_sidebar_offers_every_role_and_the_people_who_may_act_without_scanning_the_transactions(
    finance_client, make_user
):
    make_user("dan.delivery", "delivery_ops", is_staff=True, first_name="Dan", last_name="Delivery")
    make_user("alex.auditor", "auditor", is_staff=True)
    exception("Invoice INV-1")
    with CaptureQueriesContext(connection) as captured:
        page = finance_client.get(QUEUE).content.decode()
    assert "Delivery ops" in page and "Integration admin" in page  # roles with no transaction are offered too
    assert "Dan Delivery" in page and "Assigned to me" in page and "Unassigned" in page
    assert "alex.auditor" not in page  # may not own exceptions, so not offered
    # The date hierarchy above the list still reads the days present; the filters read nothing from the table.
    scans = [q["sql"] for q in captured if q["sql"].startswith("SELECT DISTINCT") and "owner" in q["sql"]]
    assert scans == []


def test_the_queue_and_the_api_refuse_the_same_number_of_transactions_at_once(finance_client, finance, api_as):
    rows = [exception(f"Invoice INV-{n}") for n in range(BULK_ACTION_LIMIT + 1)]
    selection = {"action": "resolve_selected", "index": 0, "_selected_action": [txn.pk for txn in rows]}
    response = finance_client.post(QUEUE, selection)
    messages = [message.message for message in get_messages(response.wsgi_request)]
    assert any(f"act on at most {BULK_ACTION_LIMIT:,} at a time" in text for text in messages)
    assert Transaction.objects.filter(status=Transaction.Status.EXCEPTION).count() == BULK_ACTION_LIMIT + 1

    api = api_as(finance)
    answer = api.post(f"{LIST}replay/", {"reason": "retry all", "filter": {"workflow": "opportunity_to_project"}})
    assert answer.status_code == 422
    assert f"re-run at most {BULK_ACTION_LIMIT:,} at a time" in answer.json()["detail"]


def test_show_counts_gives_each_choice_its_number_of_transactions(finance_client, finance):
    exception("Invoice INV-1")
    exception("Invoice INV-2", owner=finance)
    exception("Deal D-1", owner_role="delivery_ops")
    page = finance_client.get(QUEUE, {"_facets": "True"}).content.decode()
    assert "Finance ops (2)" in page and "Delivery ops (1)" in page and "Auditor (0)" in page
    assert "Assigned to me (1)" in page and "Unassigned (2)" in page
