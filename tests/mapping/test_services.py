"""Value maps translate values as of a date; cross-references link canonical records to external IDs."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.mapping.models import CrossReference, ValueMap, ValueMapEntry
from apps.mapping.services import (
    CrossReferenceConflict,
    CrossReferenceMissing,
    ValueMapMiss,
    canonical_id_for,
    cross_reference_record,
    cross_references_record,
    external_id_for,
    require_external_id,
    value_map_lookup,
)

from .. import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def regions(systems):
    value_map = ValueMap.objects.create(
        name="region-subsidiary",
        source_label="region",
        target_label="subsidiary",
        source_system=systems["crm"],
        target_system=systems["erp"],
    )
    for source, target, start, end in [
        ("North America", "1", datetime.date(2026, 1, 1), None),
        ("EMEA", "2", datetime.date(2026, 1, 1), datetime.date(2026, 6, 30)),
        ("EMEA", "3", datetime.date(2026, 7, 1), None),
    ]:
        entry = ValueMapEntry(
            value_map=value_map, source_value=source, target_value=target, effective_from=start, effective_to=end
        )
        entry.full_clean()
        entry.save()
    return value_map


def test_a_lookup_returns_the_entry_in_force_on_the_date(regions):
    assert value_map_lookup("region-subsidiary", "EMEA", on=datetime.date(2026, 6, 30)) == "2"
    assert value_map_lookup("region-subsidiary", "EMEA", on=datetime.date(2026, 7, 1)) == "3"


def test_lookups_ignore_case_unless_the_map_is_case_sensitive(regions):
    assert value_map_lookup("region-subsidiary", "north america", on=datetime.date(2026, 2, 1)) == "1"
    regions.case_sensitive = True
    regions.save()
    with pytest.raises(ValueMapMiss):
        value_map_lookup("region-subsidiary", "north america", on=datetime.date(2026, 2, 1))


def test_a_miss_names_the_map_the_value_and_the_date(regions):
    with pytest.raises(ValueMapMiss) as caught:
        value_map_lookup("region-subsidiary", "LATAM", on=datetime.date(2026, 11, 20))
    error = caught.value
    assert str(error) == "value map region→subsidiary has no entry for 'LATAM' on 2026-11-20"
    assert error.error_class == "mapping"
    assert "Add an entry for 'LATAM' to value map 'region-subsidiary' covering 2026-11-20" in error.fix
    assert error.context == {"value_map": "region-subsidiary", "value": "LATAM", "on": "2026-11-20"}


def test_a_value_outside_its_entrys_dates_is_a_miss(regions):
    with pytest.raises(ValueMapMiss, match="'North America' on 2025-12-31"):
        value_map_lookup("region-subsidiary", "North America", on=datetime.date(2025, 12, 31))


def test_a_default_target_answers_a_miss(regions):
    regions.default_target = "99"
    regions.save()
    assert value_map_lookup("region-subsidiary", "LATAM", on=datetime.date(2026, 11, 20)) == "99"


def test_an_unknown_map_is_a_readable_error():
    with pytest.raises(ValueMapMiss, match="There is no value map 'tax-codes'"):
        value_map_lookup("tax-codes", "GB", on=datetime.date(2026, 1, 1))


def test_overlapping_entries_for_one_value_are_refused(regions):
    clash = ValueMapEntry(
        value_map=regions, source_value="emea", target_value="9", effective_from=datetime.date(2026, 12, 1)
    )
    with pytest.raises(ValidationError) as caught:
        clash.full_clean()
    assert "already maps 'EMEA' to '3' for 2026-07-01 to open-ended" in " ".join(caught.value.messages)


def test_cross_references_link_both_ways(systems):
    customer = factories.customer(name="Contoso")
    cross_reference_record(system=systems["erp"], obj=customer, external_id="CUST-0042")
    assert external_id_for(system=systems["erp"], obj=customer) == "CUST-0042"
    assert canonical_id_for(system=systems["erp"], object_type="customer", external_id="CUST-0042") == customer.pk
    assert external_id_for(system=systems["crm"], obj=customer) is None


def test_recording_the_same_link_twice_is_idempotent(systems):
    customer = factories.customer()
    first = cross_reference_record(system=systems["erp"], obj=customer, external_id="CUST-1")
    again = cross_reference_record(system=systems["erp"], obj=customer, external_id="CUST-1")
    assert first.pk == again.pk
    assert CrossReference.objects.count() == 1
    assert first.history.count() == 1


def test_an_external_id_belongs_to_one_record_per_system_and_type(systems):
    first, second = factories.customer(), factories.customer()
    cross_reference_record(system=systems["erp"], obj=first, external_id="CUST-1")
    with pytest.raises(CrossReferenceConflict, match="NetSuite ID 'CUST-1' already belongs to another customer"):
        cross_reference_record(system=systems["erp"], obj=second, external_id="CUST-1")
    # The same external ID in another system, or for another object type, is fine.
    cross_reference_record(system=systems["crm"], obj=second, external_id="CUST-1")
    project = factories.project()
    cross_reference_record(system=systems["erp"], obj=project, external_id="CUST-1")


def test_a_record_has_one_external_id_per_system(systems):
    customer = factories.customer()
    cross_reference_record(system=systems["erp"], obj=customer, external_id="CUST-1")
    with pytest.raises(CrossReferenceConflict, match="already linked to NetSuite ID 'CUST-1', not 'CUST-2'"):
        cross_reference_record(system=systems["erp"], obj=customer, external_id="CUST-2")


def test_many_links_are_recorded_at_once_with_history_and_the_same_refusals(systems):
    erp = systems["erp"]
    held, first, second, third = (factories.customer() for _ in range(4))
    cross_reference_record(system=erp, obj=held, external_id="CUST-0")

    created = cross_references_record(system=erp, links=[(held, "CUST-0"), (first, "CUST-1"), (second, "CUST-2")])

    assert created == 2
    assert [external_id_for(system=erp, obj=c) for c in (held, first, second)] == ["CUST-0", "CUST-1", "CUST-2"]
    assert CrossReference.history.filter(external_id__in=["CUST-1", "CUST-2"], history_type="+").count() == 2
    with pytest.raises(CrossReferenceConflict, match="already linked to NetSuite ID 'CUST-1', not 'CUST-9'"):
        cross_references_record(system=erp, links=[(third, "CUST-3"), (first, "CUST-9")])
    with pytest.raises(CrossReferenceConflict, match="NetSuite ID 'CUST-2' already belongs to another customer"):
        cross_references_record(system=erp, links=[(third, "CUST-2")])
    assert external_id_for(system=erp, obj=third) is None


def test_the_database_enforces_uniqueness_even_without_the_service(systems):
    first, second = factories.customer(), factories.customer()
    CrossReference.objects.create(system=systems["erp"], object_type="customer", object_id=first.pk, external_id="X")
    with pytest.raises(IntegrityError), transaction.atomic():
        CrossReference.objects.create(
            system=systems["erp"], object_type="customer", object_id=second.pk, external_id="X"
        )


def test_model_validation_explains_a_duplicate_to_a_steward(systems):
    first, second = factories.customer(), factories.customer()
    CrossReference.objects.create(system=systems["erp"], object_type="customer", object_id=first.pk, external_id="X")
    duplicate = CrossReference(system=systems["erp"], object_type="customer", object_id=second.pk, external_id="X")
    with pytest.raises(ValidationError) as caught:
        duplicate.full_clean()
    assert "already uses that external ID for another record of this type" in " ".join(caught.value.messages)


def test_a_cross_reference_must_point_at_an_existing_record(systems):
    orphan = CrossReference(system=systems["erp"], object_type="customer", object_id=999999, external_id="X")
    with pytest.raises(ValidationError, match="There is no customer / account with id 999999"):
        orphan.full_clean()


def test_a_missing_link_says_what_to_do(systems):
    customer = factories.customer(name="Fabrikam")
    with pytest.raises(CrossReferenceMissing) as caught:
        require_external_id(system=systems["erp"], obj=customer)
    assert "has no ID in NetSuite yet" in str(caught.value)
    assert "Create the customer / account in NetSuite first" in caught.value.fix
