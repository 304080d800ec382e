"""Source profiles as configuration: export, import, round trips, built-ins, one active version, located errors."""

import copy
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.configuration.errors import ConfigError
from apps.configuration.parser import load_document
from apps.configuration.services import config_export, config_import
from apps.core.context import system_context
from apps.core.users import system_user
from apps.inbound.models import Delivery, InboundEvent
from apps.mapping.builtin_profiles import builtin_profiles
from apps.mapping.models import SourceProfile
from apps.mapping.services import profiles_for_system, source_profile_new_version
from apps.systems.models import ConnectedSystem

from .conftest import history_rows, wipe

pytestmark = pytest.mark.django_db

BUILTINS = len(builtin_profiles())


def active(name: str) -> SourceProfile:
    return SourceProfile.objects.get(name=name, status=SourceProfile.Status.ACTIVE)


def state() -> tuple:
    """What a user could notice: the whole export (built-ins included) and the history of every covered model."""
    return config_export(include_builtin=True), history_rows() + SourceProfile.history.count()


def refused(document: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_import(document=document, dry_run=False, prune=False, source_name="bad.yaml")
    return [str(error) for error in caught.value.errors]


@pytest.fixture
def custom(configured):
    """A firm's own profile (active, with a float in its sample), a draft of a built-in, and a system naming both."""
    shipped = active("chargebee-invoice-generated")
    spec = {**copy.deepcopy(shipped.spec), "description": "EU invoices, read with our own numbering"}
    sample = {**copy.deepcopy(shipped.sample_payload), "exchange_rate": 1.0825}
    SourceProfile.objects.create(
        name="chargebee-invoice-eu",
        version=1,
        vendor="chargebee",
        event_types=spec["event_types"],
        schema_version=spec.get("schema_version", ""),
        status="active",
        description="Our EU invoices",
        documentation_url="https://apidocs.chargebee.com/docs/api/events",
        spec=spec,
        sample_payload=sample,
    )
    payments = active("chargebee-payment-succeeded")
    source_profile_new_version(
        profile=payments,
        spec={**payments.spec, "description": "Card payments only"},
        actor=None,
        reason="Draft for review (MAP-7)",
    )
    chargebee = configured["billing"]
    chargebee.source_profiles = ["chargebee-invoice-eu", "chargebee-payment-succeeded"]
    chargebee.save()
    return configured


def wipe_all() -> None:
    wipe()
    SourceProfile.objects.filter(builtin=False).delete()


def export_file(tmp_path, fmt: str, name: str, *options) -> str:
    target = tmp_path / f"{name}.{fmt}"
    call_command("export_config", "--format", fmt, "--output", str(target), *options)
    return target.read_text()


def import_file(path, *options) -> str:
    out = StringIO()
    call_command("import_config", str(path), *options, stdout=out)
    return out.getvalue()


def test_an_export_lists_the_firms_own_profiles_and_the_profiles_each_system_reads_with(custom):
    document = config_export()

    assert [(row["name"], row["version"], row["status"]) for row in document["source_profiles"]] == [
        ("chargebee-invoice-eu", 1, "active"),
        ("chargebee-payment-succeeded", 2, "draft"),
    ]
    eu = document["source_profiles"][0]
    assert list(eu) == [
        "name",
        "version",
        "vendor",
        "event_types",
        "schema_version",
        "status",
        "description",
        "documentation_url",
        "spec",
        "sample_payload",
    ]
    assert eu["sample_payload"]["exchange_rate"] == 1.0825
    assert list(eu["spec"]) == sorted(eu["spec"])  # the same bytes whichever database stored it
    chargebee = next(system for system in document["systems"] if system["slug"] == "chargebee")
    assert chargebee["inbound"]["source_profiles"] == ["chargebee-invoice-eu", "chargebee-payment-succeeded"]
    salesforce = next(system for system in document["systems"] if system["slug"] == "salesforce")
    assert salesforce["inbound"]["source_profiles"] == []


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_round_trip_through_an_empty_database_is_exact(custom, tmp_path, fmt):
    first = export_file(tmp_path, fmt, "first")
    wipe_all()
    assert not SourceProfile.objects.filter(builtin=False).exists()

    output = import_file(tmp_path / f"first.{fmt}")

    assert "source_profiles: 2 created, 0 updated, 0 unchanged" in output
    assert export_file(tmp_path, fmt, "second") == first
    eu = active("chargebee-invoice-eu")
    assert eu.sample_payload["exchange_rate"] == 1.0825 and not eu.builtin
    assert eu.history.get().history_user == system_user()
    chargebee = ConnectedSystem.objects.get(slug="chargebee")
    assert sorted(profiles_for_system(chargebee).values_list("name", "version")) == [
        ("chargebee-invoice-eu", 1),
        ("chargebee-payment-succeeded", 1),  # the draft v2 is not read with until it is published
    ]


def test_importing_the_same_document_again_writes_nothing(custom, tmp_path):
    export_file(tmp_path, "yaml", "config")
    wipe_all()
    import_file(tmp_path / "config.yaml")
    before = state()

    output = import_file(tmp_path / "config.yaml")

    assert "nothing to change" in output
    assert "source_profiles: 0 created, 0 updated, 2 unchanged" in output
    assert state() == before


def test_built_in_profiles_are_exported_only_when_asked_and_import_unchanged(custom, tmp_path):
    assert all(not row.get("builtin") for row in config_export()["source_profiles"])
    text = export_file(tmp_path, "yaml", "everything", "--include-builtin")
    rows = load_document(text, name="everything.yaml").data["source_profiles"]
    assert sum(1 for row in rows if row.get("builtin")) == SourceProfile.objects.filter(builtin=True).count()
    assert len([row for row in rows if row.get("builtin")]) >= BUILTINS
    before = state()

    output = import_file(tmp_path / "everything.yaml")

    assert f"source_profiles: 0 created, 0 updated, {len(rows)} unchanged" in output
    assert state() == before


def test_an_active_version_in_the_document_retires_the_active_built_in(systems):
    shipped = active("stripe-invoice-paid")
    own = {
        "name": "stripe-invoice-paid",
        "version": shipped.version + 1,
        "vendor": "stripe",
        "status": "active",
        "spec": {**shipped.spec, "description": "Ours"},
    }

    report = config_import(
        document={"version": 1, "source_profiles": [own]}, dry_run=False, prune=False, source_name="own.yaml"
    )

    assert active("stripe-invoice-paid").version == shipped.version + 1
    shipped.refresh_from_db()
    assert shipped.status == "retired" and shipped.builtin
    assert f"  updated source profile stripe-invoice-paid v{shipped.version} (built-in) retired: version " in (
        "\n".join(report.lines())
    )
    again = config_import(
        document={"version": 1, "source_profiles": [own]}, dry_run=False, prune=False, source_name="own.yaml"
    )
    assert not again.changed


def test_a_broken_spec_is_refused_with_each_problem_at_its_place(custom):
    document = config_export()
    spec = document["source_profiles"][0]["spec"]
    spec["commands"][0]["fields"]["total"] = {"path": "content.invoice.total", "type": "string"}
    spec["commands"][0]["fields"]["totl"] = "content.invoice.total"
    document["source_profiles"][1]["vendor"] = "stripe"

    problems = refused(document)

    assert "source_profiles[0].spec.commands[0].fields.total.type: this field holds a decimal" in " ".join(problems)
    assert any(
        problem.startswith("source_profiles[0].spec.commands[0].fields: 'totl' is not a field of invoice.posted")
        for problem in problems
    )
    assert "source_profiles[1].vendor: the spec reads vendor 'chargebee'; vendor must be the same" in problems
    assert active("chargebee-invoice-eu").spec["commands"] == active("chargebee-invoice-generated").spec["commands"]


def test_the_spec_must_agree_with_the_event_types_given_beside_it(custom):
    document = config_export()
    document["source_profiles"][0]["event_types"] = ["invoice_updated"]

    (problem,) = refused(document)

    assert problem.startswith("source_profiles[0].event_types: ['invoice_updated'] is not what the spec says")


def test_two_active_versions_of_one_profile_are_refused(custom):
    document = config_export()
    document["source_profiles"][1]["status"] = "active"
    second = copy.deepcopy(document["source_profiles"][1])
    second["version"] = 3
    document["source_profiles"].append(second)

    assert refused(document) == [
        "source_profiles[2].status: version 2 of chargebee-payment-succeeded is active in this document too "
        "(at source_profiles[1]); only one version of a profile may be active"
    ]


def test_a_system_may_name_only_profiles_that_exist(custom):
    document = config_export()
    index = next(n for n, system in enumerate(document["systems"]) if system["slug"] == "chargebee")
    document["systems"][index]["inbound"]["source_profiles"] = ["chargebee-invoice-eu", "chargebee-invoices"]

    assert refused(document) == [
        f"systems[{index}].inbound.source_profiles[1]: there is no source profile 'chargebee-invoices' in this "
        "document or in the database; name a profile listed under source_profiles, or leave the list empty to read "
        "events with the vendor's built-in profiles"
    ]


def test_a_system_may_not_name_a_profile_that_prune_removes(custom):
    document = config_export()
    index = next(n for n, system in enumerate(document["systems"]) if system["slug"] == "chargebee")
    document["source_profiles"] = document["source_profiles"][1:]

    with pytest.raises(ConfigError) as caught:
        config_import(document=document, dry_run=False, prune=True, source_name="pruned.yaml")

    assert [error.location for error in caught.value.errors] == [f"systems[{index}].inbound.source_profiles[0]"]
    assert SourceProfile.objects.filter(name="chargebee-invoice-eu").exists()


def test_a_built_in_version_cannot_be_replaced_or_invented_by_an_import(custom):
    shipped = active("bamboohr-employees")
    mine = {
        "name": shipped.name,
        "version": shipped.version,
        "vendor": "bamboohr",
        "status": "active",
        "spec": {**shipped.spec, "description": "Mine"},
    }
    invented = {**mine, "name": "bamboohr-contractors", "builtin": True, "spec": shipped.spec}

    problems = refused({"version": 1, "source_profiles": [mine, invented]})

    assert problems[0].startswith(
        f"source_profiles[0]: source profile bamboohr-employees v{shipped.version} is a built-in profile shipped "
        f"with this installation and cannot be replaced by an import; number your own version {shipped.version + 1}"
    )
    assert problems[1].startswith(
        "source_profiles[1].builtin: there is no built-in source profile bamboohr-contractors v1 in this installation"
    )


def test_prune_removes_the_firms_unlisted_versions_but_never_built_ins(custom):
    document = config_export()
    document["source_profiles"] = document["source_profiles"][:1]
    builtins = SourceProfile.objects.filter(builtin=True).count()

    report = config_import(document=document, dry_run=False, prune=True, source_name="pruned.yaml")

    assert report.counts()["source_profiles"] == {"created": 0, "updated": 0, "unchanged": 1, "deleted": 1}
    assert not SourceProfile.objects.filter(name="chargebee-payment-succeeded", builtin=False).exists()
    assert SourceProfile.objects.filter(builtin=True).count() == builtins


def test_prune_keeps_a_version_that_inbound_events_were_read_with(custom):
    draft = SourceProfile.objects.get(name="chargebee-payment-succeeded", builtin=False)
    with system_context("test event"):
        delivery = Delivery.objects.create(
            system=custom["billing"],
            status="accepted",
            received_at="2026-04-01T10:00:00Z",
            method="POST",
            url="https://console.example/api/v1/inbound/chargebee/",
            correlation_id="c-1",
        )
        InboundEvent.objects.create(
            delivery=delivery,
            system=custom["billing"],
            idempotency_key="k-1",
            payload={},
            profile=draft,
            correlation_id="c-1",
        )
    document = config_export()
    document["source_profiles"] = document["source_profiles"][:1]

    with pytest.raises(ConfigError) as caught:
        config_import(document=document, dry_run=False, prune=True, source_name="pruned.yaml")

    assert [str(error) for error in caught.value.errors] == [
        "source_profiles: source profile chargebee-payment-succeeded v2 is not in this document, so --prune would "
        "delete it, but 1 inbound event was read with it; keep it in the document (retired) so the record of how "
        "they were read stays"
    ]
    assert SourceProfile.objects.filter(pk=draft.pk).exists()


def test_the_documented_example_imports_a_profile_and_a_system_naming_one(db, tmp_path):
    text = (Path(settings.BASE_DIR) / "docs" / "configuration.md").read_text()
    example = text.split("## Example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yaml").write_text(example)

    output = import_file(tmp_path / "example.yaml")

    assert "source_profiles: 1 created, 0 updated, 0 unchanged" in output
    assert active("chargebee-card-payments").spec["when"][1]["equals"] == "card"
    assert ConnectedSystem.objects.get(slug="hubspot").source_profiles == ["hubspot-deal-closedwon"]
