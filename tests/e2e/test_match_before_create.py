"""End to end over real HTTP: a won deal whose customer already exists in Business Central and in Stripe.

A firm on HubSpot (CRM), Kantata (PSA), Business Central (ERP) and Stripe (billing), all played by the
sandbox on pytest's live server, matches customers by name before creating them. Initech was entered in
Business Central (its own number, 10000) and in Stripe by hand before the console existed: the deal flow
links both and updates the BC customer; it creates no second customer in either.
"""

import datetime
from decimal import Decimal

import pytest
import requests

from apps.canonical.models import Opportunity
from apps.demo.scenario import drain
from apps.mapping.models import ValueMap, ValueMapEntry
from apps.mapping.services import builtin_profiles_install, external_id_for
from apps.sandbox.models import SandboxRecord
from apps.sandbox.seeds import BC_COMPANY_ID
from apps.sandbox.services import sandbox_reset
from apps.sync.models import Transaction
from apps.systems.models import SigningSecret

from .. import factories
from .test_hubspot_deal import CLIENT_SECRET, TOKEN, create_won_deal, hubspot_announces_closed_won

pytestmark = pytest.mark.django_db(transaction=True)

JAN_1 = datetime.date(2026, 1, 1)


class Console:
    def __init__(self, base_url):
        self.base_url = base_url

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"


@pytest.fixture
def firm(live_server, monkeypatch, settings):
    settings.SYNC_BACKOFF_BASE_SECONDS = 0.3
    settings.SYNC_BACKOFF_CAP_SECONDS = 2
    for name, value in (
        ("IC_SECRET_HUBSPOT_PRIVATE_APP_TOKEN", TOKEN),
        ("IC_SECRET_HUBSPOT_CLIENT_SECRET", CLIENT_SECRET),
        ("IC_SECRET_E2E_KEY", "sandbox-accepts-any-key"),
    ):
        monkeypatch.setenv(name, value)
    builtin_profiles_install()  # a transactional test may run on a flushed database
    for kind in ("hubspot", "psa", "business-central", "stripe"):
        sandbox_reset(kind)
    common = {
        "outbound_auth": "bearer",
        "outbound_credentials": {"env": "IC_SECRET_E2E_KEY"},
        "read_timeout_seconds": Decimal("5"),
        "rate_limit_per_minute": None,
    }
    hubspot = factories.system(
        "hubspot",
        "crm",
        name="HubSpot",
        vendor="hubspot",
        base_url=f"{live_server.url}/sandbox/hubspot/crm/v3/",
        inbound_scheme="hubspot-v3",
        **{**common, "outbound_credentials": {"env": "IC_SECRET_HUBSPOT_PRIVATE_APP_TOKEN"}},
    )
    SigningSecret.objects.create(system=hubspot, label="primary", reference={"env": "IC_SECRET_HUBSPOT_CLIENT_SECRET"})
    factories.system(
        "kantata", "psa", name="Kantata", vendor="kantata", base_url=f"{live_server.url}/sandbox/psa/api/v1/", **common
    )
    bc = factories.system(
        "business-central",
        "erp",
        name="Business Central",
        vendor="business-central",
        base_url=f"{live_server.url}/sandbox/business-central/api/v2.0/companies({BC_COMPANY_ID})/",
        match_customers_by=["external_id", "name"],
        **common,
    )
    stripe = factories.system(
        "stripe",
        "billing",
        name="Stripe",
        vendor="stripe",
        base_url=f"{live_server.url}/sandbox/stripe/v1/",
        match_customers_by=["external_id", "email", "name"],
        **common,
    )
    factories.legal_entity("ACME-US")
    factories.rate_card("STD-US", versions=[(JAN_1, None, "approved", {"Consultant": 200})])
    for name, source, target in (
        ("region-subsidiary", "North America", "ACME-US"),
        ("legal-entity-subsidiary", "ACME-US", "CRONUS-US"),  # Business Central: the company is the entity
        ("currency-erp", "USD", "USD"),
    ):
        value_map = ValueMap.objects.create(name=name, source_label="ours", target_label="theirs")
        ValueMapEntry.objects.create(
            value_map=value_map, source_value=source, target_value=target, effective_from=JAN_1
        )
    return {"hubspot": hubspot, "bc": bc, "stripe": stripe, "console": Console(live_server.url)}


def entered_by_hand(url: str, **kwargs) -> dict:
    response = requests.post(url, headers={"Authorization": "Bearer sandbox-accepts-any-key"}, timeout=10, **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_a_won_deal_links_the_customer_already_in_business_central_and_stripe(firm):
    bc, stripe = firm["bc"], firm["stripe"]
    in_bc = entered_by_hand(bc.base_url + "customers", json={"number": "10000", "displayName": "Hooli Inc."})
    in_stripe = entered_by_hand(stripe.base_url + "customers", data={"name": "Hooli Inc.", "email": "ap@hooli.example"})
    deal, _ = create_won_deal(firm["hubspot"])

    answer = hubspot_announces_closed_won(firm["console"], deal["id"])
    assert answer.status_code == 202, answer.text
    assert drain(inline=True, timeout=90)

    flow = Transaction.objects.get(workflow="opportunity_to_project")
    assert flow.status == "completed", (flow.error_message, flow.error_technical)
    customer = Opportunity.objects.get(pk=flow.state["opportunity_id"]).customer
    steps = {step.name: step for step in flow.steps.all()}

    # Business Central: the customer entered there is linked and brought up to date; it keeps its number.
    assert steps["upsert_customer_erp"].output["erp_customer_matched"] == {"rule": "name", "candidates": [in_bc["id"]]}
    bc_customers = SandboxRecord.objects.filter(kind="business-central", object_type="customer")
    assert list(bc_customers.values_list("internal_id", flat=True)) == [in_bc["id"]]
    assert bc_customers.get().data["number"] == "10000"
    assert bc_customers.get().data["email"] == "ap@hooli.example"
    assert external_id_for(system=bc, obj=customer) == in_bc["id"]
    assert SandboxRecord.objects.filter(kind="business-central", object_type="project").count() == 1

    # Stripe: found by e-mail, linked, and the schedule's product names it; no second Stripe customer.
    assert steps["create_billing_schedule"].output["billing_customer_matched"] == {
        "rule": "email",
        "candidates": [in_stripe["id"]],
    }
    assert list(
        SandboxRecord.objects.filter(kind="stripe", object_type="customer").values_list("internal_id", flat=True)
    ) == [in_stripe["id"]]
    assert external_id_for(system=stripe, obj=customer) == in_stripe["id"]
    product = SandboxRecord.objects.get(kind="stripe", object_type="product")
    assert product.data["metadata"]["customer"] == in_stripe["id"]
