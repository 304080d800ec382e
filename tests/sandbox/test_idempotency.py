"""Idempotency keys: a repeated write is answered with the original answer and changes nothing."""

from apps.sandbox.models import SandboxIdempotencyKey, SandboxRecord
from apps.sandbox.services import sandbox_calls, sandbox_records


def test_a_repeated_create_with_the_same_key_replays_the_answer_and_creates_one_record(vendor):
    crm = vendor("crm")

    first = crm.post("sobjects/Account", {"Name": "Northwind"}, headers={"Idempotency-Key": "acct-1"})
    second = crm.post("sobjects/Account", {"Name": "Northwind"}, headers={"Idempotency-Key": "acct-1"})

    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert second["Idempotent-Replayed"] == "true"
    assert sandbox_records("crm", "Account").count() == 1
    calls = list(sandbox_calls("crm", method="POST"))
    assert [(call.idempotency_key, call.replayed) for call in calls] == [("acct-1", False), ("acct-1", True)]


def test_a_replayed_upsert_gives_back_the_same_location(vendor):
    erp = vendor("erp")
    body = {"companyName": "Northwind", "subsidiary": {"id": "1"}, "currency": {"id": "1"}}

    first = erp.put("customer/eid:CUST-1", body, headers={"Idempotency-Key": "cust-1"})
    second = erp.put("customer/eid:CUST-1", {**body, "companyName": "Changed"}, headers={"Idempotency-Key": "cust-1"})

    assert first.status_code == second.status_code == 204
    assert first["Location"] == second["Location"]
    assert SandboxRecord.objects.get(kind="erp", object_type="customer").data["companyName"] == "Northwind"


def test_chargebee_uses_its_own_header(vendor):
    billing = vendor("billing")
    body = {"id": "cust-1", "company": "Northwind"}

    first = billing.post("customers", body, headers={"Chargebee-Idempotency-Key": "k-1"})
    second = billing.post("customers", body, headers={"Chargebee-Idempotency-Key": "k-1"})
    without_key = billing.post("customers", body)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert without_key.json()["api_error_code"] == "duplicate_entry"


def test_keys_are_per_sandbox(vendor):
    vendor("crm").post("sobjects/Account", {"Name": "N"}, headers={"Idempotency-Key": "same"})

    response = vendor("psa").post("workspaces.json", {"workspace": {"title": "W"}}, headers={"Idempotency-Key": "same"})

    assert response.status_code == 200
    assert sandbox_records("psa", "workspaces").count() == 1


def test_a_refused_write_does_not_burn_its_key(vendor):
    crm = vendor("crm")

    refused = crm.post("sobjects/Opportunity", {"Name": "No stage"}, headers={"Idempotency-Key": "opp-1"})
    fixed = crm.post(
        "sobjects/Opportunity",
        {"Name": "Fixed", "StageName": "Closed Won", "CloseDate": "2026-11-15"},
        headers={"Idempotency-Key": "opp-1"},
    )

    assert refused.status_code == 400
    assert fixed.status_code == 201
    assert SandboxIdempotencyKey.objects.get(kind="crm", key="opp-1").status == 201


def test_a_sandbox_write_keeps_history_with_the_callers_correlation_id(vendor):
    vendor("erp").put(
        "customer/eid:CUST-H",
        {"companyName": "Northwind", "subsidiary": {"id": "1"}, "currency": {"id": "1"}},
        headers={"X-Correlation-ID": "corr-sandbox-1"},
    )

    row = SandboxRecord.objects.get(kind="erp", object_type="customer").history.get()
    assert row.history_correlation_id == "corr-sandbox-1"
    assert row.history_change_reason == "Sandbox erp: PUT /sandbox/erp/services/rest/record/v1/customer/eid:CUST-H"
