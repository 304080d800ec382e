"""The NetSuite-like ERP sandbox: upsert by external ID, lists, invoices with tax, payments, reference data."""

import pytest

from apps.sandbox.services import sandbox_records

from .conftest import auth_header


@pytest.fixture
def erp(vendor):
    return vendor("erp")


def upsert(erp, record_type, external_id, body, **headers):
    return erp.put(f"{record_type}/eid:{external_id}", body, headers=headers)


def customer(erp, external_id="CUST-1", **fields):
    body = {"companyName": "Northwind Traders", "subsidiary": {"id": "1"}, "currency": {"id": "1"}, **fields}
    response = upsert(erp, "customer", external_id, body)
    assert response.status_code == 204, response.content
    return response["Location"].rsplit("/", 1)[1]


def invoice(erp, customer_id, external_id="INV-1", lines=None):
    lines = lines or [
        {"item": {"id": "100"}, "amount": 1000, "quantity": 8, "taxCode": {"id": "11"}},
        {"item": {"id": "101"}, "amount": 250.5, "quantity": 2, "taxCode": {"id": "10"}},
    ]
    response = upsert(
        erp, "invoice", external_id, {"entity": {"id": customer_id}, "tranDate": "2026-11-30", "item": {"items": lines}}
    )
    assert response.status_code == 204, response.content
    return response["Location"].rsplit("/", 1)[1]


def test_an_upsert_by_external_id_creates_then_updates_the_same_record(erp):
    body = {"companyName": "Northwind Traders", "subsidiary": {"id": "1"}, "currency": {"id": "1"}}

    created = upsert(erp, "customer", "CUST-1", body)
    updated = upsert(erp, "customer", "CUST-1", {**body, "companyName": "Northwind Traders LLC", "email": "ap@nw.test"})

    assert created.status_code == updated.status_code == 204
    assert created["Location"] == updated["Location"]
    assert created["Location"].startswith("http://testserver/sandbox/erp/services/rest/record/v1/customer/")
    internal_id = created["Location"].rsplit("/", 1)[1]
    assert internal_id.isdigit()
    assert sandbox_records("erp", "customer").count() == 1
    record = erp.get(f"customer/{internal_id}").json()
    assert record["id"] == internal_id
    assert record["externalId"] == "CUST-1"
    assert record["companyName"] == "Northwind Traders LLC"
    assert record["subsidiary"] == {"id": "1", "refName": "Acme Consulting Inc."}
    assert record["links"][0]["rel"] == "self"


def test_a_record_is_read_by_external_id(erp):
    internal_id = customer(erp, "CUST-7")

    response = erp.get("customer/eid:CUST-7")

    assert response.status_code == 200
    assert response.json()["id"] == internal_id


def test_a_customer_without_a_company_name_is_refused_in_netsuite_shape(erp):
    response = upsert(erp, "customer", "CUST-2", {"subsidiary": {"id": "1"}, "currency": {"id": "1"}})

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert body["title"] == "Bad Request"
    assert body["type"].startswith("https://www.rfc-editor.org/")
    [detail] = body["o:errorDetails"]
    assert detail["o:errorCode"] == "USER_ERROR"
    assert "companyName" in detail["detail"]
    assert sandbox_records("erp", "customer").count() == 0


def test_an_unknown_subsidiary_is_refused_naming_the_field(erp):
    response = upsert(
        erp, "customer", "CUST-3", {"companyName": "X", "subsidiary": {"id": "9"}, "currency": {"id": "1"}}
    )

    assert response.status_code == 400
    [detail] = response.json()["o:errorDetails"]
    assert detail["o:errorCode"] == "INVALID_KEY_OR_REF"
    assert detail["o:errorPath"] == "subsidiary"


def test_a_financial_project_needs_an_existing_parent_customer(erp):
    missing = upsert(erp, "job", "PRJ-1042", {"companyName": "Northwind ERP rollout", "parent": {"id": "4242"}})
    parent_id = customer(erp)
    created = upsert(erp, "job", "PRJ-1042", {"companyName": "Northwind ERP rollout", "parent": {"id": parent_id}})

    assert missing.status_code == 400
    assert missing.json()["o:errorDetails"][0]["o:errorPath"] == "parent"
    assert created.status_code == 204
    job = erp.get("job/eid:PRJ-1042").json()
    assert job["subsidiary"]["id"] == "1"  # taken from the parent customer


def test_an_invoice_gets_its_totals_and_remaining_amount_computed(erp):
    invoice_id = invoice(erp, customer(erp))

    record = erp.get(f"invoice/{invoice_id}").json()

    # 1000 at 8.875% NY tax = 88.75; 250.50 exempt.
    assert record["subtotal"] == 1250.5
    assert record["taxTotal"] == 88.75
    assert record["total"] == 1339.25
    assert record["amountRemaining"] == 1339.25
    assert record["status"] == "Open"
    assert record["tranId"] == f"INV{invoice_id}"
    assert record["item"]["items"][0]["taxCode"]["refName"] == "US-NY"


def test_an_invoice_line_with_an_unknown_item_is_refused(erp):
    customer_id = customer(erp)
    response = upsert(
        erp,
        "invoice",
        "INV-X",
        {
            "entity": {"id": customer_id},
            "tranDate": "2026-11-30",
            "item": {"items": [{"item": {"id": "999"}, "amount": 10, "quantity": 1, "taxCode": {"id": "10"}}]},
        },
    )

    assert response.status_code == 400
    assert response.json()["o:errorDetails"][0]["o:errorPath"] == "item.items[0].item"


def test_a_payment_reduces_the_amount_remaining_and_settles_the_invoice(erp):
    customer_id = customer(erp)
    invoice_id = invoice(erp, customer_id)
    payment = {
        "customer": {"id": customer_id},
        "payment": 1000,
        "apply": {"items": [{"doc": {"id": invoice_id}, "amount": 1000}]},
    }

    first = upsert(erp, "customerPayment", "PAY-1", payment)
    assert first.status_code == 204
    assert erp.get(f"invoice/{invoice_id}").json()["amountRemaining"] == 339.25

    rest = {**payment, "payment": 339.25, "apply": {"items": [{"doc": {"id": invoice_id}, "amount": 339.25}]}}
    assert upsert(erp, "customerPayment", "PAY-2", rest).status_code == 204
    settled = erp.get(f"invoice/{invoice_id}").json()
    assert settled["amountRemaining"] == 0
    assert settled["status"] == "Paid In Full"


def test_re_sending_a_payment_does_not_apply_it_twice(erp):
    customer_id = customer(erp)
    invoice_id = invoice(erp, customer_id)
    payment = {
        "customer": {"id": customer_id},
        "payment": 500,
        "apply": {"items": [{"doc": {"id": invoice_id}, "amount": 500}]},
    }

    upsert(erp, "customerPayment", "PAY-1", payment)
    upsert(erp, "customerPayment", "PAY-1", payment)

    assert erp.get(f"invoice/{invoice_id}").json()["amountRemaining"] == 839.25
    assert sandbox_records("erp", "customerPayment").count() == 1


def test_an_overpayment_is_refused_with_a_clear_detail(erp):
    customer_id = customer(erp)
    invoice_id = invoice(erp, customer_id)

    response = upsert(
        erp,
        "customerPayment",
        "PAY-1",
        {
            "customer": {"id": customer_id},
            "payment": 2000,
            "apply": {"items": [{"doc": {"id": invoice_id}, "amount": 2000}]},
        },
    )

    assert response.status_code == 400
    detail = response.json()["o:errorDetails"][0]["detail"]
    assert "1339.25 is still open" in detail
    assert erp.get(f"invoice/{invoice_id}").json()["amountRemaining"] == 1339.25
    assert sandbox_records("erp", "customerPayment").count() == 0


def test_a_payment_cannot_settle_another_customers_invoice(erp):
    invoice_id = invoice(erp, customer(erp, "CUST-A"))
    other = customer(erp, "CUST-B", companyName="Contoso")

    response = upsert(
        erp,
        "customerPayment",
        "PAY-1",
        {"customer": {"id": other}, "payment": 10, "apply": {"items": [{"doc": {"id": invoice_id}, "amount": 10}]}},
    )

    assert response.status_code == 400
    assert "another customer" in response.json()["o:errorDetails"][0]["detail"]


def test_lists_have_the_netsuite_shape_and_paginate(erp):
    ids = [customer(erp, f"CUST-{n}", companyName=f"Customer {n}") for n in range(5)]

    first = erp.get("customer", {"limit": 2}).json()
    last = erp.get("customer", {"limit": 2, "offset": 4}).json()

    assert (first["count"], first["hasMore"], first["offset"], first["totalResults"]) == (2, True, 0, 5)
    assert [item["id"] for item in first["items"]] == ids[:2]
    assert set(first["items"][0]) == {"id", "links"}  # full records are fetched by id
    next_link = next(link for link in first["links"] if link["rel"] == "next")
    assert next_link["href"].endswith("/customer?limit=2&offset=2")
    assert (last["count"], last["hasMore"]) == (1, False)
    assert "next" not in {link["rel"] for link in last["links"]}


def test_a_last_modified_filter_is_understood_and_other_queries_are_refused(erp):
    customer(erp)

    assert erp.get("customer", {"q": 'lastModifiedDate ON_OR_AFTER "2000-01-01"'}).json()["totalResults"] == 1
    assert erp.get("customer", {"q": 'lastModifiedDate AFTER "2999-01-01"'}).json()["totalResults"] == 0
    assert erp.get("customer", {"q": 'companyName CONTAIN "x"'}).status_code == 400
    assert erp.get("customer", {"q": 'balance IS "x"'}).status_code == 400


def test_customers_are_found_by_name_email_tax_id_or_external_id(erp):
    customer(erp, "CUST-1", companyName='Globex "Intl" Corporation', email="ap@globex.example", vatRegNumber="GB1")
    customer(erp, "CUST-2", companyName="Initech")

    def found(q):
        return [item["id"] for item in erp.get("customer", {"q": q}).json()["items"]]

    first = found('externalId IS "CUST-1"')
    assert len(first) == 1
    assert found('companyName IS "globex \\"intl\\" corporation"') == first
    assert found('email IS "AP@globex.example"') == first
    assert found('vatRegNumber IS "GB1"') == first
    assert found('companyName IS "Globex"') == []


def test_a_patch_gives_a_record_an_external_id_unless_another_record_has_it(erp):
    first = customer(erp, "CUST-1")
    customer(erp, "CUST-2")
    assert erp.patch(f"customer/{first}", {"externalId": "C-1001"}).status_code == 204
    assert erp.get("customer/eid:C-1001").json()["id"] == first
    refused = erp.patch(f"customer/{first}", {"externalId": "CUST-2"})
    assert refused.status_code == 400 and "already exists" in refused.content.decode()


def test_reference_data_is_seeded_and_listed_with_its_fields(erp):
    subsidiaries = erp.get("subsidiary").json()["items"]
    currencies = erp.get("currency").json()["items"]
    rates = erp.get("currencyRate", {"limit": 5}).json()

    assert [(s["id"], s["country"]) for s in subsidiaries] == [("1", "US"), ("2", "GB"), ("3", "DE")]
    assert [(c["id"], c["symbol"]) for c in currencies] == [("1", "USD"), ("2", "GBP"), ("4", "EUR")]
    assert rates["hasMore"] is True and rates["count"] == 5
    rate = rates["items"][0]
    assert set(rate) >= {"baseCurrency", "transactionCurrency", "exchangeRate", "effectiveDate"}
    assert erp.get("salesTaxItem").json()["totalResults"] >= 4
    assert erp.get("item/100").json()["itemId"] == "SVC-CONSULTING"
    assert erp.get("department").json()["totalResults"] == 3
    assert erp.get("classification").json()["totalResults"] == 4


def test_reference_data_is_read_only(erp):
    response = upsert(erp, "currency", "CHF", {"symbol": "CHF"})

    assert response.status_code == 405
    assert sandbox_records("erp", "currency").count() == 3


def test_a_missing_record_or_record_type_is_not_found(erp):
    assert erp.get("customer/424242").json()["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"
    assert erp.get("vendorBill").status_code == 404


def test_put_by_internal_id_is_refused_but_patch_updates(erp):
    internal_id = customer(erp)

    refused = erp.put(f"customer/{internal_id}", {"companyName": "Renamed"})
    patched = erp.patch(f"customer/{internal_id}", {"companyName": "Renamed"})

    assert refused.status_code == 400
    assert patched.status_code == 204
    assert erp.get(f"customer/{internal_id}").json()["companyName"] == "Renamed"


def test_post_creates_and_refuses_an_external_id_already_used(erp):
    body = {"externalId": "CUST-P", "companyName": "Posted", "subsidiary": {"id": "2"}, "currency": {"id": "2"}}

    created = erp.post("customer", body)
    again = erp.post("customer", body)

    assert created.status_code == 204
    assert erp.get("customer/eid:CUST-P").json()["currency"] == {"id": "2", "refName": "GBP"}
    assert again.status_code == 400
    assert again.json()["o:errorDetails"][0]["o:errorCode"] == "DUP_ENTITY"


def test_a_fresh_database_gets_its_reference_data_on_the_first_call(client, db):
    response = client.get(
        "/sandbox/erp/services/rest/record/v1/subsidiary", headers={"Authorization": auth_header("erp")}
    )

    assert response.status_code == 200
    assert response.json()["totalResults"] == 3
