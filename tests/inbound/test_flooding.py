"""Anyone can post to the inbound endpoints: refused requests are throttled and counted, not stored one by one."""

import pytest

from apps.inbound.models import Delivery, InboundEvent, RejectionTally

from .conftest import post, sample, standard_webhook_headers

pytestmark = pytest.mark.django_db

BAD_SIGNATURE = {"HTTP_WEBHOOK_ID": "msg_x", "HTTP_WEBHOOK_TIMESTAMP": "1", "HTTP_WEBHOOK_SIGNATURE": "v1,AAAA"}


def _bad_headers():
    body = sample("salesforce", "Opportunity_Won__e.json")
    headers = standard_webhook_headers(body)
    headers["HTTP_WEBHOOK_SIGNATURE"] = "v1,eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg="
    return body, headers


def test_a_flood_of_bad_signatures_is_answered_429_after_the_limit(client, inbound_systems, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "inbound_rejected": "5/min"},
    }
    body, headers = _bad_headers()
    statuses = [post(client, "salesforce", body, headers).status_code for _ in range(12)]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    refused = post(client, "salesforce", body, headers)
    assert refused["Retry-After"]
    assert "Too many deliveries from your address" in refused.json()["detail"]
    assert Delivery.objects.count() == 5  # nothing was stored for the throttled requests


def test_a_throttled_sender_with_bad_signatures_does_not_block_other_systems(client, inbound_systems, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "inbound_rejected": "2/min"},
    }
    body, headers = _bad_headers()
    for _ in range(3):
        post(client, "salesforce", body, headers)
    assert post(client, "salesforce", body, headers).status_code == 429
    assert post(client, "stripe", b"{}", {}).status_code == 401


def test_refusals_beyond_the_hourly_keep_are_only_counted(client, inbound_systems, settings):
    settings.INBOUND_REJECTED_KEEP_PER_HOUR = 3
    body, headers = _bad_headers()
    for _ in range(10):
        assert post(client, "salesforce", body, headers).status_code == 401
    assert Delivery.objects.filter(status="rejected").count() == 3
    assert Delivery.history.count() == 3
    tally = RejectionTally.objects.get()
    assert tally.count == 10
    assert tally.system == inbound_systems["salesforce"]
    assert tally.reason == "signature_mismatch"
    assert tally.last_remote_addr == "127.0.0.1"


def test_all_deliveries_are_throttled_per_system_and_address(client, inbound_systems, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "inbound": "3/min"},
    }
    statuses = [post(client, "salesforce", b"{}", BAD_SIGNATURE).status_code for _ in range(5)]
    assert statuses[3:] == [429, 429]
    body = sample("salesforce", "Opportunity_Won__e.json")
    assert post(client, "stripe", body, {}).status_code == 401  # another system's door is still open


def test_good_deliveries_are_accepted_while_under_the_limit(client, inbound_systems):
    body = sample("salesforce", "Opportunity_Won__e.json")
    assert post(client, "salesforce", body, standard_webhook_headers(body)).status_code == 202
    assert InboundEvent.objects.count() == 1


def test_an_integration_admin_reads_the_refusal_counts_in_the_admin(
    client, inbound_systems, integration_admin, settings
):
    settings.INBOUND_REJECTED_KEEP_PER_HOUR = 1
    body, headers = _bad_headers()
    for _ in range(4):
        post(client, "salesforce", body, headers)
    client.force_login(integration_admin)
    page = client.get("/admin/inbound/rejectiontally/").content.decode()
    assert "signature_mismatch" in page
    assert ">4<" in page
