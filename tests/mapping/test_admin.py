"""The mapping admin: cross-references link to their canonical record; value map entries refuse overlaps."""

import datetime

import pytest
from django.urls import reverse

from apps.mapping.models import CrossReference, ValueMap, ValueMapEntry
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def steward_client(client, steward):
    steward.is_staff = True
    steward.save()
    client.force_login(steward)
    return client


def test_the_cross_reference_list_links_to_the_canonical_record(steward_client, systems):
    customer = factories.customer(name="Globex")
    CrossReference.objects.create(system=systems["erp"], object_type="customer", object_id=customer.pk, external_id="9")
    page = steward_client.get(reverse("admin:mapping_crossreference_changelist")).content.decode()
    url = reverse("admin:canonical_customer_change", args=[customer.pk])
    assert f'<a href="{url}">Customer / account #{customer.pk}</a>' in page


def test_the_cross_reference_page_names_the_record_or_says_it_is_gone(steward_client, systems):
    customer = factories.customer(name="Globex")
    link = CrossReference.objects.create(
        system=systems["erp"], object_type="customer", object_id=customer.pk, external_id="9"
    )
    page = steward_client.get(reverse("admin:mapping_crossreference_change", args=[link.pk])).content.decode()
    assert f"{customer.number} Globex</a>" in page
    orphan = CrossReference.objects.create(system=systems["erp"], object_type="project", object_id=777, external_id="P")
    page = steward_client.get(reverse("admin:mapping_crossreference_change", args=[orphan.pk])).content.decode()
    assert "Missing: there is no project #777 any more." in page


def test_a_steward_adds_a_link_through_the_service(steward_client, steward, systems):
    customer = factories.customer()
    add_url = reverse("admin:mapping_crossreference_add")
    assert 'value="manual" selected' in steward_client.get(add_url).content.decode()
    response = steward_client.post(
        add_url,
        {
            "system": systems["erp"].pk,
            "object_type": "customer",
            "object_id": customer.pk,
            "external_id": "NS-5",
            "origin": "manual",
            "change_reason": "Found in the ERP during clean-up",
        },
    )
    assert response.status_code == 302
    link = CrossReference.objects.get()
    assert link.last_synced_at is not None
    assert link.history.get().history_user == steward
    assert link.history.get().history_change_reason == "Found in the ERP during clean-up"


def test_a_taken_external_id_is_refused_on_the_form(steward_client, systems):
    first, second = factories.customer(), factories.customer()
    CrossReference.objects.create(system=systems["erp"], object_type="customer", object_id=first.pk, external_id="NS")
    response = steward_client.post(
        reverse("admin:mapping_crossreference_add"),
        {"system": systems["erp"].pk, "object_type": "customer", "object_id": second.pk, "external_id": "NS"},
    )
    assert response.status_code == 200
    assert "This system already uses that external ID" in response.content.decode()


def entry_formset(value_map, rows):
    data = {
        "name": value_map.name,
        "source_label": value_map.source_label,
        "target_label": value_map.target_label,
        "description": "",
        "default_target": "",
        "entries-TOTAL_FORMS": len(rows),
        "entries-INITIAL_FORMS": 0,
        "entries-MIN_NUM_FORMS": 0,
        "entries-MAX_NUM_FORMS": 1000,
        "change_reason": "Add regions",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"entries-{index}-{key}"] = value
        data[f"entries-{index}-value_map"] = value_map.pk
    return data


def test_two_new_rows_for_the_same_value_and_period_are_refused(steward_client):
    value_map = ValueMap.objects.create(name="regions", source_label="region", target_label="subsidiary")
    rows = [
        {"source_value": "EMEA", "target_value": "2", "effective_from": "2026-01-01"},
        {"source_value": "emea", "target_value": "3", "effective_from": "2026-03-01"},
    ]
    response = steward_client.post(
        reverse("admin:mapping_valuemap_change", args=[value_map.pk]), entry_formset(value_map, rows)
    )
    assert response.status_code == 200
    assert "Two rows map &#x27;emea&#x27; over overlapping periods" in response.content.decode()
    assert not ValueMapEntry.objects.exists()


def test_back_to_back_rows_are_saved_with_the_reason(steward_client, steward):
    value_map = ValueMap.objects.create(name="regions", source_label="region", target_label="subsidiary")
    rows = [
        {"source_value": "EMEA", "target_value": "2", "effective_from": "2026-01-01", "effective_to": "2026-06-30"},
        {"source_value": "EMEA", "target_value": "3", "effective_from": "2026-07-01"},
    ]
    response = steward_client.post(
        reverse("admin:mapping_valuemap_change", args=[value_map.pk]), entry_formset(value_map, rows)
    )
    assert response.status_code == 302
    assert {row.history_change_reason for row in ValueMapEntry.history.all()} == {"Add regions"}
    assert ValueMapEntry.objects.in_force(datetime.date(2026, 8, 1)).get().target_value == "3"


def test_an_entry_overlapping_a_saved_one_shows_the_model_message(steward_client):
    value_map = ValueMap.objects.create(name="regions", source_label="region", target_label="subsidiary")
    ValueMapEntry.objects.create(
        value_map=value_map, source_value="EMEA", target_value="2", effective_from=datetime.date(2026, 1, 1)
    )
    response = steward_client.post(
        reverse("admin:mapping_valuemapentry_add"),
        {"value_map": value_map.pk, "source_value": "EMEA", "target_value": "3", "effective_from": "2026-05-01"},
    )
    assert response.status_code == 200
    assert "end that entry the day before this one starts" in response.content.decode()


def test_the_value_map_list_counts_entries(steward_client):
    value_map = ValueMap.objects.create(name="regions", source_label="region", target_label="subsidiary")
    for value in ("EMEA", "AMER", "APAC"):
        ValueMapEntry.objects.create(
            value_map=value_map, source_value=value, target_value="1", effective_from=datetime.date(2026, 1, 1)
        )
    page = steward_client.get(reverse("admin:mapping_valuemap_changelist")).content.decode()
    assert '<td class="field-entry_count">3</td>' in page
