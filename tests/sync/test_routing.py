"""A step writes to the system its route chooses for what the transaction is about, and the trace says why."""

import datetime

import pytest
from django.urls import reverse

from apps.mapping.services import cross_reference_record
from apps.sync.engine import run_due_steps
from apps.sync.registry import StepSpec, WorkflowDefinition, register
from apps.sync.services import transaction_start
from apps.sync.steps import StepResult
from apps.systems.models import Route
from tests import factories

pytestmark = pytest.mark.django_db


@register
class RoutingTestFlow(WorkflowDefinition):
    """Records which customer the run is about, then 'writes' to the ERP its route chooses."""

    name = "routing_test"

    def plan(self, data):
        return [StepSpec("record", "Record the customer"), StepSpec("post", "Post to ERP", target="erp")]

    def step_record(self, ctx):
        return StepResult(output={"customer_id": ctx.input["customer_id"]})

    def step_post(self, ctx):
        return StepResult(output={"wrote_to": ctx.target.slug})


@pytest.fixture
def firm(systems):
    us = factories.legal_entity("NW-US", country="US")
    uk = factories.legal_entity("NW-UK", country="GB", currency="GBP")
    erp_uk = factories.system("netsuite-uk", "erp", name="NetSuite UK", vendor="netsuite")
    return {
        "us_customer": factories.customer(legal_entity=us),
        "uk_customer": factories.customer(number="C-2", legal_entity=uk),
        "erp": systems["erp"],
        "erp_uk": erp_uk,
    }


def add_route(system, legal_entity=""):
    Route.objects.create(
        target_kind="erp", legal_entity=legal_entity, system=system, effective_from=datetime.date(2020, 1, 1)
    )


def run_for(customer):
    txn = transaction_start(workflow="routing_test", data={"customer_id": customer.pk}, reason="test")
    run_due_steps()
    txn.refresh_from_db()
    return txn


def test_routing_sends_the_uk_entitys_step_to_its_own_erp_and_says_which_rule_chose_it(firm):
    add_route(firm["erp"])
    uk_route = Route.objects.create(
        target_kind="erp", legal_entity="NW-UK", system=firm["erp_uk"], effective_from=datetime.date(2020, 1, 1)
    )

    uk = run_for(firm["uk_customer"])
    us = run_for(firm["us_customer"])

    assert uk.status == "completed" and us.status == "completed"
    uk_post = uk.steps.get(name="post")
    assert uk_post.target_system == firm["erp_uk"]  # planned for NetSuite, re-routed once the entity was known
    assert uk_post.output["wrote_to"] == "netsuite-uk"
    assert uk_post.output["route"] == {
        "system": "netsuite-uk",
        "route_id": uk_route.pk,
        "rule": f"route #{uk_route.pk}: ERP of every workflow, legal entity NW-UK → NetSuite UK "
        f"(2020-01-01 to open-ended)",
    }
    us_post = us.steps.get(name="post")
    assert us_post.target_system == firm["erp"] and us_post.output["wrote_to"] == "netsuite"


def test_two_erps_and_no_route_make_the_step_an_exception_naming_both(firm):
    txn = run_for(firm["uk_customer"])

    assert txn.status == "exception"
    post = txn.steps.get(name="post")
    assert post.status == "failed" and post.target_system is None
    assert post.error_message == (
        "2 ERP systems are enabled (NetSuite and NetSuite UK) and no route says which one the workflow "
        "'routing_test' writes to for legal entity NW-UK."
    )
    assert "Add a route" in post.error_fix


def test_with_one_erp_no_route_is_needed_and_the_trace_says_so(systems):
    entity = factories.legal_entity("NW-US", country="US")
    txn = run_for(factories.customer(legal_entity=entity))
    post = txn.steps.get(name="post")
    assert post.output["route"]["rule"] == "NetSuite is the only enabled ERP system (no route applies)"


def test_the_trace_page_shows_which_rule_chose_the_system(admin_client, firm):
    add_route(firm["erp"])
    Route.objects.create(
        target_kind="erp", legal_entity="NW-UK", system=firm["erp_uk"], effective_from=datetime.date(2020, 1, 1)
    )
    txn = run_for(firm["uk_customer"])
    page = admin_client.get(reverse("admin:sync_transaction_change", args=[txn.pk])).content.decode()
    assert "→ NetSuite UK (ERP)" in page
    assert "chosen by route #" in page and "ERP of every workflow, legal entity NW-UK → NetSuite UK" in page


def test_the_trace_page_links_to_every_transaction_of_its_chain(admin_client, firm):
    add_route(firm["erp"])
    txn = transaction_start(
        workflow="routing_test", data={"customer_id": firm["us_customer"].pk}, root_correlation_id="delivery-42"
    )
    other = transaction_start(workflow="routing_test", data={"customer_id": firm["us_customer"].pk})
    page = admin_client.get(reverse("admin:sync_transaction_change", args=[txn.pk])).content.decode()
    assert "delivery-42" in page and "the whole chain" in page
    chain = admin_client.get(reverse("admin:sync_transaction_changelist"), {"queue": "all", "q": "delivery-42"})
    assert [row.pk for row in chain.context["cl"].result_list] == [txn.pk]  # not `other`, started by no delivery
    assert other.root_correlation_id != "delivery-42"


@register
class WriteBackTestFlow(WorkflowDefinition):
    """Records which customer the run is about, then updates that customer's CRM account."""

    name = "write_back_test"

    def plan(self, data):
        return [
            StepSpec("record", "Record the customer"),
            StepSpec("report", "Report to CRM", target="crm", writes_back="customer"),
        ]

    def step_record(self, ctx):
        return StepResult(output={"customer_id": ctx.input["customer_id"]})

    def step_report(self, ctx):
        return StepResult(output={"wrote_to": ctx.target.slug})


@pytest.fixture
def two_crms(systems):
    hubspot = factories.system("hubspot", "crm", name="HubSpot", vendor="hubspot")
    customer = factories.customer(legal_entity=factories.legal_entity("NW-US", country="US"))
    return {"salesforce": systems["crm"], "hubspot": hubspot, "customer": customer}


def write_back_for(customer):
    txn = transaction_start(workflow="write_back_test", data={"customer_id": customer.pk}, reason="test")
    run_due_steps()
    txn.refresh_from_db()
    return txn


def test_a_write_back_goes_to_the_crm_that_holds_the_account_without_a_route(two_crms):
    cross_reference_record(system=two_crms["hubspot"], obj=two_crms["customer"], external_id="901")

    txn = write_back_for(two_crms["customer"])

    report = txn.steps.get(name="report")
    assert txn.status == "completed" and report.output["wrote_to"] == "hubspot"
    assert report.output["route"] == {
        "system": "hubspot",
        "route_id": None,
        "rule": "HubSpot holds the customer / account this step updates",
    }


def test_a_write_back_held_by_two_crms_or_none_follows_the_routes(two_crms):
    customer = two_crms["customer"]
    nowhere = write_back_for(customer)
    assert nowhere.status == "exception"
    assert "2 CRM systems are enabled (HubSpot and Salesforce)" in nowhere.steps.get(name="report").error_message

    cross_reference_record(system=two_crms["hubspot"], obj=customer, external_id="901")
    cross_reference_record(system=two_crms["salesforce"], obj=customer, external_id="001A")
    Route.objects.create(target_kind="crm", system=two_crms["salesforce"], effective_from=datetime.date(2020, 1, 1))
    both = write_back_for(customer)
    assert both.status == "completed" and both.steps.get(name="report").output["wrote_to"] == "salesforce"
