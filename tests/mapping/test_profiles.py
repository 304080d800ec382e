"""The source-profile engine: paths, conversions, conditions, value maps, fetches, splitting and validation."""

import datetime
import json
import re
from decimal import Decimal

import pytest

from apps.canonical.models import ContractType, Invoice
from apps.inbound.envelopes import UnreadableDelivery, canonical_hash, split_delivery
from apps.mapping.models import ValueMap, ValueMapEntry
from apps.mapping.profiles.catalogue import CONTRACT_TYPES, INVOICE_STATUSES
from apps.mapping.profiles.engine import apply_profile, profile_matches
from apps.mapping.profiles.paths import PathError, parse_path
from apps.mapping.profiles.validation import validate_spec

ON = datetime.date(2026, 4, 15)
UTC = datetime.UTC


def spec_for(command_type: str, fields: dict, **settings) -> dict:
    return {
        "vendor": "acme-crm",
        "event_types": ["thing.happened"],
        "commands": [{"type": command_type, "fields": fields}],
        **settings,
    }


def resource_spec(**overrides) -> dict:
    fields = {"resource_external_id": "id", "name": "name", "active": {"const": True}}
    fields.update(overrides)
    return spec_for("resource.changed", fields)


def only_command(result):
    assert result.errors == [], [error.message for error in result.errors]
    [command] = result.commands
    return command.data


# --- paths -------------------------------------------------------------------------------------------------------


def test_paths_follow_dots_indexes_quoted_keys_and_collect_lists():
    payload = {
        "data": {"object": {"lines": {"data": [{"amount": 100}, {"amount": 250}]}}},
        "fields": {"Employee #": "E-7", "a.b": "dotted"},
        "tags": [{"name": "x"}, {"name": "y"}],
    }
    fields = {
        "resource_external_id": "data.object.lines.data[0].amount",
        "employee_number": 'fields["Employee #"]',
        "name": "fields['a.b']",
        "email": "data.object.lines.data[-1].amount",
        "role": "tags[5].name",
    }

    data = only_command(apply_profile(resource_spec(**fields), payload, on=ON))

    assert data == {
        "resource_external_id": "100",
        "employee_number": "E-7",
        "name": "dotted",
        "email": "250",
        "active": True,
    }


def test_a_collected_list_can_be_tested_by_a_condition():
    spec = resource_spec()
    spec["when"] = [{"path": "changes[*].field", "contains": "Status", "description": "Only status changes"}]

    kept = apply_profile(spec, {"id": "1", "name": "A", "changes": [{"field": "Title"}, {"field": "Status"}]}, on=ON)
    dropped = apply_profile(spec, {"id": "1", "name": "A", "changes": [{"field": "Title"}]}, on=ON)

    assert len(kept.commands) == 1
    assert dropped.skipped[0].reason == (
        "Only status changes: 'changes[*].field' is [\"Title\"], expected it to contain 'Status'"
    )


def test_a_dynamic_key_follows_an_id_into_a_side_loaded_collection():
    payload = {"record": {"id": "9", "role_id": "77"}, "roles": {"77": {"name": "Architect"}}}

    result = apply_profile(
        resource_spec(resource_external_id="record.id", name="roles[{record.role_id}].name"), payload, on=ON
    )

    assert only_command(result)["name"] == "Architect"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a..b", "'.' must be followed by a field name"),
        ("a[", "never closed"),
        ("a[x]", "is not understood"),
        ("$nowhere.a", "is not a starting point"),
        ("", "non-empty"),
        ("a]", "without a '['"),
    ],
)
def test_a_malformed_path_is_refused_with_a_reason(text, message):
    with pytest.raises(PathError, match=re.escape(message)):
        parse_path(text)


# --- conversions ---------------------------------------------------------------------------------------------------


def time_spec(**overrides) -> dict:
    fields = {
        "time_entry_external_id": "id",
        "resource_external_id": "who",
        "project_external_id": "project",
        "work_date": "day",
        "hours": "hours",
        "billable": "billable",
    }
    fields.update(overrides)
    return spec_for("time_entry.approved", fields)


TIME = {"id": 5, "who": "R-1", "project": "P-1", "day": "2026-03-30", "hours": "7.5", "billable": "yes"}


def test_values_are_converted_to_canonical_types():
    data = only_command(apply_profile(time_spec(), TIME, on=ON))

    assert data == {
        "time_entry_external_id": "5",
        "resource_external_id": "R-1",
        "project_external_id": "P-1",
        "work_date": datetime.date(2026, 3, 30),
        "hours": Decimal("7.5"),
        "billable": True,
    }


def test_floats_from_json_become_exact_decimals():
    data = only_command(apply_profile(time_spec(), {**TIME, "hours": 0.1}, on=ON))

    assert data["hours"] == Decimal("0.1")


def test_dates_and_times_are_read_from_epoch_seconds_and_milliseconds():
    spec = time_spec(
        work_date={"path": "day", "format": "epoch_ms"},
        approved_at={"path": "approved", "format": "epoch_s"},
    )

    data = only_command(apply_profile(spec, {**TIME, "day": 1774970411000, "approved": "1774970412"}, on=ON))

    assert data["work_date"] == datetime.date(2026, 3, 31)
    assert data["approved_at"] == datetime.datetime(2026, 3, 31, 15, 20, 12, tzinfo=UTC)


def test_an_iso_time_with_an_offset_is_kept_as_the_same_instant_in_utc_and_its_date_is_taken_in_a_timezone():
    spec = time_spec(
        work_date={"path": "day", "timezone": "America/Los_Angeles"},
        approved_at="approved",
    )

    data = only_command(
        apply_profile(spec, {**TIME, "day": "2026-04-01T05:30:00Z", "approved": "2026-04-02T09:15:40-0700"}, on=ON)
    )

    assert data["work_date"] == datetime.date(2026, 3, 31)
    assert data["approved_at"] == datetime.datetime(2026, 4, 2, 16, 15, 40, tzinfo=UTC)


def test_a_date_pattern_reads_local_formats():
    data = only_command(
        apply_profile(time_spec(work_date={"path": "day", "format": "%d/%m/%Y"}), {**TIME, "day": "30/03/2026"}, on=ON)
    )

    assert data["work_date"] == datetime.date(2026, 3, 30)


def test_milliseconds_read_as_seconds_are_refused_with_a_hint():
    spec = time_spec(work_date={"path": "day", "format": "epoch_s"})

    result = apply_profile(spec, {**TIME, "day": 1774970411000}, on=ON)

    [error] = result.errors
    assert error.message == (
        "Work date '1774970411000' is not a date: it is not a time in seconds since 1970 (is it in milliseconds?)."
    )


def test_every_bad_value_is_reported_with_its_field_path_and_a_business_message():
    payload = {"id": 5, "project": "P-1", "day": "31/13/2026", "hours": "seven", "billable": "maybe"}

    result = apply_profile(time_spec(), payload, on=ON)

    assert result.commands == []
    assert [(error.field, error.path, error.message) for error in result.errors] == [
        ("resource_external_id", "who", "Resource external ID is required, but the payload has no value at 'who'."),
        ("work_date", "day", "Work date '31/13/2026' is not a date (expected ISO 8601, e.g. 2026-03-31)."),
        ("hours", "hours", "Hours 'seven' is not a number."),
        ("billable", "billable", "Billable 'maybe' is not a yes/no value (true or false)."),
    ]
    assert all(error.location == f"commands[0].fields.{error.field}" for error in result.errors)
    assert all(error.command == "time_entry.approved" for error in result.errors)


def test_an_empty_text_counts_as_missing_and_a_default_fills_it():
    spec = time_spec(billable={"path": "billable", "default": True}, description="notes")

    data = only_command(apply_profile(spec, {**TIME, "billable": "  ", "notes": ""}, on=ON))

    assert data["billable"] is True
    assert "description" not in data


def test_a_number_too_large_to_round_is_an_error_not_a_crash():
    spec = time_spec(hours={"path": "minutes", "divide_by": 60, "places": 4})

    result = apply_profile(spec, {**TIME, "minutes": "1e40"}, on=ON)

    assert result.errors[0].message == "Hours '1e40' is too large or too precise to be an amount or quantity."


def test_a_whole_number_field_refuses_fractions():
    spec = spec_for(
        "contract.amended",
        {"contract_external_id": "id", "version": "v", "effective_from": "from", "description": {"const": "Extension"}},
    )

    good = apply_profile(spec, {"id": "K-1", "v": "3", "from": "2026-05-01"}, on=ON)
    bad = apply_profile(spec, {"id": "K-1", "v": "3.5", "from": "2026-05-01"}, on=ON)

    assert only_command(good)["version"] == 3
    assert bad.errors[0].message == "Version '3.5' is not a whole number."


def payment_spec(**overrides) -> dict:
    fields = {
        "payment_external_id": "id",
        "reference": "id",
        "customer_external_id": "customer",
        "received_on": {"path": "created", "format": "epoch_s"},
        "amount": {"path": "amount", "type": "minor_units", "currency": "currency"},
        "currency": {"path": "currency"},
    }
    fields.update(overrides)
    return spec_for("payment.received", fields)


PAYMENT = {"id": "py_1", "customer": "cus_1", "created": 1777536000, "amount": 1999, "currency": "usd"}


@pytest.mark.parametrize(
    ("currency", "minor", "amount"),
    [("usd", 1999, "19.99"), ("JPY", 1999, "1999"), ("kwd", 1999, "1.999"), ("eur", "250", "2.50")],
)
def test_minor_units_become_a_decimal_using_the_currency(currency, minor, amount):
    data = only_command(apply_profile(payment_spec(), {**PAYMENT, "currency": currency, "amount": minor}, on=ON))

    assert str(data["amount"]) == amount
    assert data["currency"] == currency.upper()


def test_minor_units_need_a_whole_number_and_a_known_currency():
    fractional = apply_profile(payment_spec(), {**PAYMENT, "amount": "19.99"}, on=ON)
    unknown = apply_profile(payment_spec(), {**PAYMENT, "currency": "xyz"}, on=ON)

    assert fractional.errors[0].message == "Amount '19.99' is not a whole number of minor units (cents)."
    [error] = unknown.errors
    assert error.field == "currency"
    assert error.message == "Currency 'xyz' is not a currency code this product knows (ISO 4217, e.g. USD, EUR, GBP)."


def test_minor_units_can_take_their_currency_from_their_own_path():
    spec = payment_spec(amount={"path": "amount", "type": "minor_units", "currency": {"path": "money.currency"}})

    data = only_command(apply_profile(spec, {**PAYMENT, "money": {"currency": "jpy"}}, on=ON))

    assert data["amount"] == Decimal("1999")


def test_choices_of_a_canonical_field_are_enforced():
    fields = {
        "opportunity_external_id": "id",
        "opportunity_name": "name",
        "amount": "amount",
        "currency": "currency",
        "close_date": "closed",
        "contract_type": "kind",
        "customer_external_id": "account",
        "customer_name": "account",
        "legal_entity": {"const": "ACME-US"},
    }
    payload = {
        "id": "O-1",
        "name": "Deal",
        "amount": "10",
        "currency": "USD",
        "closed": "2026-03-31",
        "kind": "fixed",
        "account": "A-1",
    }

    result = apply_profile(spec_for("opportunity.won", fields), payload, on=ON)

    assert result.errors[0].message == (
        "Contract type 'fixed' is not one of the allowed values: fixed_fee, time_and_materials, retainer, "
        "subscription, milestone, usage."
    )


def test_text_can_be_extracted_transformed_mapped_and_templated():
    spec = resource_spec(
        resource_external_id={"path": "source", "extract": r"userId:(\d+)"},
        name={"template": "{first} {last}"},
        role={"path": "title", "transform": ["strip", "collapse_spaces"]},
        email={"path": "mail", "transform": "lower"},
        active={"path": "status", "map": {"A": True, "T": False}, "map_default": False},
    )
    payload = {
        "source": "userId:4915273",
        "first": "Priya",
        "last": "Raman",
        "title": "  Senior   Consultant ",
        "mail": "Priya@Acme.Example",
        "status": "X",
    }

    data = only_command(apply_profile(spec, payload, on=ON))

    assert data == {
        "resource_external_id": "4915273",
        "name": "Priya Raman",
        "role": "Senior Consultant",
        "email": "priya@acme.example",
        "active": False,
    }


def test_the_first_path_with_a_value_wins():
    spec = resource_spec(resource_external_id={"path": ["charge", "payment_intent", "id"]})

    data = only_command(apply_profile(spec, {"payment_intent": "pi_1", "id": "in_1", "name": "N"}, on=ON))
    missing = apply_profile(spec, {"name": "N"}, on=ON)

    assert data["resource_external_id"] == "pi_1"
    assert missing.errors[0].path == "charge or payment_intent or id"


# --- value maps ----------------------------------------------------------------------------------------------------


@pytest.fixture
def regions(db):
    value_map = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
    ValueMapEntry.objects.create(
        value_map=value_map,
        source_value="EMEA",
        target_value="ACME-DE",
        effective_from=datetime.date(2026, 1, 1),
        effective_to=datetime.date(2026, 6, 30),
    )
    ValueMapEntry.objects.create(
        value_map=value_map, source_value="EMEA", target_value="ACME-NL", effective_from=datetime.date(2026, 7, 1)
    )
    return value_map


def customer_spec(**legal) -> dict:
    return spec_for(
        "customer.changed",
        {"customer_external_id": "id", "name": "name", "region": "region", "tax_region": {"path": "region", **legal}},
    )


def test_a_value_map_translates_as_of_the_apply_date_or_a_date_in_the_payload(regions):
    by_day = apply_profile(
        customer_spec(value_map="region-subsidiary"),
        {"id": "C-1", "name": "N", "region": "emea"},
        on=datetime.date(2026, 8, 1),
    )
    by_payload = apply_profile(
        customer_spec(value_map="region-subsidiary", as_of={"path": "signed", "format": "epoch_ms"}),
        {"id": "C-1", "name": "N", "region": "EMEA", "signed": 1774970411000},
        on=datetime.date(2026, 8, 1),
    )

    assert only_command(by_day)["tax_region"] == "ACME-NL"
    assert only_command(by_payload)["tax_region"] == "ACME-DE"


def test_a_value_map_miss_is_a_located_error_with_the_business_message(regions):
    result = apply_profile(
        customer_spec(value_map="region-subsidiary"),
        {"id": "C-1", "name": "N", "region": "LATAM"},
        on=datetime.date(2026, 11, 20),
    )

    assert result.commands == []
    [error] = result.errors
    assert error.message == "Tax region: value map region→subsidiary has no entry for 'LATAM' on 2026-11-20"
    assert error.field == "tax_region"
    assert error.path == "region"
    assert error.fix.startswith("Add an entry for 'LATAM' to value map 'region-subsidiary'")


def test_a_value_map_that_does_not_exist_is_reported_not_raised(db):
    result = apply_profile(customer_spec(value_map="no-such-map"), {"id": "C-1", "name": "N", "region": "EMEA"}, on=ON)

    assert result.errors[0].message == "Tax region: There is no value map 'no-such-map'."


# --- conditions ----------------------------------------------------------------------------------------------------


def deal_spec(*conditions) -> dict:
    spec = resource_spec(resource_external_id="objectId", name="propertyValue")
    spec["when"] = list(conditions)
    return spec


@pytest.mark.parametrize(
    ("condition", "held"),
    [
        ({"path": "propertyName", "equals": "dealstage"}, True),
        ({"path": "propertyName", "equals": "DEALSTAGE", "ignore_case": True}, True),
        ({"path": "propertyName", "not_equals": "amount"}, True),
        ({"path": "propertyValue", "in": ["closedwon", "closedlost"]}, True),
        ({"path": "propertyValue", "not_in": ["closedwon"]}, False),
        ({"path": "missing", "exists": False}, True),
        ({"path": "propertyValue", "matches": "^closed"}, True),
        ({"path": "objectId", "gt": 100}, True),
        ({"path": "objectId", "lte": "100"}, False),
        ({"path": "objectId", "equals": "123"}, True),
        ({"path": "won", "equals": True}, True),
        ({"path": "won", "equals": "true"}, False),
        (
            {"any": [{"path": "propertyName", "equals": "amount"}, {"path": "propertyValue", "equals": "closedwon"}]},
            True,
        ),
        ({"all": [{"path": "propertyName", "equals": "dealstage"}, {"path": "won", "equals": False}]}, False),
        ({"not": {"path": "propertyName", "equals": "dealstage"}}, False),
    ],
)
def test_conditions_decide_whether_an_event_is_mapped(condition, held):
    event = {"objectId": 123, "propertyName": "dealstage", "propertyValue": "closedwon", "won": True}

    result = apply_profile(deal_spec(condition), event, on=ON)

    assert result.errors == []
    assert (len(result.commands) == 1) is held
    assert (len(result.skipped) == 1) is not held


def test_a_condition_not_met_is_a_skip_with_a_readable_reason_not_an_error():
    result = apply_profile(
        deal_spec(
            {"path": "propertyName", "equals": "dealstage", "description": "Only stage changes"},
            {"path": "propertyValue", "equals": "closedwon", "description": "Only deals moved to closed won"},
        ),
        {"objectId": 123, "propertyName": "dealstage", "propertyValue": "appointmentscheduled"},
        on=ON,
    )

    assert result.errors == [] and result.commands == []
    [skip] = result.skipped
    assert (
        skip.reason == "Only deals moved to closed won: 'propertyValue' is 'appointmentscheduled', expected 'closedwon'"
    )


def test_a_condition_on_a_missing_value_says_so():
    result = apply_profile(deal_spec({"path": "StageName", "equals": "Closed Won"}), {"objectId": 1}, on=ON)

    assert result.skipped[0].reason == "Condition not met: 'StageName' has no value, expected 'Closed Won'"


def test_a_command_level_condition_skips_only_that_command():
    spec = resource_spec()
    spec["commands"].append(
        {
            "type": "customer.changed",
            "when": [{"path": "kind", "equals": "company"}],
            "fields": {"customer_external_id": "id", "name": "name"},
        }
    )

    result = apply_profile(spec, {"id": "1", "name": "Ada", "kind": "person"}, on=ON)

    assert [command.type for command in result.commands] == ["resource.changed"]
    assert result.skipped[0].command == "customer.changed"


# --- items, fetches and lines ----------------------------------------------------------------------------------


def test_each_item_is_mapped_on_its_own_and_a_bad_item_does_not_stop_the_others():
    spec = resource_spec()
    spec["each"] = "value"

    result = apply_profile(
        spec,
        {"value": [{"id": "1", "name": "A"}, {"id": "2"}, {"id": "3", "name": "C"}]},
        on=ON,
        source_event_id="sha256:abc",
    )

    assert [command.data["resource_external_id"] for command in result.commands] == ["1", "3"]
    assert [command.source_event_id for command in result.commands] == ["sha256:abc[0]", "sha256:abc[2]"]
    [error] = result.errors
    assert (error.item, error.path) == (1, "value[1].name")


def test_each_takes_the_first_path_that_has_a_value_so_a_profile_reads_a_batch_or_a_single_event():
    spec = resource_spec()
    spec["each"] = ["value", "$event"]

    batch = apply_profile(spec, {"value": [{"id": "1", "name": "A"}, {"id": "2", "name": "B"}]}, on=ON)
    single = apply_profile(spec, {"id": "3", "name": "C"}, on=ON)
    nothing = apply_profile({**spec, "each": "value"}, {"id": "3"}, on=ON)
    empty = apply_profile(spec, {"value": []}, on=ON)

    assert len(batch.commands) == 2
    assert len(single.commands) == 1
    assert nothing.skipped[0].reason == "Nothing to read: the payload has no list at 'value'."
    assert empty.skipped[0].reason == "Nothing to read: the list at 'value' or '$event' is empty."


def thin_spec() -> dict:
    spec = spec_for(
        "customer.changed",
        {
            "customer_external_id": "$fetched.company.id",
            "name": "$fetched.company.properties.name",
            "billing_email": "$fetched.company.properties.billing_email",
        },
    )
    spec["fetch"] = {"object": "company", "id": "objectId", "params": {"portal": "portalId"}}
    return spec


def test_a_thin_notification_asks_for_the_record_then_maps_the_fetched_record():
    notification = {"objectId": 123, "portalId": 62515}

    first = apply_profile(thin_spec(), notification, on=ON)
    [request] = first.needs_fetch
    second = apply_profile(
        thin_spec(), notification, {request.key: {"company": {"id": "123", "properties": {"name": "Initech"}}}}, on=ON
    )

    assert first.commands == [] and first.errors == []
    assert request.message == "needs fetch of company 123 from the source system"
    assert request.key == "company:123"
    assert request.params == {"portal": "62515"}
    assert only_command(second) == {"customer_external_id": "123", "name": "Initech"}


def test_a_thin_notification_without_the_record_id_is_an_error_not_a_fetch():
    result = apply_profile(thin_spec(), {"portalId": 62515}, on=ON)

    assert result.needs_fetch == []
    assert result.errors[0].field == "fetch.id"
    assert result.errors[0].message == "Fetch ID is required, but the payload has no value at 'objectId'."


def invoice_spec() -> dict:
    return spec_for(
        "invoice.posted",
        {
            "invoice_external_id": "id",
            "number": "number",
            "customer_external_id": "customer",
            "issue_date": "issued",
            "due_date": "due",
            "currency": "currency",
            "subtotal": {"path": "subtotal", "type": "minor_units", "currency": "currency"},
            "tax_total": {"path": "tax", "type": "minor_units", "currency": "currency"},
            "total": {"path": "total", "type": "minor_units", "currency": "currency"},
            "status": {"const": "posted"},
            "lines": {
                "each": "lines.data",
                "fields": {
                    "description": "description",
                    "quantity": "quantity",
                    "unit_price": {"path": "unit", "type": "minor_units", "currency": "currency"},
                    "amount": {"path": "amount", "type": "minor_units", "currency": "currency"},
                    "tax_amount": {"path": "tax", "type": "minor_units", "currency": "currency", "default": 0},
                },
            },
        },
    )


INVOICE = {
    "id": "in_1",
    "number": "A-1",
    "customer": "cus_1",
    "issued": "2026-03-31",
    "due": "2026-04-30",
    "currency": "eur",
    "subtotal": 15000,
    "tax": 2850,
    "total": 17850,
    "lines": {
        "data": [
            {"description": "Workshop", "quantity": 1, "unit": 10000, "amount": 10000, "tax": 1900},
            {"description": "Travel", "quantity": 2, "unit": 2500, "amount": 5000},
        ]
    },
}


def test_invoice_lines_are_mapped_with_the_invoice_currency():
    data = only_command(apply_profile(invoice_spec(), INVOICE, on=ON))

    assert data["lines"] == [
        {
            "description": "Workshop",
            "quantity": Decimal("1"),
            "unit_price": Decimal("100.00"),
            "amount": Decimal("100.00"),
            "tax_amount": Decimal("19.00"),
        },
        {
            "description": "Travel",
            "quantity": Decimal("2"),
            "unit_price": Decimal("25.00"),
            "amount": Decimal("50.00"),
            "tax_amount": Decimal("0.00"),
        },
    ]
    assert data["total"] == Decimal("178.50")


def test_a_missing_currency_is_reported_once_not_again_on_every_amount():
    payload = {**INVOICE, "currency": None}

    result = apply_profile(invoice_spec(), payload, on=ON)

    assert [error.field for error in result.errors] == ["currency"]


def test_an_invoice_without_lines_is_refused():
    result = apply_profile(invoice_spec(), {**INVOICE, "lines": {"data": []}}, on=ON)

    assert result.errors[0].message == "Lines: the payload has no entries at 'lines.data'."


# --- never raising, results as JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload", [None, [], "text", 42, {"id": {"nested": True}, "name": ["a"]}, {"id": "1", "name": 3.5}]
)
def test_no_payload_can_make_the_engine_raise(payload):
    result = apply_profile(resource_spec(), payload, on=ON)

    assert result.commands or result.errors or result.skipped


def test_an_invalid_profile_is_reported_as_errors_not_raised():
    result = apply_profile({"vendor": "x"}, {"id": 1}, on=ON)

    assert result.commands == []
    assert result.errors[0].message.startswith("The profile cannot be used: event_types:")


def test_the_result_renders_as_json():
    result = apply_profile(invoice_spec(), INVOICE, on=ON, occurred_at=datetime.datetime(2026, 3, 31, 12, tzinfo=UTC))

    rendered = json.loads(json.dumps(result.as_dict()))

    assert rendered["commands"][0]["data"]["total"] == "178.50"
    assert rendered["commands"][0]["data"]["issue_date"] == "2026-03-31"
    assert rendered["commands"][0]["occurred_at"] == "2026-03-31T12:00:00+00:00"


# --- validating a profile --------------------------------------------------------------------------------------


def test_a_valid_profile_has_no_problems():
    assert validate_spec(invoice_spec()) == []
    assert validate_spec(thin_spec()) == []


def test_a_malformed_profile_is_refused_with_located_readable_messages():
    spec = {
        "vendor": "acme",
        "event_types": ["x"],
        "colour": "blue",
        "when": [{"path": "status", "equalz": "paid"}],
        "commands": [
            {"type": "opportunity.lost", "fields": {}},
            {
                "type": "payment.received",
                "fields": {
                    "payment_external_id": "id",
                    "reference": "a..b",
                    "customer_external_id": {"path": "c", "type": "money"},
                    "received_on": {"path": "d", "format": "dd/mm"},
                    "amount": {"path": "e", "type": "string"},
                    "currency": {"path": "f", "value_map": ""},
                    "method": {"const": "card", "path": "g"},
                    "ammount": "e",
                },
            },
            {"type": "invoice.posted", "fields": {"lines": {"path": "lines"}}},
        ],
    }

    problems = validate_spec(spec)

    for expected in [
        "'colour' is not a setting a profile can have",
        "when[0]: 'equalz' is not understood",
        "commands[0].type: 'opportunity.lost' is not a canonical command",
        "commands[1].fields: 'ammount' is not a field of payment.received",
        "commands[1].fields.reference: 'a..b': '.' must be followed by a field name.",
        "commands[1].fields.customer_external_id.type: 'money' is not a type",
        "commands[1].fields.received_on.format: 'dd/mm' is not a date format",
        "commands[1].fields.amount.type: this field holds a decimal; use decimal or minor_units, not 'string'.",
        "commands[1].fields.currency.value_map: name the value map",
        "commands[1].fields.method: give exactly one of 'path', 'const' or 'template'.",
        "commands[2].fields: invoice.posted needs 'number', but the profile does not map it.",
        "commands[2].fields.lines: a list field needs 'each'",
    ]:
        assert any(problem.startswith(expected) for problem in problems), (expected, problems)


def test_minor_units_must_name_a_currency_field_that_exists():
    spec = payment_spec(amount={"path": "amount", "type": "minor_units", "currency": "money"})

    assert validate_spec(spec) == [
        "commands[0].fields.amount.currency: there is no field 'money' in this command to take it from."
    ]


def test_a_profile_that_is_not_an_object_is_refused():
    assert validate_spec(["not", "a", "profile"]) == [
        "The profile must be a JSON object with 'vendor', 'event_types' and 'commands'."
    ]


def test_the_canonical_choices_match_the_canonical_models():
    assert list(CONTRACT_TYPES) == list(ContractType.values)
    assert list(INVOICE_STATUSES) == list(Invoice.Status.values)


# --- selecting and splitting ---------------------------------------------------------------------------------


def test_a_profile_is_selected_by_vendor_event_type_and_schema_version():
    spec = {"vendor": "Stripe", "event_types": ["invoice.*"], "schema_version": "2024-*", "commands": []}

    assert profile_matches(spec, vendor="stripe", event_type="invoice.paid", schema_version="2024-06-20")
    assert not profile_matches(spec, vendor="stripe", event_type="invoice.paid", schema_version="2025-03-31.basil")
    assert not profile_matches(spec, vendor="stripe", event_type="charge.succeeded", schema_version="2024-06-20")
    assert not profile_matches(spec, vendor="chargebee", event_type="invoice.paid", schema_version="2024-06-20")
    assert profile_matches({**spec, "schema_version": ""}, vendor="stripe", event_type="invoice.paid")


def test_standard_webhooks_are_keyed_on_the_webhook_id_header():
    body = b'{"type": "invoice.paid", "timestamp": "2026-03-31T15:20:11Z", "data": {"id": "inv_1"}}'

    [event] = split_delivery(
        "standard-webhooks",
        body,
        headers={"Webhook-Id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "Webhook-Timestamp": "1774970411"},
    )

    assert event.idempotency_key == "webhook-id:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert event.event_type == "invoice.paid"
    assert event.occurred_at == datetime.datetime(2026, 3, 31, 15, 20, 11, tzinfo=UTC)


def test_an_event_without_a_vendor_id_is_keyed_on_a_hash_of_its_canonical_json():
    [first] = split_delivery("generic", b'{"b": 1, "a": {"y": [1, 2], "x": "caf\\u00e9"}}')
    [same] = split_delivery("generic", {"a": {"x": "café", "y": [1, 2]}, "b": 1})
    [other] = split_delivery("generic", {"a": {"x": "café", "y": [2, 1]}, "b": 1})

    assert (
        first.idempotency_key
        == same.idempotency_key
        == f"sha256:{canonical_hash({'a': {'x': 'café', 'y': [1, 2]}, 'b': 1})}"
    )
    assert other.idempotency_key != first.idempotency_key
    assert len(first.idempotency_key) == len("sha256:") + 64


def test_stripe_and_chargebee_events_are_keyed_on_their_event_id():
    [stripe] = split_delivery(
        "stripe", {"id": "evt_1", "type": "invoice.paid", "created": 1774970411, "api_version": "2024-06-20"}
    )
    [chargebee] = split_delivery(
        "chargebee", {"id": "ev_1", "event_type": "payment_succeeded", "occurred_at": 1774970411}
    )

    assert (stripe.idempotency_key, stripe.event_type, stripe.vendor_event_id) == (
        "stripe:evt_1",
        "invoice.paid",
        "evt_1",
    )
    assert (chargebee.idempotency_key, chargebee.event_type) == ("chargebee:ev_1", "payment_succeeded")
    assert chargebee.occurred_at == datetime.datetime(2026, 3, 31, 15, 20, 11, tzinfo=UTC)


def test_salesforce_change_events_fall_back_to_the_replay_id_and_custom_objects_get_their_event_name():
    message = {
        "data": {
            "payload": {"ChangeEventHeader": {"entityName": "Project__c", "changeType": "UPDATE"}},
            "event": {"replayId": 77},
        }
    }

    [event] = split_delivery("salesforce", message)

    assert event.event_type == "Project__ChangeEvent"
    assert event.idempotency_key == "salesforce:replay::77"


def test_several_salesforce_messages_in_one_delivery_are_several_events_and_repeats_are_dropped():
    header = {"entityName": "Account", "transactionKey": "tk-1", "changeType": "UPDATE"}
    messages = [
        {
            "channel": "/data/AccountChangeEvent",
            "data": {"payload": {"ChangeEventHeader": {**header, "sequenceNumber": 1}}, "event": {"replayId": 1}},
        },
        {
            "channel": "/data/AccountChangeEvent",
            "data": {"payload": {"ChangeEventHeader": {**header, "sequenceNumber": 2}}, "event": {"replayId": 2}},
        },
        {
            "channel": "/data/AccountChangeEvent",
            "data": {"payload": {"ChangeEventHeader": {**header, "sequenceNumber": 1}}, "event": {"replayId": 1}},
        },
    ]

    events = split_delivery("salesforce", messages)

    assert [event.idempotency_key for event in events] == ["salesforce:cdc:tk-1:1", "salesforce:cdc:tk-1:2"]
    assert [event.position for event in events] == [0, 1]


def test_a_salesforce_platform_event_over_pubsub_is_keyed_on_the_event_id():
    response = {
        "topic_name": "/event/Opportunity_Won__e",
        "events": [
            {
                "replay_id": "AAAAAAAAAx8=",
                "event": {"id": "uuid-1", "schema_id": "s", "payload": {"CreatedDate": 1774970411000}},
            },
        ],
    }

    [event] = split_delivery("salesforce", response)

    assert (event.event_type, event.idempotency_key) == ("Opportunity_Won__e", "salesforce:event:uuid-1")
    assert event.occurred_at == datetime.datetime(2026, 3, 31, 15, 20, 11, tzinfo=UTC)


def test_a_delivery_that_is_not_json_or_not_the_vendor_shape_is_unreadable():
    with pytest.raises(UnreadableDelivery, match="not valid JSON"):
        split_delivery("stripe", b"<html>")
    with pytest.raises(UnreadableDelivery, match="does not have the shape a hubspot delivery has"):
        split_delivery("hubspot", {"objectId": 1})
    with pytest.raises(ValueError, match="Unknown delivery scheme"):
        split_delivery("carrier-pigeon", b"{}")
