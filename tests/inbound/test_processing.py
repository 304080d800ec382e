"""After the 202: events are read with their source profile; what fails is kept as an exception, never dropped."""

import datetime
import json

import pytest

from apps.inbound.models import InboundEvent
from apps.mapping.models import ValueMap, ValueMapEntry
from apps.sync.engine import run_due_steps
from apps.sync.models import Transaction

from .conftest import post, sample, standard_webhook_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def regions(inbound_systems):
    value_map = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
    ValueMapEntry.objects.create(
        value_map=value_map,
        source_value="North America",
        target_value="NW-US",
        effective_from=datetime.date(2026, 1, 1),
    )
    return value_map


def platform_event(region: str) -> bytes:
    message = json.loads(sample("salesforce", "Opportunity_Won__e.json"))
    message["data"]["payload"]["Region__c"] = region
    message["data"]["payload"]["Close_Date__c"] = "2026-11-20"
    return json.dumps(message).encode()


def test_a_payload_that_fails_its_profile_is_kept_and_becomes_a_readable_exception(client, regions):
    body = platform_event("LATAM")
    answer = post(client, "salesforce", body, standard_webhook_headers(body)).json()
    run_due_steps()
    event = InboundEvent.objects.get(pk=answer["event_id"])
    assert event.status == "exception"
    assert event.payload["data"]["payload"]["Region__c"] == "LATAM"  # kept as it came
    assert "value map region→subsidiary has no entry for 'LATAM' on 2026-11-20" in event.error["message"]
    txn = Transaction.objects.get(inbound_event=event)
    assert txn.status == "exception" and txn.error_class == "mapping"
    assert "value map region→subsidiary has no entry for 'LATAM' on 2026-11-20" in txn.error_message
    assert txn.owner_role == "mapping_steward"


def test_after_the_steward_adds_the_entry_a_rerun_maps_the_event(client, regions, steward):
    from apps.sync.services import transaction_replay

    body = platform_event("LATAM")
    answer = post(client, "salesforce", body, standard_webhook_headers(body)).json()
    run_due_steps()
    ValueMapEntry.objects.create(
        value_map=regions, source_value="LATAM", target_value="NW-US", effective_from=datetime.date(2026, 1, 1)
    )
    txn = Transaction.objects.get(inbound_event_id=answer["event_id"])
    transaction_replay(txn=txn, actor=steward, reason="LATAM deals contract through NW-US (FIN-77)")
    run_due_steps()
    event = InboundEvent.objects.get(pk=answer["event_id"])
    assert event.status in ("mapped", "processed")
    assert event.commands[0]["data"]["legal_entity"] == "NW-US"
    assert Transaction.objects.filter(parent=txn, workflow="opportunity_to_project").exists()


def test_an_event_no_profile_reads_is_skipped_with_the_reason(client, inbound_systems):
    message = json.loads(sample("salesforce", "Opportunity_Won__e.json"))
    message["channel"] = "/event/Something_Else__e"
    body = json.dumps(message).encode()
    answer = post(client, "salesforce", body, standard_webhook_headers(body)).json()
    run_due_steps()
    event = InboundEvent.objects.get(pk=answer["event_id"])
    assert event.status == "skipped"
    assert "No active source profile reads 'Something_Else__e' events from Salesforce" in event.error["message"]
