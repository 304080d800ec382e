"""Cross-references and value maps over the API: the steward's tables, with history and readable refusals."""

import datetime

import pytest

from apps.mapping.models import CrossReference, ValueMap, ValueMapEntry
from tests import factories

pytestmark = pytest.mark.django_db

JAN_1 = datetime.date(2026, 1, 1)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"]
    return response.json()


@pytest.fixture
def customer():
    return factories.customer(name="Globex")


def test_a_steward_links_a_customer_to_its_erp_id(api_as, steward, systems, customer):
    response = api_as(steward).post(
        "/api/v1/cross-references/",
        {"system": "netsuite", "object_type": "customer", "object_id": customer.pk, "external_id": "NS-881"},
        HTTP_X_CHANGE_REASON="Linked after the ERP migration (MIG-2)",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["origin"] == "manual" and data["last_synced_at"]
    link = CrossReference.objects.get(pk=data["id"])
    row = link.history.get()
    assert row.history_user == steward
    assert row.history_change_reason == "Linked after the ERP migration (MIG-2)"


def test_recording_the_same_link_twice_answers_with_the_first(api_as, steward, systems, customer):
    payload = {"system": "netsuite", "object_type": "customer", "object_id": customer.pk, "external_id": "NS-881"}
    first = api_as(steward).post("/api/v1/cross-references/", payload).json()
    second = api_as(steward).post("/api/v1/cross-references/", payload).json()
    assert first["id"] == second["id"]
    assert CrossReference.objects.count() == 1


def test_a_conflicting_link_is_a_422_that_says_what_to_check(api_as, steward, systems, customer):
    other = factories.customer(name="Initech")
    client = api_as(steward)
    client.post(
        "/api/v1/cross-references/",
        {"system": "netsuite", "object_type": "customer", "object_id": customer.pk, "external_id": "NS-881"},
    )
    body = problem(
        client.post(
            "/api/v1/cross-references/",
            {"system": "netsuite", "object_type": "customer", "object_id": other.pk, "external_id": "NS-881"},
        ),
        422,
    )
    assert body["detail"] == f"NetSuite ID 'NS-881' already belongs to another customer / account (#{customer.pk})."
    assert body["fix"].startswith("Merge the duplicate canonical records")
    assert body["code"] == "cross_reference_conflict"


def test_a_link_to_a_record_that_does_not_exist_is_a_400(api_as, steward, systems):
    body = problem(
        api_as(steward).post(
            "/api/v1/cross-references/",
            {"system": "netsuite", "object_type": "project", "object_id": 424242, "external_id": "P-1"},
        ),
        400,
    )
    assert body["detail"] == "object_id: There is no project with id 424242."


def test_correcting_an_external_id_keeps_history_and_refuses_a_taken_one(api_as, steward, systems, customer):
    other = factories.customer()
    link = CrossReference.objects.create(
        system=systems["erp"], object_type="customer", object_id=customer.pk, external_id="NS-1"
    )
    CrossReference.objects.create(system=systems["erp"], object_type="customer", object_id=other.pk, external_id="NS-2")
    client = api_as(steward)
    response = client.patch(
        f"/api/v1/cross-references/{link.pk}/", {"external_id": "NS-10"}, HTTP_X_CHANGE_REASON="Typo in ERP id"
    )
    assert response.status_code == 200
    assert link.history.latest().history_change_reason == "Typo in ERP id"
    body = problem(client.patch(f"/api/v1/cross-references/{link.pk}/", {"external_id": "NS-2"}), 400)
    assert body["detail"] == "This system already uses that external ID for another record of this type."


def test_cross_references_filter_by_system_and_record(api_as, auditor, systems, customer):
    CrossReference.objects.create(system=systems["erp"], object_type="customer", object_id=customer.pk, external_id="1")
    CrossReference.objects.create(system=systems["crm"], object_type="customer", object_id=customer.pk, external_id="2")
    rows = api_as(auditor).get(
        "/api/v1/cross-references/", {"system": "salesforce", "object_type": "customer", "object_id": customer.pk}
    )
    assert [row["external_id"] for row in rows.json()["results"]] == ["2"]


def test_a_value_map_is_created_with_its_entries(api_as, steward, systems):
    response = api_as(steward).post(
        "/api/v1/value-maps/",
        {
            "name": "region-subsidiary",
            "source_label": "region",
            "target_label": "subsidiary",
            "source_system": "salesforce",
            "target_system": "netsuite",
            "entries": [
                {"source_value": "EMEA", "target_value": "2", "effective_from": "2026-01-01"},
                {"source_value": "AMER", "target_value": "1", "effective_from": "2026-01-01"},
            ],
        },
        HTTP_X_CHANGE_REASON="Regions for the 2026 entity structure",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert sorted(entry["source_value"] for entry in data["entries"]) == ["AMER", "EMEA"]
    assert data["source_system"] == "salesforce"
    reasons = {row.history_change_reason for row in ValueMapEntry.history.all()}
    assert reasons == {"Regions for the 2026 entity structure"}


def test_overlapping_entries_in_one_request_create_nothing(api_as, steward):
    body = problem(
        api_as(steward).post(
            "/api/v1/value-maps/",
            {
                "name": "tax-codes",
                "source_label": "CRM tax code",
                "target_label": "ERP tax code",
                "entries": [
                    {"source_value": "VAT20", "target_value": "GB-S", "effective_from": "2026-01-01"},
                    {"source_value": "vat20", "target_value": "GB-R", "effective_from": "2026-03-01"},
                ],
            },
        ),
        400,
    )
    assert body["errors"][0]["field"] == "entries[1]"
    assert "already maps 'VAT20' to 'GB-S'" in body["detail"]
    assert not ValueMap.objects.filter(name="tax-codes").exists()


def test_an_entry_that_overlaps_is_refused_and_ending_the_old_one_first_works(api_as, steward):
    value_map = ValueMap.objects.create(name="items", source_label="service item", target_label="ERP item")
    old = ValueMapEntry.objects.create(
        value_map=value_map, source_value="CONS", target_value="100", effective_from=JAN_1
    )
    client = api_as(steward)
    new_entry = {
        "value_map": value_map.pk,
        "source_value": "CONS",
        "target_value": "110",
        "effective_from": "2026-07-01",
    }
    body = problem(client.post("/api/v1/value-map-entries/", new_entry), 400)
    assert "end that entry the day before this one starts" in body["detail"]
    assert client.patch(f"/api/v1/value-map-entries/{old.pk}/", {"effective_to": "2026-06-30"}).status_code == 200
    assert client.post("/api/v1/value-map-entries/", new_entry).status_code == 201
    rows = client.get("/api/v1/value-map-entries/", {"value_map_name": "items", "in_force_on": "2026-08-01"}).json()
    assert [row["target_value"] for row in rows["results"]] == ["110"]


def test_entries_of_an_existing_map_are_changed_one_by_one(api_as, steward):
    value_map = ValueMap.objects.create(name="items", source_label="service item", target_label="ERP item")
    body = problem(
        api_as(steward).patch(
            f"/api/v1/value-maps/{value_map.pk}/",
            {"entries": [{"source_value": "A", "target_value": "B", "effective_from": "2026-01-01"}]},
        ),
        400,
    )
    assert "/api/v1/value-map-entries/" in body["detail"]


def test_an_end_before_the_start_is_explained(api_as, steward):
    value_map = ValueMap.objects.create(name="items", source_label="service item", target_label="ERP item")
    body = problem(
        api_as(steward).post(
            "/api/v1/value-map-entries/",
            {
                "value_map": value_map.pk,
                "source_value": "X",
                "target_value": "Y",
                "effective_from": "2026-05-01",
                "effective_to": "2026-04-30",
            },
        ),
        400,
    )
    assert body["detail"] == "effective_to: The end date 2026-04-30 is before the start date 2026-05-01."


def test_the_history_of_an_entry_shows_the_diff(api_as, steward, auditor):
    value_map = ValueMap.objects.create(name="items", source_label="service item", target_label="ERP item")
    entry = ValueMapEntry.objects.create(
        value_map=value_map, source_value="CONS", target_value="100", effective_from=JAN_1
    )
    api_as(steward).patch(
        f"/api/v1/value-map-entries/{entry.pk}/", {"target_value": "150"}, HTTP_X_CHANGE_REASON="ERP item renumbered"
    )
    rows = api_as(auditor).get(f"/api/v1/value-map-entries/{entry.pk}/history/").json()["results"]
    assert rows[0]["history_change_reason"] == "ERP item renumbered"
    assert rows[0]["history_user"] == "sam.steward"
    assert rows[0]["changes"] == [{"field": "target_value", "old": "100", "new": "150", "masked": False}]
    assert rows[1]["history_type"] == "created"


def test_listing_value_maps_with_entries_does_not_grow_with_rows(
    api_as, auditor, systems, django_assert_max_num_queries
):
    for n in range(8):
        value_map = ValueMap.objects.create(
            name=f"map-{n}",
            source_label="a",
            target_label="b",
            source_system=systems["crm"],
            target_system=systems["erp"],
        )
        for value in ("A", "B", "C"):
            ValueMapEntry.objects.create(
                value_map=value_map, source_value=value, target_value="1", effective_from=JAN_1
            )
    client = api_as(auditor)
    client.get("/api/v1/value-maps/")
    with django_assert_max_num_queries(3):  # count, maps with both systems, all their entries
        assert len(client.get("/api/v1/value-maps/").json()["results"]) == 8
