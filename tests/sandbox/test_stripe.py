"""The Stripe sandbox: form-encoded writes, Stripe error JSON, idempotent replays, invoices from pending items."""

from apps.sandbox.services import sandbox_faults_set, sandbox_records


def test_a_customer_is_created_from_form_parameters_with_metadata(vendor):
    stripe = vendor("stripe")
    answer = stripe.post("customers", {"name": "Globex", "email": "ap@globex.example", "metadata[number]": "C-1"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"].startswith("cus_") and body["object"] == "customer"
    assert body["metadata"] == {"number": "C-1"}


def test_a_json_body_is_refused_as_stripe_would(client, sandbox):
    answer = client.post(
        "/sandbox/stripe/v1/customers",
        data="{}",
        content_type="application/json",
        headers={"Authorization": "Bearer sk_test_x"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_a_repeated_idempotency_key_replays_the_first_answer(vendor):
    stripe = vendor("stripe")
    first = stripe.post("customers", {"name": "Globex"}, headers={"Idempotency-Key": "k-1"})
    again = stripe.post("customers", {"name": "Globex"}, headers={"Idempotency-Key": "k-1"})
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert sandbox_records("stripe", "customer").count() == 1


def test_pending_items_become_an_invoice_that_is_finalized_and_paid_out_of_band(vendor):
    stripe = vendor("stripe")
    customer = stripe.post("customers", {"name": "Globex"}).json()["id"]
    stripe.post("invoiceitems", {"customer": customer, "amount": "150000", "currency": "usd", "description": "Jan"})
    invoice = stripe.post(
        "invoices",
        {
            "customer": customer,
            "collection_method": "send_invoice",
            "days_until_due": "30",
            "pending_invoice_items_behavior": "include",
        },
    ).json()
    assert invoice["status"] == "draft" and invoice["total"] == 150000
    finalized = stripe.post(f"invoices/{invoice['id']}/finalize").json()
    assert finalized["status"] == "open" and finalized["number"]
    refused = stripe.post(f"invoices/{invoice['id']}/pay")
    assert refused.status_code == 402
    paid = stripe.post(f"invoices/{invoice['id']}/pay", {"paid_out_of_band": "true"}).json()
    assert paid["status"] == "paid" and paid["amount_remaining"] == 0
    again = stripe.post(f"invoices/{invoice['id']}/pay", {"paid_out_of_band": "true"})
    assert again.json()["error"]["code"] == "invoice_already_paid"


def test_errors_come_in_stripes_shape(vendor):
    stripe = vendor("stripe")
    missing = stripe.get("customers/cus_nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "message": "No such customer: 'cus_nope'",
        "param": "id",
        "doc_url": "https://stripe.com/docs/error-codes/resource_missing",
    }
    sandbox_faults_set("stripe", reject_next=1, reject_with="concurrency")
    locked = stripe.get("customers")
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "lock_timeout"
    unauthenticated = vendor("stripe", credential="").get("customers")
    assert unauthenticated.status_code == 401


def test_a_key_reused_on_another_endpoint_is_an_idempotency_error(vendor):
    stripe = vendor("stripe")
    customer = stripe.post("customers", {"name": "Globex"}, headers={"Idempotency-Key": "k-1"}).json()["id"]
    reused = stripe.post("products", {"name": "BS"}, headers={"Idempotency-Key": "k-1"})
    assert reused.status_code == 400
    assert reused.json()["error"]["type"] == "idempotency_error"
    assert customer
