"""The inbound log over the API: deliveries and events, read-only, filtered by system, status, type and time."""

import datetime

import pytest
from django.utils import timezone

from apps.inbound.models import Delivery, InboundEvent
from apps.sync.models import Transaction

from .test_admin import build_inbound_log

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbound_log(client, inbound_systems):
    return build_inbound_log(client)


@pytest.fixture
def superuser_client(api_as, django_user_model):
    return api_as(django_user_model.objects.create_superuser("root", password="pw-for-tests-only"))


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_deliveries_are_listed_newest_first_with_verification_and_counts(api_as, auditor, inbound_log):
    rows = results(api_as(auditor).get("/api/v1/inbound-deliveries/"))

    assert len(rows) == Delivery.objects.count() == 6
    assert [row["received_at"] for row in rows] == sorted((row["received_at"] for row in rows), reverse=True)
    won = next(row for row in rows if row["id"] == inbound_log["won_delivery"].pk)
    assert (won["system"], won["status"], won["verified"], won["scheme"], won["secret_label"]) == (
        "salesforce",
        "accepted",
        True,
        "standard-webhooks",
        "primary",
    )
    assert won["event_count"] == 1 and won["duplicate_count"] == 0
    assert "body" not in won and won["body_url"] == f"/api/v1/inbound-deliveries/{won['id']}/body/"


def test_deliveries_filter_by_system_status_kind_and_time(api_as, auditor, inbound_log):
    client = api_as(auditor)
    later = (timezone.now() + datetime.timedelta(minutes=5)).isoformat()

    assert {row["status"] for row in results(client.get("/api/v1/inbound-deliveries/?status=rejected"))} == {"rejected"}
    assert len(results(client.get("/api/v1/inbound-deliveries/?status=rejected"))) == 2
    assert [row["kind"] for row in results(client.get("/api/v1/inbound-deliveries/?system=stripe"))] == ["bulk"]
    assert len(results(client.get("/api/v1/inbound-deliveries/?kind=bulk&system=salesforce"))) == 0
    assert results(client.get("/api/v1/inbound-deliveries/", {"received_after": later})) == []
    assert len(results(client.get("/api/v1/inbound-deliveries/", {"received_before": later}))) == 6


def test_a_delivery_shows_redacted_headers_its_body_and_the_raw_bytes(api_as, auditor, inbound_log):
    delivery = inbound_log["won_delivery"]
    client = api_as(auditor)

    detail = client.get(f"/api/v1/inbound-deliveries/{delivery.pk}/").json()
    raw = client.get(detail["body_url"])

    assert detail["headers"]["Webhook-Signature"] == "[redacted]"
    assert detail["body_kept"] is True
    assert detail["body_text"] == bytes(delivery.body).decode()
    assert raw.status_code == 200 and raw.content == bytes(delivery.body)
    assert raw["Content-Type"] == "application/json"
    assert raw["Content-Disposition"] == f'attachment; filename="delivery-{delivery.pk}.json"'


def test_a_refused_delivery_says_why_and_that_its_body_was_not_kept(api_as, auditor, inbound_log):
    forged = inbound_log["forged_delivery"]

    detail = api_as(auditor).get(f"/api/v1/inbound-deliveries/{forged.pk}/").json()

    assert detail["rejection"] == "The signature does not match any active secret for this system."
    assert (detail["verified"], detail["body_kept"], detail["body_text"]) == (False, False, None)


def test_events_show_profile_commands_and_ledger_transactions(api_as, auditor, inbound_log):
    event = inbound_log["won"]

    row = api_as(auditor).get(f"/api/v1/inbound-events/{event.pk}/").json()

    assert (row["system"], row["event_type"], row["status"]) == ("salesforce", "Opportunity_Won__e", "mapped")
    assert row["profile_name"] == "salesforce-opportunity-won-platform-event"
    assert row["commands"][0]["type"] == "opportunity.won"
    assert row["commands"][0]["data"]["legal_entity"] == "ACME-US"
    assert row["received_at"]
    assert [(txn["workflow"], txn["correlation_id"]) for txn in row["transactions"]] == [
        (txn.workflow, txn.correlation_id) for txn in event.transactions.order_by("created_at", "pk")
    ]
    assert len(row["transactions"]) == 2


def test_events_filter_by_system_status_type_and_time(api_as, auditor, inbound_log):
    client = api_as(auditor)
    now = timezone.now()

    exceptions = results(client.get("/api/v1/inbound-events/?status=exception"))
    assert [row["id"] for row in exceptions] == [inbound_log["latam"].pk]
    assert exceptions[0]["error"]["message"].startswith("Salesforce Opportunity_Won__e could not be read")
    by_type = client.get("/api/v1/inbound-events/?type=time_entry.approved&system=stripe&limit=5").json()
    assert by_type["count"] == 1000 and len(by_type["results"]) == 5
    assert client.get("/api/v1/inbound-events/?system=salesforce").json()["count"] == 2
    window = {"received_after": (now - datetime.timedelta(hours=1)).isoformat(), "received_before": now.isoformat()}
    assert client.get("/api/v1/inbound-events/", window).json()["count"] == InboundEvent.objects.count()
    window["received_after"] = now.isoformat()
    assert client.get("/api/v1/inbound-events/", window).json()["count"] == 0


def test_a_page_of_bulk_records_names_their_chunk_transaction_in_a_few_queries(
    api_as, auditor, inbound_log, django_assert_max_num_queries
):
    (chunk,) = Transaction.objects.filter(workflow="time_to_bill")
    client = api_as(auditor)

    with django_assert_max_num_queries(12):
        rows = results(client.get("/api/v1/inbound-events/?type=time_entry.approved&limit=100"))

    assert len(rows) == 100
    assert all([txn["correlation_id"] for txn in row["transactions"]] == [chunk.correlation_id] for row in rows)


def test_the_log_cannot_be_written_through_the_api(api_as, integration_admin, superuser_client, inbound_log):
    delivery, event = inbound_log["won_delivery"], inbound_log["won"]

    for client in (api_as(integration_admin), superuser_client):
        assert client.post("/api/v1/inbound-deliveries/", {}).status_code in (403, 405)
        assert client.patch(f"/api/v1/inbound-deliveries/{delivery.pk}/", {"status": "rejected"}).status_code in (
            403,
            405,
        )
        assert client.delete(f"/api/v1/inbound-events/{event.pk}/").status_code in (403, 405)
    assert superuser_client.delete(f"/api/v1/inbound-events/{event.pk}/").status_code == 405
    assert Delivery.objects.get(pk=delivery.pk).status == "accepted"
    assert InboundEvent.objects.filter(pk=event.pk).exists()


def test_people_without_the_view_permission_may_not_read_the_log(api_as, outsider, inbound_log):
    client = api_as(outsider)
    delivery = inbound_log["won_delivery"]

    for url in (
        "/api/v1/inbound-deliveries/",
        "/api/v1/inbound-events/",
        f"/api/v1/inbound-deliveries/{delivery.pk}/body/",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response["Content-Type"] == "application/problem+json"
