"""The timeline: any id a person pastes leads to the whole trail of the deal, customer or delivery.

Driven through the inbound API exactly as the vendors call it (the demo firm on the sandbox systems).
"""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.console.selectors.timeline_trail import timeline_candidates, timeline_for
from apps.demo.scenario import (
    DEALS,
    announce_closed_won,
    crm_create_deal,
    drain,
    project_for,
    sign_change_order,
    upload_month_of_time,
)
from apps.mapping.services import external_id_for
from apps.sync.models import Transaction
from apps.systems.models import ConnectedSystem
from tests.e2e.conftest import world  # noqa: F401  (the demo firm wired to the sandbox)

pytestmark = pytest.mark.django_db(transaction=True)
GLOBEX, INITECH = DEALS[0], DEALS[1]


def _trail_ids(client, q):
    page = client.get("/timeline/", {"q": q})
    assert page.status_code == 200
    return page


def _month_of_globex(world):  # noqa: F811
    for deal in (GLOBEX, INITECH):
        crm_create_deal(world, deal)
        announce_closed_won(world, deal)
    assert drain(inline=True, timeout=90)
    project = project_for(world, GLOBEX)
    upload_month_of_time(world, project, month=timezone.localdate(), odd_role="Solution Architect")
    assert drain(inline=True, timeout=90)
    effective = (timezone.localdate().replace(day=1) + datetime.timedelta(days=32)).replace(day=1)
    sign_change_order(
        world,
        GLOBEX,
        version=2,
        effective_from=effective,
        new_total=Decimal("240000"),
        new_end=effective + datetime.timedelta(days=180),
        rates={"Senior Consultant": Decimal("265.00")},
    )
    assert drain(inline=True, timeout=90)
    return project


def _initech_ids(world):  # noqa: F811
    initech = project_for(world, INITECH)
    return {
        txn.pk
        for txn in Transaction.objects.all()
        if initech.code in txn.subject or world.opportunities[INITECH.name] in txn.business_key
    }


def test_the_project_code_the_customer_name_and_the_deal_id_each_find_the_whole_trail(
    world,  # noqa: F811
    client,
    finance_user,
):
    project = _month_of_globex(world)
    initech_deal = set(
        Transaction.objects.filter(business_key=f"opportunity:{world.opportunities[INITECH.name]}").values_list(
            "pk", flat=True
        )
    )
    assert initech_deal
    amendment = Transaction.objects.get(workflow="contract_amendment")
    odd_time = Transaction.objects.get(workflow="time_to_bill", status="exception")
    deal_txn = Transaction.objects.get(business_key=f"opportunity:{world.opportunities[GLOBEX.name]}")
    batches = set(Transaction.objects.filter(workflow="time_to_bill").values_list("pk", flat=True))
    wanted = {amendment.pk, odd_time.pk, deal_txn.pk, deal_txn.parent_id} | batches

    for q in (project.code, "Globex", world.opportunities[GLOBEX.name]):
        candidates = timeline_candidates(q)
        assert len(candidates) == 1, (q, candidates)
        trail = timeline_for(candidates[0].key, finance_user)
        found = {txn.pk for txn in trail.transactions}
        assert wanted <= found, (q, wanted - found)
        assert not initech_deal & found, q
        assert trail.records["time_entry"], q  # the month's time entries and their changes
        assert trail.count("call") >= 5 and trail.count("delivery") >= 3 and trail.count("change") > 10

    client.force_login(finance_user)
    page = client.get("/timeline/", {"q": project.code}).content.decode()
    assert "Contract amendment" in page
    assert "has no approved rate card version for role" in page  # the odd time entry's exception
    assert "Time and expenses to bill" in page
    netsuite = ConnectedSystem.objects.get(slug="netsuite")
    erp_customer = external_id_for(system=netsuite, obj=project.customer)
    assert timeline_candidates(erp_customer)[0].key == f"customer:{project.customer_id}"


def test_the_correlation_id_of_the_202_answer_leads_to_the_whole_chain(world, client, finance_user):  # noqa: F811
    crm_create_deal(world, GLOBEX)
    answer = announce_closed_won(world, GLOBEX)
    assert drain(inline=True, timeout=90)
    mapping = Transaction.objects.get(inbound_event_id=answer["event_id"], workflow="inbound_event")
    deal = Transaction.objects.get(parent=mapping)
    assert mapping.correlation_id != answer["correlation_id"]  # why the transaction list finds nothing by it

    client.force_login(finance_user)
    page = client.get("/timeline/", {"q": answer["correlation_id"]}).content.decode()
    assert "Webhook received from Salesforce" in page
    assert "Inbound event mapping" in page and "Opportunity to project" in page
    trail = timeline_for(timeline_candidates(answer["correlation_id"])[0].key, finance_user)
    assert {mapping.pk, deal.pk} <= {txn.pk for txn in trail.transactions}
    assert trail.records["project"] and trail.records["customer"]
    assert trail.count("call") >= 5


def test_an_ambiguous_name_offers_a_choice_and_an_unknown_id_says_so(client, finance_user):
    from tests import factories

    factories.customer(name="Globex Corporation")
    factories.customer(name="Globex UK Ltd")
    client.force_login(finance_user)
    page = client.get("/timeline/", {"q": "Globex"}).content.decode()
    assert "may mean several things" in page
    assert page.count("key=customer") == 2
    assert "Nothing is known as" in client.get("/timeline/", {"q": "nope-123"}).content.decode()


def test_people_without_access_to_the_ledger_cannot_open_the_timeline(client, outsider):
    client.force_login(outsider)
    assert client.get("/timeline/", {"q": "Globex"}).status_code == 403


def test_rates_in_the_timeline_stay_masked_for_a_role_that_may_not_see_them(delivery_user, finance_user, steward):
    from apps.canonical.models import TimeEntry
    from apps.core.context import audit_context
    from tests import factories

    project = factories.project(code="P-77001")
    with audit_context(actor=steward, reason="Time approved"):
        entry = TimeEntry.objects.create(
            resource=factories.resource(), project=project, work_date=datetime.date(2026, 3, 2), hours=Decimal("7.5")
        )
        entry.bill_rate = Decimal("265.00")
        entry.save()
    key = timeline_candidates("P-77001")[0].key
    hidden = [c for e in timeline_for(key, delivery_user).entries for c in e.changes if c.field == "bill_rate"]
    shown = [c for e in timeline_for(key, finance_user).entries for c in e.changes if c.field == "bill_rate"]
    assert hidden and all(c.masked and c.new is None for c in hidden)
    assert shown[0].new == Decimal("265.00")
