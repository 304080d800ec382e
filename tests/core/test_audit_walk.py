"""Audit integrity: every write path — admin, API, bulk upload, workflow run, re-run, configuration import and
four-eyes approval — leaves history rows that say who, why and under which request/correlation ID.

The walk does not trust any path to know which tables it touches: it notes the newest history row of
every tracked model before a path runs, then reads every history table for the rows written since.
"""

import datetime
import json

import pytest
from django.apps import apps
from django.db.models import Max
from django.urls import reverse

from apps.canonical.models import LegalEntity
from apps.configuration.services import config_export, config_import
from apps.core.models import ChangeRequest
from apps.mapping.models import ValueMap
from apps.sync.engine import StepResult, run_due_steps
from apps.sync.models import Transaction
from apps.sync.registry import StepSpec, Subject, WorkflowDefinition, register
from apps.sync.services import transaction_start
from apps.systems.models import ConnectedSystem, OwnershipRule
from tests import factories
from tests.inbound.conftest import inbound_systems, post, stripe_headers  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def tracked_models() -> list:
    """Every model with a history table, in every app."""
    return [model for model in apps.get_models() if hasattr(model, "history") and hasattr(model.history, "model")]


class HistoryWalk:
    """The history rows every tracked model gained since the walk started."""

    def __init__(self):
        self.marks = {
            model: model.history.model.objects.aggregate(top=Max("history_id"))["top"] or 0
            for model in tracked_models()
        }

    def new_rows(self) -> dict:
        found = {}
        for model, mark in self.marks.items():
            rows = list(model.history.model.objects.filter(history_id__gt=mark).select_related("history_user"))
            if rows:
                found[model._meta.label] = rows
        return found


def assert_every_row_says_who_why_and_which_request(found: dict, *, path: str) -> None:
    assert found, f"the {path} path wrote no history at all"
    problems = []
    for label, rows in found.items():
        for row in rows:
            where = f"{label} history #{row.history_id} ({path})"
            if row.history_user_id is None:
                problems.append(f"{where}: no user")
            if not (row.history_change_reason or "").strip():
                problems.append(f"{where}: no reason")
            if not (row.history_correlation_id or "").strip():
                problems.append(f"{where}: no correlation ID")
    assert not problems, "\n".join(problems)


def users_and_ids(found: dict) -> tuple[set, set]:
    rows = [row for group in found.values() for row in group]
    return {row.history_user.get_username() for row in rows}, {row.history_correlation_id for row in rows}


@register
class AuditWalkFlow(WorkflowDefinition):
    """One step that creates a legal entity: a canonical write made by the engine."""

    name = "audit_walk_test"
    owner_role = "finance_ops"

    def plan(self, data):
        return [StepSpec("create", "Create the entity")]

    def subject(self, data):
        return Subject(business_key=f"audit:{data['code']}", label=f"Entity {data['code']}")

    def step_create(self, ctx):
        code = ctx.input["code"]

        def apply():
            LegalEntity.objects.create(code=code, name="Audit walk entity", country="US", currency="USD")
            return {"code": code}

        return StepResult(output={"created": code}, apply=apply)


@pytest.fixture
def staff_steward(steward):
    steward.is_staff = True
    steward.save()
    return steward


@pytest.mark.usefixtures("four_eyes_off")
def test_admin_writes_name_the_person_their_reason_and_the_request(client, staff_steward, systems):
    client.force_login(staff_steward)
    walk = HistoryWalk()
    form = {
        "object_type": "customer",
        "field": "",
        "owner": systems["crm"].pk,
        "may_create": [],
        "may_update": [],
        "effective_from": "2026-01-01",
        "effective_to": "",
        "rationale": "CRM is the customer master",
        "change_reason": "Governance board 2026-03 (ADR-3)",
    }
    response = client.post(reverse("admin:systems_ownershiprule_add"), form, HTTP_X_CORRELATION_ID="audit-admin-1")
    assert response.status_code == 302
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="admin")
    assert "systems.OwnershipRule" in found
    assert users_and_ids(found) == ({"sam.steward"}, {"audit-admin-1"})
    assert found["systems.OwnershipRule"][0].history_change_reason == "Governance board 2026-03 (ADR-3)"


def test_api_writes_name_the_caller_their_reason_and_the_request(api_as, steward):
    walk = HistoryWalk()
    response = api_as(steward).post(
        "/api/v1/value-maps/",
        {"name": "region-subsidiary", "source_label": "region", "target_label": "subsidiary"},
        format="json",
        HTTP_X_CHANGE_REASON="EMEA subsidiaries (MAP-12)",
        HTTP_X_CORRELATION_ID="audit-api-1",
    )
    assert response.status_code == 201, response.content
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="API")
    assert users_and_ids(found) == ({"sam.steward"}, {"audit-api-1"})
    assert found["mapping.ValueMap"][0].history_change_reason == "EMEA subsidiaries (MAP-12)"


@pytest.mark.usefixtures("inbound_systems")
def test_a_bulk_upload_is_recorded_as_the_system_under_the_uploads_request_id(client):
    records = [
        {
            "time_entry_external_id": f"TE-{n}",
            "resource_external_id": "U-7",
            "project_external_id": "W-42",
            "work_date": "2026-10-31",
            "hours": "7.5",
        }
        for n in range(3)
    ]
    body = json.dumps(records).encode()
    walk = HistoryWalk()
    response = post(
        client,
        "stripe",
        body,
        {**stripe_headers(body), "HTTP_X_CORRELATION_ID": "audit-bulk-1"},
        path_suffix="bulk",
        record_type="time_entry",
    )
    assert response.status_code == 202, response.content
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="bulk upload")
    assert {"inbound.Delivery", "inbound.InboundEvent"} <= set(found)
    users, ids = users_and_ids(found)
    assert users == {"integration-system"} and ids == {"audit-bulk-1"}


def test_workflow_runs_and_re_runs_carry_the_transactions_id_and_the_re_runners_name(api_as, finance_user):
    walk = HistoryWalk()
    txn = transaction_start(workflow="audit_walk_test", data={"code": "AUDIT-1"}, reason="Audit walk")
    txn.status = Transaction.Status.EXCEPTION
    txn.save()
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="workflow start")

    walk = HistoryWalk()
    response = api_as(finance_user).post(
        f"/api/v1/transactions/{txn.pk}/replay/",
        {"reason": "Entity set up in NetSuite (FIN-3)"},
        format="json",
        HTTP_X_CORRELATION_ID="audit-replay-1",
    )
    assert response.status_code == 200, response.content
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="re-run")
    assert users_and_ids(found) == ({"fiona.finance"}, {"audit-replay-1"})

    walk = HistoryWalk()
    run_due_steps()
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="workflow step")
    assert "canonical.LegalEntity" in found
    assert {row.history_correlation_id for row in found["canonical.LegalEntity"]} == {txn.correlation_id}


def test_a_configuration_import_is_recorded_as_the_system_with_the_documents_name(systems):
    document = config_export()
    document["systems"].append({"slug": "kimble", "name": "Kimble", "kind": "psa", "vendor": "kimble"})
    walk = HistoryWalk()
    config_import(document=document, dry_run=False, prune=False, source_name="promote-emea.yaml")
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="configuration import")
    assert ConnectedSystem.objects.filter(slug="kimble").exists()
    assert all("promote-emea.yaml" in row.history_change_reason for row in found["systems.ConnectedSystem"])


def test_an_approval_names_maker_and_checker_under_the_checkers_request(api_as, steward, make_user, systems):
    checker = make_user("cleo.checker", "mapping_steward")
    walk = HistoryWalk()
    response = api_as(steward).post(
        "/api/v1/ownership-rules/",
        {"object_type": "customer", "owner": "salesforce", "effective_from": "2026-01-01"},
        format="json",
        HTTP_X_CHANGE_REASON="CRM owns customers",
        HTTP_X_CORRELATION_ID="audit-request-1",
    )
    assert response.status_code == 202
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="four-eyes request")
    assert users_and_ids(found) == ({"sam.steward"}, {"audit-request-1"})

    walk = HistoryWalk()
    response = api_as(checker).post(
        f"/api/v1/approvals/{response.json()['id']}/approve/",
        {"reason": "Agreed"},
        format="json",
        HTTP_X_CORRELATION_ID="audit-approve-1",
    )
    assert response.status_code == 200, response.content
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="four-eyes approval")
    assert users_and_ids(found) == ({"cleo.checker"}, {"audit-approve-1"})
    rule_row = found["systems.OwnershipRule"][0]
    assert "requested by sam.steward, approved by cleo.checker" in rule_row.history_change_reason
    assert ChangeRequest.objects.get().status == "approved" and OwnershipRule.objects.count() == 1


@pytest.mark.usefixtures("inbound_systems", "four_eyes_off")
def test_every_path_together_leaves_no_anonymous_row_in_any_history_table(client, api_as, staff_steward, systems):
    """All the paths above in one run, then every history table of every model is read back."""
    walk = HistoryWalk()
    client.force_login(staff_steward)
    version = factories.rate_card(versions=[(datetime.date(2026, 1, 1), None, "draft", {"Consultant": 150})])
    version = version.versions.get()
    client.post(
        reverse("admin:canonical_ratecardversion_changelist"),
        {"action": "approve_versions", "_selected_action": [version.pk]},
    )
    api_as(staff_steward).post(
        "/api/v1/value-maps/",
        {"name": "walk", "source_label": "a", "target_label": "b"},
        format="json",
        HTTP_X_CHANGE_REASON="walk",
    )
    body = json.dumps([{"time_entry_external_id": "TE-W", "resource_external_id": "U", "project_external_id": "W",
                        "work_date": "2026-10-31", "hours": "1"}]).encode()  # fmt: skip
    assert (
        post(client, "stripe", body, stripe_headers(body), path_suffix="bulk", record_type="time_entry").status_code
        == 202
    )
    txn = transaction_start(workflow="audit_walk_test", data={"code": "AUDIT-2"}, reason="Audit walk")
    run_due_steps()
    document = config_export()
    document["systems"].append({"slug": "kimble", "name": "Kimble", "kind": "psa", "vendor": "kimble"})
    config_import(document=document, dry_run=False, prune=False, source_name="walk.yaml")
    found = walk.new_rows()
    assert_every_row_says_who_why_and_which_request(found, path="all paths")
    assert {
        "canonical.RateCardVersion",
        "mapping.ValueMap",
        "inbound.Delivery",
        "inbound.InboundEvent",
        "sync.Transaction",
        "sync.Step",
        "canonical.LegalEntity",
        "systems.ConnectedSystem",
    } <= set(found)
    assert ValueMap.objects.filter(name="walk").exists() and txn.pk
