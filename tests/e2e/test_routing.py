"""End to end over real HTTP: routing by legal entity, match before create, and one correlation ID per chain."""

import dataclasses
import datetime

import pytest
from rest_framework.test import APIClient

from apps.core.context import system_context
from apps.demo.scenario import DEALS, announce_closed_won, crm_create_deal, drain, project_for
from apps.mapping.services import external_id_for
from apps.sandbox import records as sandbox_store
from apps.sandbox.models import SandboxCall, SandboxRecord
from apps.sync.models import Transaction
from apps.systems.models import ConnectedSystem, Route

pytestmark = pytest.mark.django_db(transaction=True)

GLOBEX = DEALS[0]  # NW-US, USD
SOYLENT_UK = dataclasses.replace(DEALS[2], tax_id="GB123456789")  # NW-UK, with the VAT number a UK invoice needs


def won(world, deal) -> tuple[dict, Transaction]:
    crm_create_deal(world, deal)
    answer = announce_closed_won(world, deal)
    assert drain(inline=True, timeout=90)
    mapping = Transaction.objects.get(inbound_event_id=answer["event_id"], workflow="inbound_event")
    return answer, Transaction.objects.get(parent=mapping)


def billing_customers():
    return SandboxRecord.objects.filter(kind="billing", object_type="customer")


def system(slug):
    return ConnectedSystem.objects.get(slug=slug)


def set_match_rules(slug, rules):
    with system_context("test: match before create"):
        target = system(slug)
        target.match_customers_by = rules
        target.full_clean()
        target.save()


def seed_billing_customer(record_id, company, **fields):
    sandbox_store.create(
        "billing",
        "customer",
        {"object": "customer", "company": company, "preferred_currency_code": "USD", **fields},
        internal_id=record_id,
    )


def test_routing_sends_nw_uk_to_its_own_erp(world):
    netsuite = system("netsuite")
    with system_context("test: the UK entity has its own ERP"):
        uk_erp = ConnectedSystem.objects.create(
            slug="netsuite-uk",
            name="NetSuite UK",
            kind="erp",
            vendor="netsuite",
            base_url=netsuite.base_url,
            outbound_auth=netsuite.outbound_auth,
            outbound_credentials=netsuite.outbound_credentials,
            read_timeout_seconds=netsuite.read_timeout_seconds,
        )
        start = datetime.date(2020, 1, 1)
        Route.objects.create(target_kind="erp", system=netsuite, effective_from=start)
        uk_route = Route.objects.create(target_kind="erp", legal_entity="NW-UK", system=uk_erp, effective_from=start)

    _, uk = won(world, SOYLENT_UK)
    _, us = won(world, GLOBEX)

    assert uk.status == "completed", (uk.error_message, uk.error_technical)
    assert us.status == "completed", (us.error_message, us.error_technical)
    uk_project, us_project = project_for(world, SOYLENT_UK), project_for(world, GLOBEX)
    assert external_id_for(system=uk_erp, obj=uk_project.customer) and not external_id_for(
        system=netsuite, obj=uk_project.customer
    )
    assert external_id_for(system=netsuite, obj=us_project.customer) and not external_id_for(
        system=uk_erp, obj=us_project.customer
    )
    uk_steps = {step.name: step for step in uk.steps.all()}
    for name in ("upsert_customer_erp", "create_financial_project_erp"):
        assert uk_steps[name].target_system == uk_erp
        assert uk_steps[name].output["route"]["route_id"] == uk_route.pk
        assert "legal entity NW-UK → NetSuite UK" in uk_steps[name].output["route"]["rule"]
    assert {step.target_system.slug for step in us.steps.filter(name__endswith="_erp")} == {"netsuite"}


def test_a_customer_that_already_exists_in_the_billing_platform_is_linked_not_duplicated(world):
    set_match_rules("chargebee", ["external_id", "tax_id", "name"])
    seed_billing_customer("cb_globex_1", "Globex Corporation", email="ap@globex.example")

    _, txn = won(world, GLOBEX)

    assert txn.status == "completed", (txn.error_message, txn.error_technical)
    assert list(billing_customers().values_list("internal_id", flat=True)) == ["cb_globex_1"]
    customer = project_for(world, GLOBEX).customer
    assert external_id_for(system=system("chargebee"), obj=customer) == "cb_globex_1"
    schedule = SandboxRecord.objects.get(kind="billing", object_type="billing_schedule")
    assert schedule.data["customer_id"] == "cb_globex_1"
    step = txn.steps.get(name="create_billing_schedule")
    assert step.output["billing_customer_matched"] == {"rule": "name", "candidates": ["cb_globex_1"]}


def test_two_billing_customers_that_could_be_ours_make_an_exception_listing_both(world):
    set_match_rules("chargebee", ["name"])
    seed_billing_customer("cb_globex_1", "Globex Corporation", email="ap@globex.example")
    seed_billing_customer("cb_globex_2", "Globex Corporation", email="finance@globex.example")

    _, txn = won(world, GLOBEX)

    assert txn.status == "exception"
    assert billing_customers().count() == 2  # no third one
    assert txn.error_message.startswith("Customer ")
    assert "may already exist in Chargebee: 2 customers there match by exact name within the legal entity" in (
        txn.error_message
    )
    assert "cb_globex_1 “Globex Corporation” (ap@globex.example)" in txn.error_message
    assert "cb_globex_2 “Globex Corporation” (finance@globex.example)" in txn.error_message
    assert "Cross-references" in txn.error_fix


def test_the_202s_correlation_id_finds_the_whole_chain_and_is_on_every_outbound_call(world, auditor):
    answer, txn = won(world, GLOBEX)
    root = answer["correlation_id"]
    assert txn.status == "completed", (txn.error_message, txn.error_technical)

    client = APIClient()
    client.force_authenticate(auditor)
    listed = client.get("/api/v1/transactions/", {"correlation_id": root}).json()["results"]

    chain = Transaction.objects.filter(root_correlation_id=root)
    assert {row["correlation_id"] for row in listed} == set(chain.values_list("correlation_id", flat=True))
    assert {row["workflow"] for row in listed} == {"inbound_event", "opportunity_to_project"}
    calls = SandboxCall.objects.filter(headers__icontains=txn.correlation_id)
    assert calls.count() >= 5
    assert all(
        call.headers.get("X-Root-Correlation-Id", call.headers.get("X-Root-Correlation-ID")) == root for call in calls
    )


def seed_erp_customer(record_id, company, *, subsidiary="1", external_id=None, **fields):
    sandbox_store.create(
        "erp",
        "customer",
        {"companyName": company, "subsidiary": {"id": subsidiary}, "currency": {"id": "1"}, **fields},
        internal_id=record_id,
        external_id=external_id,
    )


def test_a_customer_already_in_the_erp_is_adopted_and_updated_not_duplicated(world):
    set_match_rules("netsuite", ["external_id", "tax_id", "name"])
    seed_erp_customer("900", "Globex Corporation", email="ap@globex.example")
    seed_erp_customer("901", "Globex Corporation", subsidiary="2")  # the same name in another entity is not ours

    _, txn = won(world, GLOBEX)

    assert txn.status == "completed", (txn.error_message, txn.error_technical)
    customers = SandboxRecord.objects.filter(kind="erp", object_type="customer")
    assert sorted(customers.values_list("internal_id", flat=True)) == ["900", "901"]
    adopted = customers.get(internal_id="900")
    customer = project_for(world, GLOBEX).customer
    assert adopted.external_id == customer.number
    assert external_id_for(system=system("netsuite"), obj=customer) == "900"
    step = txn.steps.get(name="upsert_customer_erp")
    assert step.output["erp_customer_matched"] == {"rule": "name", "candidates": ["900"]}
    job = SandboxRecord.objects.get(kind="erp", object_type="job")
    assert job.data["parent"]["id"] == "900"
