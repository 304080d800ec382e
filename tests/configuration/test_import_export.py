"""Export and import of the configuration document: round trips, idempotency, dry runs, pruning and history."""

import datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

from apps.canonical.models import RateCard, RateCardLine, RateCardVersion
from apps.canonical.services import rate_card_version_create, rate_for
from apps.configuration.parser import dump_document, load_document
from apps.configuration.services import config_export, config_import
from apps.core.users import system_user
from apps.mapping.models import ValueMapEntry
from apps.mapping.services import value_map_lookup
from apps.systems.models import ConnectedSystem, OwnershipRule, SigningSecret
from apps.systems.services import may_write

from .conftest import database_state, history_rows, wipe

pytestmark = pytest.mark.django_db


def export_text(tmp_path, fmt: str, name: str = "export") -> str:
    target = tmp_path / f"{name}.{fmt}"
    call_command("export_config", "--format", fmt, "--output", str(target))
    return target.read_text()


def import_file(path, *args) -> str:
    out = StringIO()
    call_command("import_config", str(path), *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_an_export_imported_into_an_empty_database_exports_identically(configured, tmp_path, fmt):
    first = export_text(tmp_path, fmt, "first")
    wipe()
    assert ConnectedSystem.objects.count() == 0

    import_file(tmp_path / f"first.{fmt}")

    assert export_text(tmp_path, fmt, "second") == first


def test_the_imported_configuration_works_for_lookups(configured, tmp_path):
    export_text(tmp_path, "yaml")
    wipe()
    import_file(tmp_path / "export.yaml")

    assert value_map_lookup("region-subsidiary", "emea", on=datetime.date(2026, 3, 1)) == "3"
    assert rate_for(card="STD-US", role="Senior Consultant", on=datetime.date(2026, 3, 1)).bill_rate == Decimal(
        "250.10"
    )
    decision = may_write(system="hubspot", object_type="customer", operation="create", on=datetime.date(2026, 3, 1))
    assert decision.fully_allowed
    assert not may_write(system="hubspot", object_type="customer", on=datetime.date(2026, 3, 1)).fully_allowed


def test_two_exports_of_the_same_data_are_byte_identical(configured):
    assert dump_document(config_export(), format="yaml") == dump_document(config_export(), format="yaml")
    assert dump_document(config_export(), format="json") == dump_document(config_export(), format="json")


def test_an_export_holds_secret_references_only(configured):
    hubspot = next(s for s in config_export()["systems"] if s["slug"] == "hubspot")
    netsuite = next(s for s in config_export()["systems"] if s["slug"] == "netsuite")

    assert hubspot["outbound"]["credentials"] == {"env": "IC_SECRET_HUBSPOT_PRIVATE_APP_TOKEN"}
    assert netsuite["outbound"]["credentials"] == {
        "password": {"file": "/run/secrets/ns"},
        "username": {"env": "IC_SECRET_NETSUITE_USER"},
    }
    assert hubspot["inbound"]["secrets"] == [
        {"label": "primary", "ref": {"env": "IC_SECRET_HUBSPOT_CLIENT_SECRET"}, "active": True, "not_after": None},
        {
            "label": "rotation 2026-11",
            "ref": {"file": "/run/secrets/hubspot"},
            "active": True,
            "not_after": "2026-12-01T09:30:00+00:00",
        },
    ]


def test_export_can_be_limited_to_some_sections(configured):
    call_command("export_config", "--format", "json", "--sections", "rate_cards,value_maps")
    document = config_export(sections=["rate_cards", "value_maps"])

    assert list(document) == ["version", "value_maps", "rate_cards"]


def test_a_second_import_reports_everything_unchanged_and_writes_no_history(configured, tmp_path):
    export_text(tmp_path, "yaml")
    wipe()
    import_file(tmp_path / "export.yaml")
    before = history_rows()

    output = import_file(tmp_path / "export.yaml")

    assert history_rows() == before
    assert "nothing to change" in output
    assert "systems: 0 created, 0 updated, 9 unchanged" in output
    assert "ownership_rules: 0 created, 0 updated, 2 unchanged" in output
    assert "value_maps: 0 created, 0 updated, 3 unchanged" in output
    assert "rate_cards: 0 created, 0 updated, 6 unchanged" in output


def test_importing_the_current_configuration_changes_nothing(configured):
    before = database_state()

    report = config_import(document=config_export(), dry_run=False, prune=True, source_name="same.yaml")

    assert not report.changed
    assert database_state() == before


def test_a_dry_run_prints_the_plan_and_writes_nothing(configured, tmp_path):
    export_text(tmp_path, "yaml")
    document = yaml.safe_load((tmp_path / "export.yaml").read_text())
    # Issue 11: approved rates are frozen, so the planned price change is a new draft version's rate.
    document["rate_cards"][0]["versions"].append(
        {
            "version": 3,
            "status": "draft",
            "effective_from": "2027-01-01",
            "lines": [{"role": "Senior Consultant", "bill_rate": "260.00"}],
        }
    )
    document["systems"].append({"slug": "kimble", "name": "Kimble", "kind": "psa", "vendor": "kimble"})
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(document))
    before = database_state()

    output = import_file(tmp_path / "changed.yaml", "--dry-run")

    assert database_state() == before
    assert "dry run, nothing was written" in output
    assert "created system kimble" in output
    assert "created rate card STD-US version 3 line 'Senior Consultant'" in output
    assert "rate_cards: 2 created, 0 updated, 6 unchanged" in output


def test_an_update_saves_only_the_rows_that_changed(configured):
    document = config_export()
    document["value_maps"][0]["entries"][1]["target"] = "4"
    before = history_rows()

    report = config_import(document=document, dry_run=False, prune=False, source_name="emea.yaml")

    assert report.counts()["value_maps"] == {"created": 0, "updated": 1, "unchanged": 2, "deleted": 0}
    assert history_rows() == before + 1
    assert value_map_lookup("region-subsidiary", "EMEA", on=datetime.date(2026, 3, 1)) == "4"


def test_every_write_is_recorded_with_the_system_user_and_the_documents_digest(configured, tmp_path):
    document = config_export()
    # Issue 11: approved rates are frozen, so the price change is a new (draft) version rather than an edit.
    document["rate_cards"][0]["versions"].append(
        {
            "version": 3,
            "status": "draft",
            "effective_from": "2027-01-01",
            "lines": [{"role": "Senior Consultant", "bill_rate": "260.00"}],
        }
    )
    document["ownership_rules"][0]["may_update"] = []
    path = tmp_path / "promote.yaml"
    path.write_text(dump_document(document, format="yaml"))
    digest = load_document(path.read_bytes()).sha256

    import_file(path)

    line = RateCardLine.objects.get(role="Senior Consultant", version__version=3)
    row = line.history.latest("history_date")
    assert row.history_user == system_user()
    assert row.history_change_reason == f"import_config promote.yaml (sha256 {digest[:12]})"
    rule = OwnershipRule.objects.get(object_type="customer", field="")
    assert list(rule.may_update.all()) == []
    assert rule.history.latest("history_date").history_change_reason == row.history_change_reason


def test_without_prune_rows_missing_from_the_document_are_kept(configured):
    document = config_export()
    del document["value_maps"][0]["entries"][0]
    document["systems"] = [s for s in document["systems"] if s["slug"] != "bamboohr"]

    report = config_import(document=document, dry_run=False, prune=False, source_name="partial.yaml")

    assert not report.changed
    assert ValueMapEntry.objects.filter(source_value="AMER").exists()
    assert ConnectedSystem.objects.filter(slug="bamboohr").exists()


def test_prune_deletes_what_the_document_no_longer_lists_and_records_it(configured, tmp_path, steward):
    # Issue 11: approved versions are frozen (never deleted), so the version pruned here is a draft.
    rate_card_version_create(
        rate_card=RateCard.objects.get(code="STD-US"),
        effective_from=datetime.date(2027, 1, 1),
        lines=[{"role": "Senior Consultant", "bill_rate": "270.00"}],
        actor=steward,
        reason="Draft 2027 prices",
    )
    document = config_export()
    del document["value_maps"][0]["entries"][0]  # the retired AMER entry
    document["systems"] = [s for s in document["systems"] if s["slug"] != "bamboohr"]
    hubspot = next(s for s in document["systems"] if s["slug"] == "hubspot")
    hubspot["inbound"]["secrets"] = hubspot["inbound"]["secrets"][:1]
    del document["rate_cards"][0]["versions"][2]
    (tmp_path / "pruned.json").write_text(dump_document(document, format="json"))

    output = import_file(tmp_path / "pruned.json", "--prune")

    assert "deleted value map region-subsidiary entry 'AMER' from 2025-01-01" in output
    assert "deleted system bamboohr" in output
    assert "systems: 0 created, 0 updated, 7 unchanged, 2 deleted" in output
    assert not ValueMapEntry.objects.filter(source_value="AMER").exists()
    assert not ConnectedSystem.objects.filter(slug="bamboohr").exists()
    assert list(SigningSecret.objects.values_list("label", flat=True)) == ["primary"]
    assert list(RateCardVersion.objects.values_list("version", flat=True)) == [1, 2]
    gone = ValueMapEntry.history.get(source_value="AMER", history_type="-")
    assert gone.history_user == system_user()
    assert gone.history_change_reason.startswith("import_config pruned.json (sha256 ")
    assert RateCardLine.history.filter(history_type="-", role="Senior Consultant").count() == 1


def test_prune_only_touches_the_sections_in_the_document(configured):
    document = {"version": 1, "rate_cards": config_export()["rate_cards"]}

    report = config_import(document=document, dry_run=False, prune=True, source_name="cards.yaml")

    assert [section.section for section in report.sections] == ["rate_cards"]
    assert ConnectedSystem.objects.count() == 7
    assert OwnershipRule.objects.count() == 2


def test_a_system_can_be_replaced_by_a_new_one_in_one_import(configured):
    document = config_export()
    document["systems"] = [s for s in document["systems"] if s["slug"] != "netsuite"]
    document["systems"].append({"slug": "sage-intacct", "name": "Sage Intacct", "kind": "erp", "vendor": "sage"})
    for rule in document["ownership_rules"]:
        if rule["owner"] == "netsuite":
            rule["owner"] = "sage-intacct"
        rule["may_update"] = []
    document["value_maps"][0]["target_system"] = "sage-intacct"

    config_import(document=document, dry_run=False, prune=True, source_name="swap.yaml")

    assert not ConnectedSystem.objects.filter(slug="netsuite").exists()
    assert OwnershipRule.objects.get(field="tax_id").owner.slug == "sage-intacct"


def test_an_ownership_period_can_be_ended_and_followed_in_one_import(configured):
    document = config_export()
    document["ownership_rules"][1]["effective_to"] = "2026-06-30"
    document["ownership_rules"].append(
        {"object_type": "customer", "field": "tax_id", "owner": "salesforce", "effective_from": "2026-07-01"}
    )

    report = config_import(document=document, dry_run=False, prune=False, source_name="handover.yaml")

    assert report.counts()["ownership_rules"] == {"created": 1, "updated": 1, "unchanged": 1, "deleted": 0}
    assert may_write(system="salesforce", object_type="customer", fields=["tax_id"], on=datetime.date(2026, 7, 1))
    owners = OwnershipRule.objects.filter(field="tax_id").order_by("effective_from")
    assert [rule.owner.slug for rule in owners] == ["netsuite", "salesforce"]


def test_a_rate_card_version_can_be_retired_and_replaced_in_one_import(configured):
    document = config_export()
    versions = document["rate_cards"][0]["versions"]
    versions[1]["effective_to"] = "2026-06-30"
    versions.append(
        {
            "version": 3,
            "status": "approved",
            "effective_from": "2026-07-01",
            "lines": [{"role": "Senior Consultant", "bill_rate": "275.00"}],
        }
    )

    config_import(document=document, dry_run=False, prune=False, source_name="rates-h2.yaml")

    line = rate_for(card="STD-US", role="Senior Consultant", on=datetime.date(2026, 8, 1))
    assert line.bill_rate == Decimal("275.00")
    assert line.currency == "USD"
    assert line.version.approved_at is not None


def test_unquoted_yaml_amounts_stay_exact(systems, tmp_path):
    path = tmp_path / "rates.yaml"
    path.write_text(
        """
version: 1
rate_cards:
  - code: EXACT
    name: Exact rates
    currency: USD
    versions:
      - version: 1
        status: approved
        effective_from: 2026-01-01
        lines:
          - {role: Senior Consultant, bill_rate: 250.10, cost_rate: 0.1, currency: USD, unit: hour}
          - {role: Analyst, bill_rate: 1234567890.1234, currency: USD}
"""
    )

    import_file(path)

    senior = RateCardLine.objects.get(role="Senior Consultant")
    assert senior.bill_rate == Decimal("250.10")
    assert senior.cost_rate == Decimal("0.1")
    assert RateCardLine.objects.get(role="Analyst").bill_rate == Decimal("1234567890.1234")
    lines = config_export()["rate_cards"][0]["versions"][0]["lines"]
    assert [(line["bill_rate"], line["cost_rate"]) for line in lines] == [("1234567890.1234", None), ("250.10", "0.10")]


def test_json_numbers_stay_exact(systems, tmp_path):
    path = tmp_path / "rates.json"
    path.write_text(
        '{"version": 1, "rate_cards": [{"code": "EXACT", "name": "Exact", "currency": "EUR", "versions": '
        '[{"version": 1, "effective_from": "2026-01-01", "lines": '
        '[{"role": "Architect", "bill_rate": 250.10, "cost_rate": "0.1"}]}]}]}'
    )

    import_file(path)

    line = RateCardLine.objects.get()
    assert (line.bill_rate, line.cost_rate, line.currency) == (Decimal("250.10"), Decimal("0.1"), "EUR")


def test_format_is_detected_from_the_content_when_the_extension_says_nothing(systems, tmp_path):
    document = {"version": 1, "systems": [{"slug": "kimble", "name": "Kimble", "kind": "psa", "vendor": "kimble"}]}
    (tmp_path / "config.txt").write_text(dump_document(document, format="json"))
    (tmp_path / "config").write_text(dump_document(document, format="yaml"))

    import_file(tmp_path / "config.txt")
    output = import_file(tmp_path / "config")

    assert ConnectedSystem.objects.get(slug="kimble").kind == "psa"
    assert "systems: 0 created, 0 updated, 1 unchanged" in output


def test_omitted_optional_keys_take_the_models_defaults(systems):
    document = {"version": 1, "systems": [{"slug": "kimble", "name": "Kimble", "kind": "psa", "vendor": "kimble"}]}

    config_import(document=document, dry_run=False, prune=False, source_name="kimble.yaml")

    kimble = ConnectedSystem.objects.get(slug="kimble")
    assert kimble.enabled is True
    assert (kimble.outbound_auth, kimble.outbound_credentials, kimble.rate_limit_burst) == ("none", {}, 5)
    assert (kimble.connect_timeout_seconds, kimble.read_timeout_seconds) == (Decimal("5"), Decimal("30"))
    assert (kimble.inbound_scheme, kimble.inbound_replay_window_seconds) == ("none", 300)


def test_yaml_yes_and_no_are_text_so_country_codes_survive(systems, tmp_path):
    path = tmp_path / "countries.yaml"
    path.write_text(
        """
version: 1
value_maps:
  - name: country-code
    source_label: country
    target_label: numeric code
    case_sensitive: true
    entries:
      - {source: NO, target: "578", effective_from: 2026-01-01}
      - {source: ON, target: "124", effective_from: 2026-01-01, note: Ontario}
"""
    )

    import_file(path)

    assert value_map_lookup("country-code", "NO", on=datetime.date(2026, 1, 1)) == "578"
    exported = dump_document(config_export(sections=["value_maps"]), format="yaml")
    assert "source: 'NO'" in exported  # quoted, so YAML 1.1 tools read text too
    assert yaml.safe_load(exported)["value_maps"][0]["entries"][0]["source"] == "NO"


def test_a_value_maps_entry_can_change_the_case_of_its_source(configured):
    document = config_export()
    document["value_maps"][0]["entries"][1]["source"] = "emea"

    report = config_import(document=document, dry_run=False, prune=True, source_name="case.yaml")

    assert [change.describe() for change in report.sections[2].changes if change.action != "unchanged"] == [
        "updated value map region-subsidiary entry 'emea' from 2026-01-01 (source)"
    ]
    assert ValueMapEntry.objects.filter(source_value="EMEA").count() == 0


def test_the_example_in_the_documentation_imports(db, tmp_path):
    text = (Path(settings.BASE_DIR) / "docs" / "configuration.md").read_text()
    example = text.split("## Example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yaml").write_text(example)

    output = import_file(tmp_path / "example.yaml")

    assert "rate_cards: 4 created, 0 updated, 0 unchanged" in output
    assert rate_for(card="STD-US", role="senior consultant", on=datetime.date(2026, 5, 4)).bill_rate == Decimal(
        "250.10"
    )
    assert ConnectedSystem.objects.get(slug="netsuite").outbound_credentials == {
        "username": {"env": "IC_SECRET_NETSUITE_USER"},
        "password": {"file": "/run/secrets/netsuite"},
    }
