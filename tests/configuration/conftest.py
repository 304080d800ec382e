"""A small but complete configuration: systems with secrets, ownership rules, a value map and a rate card."""

import datetime
from decimal import Decimal

import pytest
from django.db.models.signals import pre_delete

from apps.canonical.models import RateCard, RateCardLine, RateCardVersion
from apps.canonical.models.commercial import refuse_deleting_frozen_rates
from apps.configuration.services import config_export
from apps.mapping.models import ValueMap, ValueMapEntry
from apps.systems.models import ConnectedSystem, OwnershipRule, Route, SigningSecret
from tests import factories

TRACKED = [
    ConnectedSystem,
    SigningSecret,
    OwnershipRule,
    Route,
    ValueMap,
    ValueMapEntry,
    RateCard,
    RateCardVersion,
    RateCardLine,
]


def history_rows() -> int:
    """History rows of every model the configuration document covers."""
    return sum(model.history.count() for model in TRACKED)


def database_state() -> tuple:
    """What a user could notice: the exported configuration and the amount of history."""
    return config_export(), history_rows()


def wipe() -> None:
    """Remove every configuration row, as on a fresh database (approved rate cards included, which no user may)."""
    OwnershipRule.objects.all().delete()
    Route.objects.all().delete()
    ValueMap.objects.all().delete()
    guards = [(refuse_deleting_frozen_rates, model) for model in (RateCardVersion, RateCardLine)]
    for guard, model in guards:
        pre_delete.disconnect(guard, sender=model)
    try:
        RateCard.objects.all().delete()
    finally:
        for guard, model in guards:
            pre_delete.connect(guard, sender=model)
    ConnectedSystem.objects.all().delete()


@pytest.fixture
def configured(systems):
    hubspot = factories.system(
        "hubspot",
        "crm",
        name="HubSpot",
        vendor="hubspot",
        base_url="https://api.hubapi.com",
        outbound_auth="bearer",
        outbound_credentials={"env": "IC_SECRET_HUBSPOT_PRIVATE_APP_TOKEN"},
        rate_limit_per_minute=100,
        read_timeout_seconds=Decimal("7.5"),
        inbound_scheme="hubspot-v3",
    )
    SigningSecret.objects.create(system=hubspot, label="primary", reference={"env": "IC_SECRET_HUBSPOT_CLIENT_SECRET"})
    SigningSecret.objects.create(
        system=hubspot,
        label="rotation 2026-11",
        reference={"file": "/run/secrets/hubspot"},
        not_after=datetime.datetime(2026, 12, 1, 9, 30, tzinfo=datetime.UTC),
    )
    netsuite = systems["erp"]
    netsuite.outbound_auth = "basic"
    netsuite.outbound_credentials = {
        "username": {"env": "IC_SECRET_NETSUITE_USER"},
        "password": {"file": "/run/secrets/ns"},
    }
    netsuite.save()
    factories.ownership_rule("customer", systems["crm"], may_create=[hubspot], may_update=[systems["erp"]])
    factories.ownership_rule("customer", netsuite, field="tax_id", start=datetime.date(2026, 1, 1))
    region = ValueMap.objects.create(
        name="region-subsidiary",
        source_label="region",
        target_label="subsidiary",
        source_system=systems["crm"],
        target_system=netsuite,
    )
    ValueMapEntry.objects.create(value_map=region, source_value="EMEA", target_value="3", effective_from="2026-01-01")
    ValueMapEntry.objects.create(
        value_map=region,
        source_value="AMER",
        target_value="1",
        effective_from="2025-01-01",
        effective_to="2025-12-31",
        note="old US subsidiary",
    )
    factories.rate_card(
        "STD-US",
        name="Standard US",
        versions=[
            (datetime.date(2025, 1, 1), datetime.date(2025, 12, 31), "approved", {"Senior Consultant": "240.00"}),
            (datetime.date(2026, 1, 1), None, "approved", {"Senior Consultant": "250.10", "Analyst": "0.1"}),
        ],
    )
    # Two CRMs are enabled, so the import needs a route saying which one workflows write to.
    Route.objects.create(
        target_kind="crm",
        system=systems["crm"],
        effective_from=datetime.date(2026, 1, 1),
        rationale="HubSpot only sends deals; Salesforce is the CRM of record",
    )
    return systems | {"hubspot": hubspot}
