"""Stripe (billing) through its API: form-encoded customers, invoice items, invoices and out-of-band payments.

Amounts go out as integers in the currency's smallest unit and currencies in lower case. Every write sends
`Idempotency-Key` (Stripe keeps keys for 24 hours and answers a repeat from its store), so a retried step
never makes a second customer, invoice item or invoice. A project's billing schedule is a Stripe product
with our ID (`BS-<project code>`) carrying the schedule's terms in its metadata; charges are invoice items
(`metadata[reference]` is our billing event key), invoiced by creating an invoice that includes the
customer's pending items and finalizing it. Money received elsewhere is recorded by paying the invoice
out of band (Stripe records only whole invoices that way).

Errors: Stripe answers `{"error": {"type", "code", "message", "param"}}`. `resource_already_exists` is a
duplicate, `lock_timeout` (429) a concurrency limit, `idempotency_error` a key reused with other
parameters; 401/403/404 are permanent, 429 and 5xx transient.
"""

import datetime
from collections.abc import Iterator
from decimal import Decimal

from apps.core.errors import BusinessError
from apps.core.money import from_minor_units, to_minor_units
from apps.systems.models import CustomerMatchRule

from ..errors import ConcurrencyError, ConnectorError, PermanentError, TargetRejected
from ..http import path_segment
from ..interfaces import Charge, ExternalRecord
from ..matching import CustomerCandidate
from .base import Adapter, replayed, unix_seconds
from .chargebee import schedule_id_for, to_form

DAYS_UNTIL_DUE = 30
PAGE_LIMIT = 100


def search_literal(value: str) -> str:
    """A quoted value for Stripe's search language (quotes and backslashes escaped)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def stripe_candidate(record_id: str, data: dict) -> CustomerCandidate:
    """A Stripe customer as a match candidate; our customer number is in its metadata when we created it."""
    metadata = data.get("metadata") or {}
    tax_ids = (data.get("tax_ids") or {}).get("data") or []
    return CustomerCandidate(
        id=record_id,
        name=str(data.get("name") or ""),
        email=str(data.get("email") or ""),
        tax_id=str(tax_ids[0].get("value") or "") if tax_ids else "",
        external_id=str(metadata.get("customer_number") or ""),
        data=data,
    )


class StripeBilling(Adapter):
    """The Stripe API (secret key as bearer, or as Basic user name) as the billing platform."""

    vendor_label = "Stripe"

    def parse_error(self, body) -> tuple[str, str]:
        """Stripe: {"error": {"type", "code", "message", "param"}}; the code, or the type when there is none."""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            message = str(error.get("message", ""))
            if error.get("param") and error["param"] not in message:
                message = f"{message} (parameter {error['param']})"
            return message, str(error.get("code") or error.get("type") or "")
        return super().parse_error(body)

    # --- customers ---------------------------------------------------------------------------------------

    def upsert_customer(self, *, customer, erp_customer_id: str | None, idempotency_key: str) -> ExternalRecord:
        """Create the customer (Stripe makes its ID); our customer number and ERP ID go in its metadata."""
        params = {
            "name": customer.name,
            "email": customer.billing_email,
            "metadata": {"customer_number": customer.number, "erp_customer_id": erp_customer_id},
        }
        body, again = self._post("customers", params, idempotency_key, f"create customer {customer.number}")
        return ExternalRecord(id=str(body["id"]), data=body, created=not again)

    # --- billing schedules as products ---------------------------------------------------------------------

    def create_billing_schedule(
        self, *, schedule, customer_billing_id: str, project_ref: str, idempotency_key: str
    ) -> ExternalRecord:
        """A product `BS-<project code>` holding the schedule's terms; one already there is returned."""
        product_id = schedule_id_for(schedule)
        params = {
            "id": product_id,
            "name": f"Project {schedule.project.code} billing",
            "metadata": {"customer": customer_billing_id, "project_ref": project_ref, **self._terms(schedule)},
        }
        action = f"create the billing schedule of project {schedule.project.code}"
        try:
            body, again = self._post("products", params, idempotency_key, action)
        except TargetRejected as exc:
            if exc.vendor_code != "resource_already_exists":
                raise
            found = self._get(f"products/{path_segment(product_id)}", f"read product {product_id}")
            return ExternalRecord(id=product_id, data=found, created=False)
        return ExternalRecord(id=str(body["id"]), data=body, created=not again)

    def revise_billing_schedule(self, record_id: str, *, schedule, idempotency_key: str) -> ExternalRecord:
        """New terms on the schedule's product (same ID for every revision)."""
        action = f"revise billing schedule {record_id} to revision {schedule.revision}"
        body, _ = self._post(
            f"products/{path_segment(record_id)}", {"metadata": self._terms(schedule)}, idempotency_key, action
        )
        return ExternalRecord(id=str(body.get("id", record_id)), data=body, created=False)

    @staticmethod
    def _terms(schedule) -> dict:
        return {
            "frequency": schedule.frequency,
            "billing_method": schedule.billing_method,
            "start_date": schedule.start_date.isoformat(),
            "currency": schedule.currency,
            "revision": schedule.revision,
        }

    # --- charges, invoices, payments -----------------------------------------------------------------------

    def post_charges(
        self, *, customer_billing_id: str, currency: str, charges: list[Charge], idempotency_key: str
    ) -> list[ExternalRecord]:
        """One pending invoice item per charge; each has its own key, so a retry never doubles one."""
        wrong = [charge for charge in charges if charge.currency != currency]
        if wrong:
            raise BusinessError(
                f"Charge {wrong[0].reference} is in {wrong[0].currency} but customer {customer_billing_id} is billed "
                f"in {currency} here; charges of one call must share the customer's billing currency.",
                fix="Split the charges by currency, or correct the billing currency of the project.",
            )
        created = []
        for charge in charges:
            params = {
                "customer": customer_billing_id,
                "amount": to_minor_units(charge.amount, currency),
                "currency": currency.lower(),
                "description": charge.description,
                "period": {
                    "start": unix_seconds(charge.date_from),
                    "end": unix_seconds(charge.date_to, end_of_day=True),
                },
                "metadata": {"reference": charge.reference},
            }
            body, again = self._post(
                "invoiceitems",
                params,
                f"{idempotency_key}:{charge.reference}",
                f"post charge {charge.reference} for customer {customer_billing_id}",
            )
            created.append(ExternalRecord(id=str(body["id"]), data=body, created=not again))
        return created

    def invoice_charges(self, *, customer_billing_id: str, idempotency_key: str) -> list[ExternalRecord]:
        """Invoice the customer's pending items now: create the invoice (send_invoice, 30 days) and finalize it."""
        action = f"invoice the pending charges of customer {customer_billing_id}"
        params = {
            "customer": customer_billing_id,
            "collection_method": "send_invoice",
            "days_until_due": DAYS_UNTIL_DUE,
            "pending_invoice_items_behavior": "include",
            "auto_advance": False,
        }
        try:
            invoice, again = self._post("invoices", params, idempotency_key, action)
        except TargetRejected as exc:
            if exc.vendor_code == "invoice_no_customer_line_items":
                return []  # nothing pending: nothing to invoice
            raise
        if invoice.get("status") == "draft":
            try:
                invoice, _ = self._post(
                    f"invoices/{path_segment(invoice['id'])}/finalize",
                    {},
                    f"{idempotency_key}:finalize",
                    f"finalize invoice {invoice['id']}",
                )
            except TargetRejected as exc:
                if exc.vendor_code != "invoice_not_editable":
                    raise
                invoice = self._get(f"invoices/{path_segment(invoice['id'])}", f"read invoice {invoice['id']}")
        return [ExternalRecord(id=str(invoice["id"]), data=invoice, created=not again)]

    def record_payment(
        self, invoice_id: str, *, amount: Decimal, method: str, paid_on: datetime.date, idempotency_key: str
    ) -> ExternalRecord:
        """Mark the invoice paid out of band; Stripe records only the whole remaining amount that way."""
        invoice = self._get(f"invoices/{path_segment(invoice_id)}", f"read invoice {invoice_id}")
        currency = str(invoice.get("currency") or "").upper()
        if invoice.get("status") == "paid":
            return ExternalRecord(id=invoice_id, data=invoice, created=False)
        remaining = from_minor_units(int(invoice.get("amount_remaining") or 0), currency)
        if amount != remaining:
            raise BusinessError(
                f"A payment of {amount} {currency} cannot be recorded on Stripe invoice "
                f"{invoice.get('number') or invoice_id}: "
                f"Stripe records money received elsewhere only for the whole remaining {remaining} {currency}.",
                fix="Record the partial payment in the ERP, or apply it in Stripe as a credit note or balance.",
                technical=f"amount_remaining={invoice.get('amount_remaining')} method={method} paid_on={paid_on}",
            )
        action = f"record a payment of {amount} {currency} on invoice {invoice.get('number') or invoice_id}"
        try:
            body, again = self._post(
                f"invoices/{path_segment(invoice_id)}/pay", {"paid_out_of_band": True}, idempotency_key, action
            )
        except TargetRejected as exc:
            if exc.vendor_code != "invoice_already_paid":
                raise
            return ExternalRecord(id=invoice_id, data=self._get(f"invoices/{invoice_id}", action), created=False)
        return ExternalRecord(id=invoice_id, data=body, created=not again)

    def list_invoices(self, *, page_size: int = 100) -> Iterator[dict]:
        """Every invoice, newest first, page after page (`starting_after` the last one seen), in the shape every
        billing connector lists invoices in (`invoice_as_billing_row`)."""
        params = {"limit": min(page_size, PAGE_LIMIT)}
        while True:
            body = self._get("invoices", "list invoices", params=params)
            items = body.get("data", [])
            yield from map(invoice_as_billing_row, items)
            if not body.get("has_more") or not items:
                return
            params = {"limit": min(page_size, PAGE_LIMIT), "starting_after": items[-1]["id"]}

    def find_customers(self, *, customer, rules: list[str]) -> list[CustomerCandidate]:
        """Customers that may be ours: one `customers/search` query with a clause per rule (our number in
        `metadata['customer_number']`, the name, the e-mail or its domain), and the exact e-mail list, which,
        unlike search, also sees customers created in the last minute. Stripe cannot search by tax ID: the
        `tax_id` rule is compared on `tax_ids` where an answer carries them."""
        clauses = []
        if CustomerMatchRule.EXTERNAL_ID in rules and customer.number:
            clauses.append(f"metadata['customer_number']:{search_literal(customer.number)}")
        if CustomerMatchRule.NAME in rules and customer.name:
            clauses.append(f"name:{search_literal(customer.name)}")
        email = (customer.billing_email or "").strip()
        if CustomerMatchRule.EMAIL in rules and email:
            clauses.append(f"email:{search_literal(email)}")
        domain = email.rpartition("@")[2] if "@" in email else ""
        if CustomerMatchRule.EMAIL_DOMAIN in rules and len(domain) >= 3:
            clauses.append(f"email~{search_literal('@' + domain)}")
        found: dict[str, dict] = {}
        if clauses:
            params = {"query": " OR ".join(clauses), "limit": PAGE_LIMIT}
            action = f"search for customer {customer.number} in Stripe"
            while True:
                body = self._get("customers/search", action, params=params)
                for data in body.get("data", []):
                    found.setdefault(str(data.get("id")), data)
                if not body.get("has_more") or not body.get("next_page"):
                    break
                params = {**params, "page": body["next_page"]}
        if CustomerMatchRule.EMAIL in rules and email:
            listed = self._get("customers", f"look up customers by e-mail {email}", params={"email": email})
            for data in listed.get("data", []):
                found.setdefault(str(data.get("id")), data)
        return [stripe_candidate(record_id, data) for record_id, data in found.items()]

    # --- HTTP --------------------------------------------------------------------------------------------

    def _get(self, path: str, action: str, params=None) -> dict:
        try:
            body = self.http.get_json(path, params=params, action=action)
        except ConnectorError as error:
            raise self.classify(error, action) from error
        return body if isinstance(body, dict) else {}

    def _post(self, path: str, params: dict, idempotency_key: str, action: str) -> tuple[dict, bool]:
        """POST form parameters; the answer's JSON and whether Stripe replayed it from an earlier attempt."""
        try:
            response = self.http.request(
                "POST", path, data=to_form(params), idempotency_key=idempotency_key, action=action
            )
        except ConnectorError as error:
            raise self.classify(error, action) from error
        body = self.http.json(response, action=action)
        if not isinstance(body, dict) or not body.get("id"):
            raise self.missing_in_answer("object ID", action, body)
        return body, replayed(response)

    def classify(self, error: ConnectorError, action: str) -> ConnectorError:
        """Stripe's error codes in business words."""
        details = {
            "technical": error.technical,
            "system": error.system,
            "status": error.status,
            "vendor_code": error.vendor_code,
            "vendor_message": error.vendor_message,
            "response_body": error.response_body,
        }
        if error.vendor_code == "lock_timeout":
            return ConcurrencyError(
                f"Stripe was busy with another request on the same record while we tried to {action}.", **details
            )
        if error.vendor_code == "resource_already_exists":
            return TargetRejected(
                f"Stripe already has that record, so it refused to {action}: {error.vendor_message}",
                fix="Link the existing Stripe record instead of creating it again.",
                **details,
            )
        if error.vendor_code in ("idempotency_error", "idempotency_key_in_use"):
            return PermanentError(
                f"Stripe refused to {action}: the step's idempotency key was already used for a different request.",
                fix="Report this to the integration team: the step's parameters changed between attempts.",
                **details,
            )
        return error


# Stripe invoice statuses in the billing interface's words (Chargebee's): open is due, draft not yet posted.
STRIPE_STATUS = {
    "draft": "pending",
    "open": "payment_due",
    "paid": "paid",
    "void": "voided",
    "uncollectible": "not_paid",
}


def invoice_as_billing_row(item: dict) -> dict:
    """A Stripe invoice in the shape the billing snapshot reads (amounts stay in the smallest unit).

    Stripe records a payment made elsewhere by paying the whole invoice out of band: the amount paid,
    on the day it was marked paid, stands for the payment applied to it.
    """
    transitions = item.get("status_transitions") or {}
    lines = (item.get("lines") or {}).get("data") or []
    paid = int(item.get("amount_paid") or 0)
    return {
        "id": item.get("id", ""),
        "customer_id": item.get("customer", ""),
        "currency_code": item.get("currency", ""),
        "date": transitions.get("finalized_at") or item.get("created"),
        "status": STRIPE_STATUS.get(str(item.get("status") or ""), str(item.get("status") or "")),
        "sub_total": item.get("subtotal"),
        "tax": item.get("tax") or 0,
        "total": item.get("total"),
        "amount_paid": paid,
        "amount_due": item.get("amount_remaining", item.get("amount_due")),
        "line_items": [
            {"amount": line.get("amount"), "tax_amount": 0, "reference": (line.get("metadata") or {}).get("reference")}
            for line in lines
        ],
        "linked_payments": [
            {
                "txn_id": item.get("payment_intent") or f"{item.get('id')}:paid",
                "applied_amount": paid,
                "txn_date": transitions.get("paid_at"),
            }
        ]
        if paid
        else [],
    }
