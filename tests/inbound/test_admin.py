"""The inbound log in the admin: read-only deliveries and events, raw bodies, redacted headers, ledger links."""

import datetime
import json
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from apps.inbound.models import Delivery, InboundEvent
from apps.mapping.models import ValueMap, ValueMapEntry
from apps.sync.engine import run_step
from apps.sync.models import Step, Transaction

from .conftest import as_json, hand_over, post, sample, standard_webhook_headers, stripe_headers

pytestmark = pytest.mark.django_db


def build_inbound_log(client) -> dict:
    """Deliveries as senders make them: a won deal (mapped), its repeat, a forged copy, one the mapping refuses,
    a signed body that is not JSON, and a bulk upload of time entries."""
    regions = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
    ValueMapEntry.objects.create(
        value_map=regions,
        source_value="North America",
        target_value="ACME-US",
        effective_from=datetime.date(2026, 1, 1),
    )
    won = sample("salesforce", "Opportunity_Won__e.json")
    accepted = post(client, "salesforce", won, standard_webhook_headers(won, msg_id="msg_won")).json()
    repeat = post(client, "salesforce", won, standard_webhook_headers(won, msg_id="msg_repeat")).json()
    forged = standard_webhook_headers(won, msg_id="msg_forged", secret="whsec_" + "Zm9yZ2VkLWtleS1mb3ItdGVzdHM=")
    post(client, "salesforce", won, forged)
    latam = json.loads(won)
    latam["data"]["payload"]["Region__c"] = "LATAM"
    latam["data"]["event"]["EventUuid"] = "0d6f3c2a-0000-4000-8000-000000000001"
    latam_body = as_json(latam)
    refused_by_mapping = post(client, "salesforce", latam_body, standard_webhook_headers(latam_body, msg_id="m3"))
    not_json = b'{"channel": "/event/Opportunity_Won__e", "data": '
    post(client, "salesforce", not_json, standard_webhook_headers(not_json, msg_id="msg_broken"))
    records = [
        {
            "time_entry_external_id": f"TE-{n}",
            "resource_external_id": "U-7",
            "project_external_id": "W-42",
            "work_date": "2026-10-31",
            "hours": "7.5",
            "description": "Data migration workshop, day " + "x" * 40,
        }
        for n in range(1000)
    ]
    bulk_body = json.dumps(records).encode()
    bulk = post(client, "stripe", bulk_body, stripe_headers(bulk_body), path_suffix="bulk", record_type="time_entry")
    hand_over()
    for step in Step.objects.filter(transaction__workflow="inbound_event"):
        run_step(step.pk)
    return {
        "won": InboundEvent.objects.get(pk=accepted["event_id"]),
        "won_delivery": Delivery.objects.get(pk=accepted["delivery_id"]),
        "repeat_delivery": Delivery.objects.get(pk=repeat["delivery_id"]),
        "forged_delivery": Delivery.objects.get(status="rejected", rejection__contains="does not match"),
        "broken_delivery": Delivery.objects.get(status="rejected", body_size=len(not_json)),
        "latam": InboundEvent.objects.get(pk=refused_by_mapping.json()["event_id"]),
        "bulk_delivery": Delivery.objects.get(pk=bulk.json()["delivery_id"]),
        "bulk_body": bulk_body,
    }


@pytest.fixture
def inbound_log(client, inbound_systems):
    return build_inbound_log(client)


@pytest.fixture
def auditor_client(auditor):
    browser = Client()
    browser.force_login(auditor)
    return browser


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return unescape(response.content.decode()).replace("\xa0", " ")  # sizes use non-breaking spaces


def test_the_delivery_list_shows_status_verification_counts_and_size(auditor_client, inbound_log):
    html = page(auditor_client.get(reverse("admin:inbound_delivery_changelist")))

    assert "standard-webhooks (primary)" in html
    assert "Duplicate (every event seen before)" in html
    assert "Not verified" in html
    assert "The signature does not match any active secret for this system." in html
    assert "stripe (primary)" in html  # the bulk upload, signed Stripe-style
    assert "By status" in html and "By system" in html


def test_a_delivery_page_shows_redacted_headers_and_the_body_pretty_printed(auditor_client, inbound_log):
    delivery = inbound_log["won_delivery"]

    html = page(auditor_client.get(reverse("admin:inbound_delivery_change", args=[delivery.pk])))

    assert '"Webhook-Signature": "[redacted]"' in html
    assert delivery.headers["Webhook-Id"] == "msg_won" and '"Webhook-Id": "msg_won"' in html
    assert '"Region__c": "North America",' in html  # the JSON body, indented
    assert f"Download the raw bytes ({delivery.body_size} bytes)" in html
    assert 'name="_save"' not in html and "<textarea" not in html


def test_a_body_that_is_not_json_is_shown_as_text(auditor_client, inbound_log):
    delivery = inbound_log["broken_delivery"]

    html = page(auditor_client.get(reverse("admin:inbound_delivery_change", args=[delivery.pk])))

    assert "Not JSON; shown as text." in html
    assert '{"channel": "/event/Opportunity_Won__e", "data": ' in html
    assert "The delivery is not valid JSON" in html  # why it was refused


def test_a_large_body_is_cut_short_with_a_download_of_the_raw_bytes(auditor_client, inbound_log):
    delivery = inbound_log["bulk_delivery"]
    assert delivery.body_size > 64 * 1024

    html = page(auditor_client.get(reverse("admin:inbound_delivery_change", args=[delivery.pk])))
    download = auditor_client.get(reverse("admin:inbound_delivery_body", args=[delivery.pk]))

    assert "Showing the first 64.0 KB of" in html
    assert "TE-999" not in html
    assert download.status_code == 200
    assert download.content == inbound_log["bulk_body"]
    assert download["Content-Disposition"] == f'attachment; filename="delivery-{delivery.pk}.json"'


def test_a_refused_delivery_says_its_body_was_not_kept(auditor_client, inbound_log):
    delivery = inbound_log["forged_delivery"]

    html = page(auditor_client.get(reverse("admin:inbound_delivery_change", args=[delivery.pk])))

    assert "Not kept: the body of a delivery that failed verification is never stored." in html


def test_the_event_list_shows_type_status_profile_and_ledger(auditor_client, inbound_log):
    html = page(auditor_client.get(reverse("admin:inbound_inboundevent_changelist")))

    assert "Opportunity_Won__e" in html
    assert "salesforce-opportunity-won-platform-event v" in html
    assert "Mapped to canonical commands" in html and "Exception" in html
    assert "with its bulk upload" in html


def test_an_event_page_shows_payload_commands_and_ledger(auditor_client, inbound_log):
    event = inbound_log["won"]

    html = page(auditor_client.get(reverse("admin:inbound_inboundevent_change", args=[event.pk])))

    assert "1. opportunity.won" in html
    assert '<td style="font-family: monospace">legal_entity</td><td><strong>ACME-US</strong></td>' in html
    assert '"Opportunity_Id__c": "0065g00000KxYz1AAB",' in html
    transactions = list(event.transactions.order_by("pk"))
    assert [txn.workflow for txn in transactions] == ["inbound_event", "opportunity_to_project"]
    for txn in transactions:
        assert txn.correlation_id in html


def test_an_event_the_mapping_refused_shows_the_error_and_its_fix(auditor_client, inbound_log):
    event = inbound_log["latam"]

    html = page(auditor_client.get(reverse("admin:inbound_inboundevent_change", args=[event.pk])))

    assert event.status == "exception"
    assert "value map region→subsidiary has no entry for 'LATAM'" in html
    assert "Fix: Add an entry for 'LATAM' to value map 'region-subsidiary'" in html


def test_a_bulk_record_links_to_the_chunk_transaction_that_bills_it(auditor_client, inbound_log):
    event = InboundEvent.objects.get(delivery=inbound_log["bulk_delivery"], vendor_event_id="TE-7")

    html = page(auditor_client.get(reverse("admin:inbound_inboundevent_change", args=[event.pk])))

    (chunk,) = Transaction.objects.filter(workflow="time_to_bill")
    assert event.pk in chunk.input["event_ids"]
    assert chunk.correlation_id in html and " · Time and expenses to bill · Pending" in html


@pytest.mark.parametrize("model", ["delivery", "inboundevent"])
def test_nobody_adds_changes_or_deletes_the_log(client, inbound_log, integration_admin, model):
    client.force_login(integration_admin)
    row = inbound_log["won_delivery"] if model == "delivery" else inbound_log["won"]

    assert client.get(reverse(f"admin:inbound_{model}_add")).status_code == 403
    assert client.post(reverse(f"admin:inbound_{model}_change", args=[row.pk]), {}).status_code == 403
    assert client.get(reverse(f"admin:inbound_{model}_delete", args=[row.pk])).status_code == 403
    assert page(client.get(reverse(f"admin:inbound_{model}_change", args=[row.pk])))


def test_people_without_the_view_permission_see_no_log(client, inbound_log, make_user):
    client.force_login(make_user("staff.only", is_staff=True))

    assert client.get(reverse("admin:inbound_delivery_changelist")).status_code == 403
    delivery = inbound_log["won_delivery"]
    assert client.get(reverse("admin:inbound_delivery_body", args=[delivery.pk])).status_code == 403
