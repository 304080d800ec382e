"""Rates inside payloads are masked for roles that may not see rates: API, raw bodies, admin, trace, history.

The keys come from one place (apps/core/masking.py): the models' sensitive fields, the keys the source
profiles declare or map to rates, and amounts from which a rate can be worked out.
"""

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.core.masking import MASK, sensitive_payload_keys
from apps.inbound.models import Delivery, InboundEvent
from apps.mapping.masking import path_key, spec_sensitive_keys
from apps.mapping.models import SourceProfile
from apps.sync.models import Transaction
from apps.sync.services import transaction_start

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "kantata" / "time_entries.json"
LEAKS = ("rate_in_cents", "cost_rate_in_cents", "bill_rate")


@pytest.fixture
def kantata_event(systems):
    body = SAMPLE.read_bytes()
    document = json.loads(body)
    record = document["time_entries"]["581103"]
    delivery = Delivery.objects.create(
        system=systems["psa"],
        status=Delivery.Status.ACCEPTED,
        received_at=timezone.now(),
        method="POST",
        url="https://console.example.com/api/v1/inbound/kantata/",
        body=body,
        body_sha256=Delivery.digest(body),
        body_size=len(body),
        content_type="application/json",
        verified=True,
        correlation_id="corr-rates",
    )
    return InboundEvent.objects.create(
        delivery=delivery,
        system=systems["psa"],
        idempotency_key="time_entries:581103",
        vendor_event_id="581103",
        event_type="time_entries",
        payload={"record": record},
        commands=[{"type": "time_entry.approved", "data": {"hours": "7.5", "bill_rate": "225.00"}}],
        correlation_id="corr-rates",
    )


def leaked_values(text: str) -> list[str]:
    """The rate values of the sample (225.00 per hour, 95.00 cost) wherever they appear."""
    return re.findall(r"\b(22500|9500|225\.00)\b", text)


def test_delivery_ops_sees_no_rates_in_inbound_events(api_as, delivery_user, kantata_event):
    response = api_as(delivery_user).get("/api/v1/inbound-events/")
    assert response.status_code == 200
    event = response.json()["results"][0]
    assert event["payload"]["record"]["rate_in_cents"] == MASK
    assert event["payload"]["record"]["cost_rate_in_cents"] == MASK
    assert event["commands"][0]["data"]["bill_rate"] == MASK
    assert event["payload"]["record"]["time_in_minutes"] == 450  # the rest is shown as sent
    assert leaked_values(response.content.decode()) == []


def test_finance_still_sees_the_rates(api_as, finance_user, kantata_event):
    event = api_as(finance_user).get("/api/v1/inbound-events/").json()["results"][0]
    assert event["payload"]["record"]["rate_in_cents"] == 22500
    assert event["commands"][0]["data"]["bill_rate"] == "225.00"
    delivery = kantata_event.delivery
    raw = api_as(finance_user).get(f"/api/v1/inbound-deliveries/{delivery.pk}/body/")
    assert raw.content == bytes(delivery.body)


def test_the_raw_body_and_its_text_are_masked_for_delivery_ops(api_as, delivery_user, kantata_event):
    client = api_as(delivery_user)
    delivery = kantata_event.delivery
    raw = client.get(f"/api/v1/inbound-deliveries/{delivery.pk}/body/")
    assert raw.status_code == 200
    assert leaked_values(raw.content.decode()) == []
    masked = json.loads(raw.content)
    assert masked["time_entries"]["581103"]["rate_in_cents"] == MASK
    assert masked["time_entries"]["581103"]["notes"] == "Data migration workshop with finance team"
    detail = client.get(f"/api/v1/inbound-deliveries/{delivery.pk}/").json()
    assert leaked_values(detail["body_text"]) == []


def test_a_body_that_cannot_be_masked_is_not_shown(api_as, delivery_user, kantata_event):
    delivery = kantata_event.delivery
    delivery.body = b"rate_in_cents=22500"
    delivery.save()
    response = api_as(delivery_user).get(f"/api/v1/inbound-deliveries/{delivery.pk}/body/")
    assert response.status_code == 403
    assert "cannot be shown with its rates and costs masked" in response.json()["detail"]


def test_the_admin_pages_mask_payload_commands_and_body(client, delivery_user, kantata_event):
    delivery_user.is_staff = True
    delivery_user.save()
    client.force_login(delivery_user)
    event_page = client.get(reverse("admin:inbound_inboundevent_change", args=[kantata_event.pk])).content.decode()
    assert "rate_in_cents" in event_page and leaked_values(event_page) == []
    delivery = kantata_event.delivery
    delivery_page = client.get(reverse("admin:inbound_delivery_change", args=[delivery.pk])).content.decode()
    assert "cost_rate_in_cents" in delivery_page and leaked_values(delivery_page) == []
    download = client.get(reverse("admin:inbound_delivery_body", args=[delivery.pk]))
    assert download.status_code == 200 and leaked_values(download.content.decode()) == []


def test_trace_output_hides_amounts_that_reveal_a_rate(api_as, delivery_user, finance_user, systems):
    txn = transaction_start(workflow="time_to_bill", data={"source_system": "kantata", "entries": []}, reason="t")
    step = txn.steps.order_by("sequence").last()
    step.output = {"charges_sent": 1, "amount_sent": "1687.50"}
    step.request = {"request_body": json.dumps({"charges": [{"unit_price": "225.00", "quantity": "7.5"}]})}
    step.save()
    shown = api_as(delivery_user).get(f"/api/v1/transactions/{txn.pk}/").content.decode()
    assert "1687.50" not in shown and "225.00" not in shown
    assert "1687.50" in api_as(finance_user).get(f"/api/v1/transactions/{txn.pk}/").content.decode()


def test_history_diffs_of_json_values_are_masked(api_as, delivery_user, systems):
    txn = Transaction.objects.create(workflow="time_to_bill", input={"bill_rate": "150"}, status="pending")
    txn.input = {"bill_rate": "225.00", "hours": "7.5"}
    txn.save()
    rows = api_as(delivery_user).get(f"/api/v1/transactions/{txn.pk}/history/")
    assert rows.status_code == 200, rows.content
    assert leaked_values(rows.content.decode()) == []
    assert '"150"' not in rows.content.decode()


def test_the_sensitive_keys_come_from_the_profiles(steward):
    assert {"rate_in_cents", "cost_rate_in_cents", "bill_rate", "cost_rate", "amount_sent"} <= sensitive_payload_keys()
    SourceProfile.objects.create(
        name="acme-psa-time",
        version=1,
        vendor="acme",
        event_types=["time"],
        status="draft",
        spec={
            "spec_version": 1,
            "vendor": "acme",
            "event_types": ["time"],
            "sensitive": ["entry.margin_cents"],
            "commands": [
                {"type": "rate_card.changed", "fields": {"new_rates": {"fields": {"bill_rate": "rates[0].hourly"}}}}
            ],
        },
    )
    keys = sensitive_payload_keys()
    assert {"margin_cents", "hourly"} <= keys


def test_path_keys_and_spec_keys():
    assert path_key("record.rate_in_cents") == "rate_in_cents"
    assert path_key("lines[0].rate") == "rate"
    assert path_key('fields["Bill Rate"]') == "Bill Rate"
    spec = {"commands": [{"fields": {"bill_rate": {"path": "item.price", "divide_by": 100}, "hours": "item.h"}}]}
    assert spec_sensitive_keys(spec) == {"price"}
