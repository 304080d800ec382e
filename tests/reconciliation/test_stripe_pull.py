"""A Stripe invoice, as its API lists it, read as a billing-side row of the reconciliation snapshot."""

from apps.connectors.adapters.stripe import invoice_as_billing_row as _stripe_invoice_as_row
from apps.reconciliation.pulls import BILLING_NOT_POSTED, BILLING_OPEN


def stripe_invoice(**fields):
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_1",
        "currency": "gbp",
        "created": 1764547200,
        "status": "open",
        "subtotal": 1200000,
        "tax": None,
        "total": 1200000,
        "amount_due": 1200000,
        "amount_paid": 0,
        "amount_remaining": 1200000,
        "lines": {"object": "list", "data": [{"amount": 1200000, "metadata": {"reference": "BE-12"}}]},
        "status_transitions": {"finalized_at": 1764550800, "paid_at": None, "voided_at": None},
    }
    return {**invoice, **fields}


def test_an_open_stripe_invoice_is_due_with_its_charge_references_and_no_payment():
    row = _stripe_invoice_as_row(stripe_invoice())
    assert row["status"] in BILLING_OPEN
    assert (row["customer_id"], row["currency_code"], row["date"]) == ("cus_1", "gbp", 1764550800)
    assert (row["sub_total"], row["tax"], row["total"], row["amount_due"]) == (1200000, 0, 1200000, 1200000)
    assert row["line_items"] == [{"amount": 1200000, "tax_amount": 0, "reference": "BE-12"}]
    assert row["linked_payments"] == []


def test_a_stripe_invoice_paid_out_of_band_is_one_payment_of_its_amount_on_the_day_it_was_paid():
    paid = stripe_invoice(
        status="paid",
        amount_paid=1200000,
        amount_remaining=0,
        status_transitions={"finalized_at": 1764550800, "paid_at": 1764637200, "voided_at": None},
    )
    row = _stripe_invoice_as_row(paid)
    assert row["status"] == "paid" and row["amount_due"] == 0
    assert row["linked_payments"] == [{"txn_id": "in_1:paid", "applied_amount": 1200000, "txn_date": 1764637200}]
    with_intent = _stripe_invoice_as_row({**paid, "payment_intent": "pi_9"})
    assert with_intent["linked_payments"][0]["txn_id"] == "pi_9"


def test_a_draft_stripe_invoice_is_not_posted_and_a_void_one_is_voided():
    draft = _stripe_invoice_as_row(stripe_invoice(status="draft", status_transitions={}))
    assert draft["status"] in BILLING_NOT_POSTED and draft["date"] == 1764547200
    assert _stripe_invoice_as_row(stripe_invoice(status="void"))["status"] == "voided"
