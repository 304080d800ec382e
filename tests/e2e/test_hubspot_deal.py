"""End to end over real HTTP: a HubSpot closed-won deal becomes ERP customer, PSA project and billing schedule.

The demo firm (Salesforce, Kantata, NetSuite, Chargebee, all played by the sandbox on pytest's live server)
adds HubSpot as a second CRM, configured as `docs/configuration.md` shows it. HubSpot's webhook is thin
(the deal's ID only): the `hubspot-deal-closedwon` profile reads the deal and its company from the HubSpot
sandbox, and the deal flow reports the project back to that deal.
"""

import base64
import hashlib
import hmac
import json
import time

import pytest
import requests
import yaml
from rest_framework.test import APIClient

from apps.canonical.models import Opportunity
from apps.configuration.services import config_import
from apps.demo.scenario import deal_close_date, drain
from apps.mapping.services import external_id_for
from apps.sandbox.models import SandboxCall, SandboxRecord
from apps.sandbox.services import sandbox_reset
from apps.sync.models import Transaction
from apps.systems.models import ConnectedSystem

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "pat-na1-sandbox-0042"
CLIENT_SECRET = "hubspot-app-client-secret"

HUBSPOT_CONFIG = """
version: 1
systems:
  - slug: hubspot
    name: HubSpot
    kind: crm
    vendor: hubspot
    base_url: {base_url}
    outbound:
      auth: bearer
      credentials: {{env: IC_SECRET_HUBSPOT_PRIVATE_APP_TOKEN}}
      read_timeout_seconds: 5
    inbound:
      scheme: hubspot-v3
      source_profiles: [hubspot-deal-closedwon]
      secrets:
        - {{label: primary, ref: {{env: IC_SECRET_HUBSPOT_CLIENT_SECRET}}}}
# Salesforce stays the system of record for accounts and deals; HubSpot's won deals may create them.
ownership_rules:
  - {{object_type: customer, field: "", owner: salesforce, may_create: [hubspot], effective_from: 2026-01-01}}
  - {{object_type: customer, field: tax_id, owner: netsuite, may_create: [salesforce, hubspot],
     effective_from: 2026-01-01}}
  - {{object_type: customer, field: tax_region, owner: netsuite, may_create: [salesforce, hubspot],
     effective_from: 2026-01-01}}
  - {{object_type: customer, field: legal_entity, owner: netsuite, may_create: [salesforce, hubspot],
     effective_from: 2026-01-01}}
  - {{object_type: opportunity, field: "", owner: salesforce, may_create: [hubspot], may_update: [pandadoc],
     effective_from: 2026-01-01}}
  - {{object_type: project, field: "", owner: kantata, may_create: [salesforce, hubspot], effective_from: 2026-01-01}}
"""


@pytest.fixture
def hubspot(world, monkeypatch):
    """HubSpot added to the demo firm through the configuration document, pointing at the HubSpot sandbox."""
    monkeypatch.setenv("IC_SECRET_HUBSPOT_PRIVATE_APP_TOKEN", TOKEN)
    monkeypatch.setenv("IC_SECRET_HUBSPOT_CLIENT_SECRET", CLIENT_SECRET)
    sandbox_reset("hubspot")
    document = HUBSPOT_CONFIG.format(base_url=world.url("/sandbox/hubspot/crm/v3/"))
    config_import(document=yaml.safe_load(document), dry_run=False, prune=False, source_name="hubspot.yaml")
    return ConnectedSystem.objects.get(slug="hubspot")


def hs(system, method, path, body=None):
    """Someone working in HubSpot (not the connector) sets records up."""
    response = requests.request(
        method, system.base_url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code < 300, response.text
    return response.json()


def create_won_deal(hubspot) -> tuple[dict, dict]:
    company = hs(
        hubspot,
        "POST",
        "objects/companies",
        {
            "properties": {
                "name": "Hooli Inc.",
                "vat_number": "94-1234567",
                "region": "North America",
                "domain": "hooli.example",
                "billing_email": "ap@hooli.example",
            }
        },
    )
    deal = hs(
        hubspot,
        "POST",
        "objects/deals",
        {
            "properties": {
                "dealname": "Hooli – Data platform rollout",
                "amount": "120000.00",
                "deal_currency_code": "USD",
                "closedate": f"{deal_close_date().isoformat()}T15:20:11.000Z",
                "dealstage": "closedwon",
                "contract_type": "time_and_materials",
                "rate_card": "STD-US",
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


def hubspot_announces_closed_won(world, deal_id: str) -> requests.Response:
    """HubSpot's webhook: a batch of deal.propertyChange events, signed with the v3 signature."""
    now_ms = int(time.time() * 1000)
    events = [
        {
            "eventId": now_ms % 10**9,
            "subscriptionId": 2881778,
            "portalId": 62515,
            "appId": 1160452,
            "occurredAt": now_ms,
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": int(deal_id),
            "propertyName": "dealstage",
            "propertyValue": "closedwon",
            "changeSource": "CRM_UI",
            "sourceId": "userId:4915273",
        }
    ]
    body = json.dumps(events).encode()
    url = world.url("/api/v1/inbound/hubspot/")
    stamp = str(now_ms)
    signature = base64.b64encode(
        hmac.new(CLIENT_SECRET.encode(), b"POST" + url.encode() + body + stamp.encode(), hashlib.sha256).digest()
    ).decode()
    return requests.post(
        url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": stamp,
        },
        timeout=60,
    )


def test_a_hubspot_closed_won_deal_becomes_customer_project_and_schedule_with_one_correlation_id(
    world, hubspot, auditor
):
    deal, company = create_won_deal(hubspot)

    answer = hubspot_announces_closed_won(world, deal["id"])

    assert answer.status_code == 202, answer.text
    root = answer.json()["correlation_id"]
    assert drain(inline=True, timeout=90)
    chain = Transaction.objects.filter(root_correlation_id=root)
    flow = chain.get(workflow="opportunity_to_project")
    assert flow.status == "completed", (flow.error_message, flow.error_technical)
    assert {txn.workflow for txn in chain} == {"inbound_event", "opportunity_to_project"}

    # The deal and its company were read from HubSpot (the webhook only named the deal).
    hubspot_reads = SandboxCall.objects.filter(
        kind="hubspot", method="GET", path__contains=f"/objects/deals/{deal['id']}"
    )
    assert hubspot_reads.exists()

    # ERP customer, PSA project, ERP financial project and billing schedule in the sandbox systems.
    erp_customer = SandboxRecord.objects.get(kind="erp", object_type="customer", data__companyName="Hooli Inc.")
    opportunity_steps = {step.name: step for step in flow.steps.all()}
    assert opportunity_steps["upsert_customer_erp"].output["erp_customer_id"] == erp_customer.internal_id
    psa_project = SandboxRecord.objects.get(
        kind="psa", internal_id=opportunity_steps["create_project_psa"].output["psa_project_id"]
    )
    assert psa_project.data["title"] == "Hooli – Data platform rollout"
    erp_job = SandboxRecord.objects.get(kind="erp", object_type="job")
    assert erp_job.data["parent"]["id"] == erp_customer.internal_id
    schedule = SandboxRecord.objects.get(kind="billing", object_type="billing_schedule")
    billing_customer = SandboxRecord.objects.get(kind="billing", object_type="customer")
    assert schedule.data["customer_id"] == billing_customer.internal_id

    # The deal in HubSpot now names the project, written to the CRM the deal came from.
    in_hubspot = hs(
        hubspot, "GET", f"objects/deals/{deal['id']}?properties=project_status,psa_project_id,erp_project_id"
    )
    assert in_hubspot["properties"]["project_status"] == "Project created"
    assert in_hubspot["properties"]["psa_project_id"] == psa_project.internal_id
    assert in_hubspot["properties"]["erp_project_id"] == erp_job.internal_id
    assert opportunity_steps["report_status_crm"].target_system == hubspot
    assert (
        opportunity_steps["report_status_crm"].output["route"]["rule"]
        == "HubSpot holds the opportunity this step updates"
    )
    opportunity = Opportunity.objects.get(pk=flow.state["opportunity_id"])
    assert external_id_for(system=hubspot, obj=opportunity) == deal["id"]
    assert external_id_for(system=hubspot, obj=opportunity.customer) == company["id"]

    # The 202's correlation ID is the root of every transaction and on every outbound call of the chain.
    outbound = SandboxCall.objects.filter(headers__icontains=flow.correlation_id)
    assert {call.kind for call in outbound} >= {"erp", "psa", "billing", "hubspot"}
    assert all(
        call.headers.get("X-Root-Correlation-Id", call.headers.get("X-Root-Correlation-ID")) == root
        for call in outbound
    )
    client = APIClient()
    client.force_authenticate(auditor)
    listed = client.get("/api/v1/transactions/", {"correlation_id": root}).json()["results"]
    assert {row["correlation_id"] for row in listed} == set(chain.values_list("correlation_id", flat=True))
