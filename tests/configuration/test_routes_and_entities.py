"""Routes and legal entities in the configuration document: exported, imported, and checked with their locations."""

import pytest

from apps.canonical.models import LegalEntity
from apps.configuration.services import config_export, config_import
from apps.systems.models import Route
from tests import factories

from .test_validation import refused

pytestmark = pytest.mark.django_db


def imported(document, **options):
    return config_import(document=document, dry_run=False, prune=False, source_name="firm.yaml", **options)


@pytest.fixture
def firm(configured):
    factories.legal_entity("NW-US", name="Northwind Inc.", country="US", tax_region="US-NY")
    factories.legal_entity("NW-UK", name="Northwind UK Ltd", country="GB", currency="GBP", tax_region="GB")
    factories.system("netsuite-uk", "erp", name="NetSuite UK", vendor="netsuite")
    return configured


def uk_route(**overrides):
    return {
        "kind": "erp",
        "workflow": "",
        "legal_entity": "NW-UK",
        "system": "netsuite-uk",
        "effective_from": "2026-01-01",
        "effective_to": None,
        "rationale": "The UK entity invoices from its own ERP",
    } | overrides


def test_routes_and_legal_entities_are_exported_and_imported_back_unchanged(firm):
    document = config_export()
    document["routes"].append(uk_route())
    document["routes"].append(uk_route(legal_entity="", system="netsuite"))
    imported(document)

    again = config_export()
    assert [(row["legal_entity"], row["system"]) for row in again["routes"] if row["kind"] == "erp"] == [
        ("", "netsuite"),
        ("NW-UK", "netsuite-uk"),
    ]
    assert {row["code"]: row["currency"] for row in again["legal_entities"]} == {"NW-UK": "GBP", "NW-US": "USD"}
    report = imported(again)
    assert not report.changed


def test_a_legal_entity_is_created_and_updated_from_the_document_with_history(firm):
    document = config_export(sections=["legal_entities"])
    document["legal_entities"].append(
        {"code": "NW-DE", "name": "Northwind GmbH", "country": "DE", "currency": "EUR", "tax_region": "DE"}
    )
    document["legal_entities"][0]["name"] = "Northwind Advisory UK Ltd"
    report = imported(document)

    assert "legal_entities: 1 created, 1 updated, 1 unchanged" in report.lines()
    assert LegalEntity.objects.get(code="NW-DE").currency == "EUR"
    renamed = LegalEntity.objects.get(code="NW-UK")
    assert renamed.name == "Northwind Advisory UK Ltd"
    assert renamed.history.first().history_change_reason.startswith("import_config firm.yaml")


def test_a_bad_legal_entity_is_refused_at_its_location(firm):
    document = config_export(sections=["legal_entities"])
    document["legal_entities"].append(
        {"code": "NW-FR", "name": "Northwind SAS", "country": "France", "currency": "EURO"}
    )
    problems = refused(document)
    assert "legal_entities[2].country: expected a two-letter ISO country code such as GB, got 'France'" in problems
    assert any(problem.startswith("legal_entities[2].currency:") for problem in problems)


def test_an_entity_route_may_name_an_entity_created_by_the_same_document(firm):
    document = config_export(sections=["legal_entities", "routes"])
    document["legal_entities"].append({"code": "NW-DE", "name": "Northwind GmbH", "country": "DE", "currency": "EUR"})
    document["routes"] += [
        uk_route(legal_entity="NW-DE", system="netsuite-uk"),
        uk_route(legal_entity="", system="netsuite"),
    ]
    imported(document)
    assert Route.objects.get(legal_entity="NW-DE").system.slug == "netsuite-uk"


def test_overlapping_routes_for_one_scope_are_refused_as_ambiguous(firm):
    document = config_export(sections=["routes"])
    document["routes"] += [
        uk_route(legal_entity="", system="netsuite"),
        uk_route(),
        uk_route(system="netsuite", effective_from="2026-06-01"),
    ]
    assert refused(document) == [
        "routes[3]: the erp route of every workflow for legal entity NW-UK already has a route for 2026-01-01 to "
        "open-ended (to netsuite-uk, in routes[2]); two routes for one scope would make the choice ambiguous: "
        "end one the day before the next starts"
    ]


def test_a_route_naming_what_does_not_exist_is_refused_at_each_key(firm):
    document = config_export(sections=["routes"])
    document["routes"].append(uk_route(workflow="invoice_to_erpp", legal_entity="NW-FR", system="hubspot"))
    document["routes"].append(uk_route(workflow="time_to_bill"))
    problems = refused(document)
    assert problems[0].startswith("routes[1].workflow: there is no workflow 'invoice_to_erpp'; the workflows are ")
    assert problems[1:] == [
        "routes[1].legal_entity: unknown legal entity 'NW-FR': there is none in this document or in the database",
        "routes[1].system: hubspot is a crm system; this route chooses among erp systems",
        "routes[2].kind: the workflow time_to_bill writes to billing systems only, not to erp",
    ]


def test_a_second_erp_without_routes_is_imported_with_a_warning_naming_each_open_workflow(firm):
    report = imported(config_export(sections=["systems"]))

    warnings = [str(warning) for warning in report.warnings]
    assert (
        "systems: 2 ERP systems are enabled (NetSuite and NetSuite UK) and no route says which one the workflow "
        "'invoice_to_erp' writes to for legal entity NW-UK, NW-US. Add a route under 'routes' (kind: erp, "
        "workflow: invoice_to_erp or empty for every workflow, system: one of netsuite, netsuite-uk)."
    ) in warnings
    assert any("'customer_update'" in warning for warning in warnings)
    assert any(line.startswith("warning: systems: 2 ERP systems are enabled") for line in report.lines())


def test_routes_covering_every_entity_leave_no_warning(firm):
    document = config_export(sections=["routes"])
    document["routes"] += [uk_route(), uk_route(legal_entity="NW-US", system="netsuite")]
    report = imported(document)
    assert report.warnings == []
    assert Route.objects.filter(target_kind="erp").count() == 2


def test_routes_that_leave_an_entity_open_are_refused_naming_each_workflow_and_the_entity(firm):
    document = config_export(sections=["routes"])
    document["routes"].append(uk_route())
    problems = refused(document)
    assert problems
    assert all(
        problem.startswith("routes: 2 ERP systems are enabled (NetSuite and NetSuite UK)") for problem in problems
    )
    assert all("for legal entity NW-US." in problem for problem in problems)
    assert any("'invoice_to_erp'" in problem for problem in problems)
    assert not Route.objects.filter(legal_entity="NW-UK").exists()


def test_a_workflow_specific_route_for_every_entity_closes_the_gap_for_that_workflow_only(firm):
    document = config_export(sections=["routes"])
    document["routes"] += [uk_route(), uk_route(legal_entity="", workflow="invoice_to_erp", system="netsuite")]
    problems = refused(document)
    assert not any("'invoice_to_erp'" in problem for problem in problems)
    assert any("'customer_update' writes to for legal entity NW-US." in problem for problem in problems)


def test_each_value_map_the_workflows_need_is_named_when_missing(firm):
    report = imported(config_export(sections=["value_maps"]))
    warnings = [str(warning) for warning in report.warnings]
    assert warnings == [
        f"value_maps: there is no value map '{name}' ({purpose}); the workflows that need it stop with a mapping "
        f"error until it exists: add it under 'value_maps'"
        for name, purpose in [
            ("legal-entity-subsidiary", "legal entity code → ERP subsidiary id (ERP customers, financial projects)"),
            (
                "currency-erp",
                "ISO currency code → ERP currency id (ERP customers; refreshed by the reference data pull)",
            ),
            ("tax-region-tax-code", "customer tax region → ERP tax code id (invoices posted to ERP)"),
            ("service-item-erp-item", "service item → ERP item id (invoice lines posted to ERP)"),
        ]
    ]


def test_a_value_map_present_is_not_named(firm):
    document = config_export(sections=["value_maps"])
    document["value_maps"].append({"name": "currency-erp", "source_label": "currency", "target_label": "id"})
    report = imported(document)
    assert not any("'currency-erp'" in str(warning) for warning in report.warnings)


def test_a_systems_customer_match_rules_round_trip_and_an_unknown_rule_is_located(firm):
    document = config_export(sections=["systems"])
    chargebee = next(index for index, row in enumerate(document["systems"]) if row["slug"] == "chargebee")
    document["systems"][chargebee]["match_customers_by"] = ["external_id", "tax_id", "name"]
    imported(document)
    assert config_export(sections=["systems"])["systems"][chargebee]["match_customers_by"] == [
        "external_id",
        "tax_id",
        "name",
    ]
    document["systems"][chargebee]["match_customers_by"] = ["vat"]
    problems = refused(document)
    assert problems == [
        f"systems[{chargebee}].match_customers_by: Unknown match rule 'vat'; the rules are external_id, tax_id, "
        "email, email_domain, name."
    ]
