"""Four-eyes control: prices, ownership, profiles and amount-changing re-runs wait for a second person."""

import datetime

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from apps.canonical.models import RateCardVersion
from apps.canonical.services import rate_card_version_approve
from apps.core.approvals import ApprovalRefused, approval_approve, approval_reject, pending_for
from apps.core.models import ChangeRequest
from apps.mapping.models import SourceProfile
from apps.mapping.services import source_profile_new_version, source_profile_publish
from apps.sync.models import Transaction
from apps.sync.registry import StepSpec, Subject, WorkflowDefinition, register
from apps.sync.services import amount_changes, transaction_replay, transaction_start
from apps.systems.models import OwnershipRule
from apps.systems.services import ownership_rule_save
from tests import factories

pytestmark = pytest.mark.django_db

JAN_1 = datetime.date(2026, 1, 1)


@pytest.fixture
def checker(make_user):
    """A second mapping steward."""
    return make_user("cleo.checker", "mapping_steward", is_staff=True)


def draft_version():
    card = factories.rate_card(versions=[(JAN_1, None, "draft", {"Consultant": 150})])
    return card.versions.get()


@register
class FourEyesTestFlow(WorkflowDefinition):
    """One step that bills an amount; never run here (the tests only re-run it)."""

    name = "four_eyes_test"
    owner_role = "finance_ops"

    def plan(self, data):
        return [StepSpec("bill", "Bill the amount")]

    def subject(self, data):
        return Subject(business_key=f"four-eyes:{data.get('invoice')}", label=f"Invoice {data.get('invoice')}")

    def step_bill(self, ctx):  # pragma: no cover - the tests never run it
        raise AssertionError("not run in these tests")


def failed_transaction(**data) -> Transaction:
    txn = transaction_start(workflow="four_eyes_test", data=data, reason="test")
    txn.status = Transaction.Status.EXCEPTION
    txn.error_message = "The amount is wrong."
    txn.save()
    return txn


# --- the mechanism, on rate card approval ---------------------------------------------------------


def test_approving_a_rate_card_version_waits_for_a_second_steward(steward, checker):
    version = draft_version()

    pending = rate_card_version_approve(version=version, actor=steward, reason="2026 uplift (PRC-12)")

    assert isinstance(pending, ChangeRequest) and pending.status == ChangeRequest.Status.PENDING
    assert pending.requested_by == steward and pending.request_reason == "2026 uplift (PRC-12)"
    assert pending.diff == [
        {"field": "status", "old": "draft", "new": "approved"},
        {"field": "lines[Consultant].bill_rate", "old": None, "new": "150.0000"},
        {"field": "lines[Consultant].cost_rate", "old": None, "new": "75.0000"},
    ]
    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.DRAFT  # nothing applied yet
    assert list(pending_for(checker)) == [pending]
    assert list(pending_for(steward)) == []  # a maker never sees their own request as one to decide

    approval_approve(change_request=pending, actor=checker, reason="Checked against the price list")

    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.APPROVED
    row = version.history.latest()
    assert row.history_user == checker
    assert "requested by sam.steward, approved by cleo.checker" in row.history_change_reason
    pending.refresh_from_db()
    assert (pending.status, pending.requested_by, pending.decided_by) == ("approved", steward, checker)
    assert pending.history.count() == 2  # requested, then decided


def test_the_maker_cannot_approve_their_own_request(steward):
    pending = rate_card_version_approve(version=draft_version(), actor=steward, reason="Uplift")
    with pytest.raises(ApprovalRefused) as caught:
        approval_approve(change_request=pending, actor=steward)
    assert caught.value.message == (
        "You asked for this change yourself, so you cannot approve it: four-eyes control needs a second person."
    )
    pending.refresh_from_db()
    assert pending.status == ChangeRequest.Status.PENDING


def test_someone_without_the_permission_cannot_decide(steward, finance_user):
    pending = rate_card_version_approve(version=draft_version(), actor=steward, reason="Uplift")
    with pytest.raises(ApprovalRefused, match="You may not approve rate card version approval requests"):
        approval_approve(change_request=pending, actor=finance_user)


def test_a_rejected_request_keeps_its_reason_and_changes_nothing(steward, checker):
    version = draft_version()
    pending = rate_card_version_approve(version=version, actor=steward, reason="Uplift")
    with pytest.raises(ApprovalRefused, match="Say why you are rejecting"):
        approval_reject(change_request=pending, actor=checker, reason=" ")

    approval_reject(change_request=pending, actor=checker, reason="Consultant rate must stay 140 until Q2")

    pending.refresh_from_db()
    assert pending.status == ChangeRequest.Status.REJECTED
    assert pending.decision_reason == "Consultant rate must stay 140 until Q2"
    assert pending.decided_by == checker
    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.DRAFT
    with pytest.raises(ApprovalRefused, match="was already rejected by cleo.checker"):
        approval_approve(change_request=pending, actor=checker)


def test_asking_twice_for_the_same_record_names_the_waiting_request(steward):
    version = draft_version()
    first = rate_card_version_approve(version=version, actor=steward, reason="Uplift")
    with pytest.raises(ApprovalRefused, match=f"already waiting for approval \\(request #{first.pk}"):
        rate_card_version_approve(version=version, actor=steward, reason="Uplift again")


def test_workflows_and_imports_acting_as_the_system_apply_at_once():
    version = draft_version()
    assert rate_card_version_approve(version=version, actor=None, reason="Contract amendment").status == "approved"


@pytest.mark.usefixtures("four_eyes_off")
def test_with_four_eyes_off_a_steward_approves_in_one_step(steward):
    version = draft_version()
    assert rate_card_version_approve(version=version, actor=steward, reason="Uplift").status == "approved"
    assert not ChangeRequest.objects.exists()


# --- ownership rules -------------------------------------------------------------------------------


def test_a_new_ownership_rule_applies_only_when_a_second_steward_approves(steward, checker, systems):
    rule = OwnershipRule(object_type="project", owner=systems["psa"], effective_from=JAN_1, rationale="ADR-7")

    pending = ownership_rule_save(rule=rule, may_create=[systems["crm"]], actor=steward, reason="PSA owns projects")

    assert isinstance(pending, ChangeRequest) and not OwnershipRule.objects.exists()
    assert {"field": "owner", "old": None, "new": "kantata"} in pending.diff
    approval_approve(change_request=pending, actor=checker, reason="Agreed in the governance board")
    saved = OwnershipRule.objects.get()
    assert saved.owner == systems["psa"] and list(saved.may_create.all()) == [systems["crm"]]
    assert saved.history.latest().history_user == checker
    pending.refresh_from_db()
    assert pending.target == saved  # the request now points at the rule it created


def test_changing_an_ownership_rule_shows_the_diff_and_waits(steward, checker, systems):
    rule = factories.ownership_rule("project", systems["psa"])
    rule.effective_to = datetime.date(2026, 12, 31)

    pending = ownership_rule_save(rule=rule, may_update=[systems["erp"]], actor=steward, reason="Hand-over ends")

    assert pending.diff == [
        {"field": "effective_to", "old": None, "new": "2026-12-31"},
        {"field": "may_update", "old": [], "new": ["netsuite"]},
    ]
    rule.refresh_from_db()
    assert rule.effective_to is None
    approval_approve(change_request=pending, actor=checker)
    rule.refresh_from_db()
    assert rule.effective_to == datetime.date(2026, 12, 31)
    assert list(rule.may_update.all()) == [systems["erp"]]


# --- source profiles and re-runs (off by default, on per setting) ----------------------------------


@pytest.mark.usefixtures("four_eyes_on")
def test_publishing_a_source_profile_needs_a_second_steward_when_configured(steward, checker):
    active = SourceProfile.objects.get(name="stripe-invoice-paid", status="active")
    draft = source_profile_new_version(
        profile=active, spec={**active.spec, "description": "Edition 2"}, actor=steward, reason="Edition 2"
    )

    pending = source_profile_publish(profile=draft, actor=steward, reason="Finance signed off")

    assert isinstance(pending, ChangeRequest)
    assert SourceProfile.objects.get(pk=draft.pk).status == "draft"
    approval_approve(change_request=pending, actor=checker)
    assert SourceProfile.objects.get(pk=draft.pk).status == "active"
    assert SourceProfile.objects.get(pk=active.pk).status == "retired"


def test_publishing_a_source_profile_is_one_step_by_default(steward):
    active = SourceProfile.objects.get(name="stripe-invoice-paid", status="active")
    draft = source_profile_new_version(
        profile=active, spec={**active.spec, "description": "Edition 2"}, actor=steward, reason="Edition 2"
    )
    assert source_profile_publish(profile=draft, actor=steward, reason="Signed off").status == "active"


@pytest.mark.usefixtures("four_eyes_on")
def test_a_rerun_that_changes_an_amount_waits_for_a_second_person(finance_user, make_user):
    second = make_user("fred.finance", "finance_ops")
    txn = failed_transaction(invoice="INV-7", lines=[{"description": "Design", "amount": "1200.00"}])

    pending = transaction_replay(
        txn=txn,
        actor=finance_user,
        reason="Credit note agreed (FIN-88)",
        input_override={"invoice": "INV-7", "lines": [{"description": "Design", "amount": "1000.00"}]},
    )

    assert isinstance(pending, ChangeRequest)
    assert pending.diff == [{"field": "lines[0].amount", "old": "1200.00", "new": "1000.00"}]
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.EXCEPTION and txn.input_override is None
    approval_approve(change_request=pending, actor=second)
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.PENDING
    assert txn.input_override["lines"][0]["amount"] == "1000.00"
    edit = txn.history.latest()
    assert edit.history_user == second and "requested by fiona.finance" in edit.history_change_reason


@pytest.mark.usefixtures("four_eyes_on")
def test_a_rerun_whose_edit_changes_no_amount_runs_at_once(finance_user):
    txn = failed_transaction(invoice="INV-8", lines=[{"description": "Desing", "amount": "1200.00"}])
    result = transaction_replay(
        txn=txn,
        actor=finance_user,
        reason="Typo",
        input_override={"invoice": "INV-8", "lines": [{"description": "Design", "amount": "1200.00"}]},
    )
    assert isinstance(result, Transaction) and result.status == Transaction.Status.PENDING


def test_amount_changes_walk_nested_input_and_ignore_other_fields():
    before = {"po": "A", "lines": [{"amount": 10, "hours": "2"}], "total_amount": "10"}
    after = {"po": "B", "lines": [{"amount": 10, "hours": "3"}, {"amount": 5}], "total_amount": "15"}
    assert amount_changes(before, after) == [
        {"field": "lines[0].hours", "old": "2", "new": "3"},
        {"field": "lines[1].amount", "old": None, "new": 5},
        {"field": "total_amount", "old": "10", "new": "15"},
    ]


# --- end to end: API ---------------------------------------------------------------------------------


def test_rate_card_approval_end_to_end_through_the_api(api_as, steward, checker):
    version = draft_version()
    maker, second = api_as(steward), api_as(checker)

    response = maker.post(f"/api/v1/rate-card-versions/{version.pk}/approve/", HTTP_X_CHANGE_REASON="2026 uplift")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["detail"].startswith("Four-eyes control:")
    request_id = body["id"]

    assert maker.get("/api/v1/approvals/").json()["results"] == []
    assert [item["id"] for item in maker.get("/api/v1/approvals/?scope=all").json()["results"]] == [request_id]
    listed = second.get("/api/v1/approvals/").json()["results"]
    assert [(item["id"], item["may_decide"]) for item in listed] == [(request_id, True)]

    own = maker.post(f"/api/v1/approvals/{request_id}/approve/", HTTP_X_CHANGE_REASON="mine")
    assert own.status_code == 422
    assert "four-eyes control needs a second person" in own.json()["detail"]

    done = second.post(f"/api/v1/approvals/{request_id}/approve/", {"reason": "Checked"}, format="json")
    assert done.status_code == 200, done.content
    assert (done.json()["status"], done.json()["decided_by"]) == ("approved", "cleo.checker")
    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.APPROVED


def test_ownership_rule_create_through_the_api_is_a_202_until_rejected(api_as, steward, checker, systems):
    response = api_as(steward).post(
        "/api/v1/ownership-rules/",
        {"object_type": "customer", "owner": "salesforce", "effective_from": "2026-01-01"},
        format="json",
        HTTP_X_CHANGE_REASON="CRM owns customers",
    )
    assert response.status_code == 202, response.content
    request_id = response.json()["id"]
    assert not OwnershipRule.objects.exists()

    refused = api_as(checker).post(
        f"/api/v1/approvals/{request_id}/reject/", {}, format="json", HTTP_X_CHANGE_REASON=""
    )
    assert refused.status_code == 422 and "Say why you are rejecting" in refused.json()["detail"]
    rejected = api_as(checker).post(
        f"/api/v1/approvals/{request_id}/reject/", {"reason": "ERP owns customers (ADR-3)"}, format="json"
    )
    assert rejected.json()["decision_reason"] == "ERP owns customers (ADR-3)"
    assert not OwnershipRule.objects.exists()


def test_roles_that_may_not_decide_see_no_approvals_and_cannot_decide(api_as, steward, delivery_user, api):
    pending = rate_card_version_approve(version=draft_version(), actor=steward, reason="Uplift")
    assert api_as(delivery_user).get("/api/v1/approvals/?scope=all").json()["results"] == []
    assert api_as(delivery_user).post(f"/api/v1/approvals/{pending.pk}/approve/").status_code == 404
    assert api.get("/api/v1/approvals/").status_code in (401, 403)


# --- end to end: admin -------------------------------------------------------------------------------


def test_rate_card_approval_end_to_end_in_the_admin(client, steward, checker):
    version = draft_version()
    steward.is_staff = True
    steward.save()
    client.force_login(steward)
    response = client.post(
        reverse("admin:canonical_ratecardversion_changelist"),
        {"action": "approve_versions", "_selected_action": [version.pk]},
    )
    [message] = [m.message for m in get_messages(response.wsgi_request)]
    assert message.startswith("Waiting for a second person's approval (four-eyes): Rate card STD-US version 1")
    pending = ChangeRequest.objects.get()
    decide_url = reverse("admin:core_changerequest_decide", args=[pending.pk])
    own_page = client.get(decide_url).content.decode()
    assert "You asked for this change yourself" in own_page
    client.post(decide_url, {"reason": "", "_approve": "1"})
    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.DRAFT

    client.force_login(checker)
    listing = client.get(reverse("admin:core_changerequest_changelist")).content.decode()
    assert "Approve rate card STD-US version 1" in listing and "Decide" in listing
    response = client.post(decide_url, {"reason": "Matches the price list", "_approve": "1"})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.APPROVED
    pending.refresh_from_db()
    assert (pending.requested_by, pending.decided_by, pending.decision_reason) == (
        steward,
        checker,
        "Matches the price list",
    )


def test_a_new_ownership_rule_in_the_admin_becomes_a_request(client, steward, checker, systems):
    steward.is_staff = True
    steward.save()
    client.force_login(steward)
    form = {
        "object_type": "customer",
        "field": "",
        "owner": systems["crm"].pk,
        "may_create": [],
        "may_update": [],
        "effective_from": "2026-01-01",
        "effective_to": "",
        "rationale": "CRM is the customer master",
        "change_reason": "ADR-3",
    }
    response = client.post(reverse("admin:systems_ownershiprule_add"), form)
    pending = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:core_changerequest_change", args=[pending.pk])
    assert not OwnershipRule.objects.exists()

    client.force_login(checker)
    client.post(reverse("admin:core_changerequest_decide", args=[pending.pk]), {"_reject": "1", "reason": "No"})
    pending.refresh_from_db()
    assert pending.status == ChangeRequest.Status.REJECTED and not OwnershipRule.objects.exists()


@pytest.mark.usefixtures("four_eyes_on")
def test_a_checker_without_the_rates_permission_sees_the_request_with_rates_masked(api_as, finance_user, make_user):
    delivery = make_user("dora.delivery", "delivery_ops", is_staff=True)
    txn = failed_transaction(invoice="INV-9", lines=[{"role": "Consultant", "bill_rate": "150", "hours": "8"}])
    pending = transaction_replay(
        txn=txn,
        actor=finance_user,
        reason="Rate corrected",
        input_override={"invoice": "INV-9", "lines": [{"role": "Consultant", "bill_rate": "16543.21", "hours": "8"}]},
    )

    shown = api_as(delivery).get(f"/api/v1/approvals/{pending.pk}/").json()

    assert shown["diff"] == [{"field": "lines[0].bill_rate", "old": "•••", "new": "•••", "masked": True}]
    assert shown["payload"]["input_override"]["lines"][0]["bill_rate"] == "•••"
    assert api_as(finance_user).get(f"/api/v1/approvals/{pending.pk}/").json()["diff"][0]["new"] == "16543.21"

    client = Client()
    client.force_login(delivery)
    page = client.get(reverse("admin:core_changerequest_change", args=[pending.pk])).content.decode()
    assert "16543.21" not in page and "•••" in page
