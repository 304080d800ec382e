"""The HubSpot connector against the HubSpot sandbox over real HTTP (live server), and a closed-won webhook."""

import datetime
import json
from decimal import Decimal

import pytest
import requests

from apps.connectors.errors import ConcurrencyError, PermanentError, TargetRejected, TransientError
from apps.connectors.registry import adapter_for
from apps.core.context import system_context
from apps.inbound.models import InboundEvent
from apps.mapping.models import ValueMap, ValueMapEntry
from apps.mapping.services import builtin_profiles_install
from apps.sandbox.services import sandbox_calls, sandbox_faults_set, sandbox_reset
from apps.sync.engine import run_step
from apps.sync.intake import pick_up_stored_events
from apps.systems.models import SigningSecret

from .. import factories
from ..inbound.conftest import HUBSPOT_SECRET, hubspot_v3_headers, sample

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "pat-na1-sandbox-0042"
JAN_1 = datetime.date(2026, 1, 1)


@pytest.fixture
def hubspot(live_server, monkeypatch):
    monkeypatch.setenv("IC_SECRET_HUBSPOT_TOKEN", TOKEN)
    sandbox_reset("hubspot")
    return factories.system(
        "hubspot",
        "crm",
        name="HubSpot",
        vendor="hubspot",
        base_url=live_server.url + "/sandbox/hubspot/crm/v3/",
        outbound_auth="bearer",
        outbound_credentials={"env": "IC_SECRET_HUBSPOT_TOKEN"},
        read_timeout_seconds=Decimal("5"),
        rate_limit_per_minute=None,
    )


def hs(system, method, path, body=None):
    """Set up records in the sandbox as someone working in HubSpot would (not through the connector)."""
    response = requests.request(
        method, system.base_url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture
def won_deal(hubspot):
    company = hs(
        hubspot,
        "POST",
        "objects/companies",
        {"properties": {"name": "Initech GmbH", "vat_number": "DE123", "region": "EMEA", "domain": "initech.example"}},
    )
    deal = hs(
        hubspot,
        "POST",
        "objects/deals",
        {
            "properties": {
                "dealname": "Initech ERP migration",
                "amount": "185000.00",
                "deal_currency_code": "EUR",
                "closedate": "2026-03-31T15:20:11.000Z",
                "dealstage": "closedwon",
                "contract_type": "time_and_materials",
                "rate_card": "STD-EU-2026",
            },
            "associations": [
                {
                    "to": {"id": company["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}],
                }
            ],
        },
    )
    return deal, company


def connector(system):
    return adapter_for(system, correlation_id="corr-hubspot")


def test_a_deal_is_read_with_its_company_in_one_batch_read(hubspot, won_deal):
    deal, company = won_deal
    document = connector(hubspot).fetch_document("deal", deal["id"], include=("company",))
    assert document["deal"]["properties"]["dealname"] == "Initech ERP migration"
    assert document["deal"]["properties"]["amount"] == "185000.00"
    assert document["company"]["id"] == company["id"]
    assert document["company"]["properties"]["vat_number"] == "DE123"
    paths = [call.path for call in sandbox_calls("hubspot", method="POST")]
    assert paths[-1].endswith("/objects/companies/batch/read")


def test_the_deal_gets_its_project_and_the_company_its_balance(hubspot, won_deal):
    deal, company = won_deal
    crm = connector(hubspot)
    crm.update_opportunity(deal["id"], {"Project_Status__c": "Project created", "ERP_Project_Id__c": "PR10010"})
    crm.update_account(company["id"], {"AR_Balance__c": Decimal("1200.50"), "Credit_Status__c": "ok"})
    assert crm.fetch("deal", deal["id"])["properties"]["erp_project_id"] == "PR10010"
    assert crm.fetch("company", company["id"])["properties"]["ar_balance"] == "1200.50"


def test_every_answer_carries_hubspot_rate_limit_headers(hubspot, won_deal):
    deal, _ = won_deal
    response = requests.get(
        hubspot.base_url + f"objects/deals/{deal['id']}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.headers["X-HubSpot-RateLimit-Max"] == "100"
    assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(response.headers["X-HubSpot-RateLimit-Remaining"]) < 100


def test_a_429_waits_for_retry_after(hubspot, won_deal):
    deal, _ = won_deal
    sandbox_faults_set("hubspot", throttle_next=1, retry_after_seconds=7)
    with pytest.raises(TransientError) as caught:
        connector(hubspot).fetch("deal", deal["id"])
    assert caught.value.retry_at is not None
    assert caught.value.vendor_code == "RATE_LIMITS"
    assert "slow down" in caught.value.message


def test_an_unknown_property_is_refused_in_hubspots_words(hubspot, won_deal):
    deal, _ = won_deal
    with pytest.raises(TargetRejected) as caught:
        connector(hubspot).update_opportunity(deal["id"], {"Warp_Speed__c": "9"})
    assert 'Property "warp_speed" does not exist' in caught.value.message


def test_a_second_contact_with_one_email_is_a_duplicate_naming_the_first(hubspot):
    crm = connector(hubspot)
    first = crm.create("contact", {"email": "ap@initech.example"}, idempotency_key="k-1")
    with pytest.raises(TargetRejected) as caught:
        crm.create("contact", {"email": "AP@initech.example"}, idempotency_key="k-2")
    assert first.id in caught.value.message
    assert "already has a record" in caught.value.message


@pytest.mark.parametrize(
    ("rejection", "error_class"),
    [
        ("validation", TargetRejected),
        ("duplicate", TargetRejected),
        ("concurrency", ConcurrencyError),
        ("auth", PermanentError),
        ("forbidden", PermanentError),
        ("not_found", PermanentError),
    ],
)
def test_each_documented_hubspot_error_becomes_its_error_class(hubspot, won_deal, rejection, error_class):
    deal, _ = won_deal
    sandbox_faults_set("hubspot", reject_next=1, reject_with=rejection)
    with pytest.raises(error_class) as caught:
        connector(hubspot).update_opportunity(deal["id"], {"Project_Status__c": "x"})
    assert "HubSpot" in caught.value.message
    if error_class is ConcurrencyError:
        assert isinstance(caught.value, TransientError)


def test_a_5xx_is_transient(hubspot, won_deal):
    deal, _ = won_deal
    sandbox_faults_set("hubspot", fail_next=1)
    with pytest.raises(TransientError):
        connector(hubspot).fetch("deal", deal["id"])


def test_a_closed_won_webhook_fetches_the_deal_from_the_sandbox(hubspot, won_deal, client, live_server, monkeypatch):
    deal, company = won_deal
    with system_context("Install built-in source profiles"):
        builtin_profiles_install()  # a transactional test may run on a flushed database
    regions = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
    ValueMapEntry.objects.create(value_map=regions, source_value="EMEA", target_value="ACME-DE", effective_from=JAN_1)
    monkeypatch.setenv("IC_SECRET_TEST_HUBSPOT_SECRET", HUBSPOT_SECRET)
    hubspot.inbound_scheme = "hubspot-v3"
    hubspot.save()
    SigningSecret.objects.create(system=hubspot, label="primary", reference={"env": "IC_SECRET_TEST_HUBSPOT_SECRET"})
    events = json.loads(sample("hubspot", "deal.propertyChange.json"))
    events[0]["objectId"] = int(deal["id"])
    body = json.dumps(events[:1]).encode()
    url = "http://testserver/api/v1/inbound/hubspot/"
    response = client.post(
        "/api/v1/inbound/hubspot/", data=body, content_type="application/json", **hubspot_v3_headers(body, url)
    )
    assert response.status_code == 202, response.content
    event = InboundEvent.objects.get(system=hubspot)
    pick_up_stored_events()  # what the pick-up task does once the delivery is committed
    for txn in event.transactions.all():
        for step in txn.steps.order_by("id"):
            run_step(step.pk)
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.MAPPED, event.error
    command = event.commands[0]
    assert command["type"] == "opportunity.won"
    assert command["data"]["opportunity_external_id"] == deal["id"]
    assert command["data"]["customer_external_id"] == company["id"]
    assert command["data"]["customer_name"] == "Initech GmbH"
    assert command["data"]["legal_entity"] == "ACME-DE"
    assert sandbox_calls("hubspot", method="GET", path__endswith=f"/objects/deals/{deal['id']}").exists()
