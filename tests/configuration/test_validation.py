"""A document with problems is refused as a whole: every problem located, nothing written."""

import pytest
from django.core.management import CommandError, call_command

from apps.canonical.models import RateCard
from apps.configuration.errors import ConfigError
from apps.configuration.parser import dump_document, load_document
from apps.configuration.services import config_export, config_import
from apps.mapping.models import CrossReference
from tests import factories

from .conftest import database_state

pytestmark = pytest.mark.django_db


def refused(document) -> list[str]:
    """Import the document, expecting it to be refused; the located problems as 'location: message' lines."""
    before = database_state()
    with pytest.raises(ConfigError) as caught:
        config_import(document=document, dry_run=False, prune=True, source_name="bad.yaml")
    assert database_state() == before, "a refused import must leave the database as it was"
    return [str(error) for error in caught.value.errors]


def refused_file(path) -> str:
    before = database_state()
    with pytest.raises(CommandError) as caught:
        call_command("import_config", str(path))
    assert database_state() == before
    return str(caught.value)


def test_malformed_yaml_is_refused_with_its_line_and_column(configured, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\nsystems:\n  - slug: hubspot\n    name: [HubSpot\n")

    message = refused_file(path)

    assert "broken.yaml has 1 problem; nothing was imported" in message
    assert "line 5, column 1: this is not valid YAML" in message


def test_malformed_json_is_refused_with_its_line_and_column(configured, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"version": 1,\n "systems": [}\n')

    message = refused_file(path)

    assert "line 2, column 14: this is not valid JSON" in message


def test_a_key_given_twice_is_refused(configured):
    with pytest.raises(ConfigError) as caught:
        load_document("version: 1\nversion: 1\n", name="twice.yaml")
    assert "the key 'version' is given twice" in str(caught.value)
    with pytest.raises(ConfigError, match="the key 'version' is given twice"):
        load_document('{"version": 1, "version": 1}', name="twice.json")


def test_an_unknown_top_level_key_is_named(configured):
    document = config_export()
    document["source_profile"] = []

    assert refused(document) == [
        "source_profile: unknown section 'source_profile'; the sections are systems, ownership_rules, value_maps, "
        "rate_cards, source_profiles, legal_entities, routes"
    ]


def test_an_unknown_or_missing_version_is_refused(configured):
    assert refused({"version": 2, "systems": []}) == [
        "version: this document is version 2; this console reads version 1"
    ]
    assert refused({"systems": config_export()["systems"]}) == [
        "version: this key is required; this console reads version 1"
    ]


def test_an_unknown_key_inside_an_item_is_named(configured):
    document = config_export()
    document["systems"][0]["outbound"]["timeout"] = 5

    assert refused(document) == [
        "systems[0].outbound.timeout: unknown key 'timeout'; the keys here are auth, credentials, "
        "rate_limit_per_minute, rate_limit_burst, connect_timeout_seconds, read_timeout_seconds"
    ]


def test_bad_enum_date_and_number_are_all_reported_at_once(configured):
    document = config_export()
    document["systems"][0]["kind"] = "mainframe"
    document["ownership_rules"][0]["effective_from"] = "2026-02-30"
    document["rate_cards"][0]["versions"][1]["lines"].append({"role": "Partner", "bill_rate": "abc"})

    assert refused(document) == [
        "systems[0].kind: 'mainframe' is not one of crm, cpq, psa, erp, billing, hris, bi",
        "ownership_rules[0].effective_from: '2026-02-30' is not a date; write it as YYYY-MM-DD",
        "rate_cards[0].versions[1].lines[2].bill_rate: 'abc' is not a number",
    ]


def test_bad_values_in_a_yaml_file_are_located_too(configured, tmp_path):
    document = config_export()
    text = dump_document(document, format="yaml").replace("effective_from: 2026-01-01", "effective_from: 2026-13-01")
    path = tmp_path / "dates.yaml"
    path.write_text(text)

    message = refused_file(path)

    assert "ownership_rules[0].effective_from: '2026-13-01' is not a date" in message
    assert "value_maps[0].entries[1].effective_from: '2026-13-01' is not a date" in message


def test_an_unknown_system_slug_is_refused(configured):
    document = config_export()
    document["ownership_rules"][0]["owner"] = "sales-force"
    document["value_maps"][0]["target_system"] = "netsuit"

    assert refused(document) == [
        "ownership_rules[0].owner: unknown system 'sales-force': there is none in this document or in the database",
        "value_maps[0].target_system: unknown system 'netsuit': there is none in this document or in the database",
    ]


def test_a_reference_to_a_system_the_import_prunes_is_refused(configured):
    document = config_export()
    document["systems"] = [s for s in document["systems"] if s["slug"] != "hubspot"]

    assert refused(document) == [
        "ownership_rules[0].may_create[0]: unknown system 'hubspot': it is not in this document and --prune removes it"
    ]


def test_a_reference_to_a_system_defined_only_in_the_document_is_accepted(configured):
    document = {
        "version": 1,
        "systems": [{"slug": "kimble", "name": "Kimble", "kind": "psa", "vendor": "kimble"}],
        "ownership_rules": [
            {"object_type": "project", "owner": "kimble", "may_create": ["salesforce"], "effective_from": "2026-01-01"}
        ],
    }

    report = config_import(document=document, dry_run=False, prune=False, source_name="kimble.yaml")

    assert report.counts()["ownership_rules"]["created"] == 1


@pytest.mark.parametrize(
    ("credentials", "ref"),
    [
        ("tok_live_abc123", {"env": "IC_SECRET_HUBSPOT_CLIENT_SECRET"}),
        ({"env": "IC_SECRET_HUBSPOT_PRIVATE_APP_TOKEN"}, "abc123"),
        ({"env": "IC_SECRET_HUBSPOT_PRIVATE_APP_TOKEN"}, {"value": "abc123"}),
        ({"username": "api", "password": {"env": "IC_SECRET_PASS"}}, {"env": "IC_SECRET_HUBSPOT_CLIENT_SECRET"}),
    ],
)
def test_a_plain_text_secret_is_refused_without_being_repeated(configured, credentials, ref):
    document = config_export()
    hubspot = next(s for s in document["systems"] if s["slug"] == "hubspot")
    hubspot["outbound"]["credentials"] = credentials
    hubspot["inbound"]["secrets"][0]["ref"] = ref

    problems = refused(document)

    assert len(problems) == 1
    assert "secrets are given by reference" in problems[0]
    assert "abc123" not in problems[0] and "tok_live" not in problems[0]
    assert problems[0].startswith("systems[2].")


def test_a_badly_named_secret_reference_is_refused(configured):
    document = config_export()
    document["systems"][2]["inbound"]["secrets"][0]["ref"] = {"env": "hubspot-secret"}

    assert refused(document) == [
        "systems[2].inbound.secrets[0].ref: The secret reference names environment variable 'hubspot-secret'; "
        "use capital letters, digits and underscores."
    ]


def test_overlapping_rate_card_versions_are_refused(configured):
    # Issue 11: approved versions are frozen, so the overlap comes from a new version, not from moving version 1.
    document = config_export()
    document["rate_cards"][0]["versions"].append(
        {
            "version": 3,
            "status": "approved",
            "effective_from": "2026-06-01",
            "lines": [{"role": "Analyst", "bill_rate": "90"}],
        }
    )

    assert refused(document) == [
        "rate_cards[0].versions[2]: rate card STD-US version 3 (2026-06-01 to open-ended) overlaps approved "
        "version 2 (2026-01-01 to open-ended, in rate_cards[0].versions[1]); approved versions of one rate card "
        "may not overlap: end one the day before the next starts"
    ]


def test_a_version_overlapping_one_kept_in_the_database_is_refused(configured):
    document = config_export()
    document["rate_cards"][0]["versions"] = [
        {
            "version": 3,
            "status": "approved",
            "effective_from": "2026-06-01",
            "lines": [{"role": "Analyst", "bill_rate": "90"}],
        }
    ]

    with pytest.raises(ConfigError) as caught:
        config_import(document=document, dry_run=True, prune=False, source_name="v3.yaml")

    assert [str(e) for e in caught.value.errors] == [
        "rate_cards[0].versions[0]: rate card STD-US version 3 (2026-06-01 to open-ended) overlaps approved "
        "version 2 (2026-01-01 to open-ended, kept in the database, not in this document); approved versions of "
        "one rate card may not overlap: end one the day before the next starts"
    ]


def test_draft_versions_may_overlap(configured):
    document = config_export()
    document["rate_cards"][0]["versions"].append(
        {"version": 3, "status": "draft", "effective_from": "2026-06-01", "lines": []}
    )

    report = config_import(document=document, dry_run=False, prune=False, source_name="draft.yaml")

    assert report.counts()["rate_cards"]["created"] == 1


def test_an_approved_version_without_rates_is_refused(configured):
    document = config_export()
    document["rate_cards"][0]["versions"].append(
        {"version": 3, "status": "approved", "effective_from": "2027-01-01", "lines": []}
    )
    document["rate_cards"][0]["versions"][1]["effective_to"] = "2026-12-31"

    assert refused(document) == [
        "rate_cards[0].versions[2].lines: approved version 3 of rate card STD-US has no rates; add at least one "
        "line, or leave the version as a draft"
    ]


def test_overlapping_ownership_rules_are_refused(configured):
    document = config_export()
    document["ownership_rules"].append(
        {"object_type": "customer", "field": "tax_id", "owner": "salesforce", "effective_from": "2026-06-01"}
    )

    assert refused(document) == [
        "ownership_rules[2]: the customer field 'tax_id' already has a rule for 2026-01-01 to open-ended "
        "(owner NetSuite, in ownership_rules[1]); rules for the same object and field may not overlap: end one "
        "the day before the next starts"
    ]


def test_a_rule_overlapping_one_kept_in_the_database_is_refused(configured):
    document = {
        "version": 1,
        "ownership_rules": [
            {
                "object_type": "customer",
                "owner": "hubspot",
                "effective_from": "2025-01-01",
                "effective_to": "2026-01-01",
            }
        ],
    }

    with pytest.raises(ConfigError) as caught:
        config_import(document=document, dry_run=False, prune=False, source_name="rules.yaml")

    assert [str(e) for e in caught.value.errors] == [
        "ownership_rules[0]: the customer as a whole already has a rule for 2026-01-01 to open-ended (owner "
        "Salesforce, kept in the database, not in this document); rules for the same object and field may not "
        "overlap: end one the day before the next starts"
    ]


def test_overlapping_value_map_entries_are_refused_ignoring_case(configured):
    document = config_export()
    document["value_maps"][0]["entries"].append({"source": "emea", "target": "5", "effective_from": "2026-07-01"})

    assert refused(document) == [
        "value_maps[0].entries[2]: value map region-subsidiary already maps 'EMEA' to '3' for 2026-01-01 to "
        "open-ended (in value_maps[0].entries[1]); entries for the same value may not overlap: end one the day "
        "before the next starts"
    ]


def test_the_same_row_listed_twice_is_refused(configured):
    document = config_export()
    document["systems"].append(dict(document["systems"][0]))

    assert refused(document) == ["systems[7]: system 'bamboohr' is listed twice (also at systems[0])"]


def test_model_validation_is_reported_at_the_key(configured):
    document = config_export()
    document["systems"][0]["base_url"] = "not a url"
    document["value_maps"][0]["name"] = "Region to subsidiary"
    # Issue 11: approved rates are frozen, so the rates checked here are a new draft version's.
    document["rate_cards"][0]["versions"].append(
        {
            "version": 3,
            "status": "draft",
            "effective_from": "2027-01-01",
            "lines": [
                {"role": "Analyst", "bill_rate": "-1"},
                {"role": "Senior Consultant", "bill_rate": "250", "cost_rate": "1.23456"},
            ],
        }
    )

    assert refused(document) == [
        "systems[0].base_url: Enter a valid URL.",
        "value_maps[0].name: Enter a valid “slug” consisting of letters, numbers, underscores or hyphens.",
        "rate_cards[0].versions[2].lines[0].bill_rate: A bill rate cannot be negative.",
        "rate_cards[0].versions[2].lines[1].cost_rate: Ensure that there are no more than 4 decimal places.",
    ]


def test_an_end_before_the_start_is_refused(configured):
    document = config_export()
    document["value_maps"][0]["entries"][0]["effective_to"] = "2024-12-31"

    assert refused(document) == [
        "value_maps[0].entries[0].effective_to: the end date 2024-12-31 is before the start date 2025-01-01"
    ]


def test_wrong_types_are_refused(configured):
    document = config_export()
    document["systems"][0]["enabled"] = "yes"
    document["value_maps"][0]["entries"][0]["target"] = 1
    document["rate_cards"] = {"code": "STD-US"}

    assert refused(document) == [
        "systems[0].enabled: expected true or false, got 'yes'",
        "value_maps[0].entries[0].target: expected text, got the number 1; put it in quotes",
        "rate_cards: expected a list of rate cards (write [] for none)",
    ]


def test_prune_refuses_to_delete_a_system_still_in_use(configured):
    CrossReference.objects.create(
        system=configured["hris"],
        object_type="resource",
        object_id=1,
        external_id="E-1",
    )
    document = config_export()
    document["systems"] = [s for s in document["systems"] if s["slug"] != "bamboohr"]

    assert refused(document) == [
        "systems: system bamboohr is not in this document, so --prune would delete it, but it is still used by "
        "1 cross reference (resource #1 = bamboohr:E-1); keep it in the document, or remove what uses it first"
    ]


def test_the_command_exits_with_an_error_listing_every_problem(configured, tmp_path):
    document = config_export()
    document["systems"][0]["kind"] = "mainframe"
    document["rate_cards"][0]["currency"] = "XXX"
    path = tmp_path / "bad.json"
    path.write_text(dump_document(document, format="json"))

    message = refused_file(path)

    assert message.splitlines() == [
        "The configuration document bad.json has 2 problems; nothing was imported.",
        "  systems[0].kind: 'mainframe' is not one of crm, cpq, psa, erp, billing, hris, bi",
        "  rate_cards[0].currency: 'XXX' is not a currency code this product knows (e.g. USD, EUR, GBP)",
    ]


def test_two_approved_versions_swapping_periods_are_refused_before_anything_is_written(configured):
    # Issue 11: this used to be refused only for the write order; approved versions are now frozen, so moving
    # either one's dates is refused outright (a price change is a new version).
    document = config_export()
    first, second = document["rate_cards"][0]["versions"]
    first["effective_from"], second["effective_from"] = second["effective_from"], first["effective_from"]
    first["effective_to"], second["effective_to"] = second["effective_to"], first["effective_to"]
    before = database_state()

    assert refused(document) == [
        "rate_cards[0].versions[0]: Rate card STD-US version 1 is approved: its start (2025-01-01) cannot move; "
        "its end (2025-12-31) cannot move. A price change is a new version: add a version with the new rates "
        "instead.",
        "rate_cards[0].versions[1]: Rate card STD-US version 2 is approved: its start (2026-01-01) cannot move. "
        "A price change is a new version: add a version with the new rates instead.",
    ]
    assert database_state() == before


def test_an_invalid_system_is_reported_once_not_again_where_it_is_used(systems):
    document = {
        "version": 1,
        "systems": [{"slug": "kimble", "name": 3, "kind": "psa", "vendor": "kimble"}],
        "ownership_rules": [{"object_type": "project", "owner": "kimble", "effective_from": "2026-01-01"}],
    }

    assert refused(document) == ["systems[0].name: expected text, got the number 3; put it in quotes"]


def test_a_field_the_object_does_not_have_is_refused(configured):
    document = config_export()
    document["ownership_rules"][1]["field"] = "vat_number"

    problems = refused(document)

    assert len(problems) == 1
    assert problems[0].startswith("ownership_rules[1].field: a customer has no field 'vat_number'; known: ")
    assert "tax_id" in problems[0]


def test_prune_refuses_to_delete_a_system_a_kept_rule_still_grants_rights_to(configured):
    systems = [s for s in config_export()["systems"] if s["slug"] != "hubspot"]

    assert refused({"version": 1, "systems": systems}) == [
        "systems: system hubspot is not in this document, so --prune would delete it, but it is still used by "
        "1 ownership rule (customer owned by salesforce (2026-01-01 to open-ended)); keep it in the document, or "
        "remove what uses it first"
    ]


def test_prune_refuses_to_delete_a_rate_card_a_contract_uses(configured):
    factories.contract(number="K-7", name="Acme rollout", rate_card=RateCard.objects.get(code="STD-US"))

    assert refused({"version": 1, "rate_cards": []}) == [
        "rate_cards: rate card STD-US is not in this document, so --prune would delete it, but it is still used by "
        "1 contract (K-7 Acme rollout); keep it in the document, or remove what uses it first"
    ]
