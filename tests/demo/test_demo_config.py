"""The demo firm's configuration document imports cleanly and agrees with the demo records."""

import datetime
from decimal import Decimal

import pytest

from apps.canonical.models import ContractLine, Customer, InvoiceLine, LegalEntity, RateCard
from apps.canonical.services import rate_for
from apps.core.objects import BusinessObject, field_names
from apps.demo.environment import demo_secret_specs
from apps.demo.services import CONFIG_PATH, read_document
from apps.mapping.models import ValueMap
from apps.mapping.services import value_map_lookup
from apps.sync.workflows import maps
from apps.sync.workflows.finance import DEFAULT_SERVICE_ITEM
from apps.systems.models import ConnectedSystem, OwnershipRule
from apps.systems.routing import choose_system
from apps.systems.services import may_write

pytestmark = pytest.mark.django_db

CONFIG = read_document(CONFIG_PATH)
ROLES = ["Partner", "Senior Consultant", "Consultant", "Analyst"]


def test_the_demo_config_imports_the_seven_systems_of_the_seeds(demo):
    assert dict(ConnectedSystem.objects.values_list("slug", "kind")) == {
        "salesforce": "crm",
        "pandadoc": "cpq",
        "kantata": "psa",
        "netsuite": "erp",
        "chargebee": "billing",
        "stripe": "billing",
        "bamboohr": "hris",
    }
    for system in ConnectedSystem.objects.all():
        assert system.base_url.startswith("https://")
        assert system.inbound_scheme != "none"
        assert len(system.active_signing_secrets()) == 1


def test_every_secret_of_the_demo_is_a_demo_environment_variable():
    names = demo_secret_specs()
    assert len(names) >= 2 * len(CONFIG["systems"]) - 1
    assert all(name.startswith("IC_SECRET_DEMO_") for name in names)


@pytest.mark.parametrize("rule", CONFIG["ownership_rules"], ids=lambda r: f"{r['object_type']}.{r['field'] or '*'}")
def test_every_demo_ownership_rule_names_a_real_object_and_field(rule):
    assert rule["object_type"] in BusinessObject.values
    assert rule["field"] == "" or rule["field"] in field_names(rule["object_type"])
    assert rule["rationale"].strip()
    assert rule["effective_from"]


def test_the_imported_ownership_rules_all_pass_validation(demo):
    rules = OwnershipRule.objects.all()
    assert rules.count() == len(CONFIG["ownership_rules"])
    for rule in rules:
        rule.full_clean()


# (system, object type, fields it writes, the fields it must be refused because another system owns them)
OWNERSHIP_CASES = [
    ("salesforce", "customer", ["name", "region", "tax_id", "credit_status"], {"tax_id", "credit_status"}),
    ("netsuite", "customer", ["tax_id", "credit_status", "legal_entity"], set()),
    ("netsuite", "customer", ["name"], {"name"}),
    ("kantata", "time_entry", ["hours", "status"], set()),
    ("salesforce", "project", ["status"], {"status"}),
    ("chargebee", "billing_schedule", ["frequency"], set()),
    ("bamboohr", "resource", ["name", "cost_rate"], {"cost_rate"}),
    ("netsuite", "invoice", ["status", "amount_paid"], set()),
]


def test_the_demo_rules_give_each_system_the_fields_the_seeds_say_it_owns(demo):
    for system, object_type, fields, refused in OWNERSHIP_CASES:
        decision = may_write(system=system, object_type=object_type, fields=fields, on=datetime.date(2026, 5, 1))
        assert set(decision.refused) == refused, f"{system} writing {object_type} {fields}: {decision.message()}"


def test_time_was_owned_by_the_erp_before_the_psa_went_live(demo):
    assert may_write(system="netsuite", object_type="time_entry", on=datetime.date(2025, 11, 3)).fully_allowed
    assert not may_write(system="netsuite", object_type="time_entry", on=datetime.date(2026, 1, 5)).fully_allowed


def test_the_rate_cards_price_every_role_in_2025_and_in_2026(demo):
    for card in CONFIG["rate_cards"]:
        for on in (datetime.date(2025, 6, 30), datetime.date(2026, 3, 2)):
            version = next(v for v in card["versions"] if v["effective_from"].startswith(str(on.year)))
            expected = {line["role"]: Decimal(line["bill_rate"]) for line in version["lines"]}
            for role in ROLES:
                line = rate_for(card=card["code"], role=role, on=on)
                assert line.version.version == version["version"], (card["code"], role, on)
                assert line.bill_rate == expected[role], (card["code"], role, on)
                assert line.currency == card["currency"]
    assert RateCard.objects.count() == 2


def test_the_2026_rates_are_not_the_2025_rates(demo):
    for code in ("STD-US", "STD-EU"):
        before = rate_for(card=code, role="Senior Consultant", on=datetime.date(2025, 12, 31))
        after = rate_for(card=code, role="Senior Consultant", on=datetime.date(2026, 1, 1))
        assert after.bill_rate > before.bill_rate


def test_every_customer_region_and_tax_region_has_an_erp_value(demo):
    on = datetime.date(2026, 3, 1)
    for customer in Customer.objects.all():
        assert value_map_lookup("region-subsidiary", customer.region, on=on)
        assert value_map_lookup(maps.TAX_REGION_TAX_CODE, customer.tax_region, on=on)
        assert value_map_lookup(maps.CURRENCY_ERP, customer.currency, on=on)


def test_the_demo_has_every_value_map_the_workflows_translate_through(demo):
    assert set(maps.ALL) <= set(ValueMap.objects.values_list("name", flat=True))


def test_each_customers_sales_region_maps_to_its_own_legal_entity(demo):
    on = datetime.date(2026, 3, 1)
    subsidiaries = set()
    for entity in LegalEntity.objects.all():
        subsidiaries.add(value_map_lookup(maps.LEGAL_ENTITY_SUBSIDIARY, entity.code, on=on))
        for customer in entity.customers.exclude(region=""):
            assert value_map_lookup("region-subsidiary", customer.region, on=on) == entity.code, customer
    assert len(subsidiaries) == LegalEntity.objects.count()


def test_every_contract_and_invoice_line_sells_an_item_the_erp_knows(demo):
    on = datetime.date(2026, 3, 1)
    items = {*ContractLine.objects.values_list("service_item", flat=True)}
    items |= {*InvoiceLine.objects.values_list("service_item", flat=True)}
    for item in items:
        assert value_map_lookup(maps.SERVICE_ITEM_ERP, item, on=on)
    assert value_map_lookup(maps.SERVICE_ITEM_ERP, DEFAULT_SERVICE_ITEM, on=on)


def test_the_uk_entity_bills_through_stripe_and_the_others_through_chargebee_by_route(demo):
    for workflow in ("opportunity_to_project", "time_to_bill", "milestone_to_bill", "contract_amendment"):
        chosen = {
            code: choose_system(workflow=workflow, kind="billing", legal_entity=code)
            for code in LegalEntity.objects.values_list("code", flat=True)
        }
        assert {code: choice.system.slug for code, choice in chosen.items()} == {
            "NW-US": "chargebee",
            "NW-UK": "stripe",
            "NW-DE": "chargebee",
        }
        assert all(choice.route is not None for choice in chosen.values())  # a rule chose, not a lone system
        assert "legal entity NW-UK → Stripe" in chosen["NW-UK"].explanation
    # One ERP keeps every entity's books: no route needed, the lone ERP is chosen for the UK too.
    assert choose_system(workflow="invoice_to_erp", kind="erp", legal_entity="NW-UK").system.slug == "netsuite"


def test_the_billing_platforms_may_report_invoices_and_payments_the_erp_owns(demo):
    on = datetime.date(2026, 6, 1)
    for object_type in ("invoice", "payment"):
        assert may_write(system="stripe", object_type=object_type, operation="create", on=on).fully_allowed
        assert not may_write(system="stripe", object_type=object_type, operation="create", on=on).owners
    assert may_write(system="stripe", object_type="invoice", on=on).fully_allowed  # it reports the status
