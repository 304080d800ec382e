"""History rows record who, why and the correlation ID — in requests, in system code and in bulk writes."""

import pytest

from apps.canonical.models import LegalEntity
from apps.core.context import audit_context, system_context
from apps.core.history import bulk_create_tracked, bulk_update_tracked, copy_create_tracked, update_tracked
from apps.core.users import system_user

pytestmark = pytest.mark.django_db


def test_it_records_actor_reason_and_correlation_id_of_a_service_call(steward):
    with audit_context(actor=steward, reason="New UK entity per FIN-12", correlation_id="corr-123"):
        entity = LegalEntity.objects.create(code="ACME-UK", name="Acme UK Ltd", country="GB", currency="GBP")
    row = entity.history.get()
    assert row.history_user == steward
    assert row.history_change_reason == "New UK entity per FIN-12"
    assert row.history_correlation_id == "corr-123"
    assert row.history_type == "+"


def test_it_records_the_system_user_outside_a_request():
    with system_context("Nightly reference data pull"):
        entity = LegalEntity.objects.create(code="ACME-DE", name="Acme GmbH", country="DE", currency="EUR")
    row = entity.history.get()
    assert row.history_user == system_user()
    assert row.history_change_reason == "Nightly reference data pull"
    assert len(row.history_correlation_id) == 32


def test_a_write_with_no_context_still_gets_who_why_and_an_id():
    entity = LegalEntity.objects.create(code="ACME-FR", name="Acme SAS", country="FR", currency="EUR")
    row = entity.history.get()
    assert row.history_user == system_user()
    assert row.history_change_reason
    assert row.history_correlation_id


def test_bulk_writes_keep_history_with_who_why_and_correlation(steward):
    with audit_context(actor=steward, reason="Load entities", correlation_id="bulk-1"):
        created = bulk_create_tracked(
            LegalEntity,
            [LegalEntity(code=f"E-{n}", name=f"Entity {n}", country="US", currency="USD") for n in range(5)],
        )
    assert LegalEntity.history.filter(history_type="+", history_correlation_id="bulk-1").count() == 5
    for entity in created:
        entity.name = entity.name + " renamed"
    with audit_context(actor=steward, reason="Rename", correlation_id="bulk-2"):
        bulk_update_tracked(LegalEntity, created, ["name"])
    rows = LegalEntity.history.filter(history_correlation_id="bulk-2")
    assert rows.count() == 5
    assert {row.history_user_id for row in rows} == {steward.pk}
    assert {row.history_change_reason for row in rows} == {"Rename"}


def test_a_set_based_update_writes_one_history_row_per_row_with_who_and_why(steward):
    created = bulk_create_tracked(
        LegalEntity, [LegalEntity(code=f"U-{n}", name=f"Entity {n}", country="US", currency="USD") for n in range(4)]
    )
    with audit_context(actor=steward, reason="Rename three", correlation_id="upd-1"):
        changed = update_tracked(LegalEntity, [entity.pk for entity in created[:3]], name="Renamed")

    assert changed == 3
    assert list(LegalEntity.objects.order_by("code").values_list("name", flat=True)) == ["Renamed"] * 3 + ["Entity 3"]
    rows = LegalEntity.history.filter(history_correlation_id="upd-1")
    assert {(row.name, row.history_type, row.history_user_id, row.history_change_reason) for row in rows} == {
        ("Renamed", "~", steward.pk, "Rename three")
    }
    assert rows.count() == 3
    assert update_tracked(LegalEntity, [], name="Nobody") == 0


def test_copy_writes_the_same_rows_and_history_as_bulk_create(steward):
    """copy_create_tracked (COPY on PostgreSQL, bulk_create_tracked elsewhere): same rows, pks, history."""
    with audit_context(actor=steward, reason="Load entities by COPY", correlation_id="copy-1"):
        created = copy_create_tracked(
            LegalEntity,
            [LegalEntity(code=f"C-{n}", name=f"Copied {n}", country="US", currency="USD") for n in range(7)],
        )
    assert all(entity.pk for entity in created)
    stored = {entity.pk: entity for entity in LegalEntity.objects.filter(code__startswith="C-")}
    assert sorted(stored) == sorted(entity.pk for entity in created)
    assert {(e.code, e.name, e.currency) for e in stored.values()} == {
        (f"C-{n}", f"Copied {n}", "USD") for n in range(7)
    }
    rows = LegalEntity.history.filter(history_correlation_id="copy-1")
    assert sorted(row.id for row in rows) == sorted(stored)
    assert {(row.history_type, row.history_user_id, row.history_change_reason) for row in rows} == {
        ("+", steward.pk, "Load entities by COPY")
    }
    created[0].name = "Changed later"
    created[0].save()  # the objects come back usable, as from bulk_create
    assert LegalEntity.objects.get(pk=created[0].pk).name == "Changed later"
