"""The Chargebee-like billing sandbox: form-encoded writes, charges by reference, invoices with tax, payments."""

import pytest

from apps.sandbox.services import sandbox_records


@pytest.fixture
def billing(vendor):
    return vendor("billing")


def make_customer(billing, customer_id="cust-northwind", currency="USD"):
    response = billing.post(
        "customers",
        {
            "id": customer_id,
            "company": "Northwind Traders",
            "email": "ap@northwind.test",
            "preferred_currency_code": currency,
            "cf_erp_customer_id": "1001",
        },
    )
    assert response.status_code == 200, response.content
    return response.json()["customer"]


def charges(customer_id="cust-northwind", currency="USD", items=((100000, "ev-1"), (45050, "ev-2"))):
    body = {"customer_id": customer_id, "currency_code": currency}
    for index, (amount, reference) in enumerate(items):
        body.update(
            {
                f"charges[amount][{index}]": str(amount),
                f"charges[description][{index}]": f"Consulting, week {index + 1}",
                f"charges[date_from][{index}]": "1793491200",
                f"charges[date_to][{index}]": "1794009600",
                f"charges[reference][{index}]": reference,
            }
        )
    return body


def test_a_customer_is_created_and_fetched(billing):
    created = make_customer(billing)

    assert created["id"] == "cust-northwind"
    assert created["object"] == "customer"
    assert created["cf_erp_customer_id"] == "1001"
    assert isinstance(created["created_at"], int)
    fetched = billing.get("customers/cust-northwind").json()["customer"]
    assert fetched["company"] == "Northwind Traders"


def test_an_existing_customer_id_is_a_duplicate_entry(billing):
    make_customer(billing)

    response = billing.post("customers", {"id": "cust-northwind", "company": "Again"})

    assert response.status_code == 400
    body = response.json()
    assert body["api_error_code"] == "duplicate_entry"
    assert body["message"] == "The value cust-northwind is already present."
    assert body["http_status_code"] == 400
    assert body["type"] == "invalid_request"
    assert body["error_code"] == "duplicate_entry"


def test_a_billing_schedule_is_created_and_revised(billing):
    make_customer(billing)
    schedule = {
        "id": "bs-prj-1042",
        "customer_id": "cust-northwind",
        "project_ref": "PRJ-1042",
        "frequency": "monthly",
        "billing_method": "time_and_materials",
        "start_date": "2026-11-01",
        "currency_code": "USD",
    }

    created = billing.post("billing_schedules", schedule)
    duplicate = billing.post("billing_schedules", schedule)
    revised = billing.post("billing_schedules/bs-prj-1042", {"revision": "2", "frequency": "quarterly"})
    backwards = billing.post("billing_schedules/bs-prj-1042", {"revision": "1"})

    assert created.status_code == 200
    assert created.json()["billing_schedule"]["revision"] == 1
    assert created.json()["billing_schedule"]["start_date"] == 1793491200  # 2026-11-01 as Unix seconds
    assert duplicate.json()["api_error_code"] == "duplicate_entry"
    assert revised.json()["billing_schedule"]["revision"] == 2
    assert revised.json()["billing_schedule"]["frequency"] == "quarterly"
    assert backwards.status_code == 400 and backwards.json()["param"] == "revision"
    assert billing.get("billing_schedules/bs-prj-1042").json()["billing_schedule"]["revision"] == 2


def test_a_schedule_for_an_unknown_customer_names_the_field(billing):
    response = billing.post(
        "billing_schedules",
        {
            "customer_id": "nobody",
            "project_ref": "P",
            "frequency": "monthly",
            "billing_method": "fixed_fee",
            "start_date": "1793491200",
            "currency_code": "USD",
        },
    )

    assert response.status_code == 400
    assert response.json()["param"] == "customer_id"
    assert "customer_id" in response.json()["message"]


def test_unbilled_charges_are_created_once_per_reference(billing):
    make_customer(billing)

    first = billing.post("unbilled_charges", charges())
    again = billing.post("unbilled_charges", charges(items=((100000, "ev-1"), (9900, "ev-3"))))

    assert first.status_code == again.status_code == 200
    created = first.json()["unbilled_charges"]
    assert [(c["amount"], c["reference"], c["customer_id"]) for c in created] == [
        (100000, "ev-1", "cust-northwind"),
        (45050, "ev-2", "cust-northwind"),
    ]
    assert created[0]["id"].startswith("li_")
    assert again.json()["unbilled_charges"][0]["id"] == created[0]["id"]
    assert sandbox_records("billing", "unbilled_charge").count() == 3


def test_a_charge_without_an_amount_is_refused_naming_the_parameter(billing):
    make_customer(billing)
    body = charges()
    del body["charges[amount][1]"]

    response = billing.post("unbilled_charges", body)

    assert response.status_code == 400
    assert response.json()["param"] == "charges[amount][1]"
    assert sandbox_records("billing", "unbilled_charge").count() == 0  # the whole batch is refused


def test_a_charge_in_another_currency_than_the_customers_is_refused(billing):
    make_customer(billing, currency="GBP")

    response = billing.post("unbilled_charges", charges(currency="USD"))

    assert response.status_code == 400
    assert response.json()["param"] == "currency_code"


def test_invoicing_turns_the_unbilled_charges_into_one_taxed_invoice(billing):
    make_customer(billing)
    billing.post("unbilled_charges", charges())

    response = billing.post("unbilled_charges/invoice_unbilled_charges", {"customer_id": "cust-northwind"})

    assert response.status_code == 200
    [invoice] = response.json()["invoices"]
    assert invoice["status"] == "posted"
    assert invoice["customer_id"] == "cust-northwind"
    assert invoice["currency_code"] == "USD"
    assert invoice["sub_total"] == 145050
    assert invoice["tax"] == 8000 + 3604  # 8% flat sandbox rate per line, rounded half up
    assert invoice["total"] == invoice["amount_due"] == 145050 + 11604
    assert invoice["due_date"] > invoice["date"]
    assert [line["reference"] for line in invoice["line_items"]] == ["ev-1", "ev-2"]
    assert billing.get("unbilled_charges", {"customer_id[is]": "cust-northwind"}).json()["list"] == []
    again = billing.post("unbilled_charges/invoice_unbilled_charges", {"customer_id": "cust-northwind"})
    assert again.status_code == 400


def test_recording_the_full_payment_marks_the_invoice_paid(billing):
    make_customer(billing)
    billing.post("unbilled_charges", charges())
    invoice = billing.post("unbilled_charges/invoice_unbilled_charges", {"customer_id": "cust-northwind"}).json()[
        "invoices"
    ][0]

    partial = billing.post(
        f"invoices/{invoice['id']}/record_payment",
        {
            "transaction[amount]": "50000",
            "transaction[payment_method]": "bank_transfer",
            "transaction[date]": "1794614400",
        },
    )
    rest = billing.post(
        f"invoices/{invoice['id']}/record_payment",
        {"transaction[payment_method]": "bank_transfer", "transaction[date]": "1794700800"},
    )

    assert partial.status_code == 200
    assert partial.json()["invoice"]["status"] == "posted"
    assert partial.json()["invoice"]["amount_due"] == invoice["total"] - 50000
    assert partial.json()["transaction"]["amount"] == 50000
    paid = rest.json()["invoice"]
    assert (paid["status"], paid["amount_due"], paid["amount_paid"], paid["paid_at"]) == (
        "paid",
        0,
        invoice["total"],
        1794700800,
    )
    assert len(paid["linked_payments"]) == 2


def test_a_payment_above_the_amount_due_is_refused(billing):
    make_customer(billing)
    billing.post("unbilled_charges", charges())
    invoice = billing.post("unbilled_charges/invoice_unbilled_charges", {"customer_id": "cust-northwind"}).json()[
        "invoices"
    ][0]

    response = billing.post(
        f"invoices/{invoice['id']}/record_payment",
        {
            "transaction[amount]": str(invoice["total"] + 1),
            "transaction[payment_method]": "cash",
            "transaction[date]": "1794614400",
        },
    )

    assert response.status_code == 400
    assert response.json()["param"] == "transaction[amount]"


def test_invoices_are_listed_with_chargebee_offsets(billing):
    for n in range(3):
        make_customer(billing, f"cust-{n}")
        billing.post("unbilled_charges", charges(f"cust-{n}", items=((1000 + n, f"ev-{n}"),)))
        billing.post("unbilled_charges/invoice_unbilled_charges", {"customer_id": f"cust-{n}"})

    first = billing.get("invoices", {"limit": 2}).json()
    second = billing.get("invoices", {"limit": 2, "offset": first["next_offset"]}).json()
    only_one = billing.get("invoices", {"customer_id[is]": "cust-1"}).json()

    assert [entry["invoice"]["customer_id"] for entry in first["list"]] == ["cust-0", "cust-1"]
    assert [entry["invoice"]["customer_id"] for entry in second["list"]] == ["cust-2"]
    assert "next_offset" not in second
    assert [entry["invoice"]["sub_total"] for entry in only_one["list"]] == [1001]


def test_a_json_body_is_refused_as_chargebee_does(billing):
    response = billing.client.post(
        billing.base + "customers",
        data='{"id": "x"}',
        content_type="application/json",
        headers={"Authorization": billing._headers(None)["Authorization"]},
    )

    assert response.status_code == 400
    assert "form-encoded" in response.json()["message"]


def test_it_wants_http_basic_with_the_api_key(vendor):
    response = vendor("billing", credential="").get("customers/anyone")

    assert response.status_code == 401
    assert response.json()["api_error_code"] == "api_authentication_failed"


def test_an_unknown_invoice_is_not_found(billing):
    response = billing.get("invoices/999999")

    assert response.status_code == 404
    assert response.json()["api_error_code"] == "resource_not_found"
