"""Rate cards: versions with effective dates, approval rules, and the rate in force on a date."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.canonical.models import RateCardVersion
from apps.canonical.services import RateNotFound, rate_card_version_approve, rate_card_version_create, rate_for

from .. import factories

pytestmark = pytest.mark.django_db

APPROVED = RateCardVersion.Status.APPROVED
DRAFT = RateCardVersion.Status.DRAFT


@pytest.fixture
def card():
    """STD-US: 2025 rates, then 2026 rates with a raise; a 2027 draft that is not yet approved."""
    return factories.rate_card(
        "STD-US",
        versions=[
            (datetime.date(2025, 1, 1), datetime.date(2025, 12, 31), APPROVED, {"Senior Consultant": "240.00"}),
            (datetime.date(2026, 1, 1), None, APPROVED, {"Senior Consultant": "250.00", "Analyst": "120.00"}),
        ],
    )


def test_the_rate_is_the_one_in_force_on_the_work_date(card):
    assert rate_for(card=card, role="Senior Consultant", on=datetime.date(2025, 6, 30)).bill_rate == Decimal("240.00")
    assert rate_for(card=card, role="Senior Consultant", on=datetime.date(2026, 6, 30)).bill_rate == Decimal("250.00")


def test_version_boundaries_are_inclusive_on_both_ends(card):
    assert rate_for(card=card, role="Senior Consultant", on=datetime.date(2025, 12, 31)).bill_rate == Decimal("240")
    assert rate_for(card=card, role="Senior Consultant", on=datetime.date(2026, 1, 1)).bill_rate == Decimal("250")


def test_roles_match_regardless_of_case_and_spacing(card):
    assert rate_for(card="STD-US", role=" senior consultant ", on=datetime.date(2026, 2, 1)).bill_rate == Decimal("250")


def test_a_date_before_any_version_names_the_card_and_date(card):
    with pytest.raises(RateNotFound) as caught:
        rate_for(card=card, role="Senior Consultant", on=datetime.date(2024, 12, 31))
    assert str(caught.value) == (
        "Rate card STD-US has no approved version in force on 2024-12-31, so role 'Senior Consultant' cannot be priced."
    )
    assert "Approve a version of rate card STD-US that covers 2024-12-31" in caught.value.fix


def test_a_role_missing_from_the_version_names_card_version_role_and_date(card):
    with pytest.raises(RateNotFound) as caught:
        rate_for(card=card, role="Analyst", on=datetime.date(2025, 3, 1))
    assert str(caught.value) == (
        "Rate card STD-US version 1 (2025-01-01 to 2025-12-31) has no rate for role 'Analyst' on 2025-03-01."
    )


def test_draft_versions_are_never_used_for_pricing(card, steward):
    factories.rate_card(
        "STD-EU",
        currency="EUR",
        versions=[(datetime.date(2026, 1, 1), None, DRAFT, {"Analyst": "99"})],
    )
    with pytest.raises(RateNotFound):
        rate_for(card="STD-EU", role="Analyst", on=datetime.date(2026, 5, 1))


def test_an_unknown_card_is_a_readable_error():
    with pytest.raises(RateNotFound, match="There is no rate card 'NOPE'"):
        rate_for(card="NOPE", role="Analyst", on=datetime.date(2026, 1, 1))


@pytest.mark.usefixtures("four_eyes_off")
def test_approving_an_overlapping_version_is_refused_and_nothing_changes(card, steward):
    draft = rate_card_version_create(
        rate_card=card,
        effective_from=datetime.date(2026, 7, 1),
        lines=[{"role": "Senior Consultant", "bill_rate": "260.00", "cost_rate": "130.00"}],
        actor=steward,
        reason="Mid-year uplift",
    )
    with pytest.raises(ValidationError) as caught:
        rate_card_version_approve(version=draft, actor=steward, reason="Approve uplift")
    message = " ".join(caught.value.messages)
    assert "Rate card STD-US version 3 (2026-07-01 to open-ended) overlaps approved version 2" in message
    assert "end version 2 the day before this one starts" in message
    draft.refresh_from_db()
    assert draft.status == DRAFT
    assert rate_for(card=card, role="Senior Consultant", on=datetime.date(2026, 8, 1)).bill_rate == Decimal("250")


@pytest.mark.usefixtures("four_eyes_off")
def test_a_new_version_takes_over_once_the_old_one_is_ended(card, steward):
    current = card.versions.get(version=2)
    current.effective_to = datetime.date(2026, 6, 30)
    current.full_clean()
    current.save()
    draft = rate_card_version_create(
        rate_card=card,
        effective_from=datetime.date(2026, 7, 1),
        lines=[{"role": "Senior Consultant", "bill_rate": "260.00"}],
        actor=steward,
        reason="Mid-year uplift",
    )
    rate_card_version_approve(version=draft, actor=steward, reason="Approved by pricing committee")
    assert rate_for(card=card, role="Senior Consultant", on=datetime.date(2026, 6, 30)).bill_rate == Decimal("250")
    assert rate_for(card=card, role="Senior Consultant", on=datetime.date(2026, 7, 1)).bill_rate == Decimal("260")
    row = draft.history.latest()
    assert row.history_user == steward
    assert row.history_change_reason == "Approved by pricing committee"


def test_a_version_without_rates_cannot_be_approved(card, steward):
    empty = RateCardVersion.objects.create(rate_card=card, version=9, effective_from=datetime.date(2030, 1, 1))
    with pytest.raises(ValidationError, match="has no rates"):
        rate_card_version_approve(version=empty, actor=steward, reason="x")


def test_an_invalid_line_leaves_no_half_written_version(card, steward):
    with pytest.raises(ValidationError):
        rate_card_version_create(
            rate_card=card,
            effective_from=datetime.date(2027, 1, 1),
            lines=[{"role": "Analyst", "bill_rate": "100"}, {"role": "Partner", "bill_rate": "-5"}],
            actor=steward,
            reason="2027 card",
        )
    assert not card.versions.filter(effective_from=datetime.date(2027, 1, 1)).exists()


def test_customer_hierarchy_refuses_cycles():
    parent = factories.customer(name="Contoso Group")
    child = factories.customer(name="Contoso UK", parent=parent)
    parent.parent = child
    with pytest.raises(ValidationError, match="cannot be its own parent"):
        parent.full_clean()


def test_invoices_go_to_the_bill_to_account():
    payer = factories.customer(name="Contoso Shared Services", is_sold_to=False)
    buyer = factories.customer(name="Contoso UK", bill_to=payer)
    contract = factories.contract(customer=buyer)
    assert contract.invoice_recipient() == payer
