"""Ownership rules: which system may write which fields of which object, on which date."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from apps.core.errors import OwnershipConflict
from apps.systems.models import OwnershipRule
from apps.systems.services import CREATE, UPDATE, assert_may_write, may_write, ownership_rule_save

from .. import factories

pytestmark = pytest.mark.django_db

JAN_1 = datetime.date(2026, 1, 1)


@pytest.fixture
def governed(systems):
    """CRM owns customers; ERP owns the customer's tax_id and credit status; CRM may create; ERP may update name."""
    factories.ownership_rule("customer", systems["crm"], may_update=[systems["erp"]])
    factories.ownership_rule("customer", systems["erp"], field="tax_id")
    factories.ownership_rule("customer", systems["erp"], field="credit_status")
    return systems


def test_the_owner_may_write_every_field_it_owns(governed):
    decision = may_write(system=governed["crm"], object_type="customer", fields=["name", "region"], on=JAN_1)
    assert decision.fully_allowed
    assert decision.allowed == ["name", "region"]


def test_a_field_level_rule_wins_over_the_object_rule(governed):
    decision = may_write(system=governed["crm"], object_type="customer", fields=["name", "tax_id"], on=JAN_1)
    assert decision.allowed == ["name"]
    assert decision.refused == {"tax_id": "netsuite"}
    assert "tax_id (owned by NetSuite)" in decision.message()


def test_an_update_grant_lets_another_system_write_the_objects_fields(governed):
    decision = may_write(system=governed["erp"], object_type="customer", fields=["name", "tax_id"], on=JAN_1)
    assert decision.fully_allowed


def test_a_system_without_a_grant_is_refused_with_the_owner_named(governed):
    decision = may_write(system=governed["psa"], object_type="customer", fields=["name", "tax_id"], on=JAN_1)
    assert decision.allowed == []
    assert decision.refused == {"name": "salesforce", "tax_id": "netsuite"}
    message = decision.message()
    assert "Kantata may not update" in message
    assert "name (owned by Salesforce)" in message
    assert "tax_id (owned by NetSuite)" in message


def test_create_and_update_grants_are_separate(systems):
    factories.ownership_rule("project", systems["psa"], may_create=[systems["crm"]])
    assert may_write(system=systems["crm"], object_type="project", operation=CREATE, on=JAN_1).fully_allowed
    assert not may_write(
        system=systems["crm"], object_type="project", fields=["name"], operation=UPDATE, on=JAN_1
    ).fully_allowed


def test_an_ungoverned_object_type_is_open_to_every_system(systems):
    assert may_write(system=systems["hris"], object_type="invoice", fields=["total"], on=JAN_1).fully_allowed


def test_ownership_follows_effective_dates(systems):
    """The ERP migration moves invoice ownership from NetSuite to Chargebee on 2026-07-01."""
    factories.ownership_rule("invoice", systems["erp"], start=JAN_1, end=datetime.date(2026, 6, 30))
    factories.ownership_rule("invoice", systems["billing"], start=datetime.date(2026, 7, 1))
    last_day = datetime.date(2026, 6, 30)
    first_day = datetime.date(2026, 7, 1)
    assert may_write(system=systems["erp"], object_type="invoice", fields=["total"], on=last_day).fully_allowed
    assert not may_write(system=systems["billing"], object_type="invoice", fields=["total"], on=last_day).fully_allowed
    assert may_write(system=systems["billing"], object_type="invoice", fields=["total"], on=first_day).fully_allowed
    assert may_write(system=systems["erp"], object_type="invoice", fields=["total"], on=first_day).refused == {
        "total": "chargebee"
    }
    # Before any rule is in force the object is ungoverned.
    assert may_write(
        system=systems["hris"], object_type="invoice", fields=["total"], on=datetime.date(2025, 12, 31)
    ).fully_allowed


def test_a_field_rule_that_ended_falls_back_to_the_object_rule(systems):
    factories.ownership_rule("customer", systems["crm"])
    factories.ownership_rule("customer", systems["erp"], field="tax_id", end=datetime.date(2026, 3, 31))
    assert may_write(
        system=systems["erp"], object_type="customer", fields=["tax_id"], on=datetime.date(2026, 3, 31)
    ).fully_allowed
    assert may_write(
        system=systems["erp"], object_type="customer", fields=["tax_id"], on=datetime.date(2026, 4, 1)
    ).refused == {"tax_id": "salesforce"}


def test_assert_may_write_raises_an_ownership_conflict_a_steward_can_read(governed):
    with pytest.raises(OwnershipConflict) as caught:
        assert_may_write(system=governed["crm"], object_type="customer", fields=["tax_id"], on=JAN_1)
    error = caught.value
    assert error.error_class == "ownership_conflict"
    assert "Salesforce may not update tax_id (owned by NetSuite) of the customer / account on 2026-01-01" in str(error)
    assert error.context["refused"] == {"tax_id": "netsuite"}


def test_overlapping_rules_for_the_same_field_are_refused(systems):
    factories.ownership_rule("customer", systems["crm"], start=JAN_1, end=datetime.date(2026, 12, 31))
    with pytest.raises(ValidationError) as caught:
        factories.ownership_rule("customer", systems["erp"], start=datetime.date(2026, 12, 31))
    message = " ".join(caught.value.messages)
    assert "already has an ownership rule for 2026-01-01 to 2026-12-31 (owner Salesforce)" in message
    assert "may not overlap" in message


def test_rules_for_different_fields_or_adjacent_periods_do_not_clash(systems):
    factories.ownership_rule("customer", systems["crm"], end=datetime.date(2026, 12, 31))
    factories.ownership_rule("customer", systems["erp"], field="tax_id")
    factories.ownership_rule("customer", systems["erp"], start=datetime.date(2027, 1, 1))
    assert OwnershipRule.objects.count() == 3


def test_a_rule_must_name_a_real_field_of_the_object(systems):
    with pytest.raises(ValidationError) as caught:
        factories.ownership_rule("customer", systems["erp"], field="tax_idd")
    assert "A customer / account has no field 'tax_idd'" in " ".join(caught.value.messages)


def test_a_rule_cannot_end_before_it_starts(systems):
    with pytest.raises(ValidationError) as caught:
        factories.ownership_rule("customer", systems["crm"], start=JAN_1, end=datetime.date(2025, 12, 31))
    assert "before the start date" in " ".join(caught.value.messages)


@pytest.mark.usefixtures("four_eyes_off")
def test_saving_a_rule_through_the_service_records_who_and_why(systems, steward):
    rule = OwnershipRule(object_type="project", owner=systems["psa"], effective_from=JAN_1)
    ownership_rule_save(rule=rule, may_create=[systems["crm"]], actor=steward, reason="PSA-centric model, ADR-7")
    row = rule.history.latest()
    assert row.history_user == steward
    assert row.history_change_reason == "PSA-centric model, ADR-7"
    assert [s.slug for s in rule.may_create.all()] == ["salesforce"]


def test_an_invalid_rule_leaves_nothing_half_written(systems, steward):
    factories.ownership_rule("project", systems["psa"])
    clash = OwnershipRule(object_type="project", owner=systems["erp"], effective_from=datetime.date(2026, 5, 1))
    with pytest.raises(ValidationError):
        ownership_rule_save(rule=clash, may_update=[systems["crm"]], actor=steward, reason="try")
    assert OwnershipRule.objects.filter(object_type="project").count() == 1
