"""The console's approvals page: what waits for me, approve or reject it, my own requests wait for someone else."""

import datetime

import pytest
from django.test import Client

from apps.canonical.models import RateCardVersion
from apps.canonical.services import rate_card_version_approve
from apps.core.masking import MASK
from apps.core.models import ChangeRequest
from apps.sync.models import Transaction
from apps.sync.registry import StepSpec, Subject, WorkflowDefinition, register
from apps.sync.services import transaction_replay, transaction_start
from tests import factories

pytestmark = pytest.mark.django_db

JAN_1 = datetime.date(2026, 1, 1)


@register
class ApprovalsPageFlow(WorkflowDefinition):
    """One step that bills an amount; never run here (the tests only ask to re-run it with another rate)."""

    name = "approvals_page_test"
    owner_role = "finance_ops"

    def plan(self, data):
        return [StepSpec("bill", "Bill the amount")]

    def subject(self, data):
        return Subject(business_key=f"approvals-page:{data.get('invoice')}", label=f"Invoice {data.get('invoice')}")

    def step_bill(self, ctx):  # pragma: no cover - the tests never run it
        raise AssertionError("not run in these tests")


@pytest.fixture
def checker(make_user):
    return make_user("cleo.checker", "mapping_steward")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def asked_for_approval(maker) -> ChangeRequest:
    card = factories.rate_card(code="STD-UK", versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    return rate_card_version_approve(version=card.versions.get(), actor=maker, reason="2026 uplift (PRC-12)")


def test_a_checker_sees_the_request_with_who_asked_why_and_the_diff(steward, checker):
    pending = asked_for_approval(steward)

    page = client_for(checker).get("/approvals/").content.decode()

    assert f"#{pending.pk} Approve rate card STD-UK version 1" in page
    assert "sam.steward" in page and "2026 uplift (PRC-12)" in page
    assert "lines[Consultant].bill_rate" in page and "150.0000" in page
    assert f"/approvals/{pending.pk}/approve/" in page and f"/approvals/{pending.pk}/reject/" in page
    assert 'id="nav-approvals"' in page  # the nav shows the count


def test_the_maker_sees_their_request_waiting_for_someone_else_and_cannot_approve_it(steward):
    pending = asked_for_approval(steward)
    client = client_for(steward)

    page = client.get("/approvals/").content.decode()
    assert "Nothing waits for your decision." in page
    assert "waiting for someone else" in page
    assert "You cannot decide this request yourself: four-eyes control needs a second person." in page
    assert "mapping steward role" in page
    assert f"/approvals/{pending.pk}/approve/" not in page
    assert 'id="nav-approvals"' not in page  # nothing for them to decide, so no nav count

    refused = client.post(f"/approvals/{pending.pk}/approve/", {"reason": "Looks fine"})

    assert refused.status_code == 403
    assert "You asked for this change yourself, so you cannot approve it" in refused.content.decode()
    pending.refresh_from_db()
    assert pending.status == ChangeRequest.Status.PENDING
    assert pending.target.status == RateCardVersion.Status.DRAFT


def test_a_second_steward_approves_and_the_history_names_both(steward, checker):
    pending = asked_for_approval(steward)
    client = client_for(checker)

    response = client.post(f"/approvals/{pending.pk}/approve/", {"reason": "Checked against the price list"})

    assert response.status_code == 302 and response.url == "/approvals/"
    version = pending.target
    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.APPROVED
    row = version.history.latest()
    assert row.history_user == checker
    assert "requested by sam.steward, approved by cleo.checker — Checked against the price list" in (
        row.history_change_reason
    )
    page = client.get("/approvals/").content.decode()
    assert "approved and applied" in page
    decided = page.split('id="decided"')[1]
    assert "Approved" in decided and "cleo.checker" in decided and "Checked against the price list" in decided
    assert "Nothing waits for your decision." in page


def test_rejecting_needs_a_reason_and_then_changes_nothing(steward, checker):
    pending = asked_for_approval(steward)
    client = client_for(checker)

    page = client.post(f"/approvals/{pending.pk}/reject/", {"reason": "  "}, follow=True).content.decode()
    assert "Say why you are rejecting this change" in page
    pending.refresh_from_db()
    assert pending.status == ChangeRequest.Status.PENDING

    client.post(f"/approvals/{pending.pk}/reject/", {"reason": "Uplift not signed off"})

    pending.refresh_from_db()
    assert (pending.status, pending.decided_by, pending.decision_reason) == (
        "rejected",
        checker,
        "Uplift not signed off",
    )
    assert pending.target.status == RateCardVersion.Status.DRAFT
    assert "Uplift not signed off" in client_for(steward).get("/approvals/").content.decode()  # the maker reads why


def test_a_role_that_may_not_decide_is_told_who_can(steward, finance_user):
    pending = asked_for_approval(steward)

    refused = client_for(finance_user).post(f"/approvals/{pending.pk}/approve/")

    assert refused.status_code == 403
    text = refused.content.decode()
    assert "mapping steward" in text and "2026 uplift" not in text  # who can; nothing of the request itself
    pending.refresh_from_db()
    assert pending.status == ChangeRequest.Status.PENDING


@pytest.mark.usefixtures("four_eyes_on")
def test_delivery_ops_decides_an_amount_rerun_with_the_rates_masked(finance_user, make_user):
    delivery = make_user("dora.delivery", "delivery_ops")
    txn = transaction_start(
        workflow="approvals_page_test",
        data={"invoice": "INV-9", "lines": [{"role": "Consultant", "bill_rate": "150", "hours": "8"}]},
        reason="test",
    )
    txn.status = Transaction.Status.EXCEPTION
    txn.save()
    pending = transaction_replay(
        txn=txn,
        actor=finance_user,
        reason="Rate corrected",
        input_override={"invoice": "INV-9", "lines": [{"role": "Consultant", "bill_rate": "16543.21", "hours": "8"}]},
    )

    page = client_for(delivery).get("/approvals/").content.decode()

    assert f"#{pending.pk}" in page and "lines[0].bill_rate" in page
    assert MASK in page and "16543.21" not in page
    assert "16543.21" in client_for(make_user("fay.finance2", "finance_ops")).get("/approvals/").content.decode()


def test_the_home_page_shows_pending_approvals_only_when_there_are_some(steward, checker):
    assert 'id="pending-approvals"' not in client_for(checker).get("/").content.decode()
    asked_for_approval(steward)

    home = client_for(checker).get("/").content.decode()

    assert 'id="pending-approvals"' in home and 'href="/approvals/"' in home
    assert "Pending approvals you may decide" in home
    assert 'id="pending-approvals"' not in client_for(steward).get("/").content.decode()
