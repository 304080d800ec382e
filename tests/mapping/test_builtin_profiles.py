"""The built-in profiles map each vendor's documented sample delivery to the exact canonical commands."""

import copy
import datetime
import json
from decimal import Decimal
from pathlib import Path

import pytest

from apps.inbound.envelopes import split_delivery
from apps.mapping.builtin_profiles import builtin_profiles
from apps.mapping.models import SourceProfile, ValueMap, ValueMapEntry
from apps.mapping.profiles.engine import apply_profile, profile_matches
from apps.mapping.profiles.validation import validate_spec

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
ON = datetime.date(2026, 4, 15)
UTC = datetime.UTC


def sample(relative: str):
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def profile(name: str) -> dict:
    return next(item for item in builtin_profiles() if item["name"] == name)


def run(name: str, delivery, fetched=None):
    """Split the delivery as inbound does, then apply the profile to each event as the sync layer does."""
    spec = profile(name)["spec"]
    events = split_delivery(spec["delivery"], delivery)
    results = [
        apply_profile(
            spec, event.payload, fetched, ON, source_event_id=event.idempotency_key, occurred_at=event.occurred_at
        )
        for event in events
    ]
    return events, results


@pytest.fixture
def value_maps(db):
    regions = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
    currencies = ValueMap.objects.create(name="netsuite-currency", source_label="currency ID", target_label="ISO code")
    rows = [
        (regions, "North America", "ACME-US"),
        (regions, "EMEA", "ACME-DE"),
        (currencies, "1", "USD"),
        (currencies, "2", "GBP"),
    ]
    for value_map, source, target in rows:
        ValueMapEntry.objects.create(
            value_map=value_map, source_value=source, target_value=target, effective_from=datetime.date(2026, 1, 1)
        )


def test_every_builtin_profile_is_valid_documented_and_fits_the_source_profile_model():
    profiles = builtin_profiles()
    model_fields = {field.name for field in SourceProfile._meta.get_fields()}
    assert len(profiles) == 16  # business-central-customer-payments added
    for item in profiles:
        assert validate_spec(item["spec"]) == [], item["name"]
        assert item["documentation_url"].startswith("https://"), item["name"]
        assert item["sample_payload"], item["name"]
        assert set(item) <= model_fields, item["name"]
        assert split_delivery(item["spec"]["delivery"], item["sample_payload"]), item["name"]


def test_each_builtin_profile_is_selected_for_its_own_sample_events():
    for item in builtin_profiles():
        spec = item["spec"]
        for event in split_delivery(spec["delivery"], item["sample_payload"]):
            assert profile_matches(
                spec, vendor=item["vendor"], event_type=event.event_type, schema_version=event.schema_version
            ), (item["name"], event.event_type)


OPPORTUNITY_WON = {
    "opportunity_external_id": "0065g00000KxYz1AAB",
    "opportunity_name": "Globex – Data platform rollout",
    "amount": Decimal("185000.0"),
    "currency": "USD",
    "close_date": datetime.date(2026, 3, 31),
    "contract_type": "fixed_fee",
    "rate_card": "STD-US-2026",
    "customer_external_id": "0015g00000QrSt9AAF",
    "customer_name": "Globex Corporation",
    "customer_tax_id": "12-3456789",
    "customer_country": "US",
    "region": "North America",
    "legal_entity": "ACME-US",
    "billing_email": "ap@globex.example",
}


def test_salesforce_cdc_over_cometd_fetches_the_won_opportunity_and_skips_other_changes(value_maps):
    events, results = run("salesforce-opportunity-cdc-cometd", sample("salesforce/OpportunityChangeEvent-cometd.json"))

    assert [event.idempotency_key for event in events] == [
        "salesforce:cdc:0001c7f4-2b6e-53a1-a3e9-6f1e4b2d7c10:1",
        "salesforce:cdc:0001c7f4-3a91-0f22-55b0-91d2ce8a4e77:1",
    ]
    assert [event.event_type for event in events] == ["OpportunityChangeEvent"] * 2
    won, amount_change = results
    assert won.commands == [] and won.errors == []
    assert [request.message for request in won.needs_fetch] == [
        "needs fetch of Opportunity 0065g00000KxYz1AAB from the source system"
    ]
    assert won.needs_fetch[0].include == ("Account",)
    assert amount_change.needs_fetch == []
    assert amount_change.skipped[0].reason == (
        "Only opportunities whose stage changed to Closed Won: 'data.payload.StageName' has no value, "
        "expected 'Closed Won'"
    )

    fetched = {won.needs_fetch[0].key: sample("salesforce/Opportunity-fetched.json")}
    again = apply_profile(profile("salesforce-opportunity-cdc-cometd")["spec"], events[0].payload, fetched, ON)

    assert again.errors == [] and again.needs_fetch == []
    [command] = again.commands
    assert command.type == "opportunity.won"
    assert command.data == OPPORTUNITY_WON
    assert command.source_event_id == "0001c7f4-2b6e-53a1-a3e9-6f1e4b2d7c10:1:0065g00000KxYz1AAB"
    assert command.occurred_at == datetime.datetime(2026, 3, 31, 15, 20, 11, tzinfo=UTC)


def test_salesforce_cdc_over_pubsub_reads_the_decoded_avro_event_the_same_way(value_maps):
    events, results = run("salesforce-opportunity-cdc-pubsub", sample("salesforce/OpportunityChangeEvent-pubsub.json"))

    [event] = events
    assert event.idempotency_key == "salesforce:cdc:0001c7f4-2b6e-53a1-a3e9-6f1e4b2d7c10:1"
    assert event.event_type == "OpportunityChangeEvent"
    [request] = results[0].needs_fetch
    again = apply_profile(
        profile("salesforce-opportunity-cdc-pubsub")["spec"],
        event.payload,
        {request.key: sample("salesforce/Opportunity-fetched.json")},
        ON,
    )
    assert [command.data for command in again.commands] == [OPPORTUNITY_WON]
    assert again.commands[0].occurred_at == datetime.datetime(2026, 3, 31, 15, 20, 11, tzinfo=UTC)


def test_salesforce_platform_event_maps_directly_and_is_deduplicated_on_its_event_uuid(value_maps):
    events, [result] = run("salesforce-opportunity-won-platform-event", sample("salesforce/Opportunity_Won__e.json"))

    assert events[0].idempotency_key == "salesforce:event:b9d0a8e2-6f1c-4f0a-8c7e-2d4b5a6c7e81"
    assert events[0].event_type == "Opportunity_Won__e"
    assert result.errors == [] and result.needs_fetch == []
    [command] = result.commands
    assert command.data == OPPORTUNITY_WON
    assert command.source_event_id == "b9d0a8e2-6f1c-4f0a-8c7e-2d4b5a6c7e81"
    assert command.occurred_at == datetime.datetime(2026, 3, 31, 15, 20, 12, tzinfo=UTC)


def test_hubspot_batch_splits_into_events_and_only_a_closedwon_stage_asks_for_the_deal(value_maps):
    events, results = run("hubspot-deal-closedwon", sample("hubspot/deal.propertyChange.json"))

    assert len(events) == 3
    assert len({event.idempotency_key for event in events}) == 3
    assert all(event.idempotency_key.startswith("hubspot:") for event in events)
    assert [event.vendor_event_id for event in events] == ["3917416581", "3917416582", "3917416583"]
    won, other_stage, amount = results
    assert [request.message for request in won.needs_fetch] == [
        "needs fetch of deal 18334623104 from the source system"
    ]
    assert other_stage.skipped[0].reason == (
        "Only deals moved to closed won: 'propertyValue' is 'contractsent', expected 'closedwon'"
    )
    assert (
        amount.skipped[0].reason == "Only changes of the deal stage: 'propertyName' is 'amount', expected 'dealstage'"
    )

    fetched = {won.needs_fetch[0].key: sample("hubspot/deal-fetched.json")}
    again = apply_profile(profile("hubspot-deal-closedwon")["spec"], events[0].payload, fetched, ON)

    assert again.errors == []
    [command] = again.commands
    assert command.data == {
        "opportunity_external_id": "18334623104",
        "opportunity_name": "Initech – ERP migration",
        "amount": Decimal("185000.00"),
        "currency": "EUR",
        "close_date": datetime.date(2026, 3, 31),
        "contract_type": "time_and_materials",
        "rate_card": "STD-EU-2026",
        "customer_external_id": "9876543210",
        "customer_name": "Initech GmbH",
        "customer_tax_id": "DE123456789",
        "region": "EMEA",
        "legal_entity": "ACME-DE",
        "billing_email": "rechnungen@initech.example",
    }
    assert command.source_event_id == "62515:3917416581:18334623104"
    assert command.occurred_at == datetime.datetime(2026, 3, 31, 15, 20, 11, tzinfo=UTC)


def test_hubspot_profile_applied_to_the_whole_batch_gives_one_result_per_event(value_maps):
    result = apply_profile(profile("hubspot-deal-closedwon")["spec"], sample("hubspot/deal.propertyChange.json"), on=ON)

    assert [request.item for request in result.needs_fetch] == [0]
    assert [skip.item for skip in result.skipped] == [1, 2]


def test_hubspot_events_with_the_same_event_id_on_different_deals_get_different_keys():
    first = sample("hubspot/deal.propertyChange.json")[0]
    look_alike = {**first, "objectId": 18334629999}
    retry = {**first, "attemptNumber": 3}

    keys = [event.idempotency_key for event in split_delivery("hubspot", [first, look_alike])]
    [retried] = split_delivery("hubspot", [retry])

    assert keys[0] != keys[1]
    assert retried.idempotency_key == keys[0]


def test_hubspot_region_without_a_value_map_entry_reports_the_business_message(value_maps):
    events = split_delivery("hubspot", sample("hubspot/deal.propertyChange.json"))
    fetched = sample("hubspot/deal-fetched.json")
    fetched["company"]["properties"]["region"] = "LATAM"

    result = apply_profile(profile("hubspot-deal-closedwon")["spec"], events[0].payload, {"deal:18334623104": fetched})

    assert result.commands == []
    [error] = result.errors
    assert error.message == "Legal entity: value map region→subsidiary has no entry for 'LATAM' on 2026-03-31"
    assert error.field == "legal_entity"
    assert error.path == "$fetched.company.properties.region"
    assert error.location == "commands[0].fields.legal_entity"
    assert "Add an entry for 'LATAM'" in error.fix


def test_kantata_time_on_an_approved_timesheet_becomes_an_approved_time_entry():
    events, (approved, pending) = run("kantata-time-entries", sample("kantata/time_entries.json"))

    assert [event.idempotency_key for event in events] == [
        "kantata:time_entries:581103:2026-04-02T09:15:40-07:00",
        "kantata:time_entries:581104:2026-03-31T18:03:11-07:00",
    ]
    [command] = approved.commands
    assert command.type == "time_entry.approved"
    assert command.data == {
        "time_entry_external_id": "581103",
        "resource_external_id": "9572755",
        "project_external_id": "19842585",
        "task_external_id": "310106435",
        "work_date": datetime.date(2026, 3, 30),
        "hours": Decimal("7.5"),
        "role": "Senior Consultant",
        "billable": True,
        "description": "Data migration workshop with finance team",
        "approved_at": datetime.datetime(2026, 4, 2, 16, 15, 40, tzinfo=UTC),
    }
    assert pending.commands == []
    assert pending.skipped[0].reason == (
        "Only time on an approved timesheet: 'timesheet_submissions[{record.active_submission_id}].status' "
        "is 'pending', expected 'approved'"
    )


def test_kantata_completed_milestone_carries_its_budget_in_the_workspace_currency():
    events, (milestone, task) = run("kantata-milestones", sample("kantata/stories.json"))

    assert [command.data for command in milestone.commands] == [
        {
            "milestone_external_id": "310106435",
            "project_external_id": "19842585",
            "name": "Phase 1 sign-off",
            "amount": Decimal("45000.00"),
            "currency": "USD",
            "completed_on": datetime.date(2026, 3, 27),
        }
    ]
    assert task.skipped[0].reason == "Only milestones: 'record.story_type' is 'task', expected 'milestone'"


def test_certinia_approved_timecard_becomes_an_approved_time_entry():
    events, [result] = run("certinia-timecards", sample("certinia/pse__Timecard_Header__ChangeEvent.json"))

    assert events[0].event_type == "pse__Timecard_Header__ChangeEvent"
    assert events[0].idempotency_key == "salesforce:cdc:0002d1a9-77c4-61f0-0e1b-3a9c5b7d2f44:1"
    [command] = result.commands
    assert command.data == {
        "time_entry_external_id": "a6D5g000002QwErEAK",
        "resource_external_id": "0035g00000LmNo1AAB",
        "project_external_id": "a5B5g000001XyZqEAK",
        "work_date": datetime.date(2026, 3, 30),
        "hours": Decimal("38.5"),
        "billable": True,
        "description": "Sprint 4 build and data loads",
        "approved_at": datetime.datetime(2026, 4, 3, 17, 42, 10, tzinfo=UTC),
    }


def test_certinia_timecard_still_in_review_is_skipped():
    delivery = sample("certinia/pse__Timecard_Header__ChangeEvent.json")
    delivery["data"]["payload"]["pse__Status__c"] = "Submitted"

    _, [result] = run("certinia-timecards", delivery)

    assert result.commands == []
    assert result.skipped[0].reason.startswith("Only timecards whose status changed to Approved")


def test_netsuite_invoice_is_posted_with_its_lines_and_currency_from_the_value_map(value_maps):
    events, [result] = run("netsuite-invoices", sample("netsuite/invoice.create.json"))

    assert events[0].event_type == "invoice.create"
    assert events[0].idempotency_key == "netsuite:invoice:1215:2026-03-31T18:02:44Z"
    assert result.errors == []
    [command] = result.commands
    assert command.type == "invoice.posted"
    assert command.data == {
        "invoice_external_id": "1215",
        "number": "INV10431",
        "customer_external_id": "1842",
        "issue_date": datetime.date(2026, 3, 31),
        "due_date": datetime.date(2026, 4, 30),
        "currency": "USD",
        "subtotal": Decimal("24000.0"),
        "tax_total": Decimal("2130.0"),
        "total": Decimal("26130.0"),
        "status": "posted",
        "lines": [
            {
                "description": "Senior Consultant – March 2026",
                "quantity": Decimal("80.0"),
                "unit_price": Decimal("225.0"),
                "amount": Decimal("18000.0"),
                "tax_amount": Decimal("1597.5"),
                "service_item": "PS-CONSULT-SR",
            },
            {
                "description": "Consultant – March 2026",
                "quantity": Decimal("40.0"),
                "unit_price": Decimal("150.0"),
                "amount": Decimal("6000.0"),
                "tax_amount": Decimal("532.5"),
                "service_item": "PS-CONSULT",
            },
        ],
    }


def test_netsuite_invoice_with_a_bad_amount_on_a_line_is_refused_with_the_line_located(value_maps):
    delivery = sample("netsuite/invoice.create.json")
    delivery["record"]["item"]["items"][1]["amount"] = "six thousand"
    del delivery["record"]["tranId"]

    _, [result] = run("netsuite-invoices", delivery)

    assert result.commands == []
    assert [(error.field, error.path, error.message) for error in result.errors] == [
        ("number", "record.tranId", "Number is required, but the payload has no value at 'record.tranId'."),
        ("lines[1].amount", "record.item.items[1].amount", "Line 2 amount 'six thousand' is not a number."),
    ]


def test_business_central_notification_asks_for_the_invoice_then_posts_it():
    events, (updated, deleted) = run("business-central-sales-invoices", sample("business-central/salesInvoices.json"))

    assert [event.event_type for event in events] == ["salesInvoices.updated", "salesInvoices.deleted"]
    assert [event.schema_version for event in events] == ["v2.0", "v2.0"]
    assert all(event.idempotency_key.startswith("sha256:") for event in events)
    [request] = updated.needs_fetch
    assert request.message == "needs fetch of salesInvoice 5d115c9c-44e3-ea11-bb43-000d3a2feca1 from the source system"
    assert request.params == {"company_id": "f64eba74-dacd-4854-a584-1834f68cfc3a"}
    assert request.include == ("salesInvoiceLines",)
    assert deleted.skipped[0].reason.startswith("Only created or changed invoices")

    fetched = {request.key: sample("business-central/salesInvoice-fetched.json")}
    again = apply_profile(profile("business-central-sales-invoices")["spec"], events[0].payload, fetched, ON)

    assert again.errors == []
    [command] = again.commands
    assert command.data == {
        "invoice_external_id": "5d115c9c-44e3-ea11-bb43-000d3a2feca1",
        "number": "103021",
        "customer_external_id": "d5b5a3c8-44e3-ea11-bb43-000d3a2feca1",
        "issue_date": datetime.date(2026, 3, 31),
        "due_date": datetime.date(2026, 4, 30),
        "currency": "USD",
        "subtotal": Decimal("12000"),
        "tax_total": Decimal("720"),
        "total": Decimal("12720"),
        "status": "posted",
        "lines": [
            {
                "description": "Implementation services, March 2026",
                "quantity": Decimal("60"),
                "unit_price": Decimal("150"),
                "amount": Decimal("9000"),
                "tax_amount": Decimal("540"),
                "service_item": "SRV-IMPL",
            },
            {
                "description": "End-user training (2 days)",
                "quantity": Decimal("2"),
                "unit_price": Decimal("1500"),
                "amount": Decimal("3000"),
                "tax_amount": Decimal("180"),
                "service_item": "SRV-TRAIN",
            },
        ],
    }


def test_business_central_draft_invoice_is_not_posted():
    events = split_delivery("microsoft-graph", sample("business-central/salesInvoices.json"))
    fetched = sample("business-central/salesInvoice-fetched.json")
    fetched["salesInvoice"]["status"] = "Draft"
    key = "salesInvoice:5d115c9c-44e3-ea11-bb43-000d3a2feca1"

    result = apply_profile(profile("business-central-sales-invoices")["spec"], events[0].payload, {key: fetched}, ON)

    assert result.commands == []
    assert result.skipped[0].command == "invoice.posted"
    assert result.skipped[0].reason == (
        "Only posted invoices (drafts are not posted yet): '$fetched.salesInvoice.status' is 'Draft', "
        "expected one of 'Open', 'Paid'"
    )


def test_chargebee_invoice_generated_converts_minor_units_to_pounds():
    events, [result] = run("chargebee-invoice-generated", sample("chargebee/invoice_generated.json"))

    assert events[0].idempotency_key == "chargebee:ev_16BPgETyVrQbiGhA"
    assert events[0].schema_version == "v2"
    [command] = result.commands
    assert command.data == {
        "invoice_external_id": "INV-2026-0412",
        "number": "INV-2026-0412",
        "customer_external_id": "globex-uk",
        "issue_date": datetime.date(2026, 3, 31),
        "due_date": datetime.date(2026, 4, 30),
        "currency": "GBP",
        "subtotal": Decimal("10000.00"),
        "tax_total": Decimal("2000.00"),
        "total": Decimal("12000.00"),
        "status": "posted",
        "lines": [
            {
                "description": "Managed analytics retainer",
                "quantity": Decimal("1"),
                "unit_price": Decimal("8000.00"),
                "amount": Decimal("8000.00"),
                "tax_amount": Decimal("1600.00"),
                "service_item": "managed-analytics-retainer-GBP-Monthly",
            },
            {
                "description": "Dashboard seats",
                "quantity": Decimal("20"),
                "unit_price": Decimal("100.00"),
                "amount": Decimal("2000.00"),
                "tax_amount": Decimal("400.00"),
                "service_item": "dashboard-seat-GBP-Monthly",
            },
        ],
    }
    assert command.occurred_at == datetime.datetime(2026, 3, 31, 6, 0, 5, tzinfo=UTC)


def test_chargebee_payment_succeeded_becomes_a_received_payment():
    events, [result] = run("chargebee-payment-succeeded", sample("chargebee/payment_succeeded.json"))

    assert events[0].idempotency_key == "chargebee:ev_16BPgETyVrRkw7Ty"
    assert [command.data for command in result.commands] == [
        {
            "payment_external_id": "txn_AzZhUGSPAkLskJQo",
            "reference": "PM00B4F1XK2Q",
            "customer_external_id": "globex-uk",
            "invoice_external_id": "INV-2026-0412",
            "received_on": datetime.date(2026, 4, 30),
            "amount": Decimal("12000.00"),
            "currency": "GBP",
            "method": "direct_debit",
        }
    ]


def test_chargebee_failed_payment_is_skipped():
    delivery = sample("chargebee/payment_succeeded.json")
    delivery["content"]["transaction"]["status"] = "failure"

    _, [result] = run("chargebee-payment-succeeded", delivery)

    assert result.commands == []
    assert result.skipped[0].reason == (
        "Only successful payments: 'content.transaction.status' is 'failure', expected 'success'"
    )


def test_stripe_invoice_paid_turns_cents_into_a_decimal_amount():
    events, [result] = run("stripe-invoice-paid", sample("stripe/invoice.paid.json"))

    assert events[0].idempotency_key == "stripe:evt_1PaYzA2eZvKYlo2CxQ4nR8sT"
    assert events[0].schema_version == "2024-06-20"
    [command] = result.commands
    assert command.data == {
        "payment_external_id": "pi_3PaYz92eZvKYlo2C1vHn0Ygd",
        "reference": "ch_3PaYz92eZvKYlo2C1uWq7bNe",
        "customer_external_id": "cus_QRx7N2bL0aZk1m",
        "invoice_external_id": "in_1PaYyx2eZvKYlo2C6hFqS0Lm",
        "received_on": datetime.date(2026, 4, 30),
        "amount": Decimal("12500.00"),
        "currency": "USD",
    }
    assert str(command.data["amount"]) == "12500.00"


def test_stripe_zero_decimal_currency_keeps_whole_yen():
    delivery = sample("stripe/invoice.paid.json")
    delivery["data"]["object"].update({"currency": "jpy", "amount_paid": 150000})

    _, [result] = run("stripe-invoice-paid", delivery)

    [command] = result.commands
    assert command.data["amount"] == Decimal("150000")
    assert str(command.data["amount"]) == "150000"
    assert command.data["currency"] == "JPY"


def test_stripe_payload_from_a_newer_api_version_without_charge_falls_back_to_the_invoice():
    delivery = copy.deepcopy(sample("stripe/invoice.paid.json"))
    for key in ("charge", "payment_intent"):
        del delivery["data"]["object"][key]

    _, [result] = run("stripe-invoice-paid", delivery)

    [command] = result.commands
    assert command.data["payment_external_id"] == "in_1PaYyx2eZvKYlo2C6hFqS0Lm"
    assert command.data["reference"] == "ACME-0042"


def test_stripe_unpaid_invoice_is_skipped_not_an_error():
    delivery = sample("stripe/invoice.paid.json")
    delivery["data"]["object"]["status"] = "open"

    _, [result] = run("stripe-invoice-paid", delivery)

    assert result.errors == [] and result.commands == []
    assert result.skipped[0].reason == (
        "Only invoices Stripe reports as paid: 'data.object.status' is 'open', expected 'paid'"
    )


def test_bamboohr_employees_become_resource_changes_with_their_active_flag():
    events, results = run("bamboohr-employees", sample("bamboohr/employee_with_fields.updated.json"))

    assert [event.event_type for event in events] == ["employee_with_fields.updated"] * 2
    assert len({event.idempotency_key for event in events}) == 2
    assert [command.data for result in results for command in result.commands] == [
        {
            "resource_external_id": "4127",
            "employee_number": "E-1042",
            "name": "Priya Raman",
            "email": "priya.raman@acme.example",
            "role": "Senior Consultant",
            "active": True,
        },
        {
            "resource_external_id": "3981",
            "employee_number": "E-0977",
            "name": "Tomás Ortega",
            "email": "tomas.ortega@acme.example",
            "role": "Consultant",
            "active": False,
        },
    ]
    assert results[0].commands[0].occurred_at == datetime.datetime(2026, 3, 31, 18, 42, tzinfo=UTC)


def test_bamboohr_unknown_status_is_an_error_naming_the_known_values():
    delivery = sample("bamboohr/employee_with_fields.updated.json")
    delivery["employees"][0]["fields"]["Status"] = "On Leave"

    _, results = run("bamboohr-employees", delivery)

    [error] = results[0].errors
    assert error.message == "Active 'On Leave' is not a value this profile knows (known: 'Active', 'Inactive')."
    assert error.path == "fields.Status"
    assert [command.data["name"] for command in results[1].commands] == ["Tomás Ortega"]
