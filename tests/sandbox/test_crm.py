"""The Salesforce-like CRM sandbox: create, fetch and patch Accounts and Opportunities; Salesforce-shaped errors."""

import re

import pytest

from apps.sandbox.services import sandbox_calls, sandbox_records, sandbox_system_configure


@pytest.fixture
def crm(vendor):
    return vendor("crm")


def create_account(crm, **fields):
    response = crm.post("sobjects/Account", {"Name": "Northwind Traders", "CurrencyIsoCode": "USD", **fields})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def create_opportunity(crm, account_id, **fields):
    body = {
        "Name": "Northwind ERP rollout",
        "AccountId": account_id,
        "Amount": 125000.5,
        "CurrencyIsoCode": "USD",
        "CloseDate": "2026-11-15",
        "StageName": "Closed Won",
        "Contract_Type__c": "Time and Materials",
        **fields,
    }
    response = crm.post("sobjects/Opportunity", body)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_it_creates_records_with_salesforce_looking_ids_and_answers_like_salesforce(crm):
    response = crm.post("sobjects/Account", {"Name": "Northwind Traders", "BillingCountry": "US"})

    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["errors"] == []
    assert re.fullmatch(r"001[A-Za-z0-9]{15}", body["id"])
    opportunity_id = create_opportunity(crm, body["id"])
    assert re.fullmatch(r"006[A-Za-z0-9]{15}", opportunity_id)


def test_a_fetched_opportunity_has_attributes_id_and_every_field(crm):
    account_id = create_account(crm)
    opportunity_id = create_opportunity(crm, account_id)

    response = crm.get(f"sobjects/Opportunity/{opportunity_id}")

    assert response.status_code == 200
    record = response.json()
    assert record["attributes"] == {
        "type": "Opportunity",
        "url": f"/sandbox/crm/services/data/v60.0/sobjects/Opportunity/{opportunity_id}",
    }
    assert record["Id"] == opportunity_id
    assert record["AccountId"] == account_id
    assert record["Amount"] == 125000.5
    assert record["StageName"] == "Closed Won" and record["IsWon"] is True
    assert record["ERP_Project_Id__c"] is None  # unset fields are present and null, as in Salesforce


def test_patching_an_opportunity_answers_204_and_changes_only_what_was_sent(crm):
    opportunity_id = create_opportunity(crm, create_account(crm))

    response = crm.patch(
        f"sobjects/Opportunity/{opportunity_id}",
        {"Project_Status__c": "Active", "ERP_Project_Id__c": "2001", "Integration_Message__c": "Project created"},
    )

    assert response.status_code == 204
    assert response.content == b""
    record = crm.get(f"sobjects/Opportunity/{opportunity_id}").json()
    assert record["Project_Status__c"] == "Active"
    assert record["ERP_Project_Id__c"] == "2001"
    assert record["Name"] == "Northwind ERP rollout"


def test_patching_an_account_with_ar_fields(crm):
    account_id = create_account(crm)

    response = crm.patch(
        f"sobjects/Account/{account_id}",
        {"Credit_Status__c": "On hold", "AR_Balance__c": 4200.25, "Last_Payment_Date__c": "2026-11-20"},
    )

    assert response.status_code == 204
    record = crm.get(f"sobjects/Account/{account_id}").json()
    assert (record["Credit_Status__c"], record["AR_Balance__c"]) == ("On hold", 4200.25)


def test_an_unknown_field_is_refused_with_invalid_field(crm):
    account_id = create_account(crm)

    response = crm.patch(f"sobjects/Account/{account_id}", {"Shoe_Size__c": 44})

    assert response.status_code == 400
    assert response.json() == [
        {
            "message": "No such column 'Shoe_Size__c' on sobject of type Account",
            "errorCode": "INVALID_FIELD",
            "fields": ["Shoe_Size__c"],
        }
    ]


def test_missing_required_fields_are_named(crm):
    response = crm.post("sobjects/Opportunity", {"Name": "No stage", "CloseDate": "2026-11-15"})

    assert response.status_code == 400
    error = response.json()[0]
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert "StageName" in error["message"]
    assert sandbox_records("crm", "Opportunity").count() == 0


def test_a_lookup_to_a_missing_account_is_refused(crm):
    response = crm.post(
        "sobjects/Opportunity",
        {"Name": "Orphan", "StageName": "Prospecting", "CloseDate": "2026-11-15", "AccountId": "001" + "x" * 15},
    )

    assert response.status_code == 400
    error = response.json()[0]
    assert error["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert error["fields"] == ["AccountId"]


def test_a_value_of_the_wrong_type_is_refused(crm):
    response = crm.post("sobjects/Opportunity", {"Name": "Bad", "StageName": "Prospecting", "CloseDate": "15/11/2026"})

    assert response.status_code == 400
    assert response.json()[0]["fields"] == ["CloseDate"]


def test_an_unknown_record_or_object_is_not_found(crm):
    assert crm.get("sobjects/Account/001000000000000AAA").status_code == 404
    response = crm.get("sobjects/Invoice__c/a00000000000000AAA")
    assert response.status_code == 404
    assert response.json()[0]["errorCode"] == "NOT_FOUND"


def test_recent_items_list_the_newest_records(crm):
    first, second = create_account(crm, Name="First"), create_account(crm, Name="Second")

    response = crm.get("sobjects/Account")

    assert [item["Id"] for item in response.json()["recentItems"]] == [second, first]


def test_it_refuses_a_call_without_a_bearer_token(vendor):
    response = vendor("crm", credential="").get("sobjects/Account/001000000000000AAA")

    assert response.status_code == 401
    assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert sandbox_calls("crm").get().response_status == 401


def test_a_required_credential_must_match(vendor, monkeypatch):
    monkeypatch.setenv("IC_SECRET_SANDBOX_TEST_CRM_TOKEN", "right-token")
    sandbox_system_configure("crm", required_credential={"env": "IC_SECRET_SANDBOX_TEST_CRM_TOKEN"})

    assert vendor("crm", credential="wrong-token").post("sobjects/Account", {"Name": "X"}).status_code == 401
    assert vendor("crm", credential="right-token").post("sobjects/Account", {"Name": "X"}).status_code == 201
    assert sandbox_records("crm", "Account").count() == 1


def test_the_call_log_keeps_headers_with_the_token_masked(crm):
    crm.post("sobjects/Account", {"Name": "Logged"}, headers={"X-Correlation-ID": "corr-42"})

    call = sandbox_calls("crm").get()
    assert (call.method, call.path, call.response_status) == (
        "POST",
        "/sandbox/crm/services/data/v60.0/sobjects/Account",
        201,
    )
    assert call.correlation_id == "corr-42"
    assert call.headers["Authorization"] == "Bearer ***"
    assert "test-token" not in str(call.headers)
    assert '"Logged"' in call.body
