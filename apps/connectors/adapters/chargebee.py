"""Chargebee (billing) through its API v2: form-encoded requests in Chargebee's bracket notation.

Amounts go out in the currency's minor unit (`charges[amount][0]=150000` is 1,500.00 USD), dates as
Unix seconds, and every write carries `Chargebee-Idempotency-Key`. Customers and billing schedules use
our own IDs (customer number, `BS-<project code>`): when Chargebee answers `duplicate_entry` for that
ID, an earlier attempt already created it, and we fetch and return it (`created=False`).
"""

import datetime
from collections.abc import Iterator
from decimal import Decimal

from apps.core.errors import BusinessError
from apps.core.money import to_minor_units
from apps.systems.models import CustomerMatchRule

from ..errors import TargetRejected
from ..http import PAGING_NEXT_OFFSET, path_segment
from ..interfaces import Charge, ExternalRecord
from ..matching import CustomerCandidate
from .base import Adapter, replayed, unix_seconds

CHARGES_PER_CALL = 100  # Chargebee's limit on repeated parameters in one request
PAGE_LIMIT = 100
# Our payment methods → Chargebee's offline payment_method values for record_payment.
PAYMENT_METHODS = {
    "wire": "bank_transfer",
    "bank_transfer": "bank_transfer",
    "ach": "ach_credit",
    "ach_credit": "ach_credit",
    "sepa": "sepa_credit",
    "sepa_credit": "sepa_credit",
    "check": "check",
    "cheque": "check",
    "cash": "cash",
    "card": "card",
    "chargeback": "chargeback",
}
CUSTOMER_FIELDS = ("company", "email", "preferred_currency_code", "cf_erp_customer_id")


def to_form(params: dict) -> list[tuple[str, str]]:
    """Chargebee's bracket notation: {"transaction": {"amount": 5}} → transaction[amount]=5,
    {"charges": [{"amount": 5}]} → charges[amount][0]=5; empty values are left out."""
    pairs = []
    for key, value in params.items():
        if isinstance(value, dict):
            pairs.extend((f"{key}[{sub}]", form_value(item)) for sub, item in value.items() if _present(item))
        elif isinstance(value, list):
            for index, entry in enumerate(value):
                pairs.extend(
                    (f"{key}[{sub}][{index}]", form_value(item)) for sub, item in entry.items() if _present(item)
                )
        elif _present(value):
            pairs.append((key, form_value(value)))
    return pairs


def _present(value) -> bool:
    return value is not None and value != ""


def form_value(value) -> str:
    """One value as Chargebee reads it: booleans as true/false, dates as Unix seconds, Decimals exactly."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return str(int(value.timestamp()))
    if isinstance(value, datetime.date):
        return str(unix_seconds(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


class ChargebeeBilling(Adapter):
    """Chargebee API v2 as the billing platform."""

    vendor_label = "Chargebee"
    idempotency_header = "Chargebee-Idempotency-Key"

    def parse_error(self, body) -> tuple[str, str]:
        """Chargebee answers {"message", "type", "api_error_code", "error_code", "param"?, "http_status_code"}."""
        if isinstance(body, dict) and ("api_error_code" in body or "error_code" in body):
            message = str(body.get("message", ""))
            if body.get("param") and body["param"] not in message:
                message = f"{message} (parameter {body['param']})"
            return message, str(body.get("api_error_code") or body.get("error_code") or "")
        return super().parse_error(body)

    def upsert_customer(self, *, customer, erp_customer_id: str | None, idempotency_key: str) -> ExternalRecord:
        """Create the billing customer with our customer number as its ID; one already there is brought up to date."""
        params = {
            "id": customer.number,
            "company": customer.name,
            "email": customer.billing_email,
            "preferred_currency_code": customer.currency,
            "cf_erp_customer_id": erp_customer_id,
        }
        record = self._create_or_fetch(
            "customers", "customer", customer.number, params, idempotency_key, f"create customer {customer.number}"
        )
        changed = {
            name: params[name]
            for name in CUSTOMER_FIELDS
            if params[name] not in (None, "") and str(record.data.get(name) or "") != str(params[name])
        }
        if record.created or not changed:
            return record
        action = f"update customer {customer.number} ({', '.join(changed)})"
        body, _ = self._post(f"customers/{path_segment(record.id)}", changed, f"{idempotency_key}:update", action)
        return ExternalRecord(id=record.id, data=body.get("customer") or record.data, created=False)

    def create_billing_schedule(
        self, *, schedule, customer_billing_id: str, project_ref: str, idempotency_key: str
    ) -> ExternalRecord:
        """Create a project's billing schedule (ID `BS-<project code>`, kept across revisions)."""
        schedule_id = schedule_id_for(schedule)
        params = {
            "id": schedule_id,
            "customer_id": customer_billing_id,
            "project_ref": project_ref,
            "frequency": schedule.frequency,
            "billing_method": schedule.billing_method,
            "start_date": schedule.start_date,
            "currency_code": schedule.currency,
            "revision": schedule.revision,
        }
        return self._create_or_fetch(
            "billing_schedules",
            "billing_schedule",
            schedule_id,
            params,
            idempotency_key,
            f"create the billing schedule of project {schedule.project.code}",
        )

    def revise_billing_schedule(self, record_id: str, *, schedule, idempotency_key: str) -> ExternalRecord:
        """Replace a billing schedule's terms with a new revision."""
        action = f"revise billing schedule {record_id} to revision {schedule.revision}"
        params = {
            "frequency": schedule.frequency,
            "billing_method": schedule.billing_method,
            "start_date": schedule.start_date,
            "currency_code": schedule.currency,
            "revision": schedule.revision,
        }
        body, _ = self._post(f"billing_schedules/{path_segment(record_id)}", params, idempotency_key, action)
        record = body.get("billing_schedule") if isinstance(body, dict) else None
        if not record:
            raise self.missing_in_answer("billing schedule", action, body)
        return ExternalRecord(id=str(record.get("id", record_id)), data=record, created=False)

    def post_charges(
        self, *, customer_billing_id: str, currency: str, charges: list[Charge], idempotency_key: str
    ) -> list[ExternalRecord]:
        """Create unbilled charges for a customer; a charge whose reference Chargebee already has is not doubled."""
        wrong = [charge for charge in charges if charge.currency != currency]
        if wrong:
            raise BusinessError(
                f"Charge {wrong[0].reference} is in {wrong[0].currency} but customer {customer_billing_id} is billed "
                f"in {currency} here; charges of one call must share the customer's billing currency.",
                fix="Split the charges by currency, or correct the billing currency of the project.",
            )
        records = []
        batches = [charges[i : i + CHARGES_PER_CALL] for i in range(0, len(charges), CHARGES_PER_CALL)]
        for number, batch in enumerate(batches, start=1):
            key = idempotency_key if len(batches) == 1 else f"{idempotency_key}:{number}"
            params = {
                "customer_id": customer_billing_id,
                "currency_code": currency,
                "charges": [
                    {
                        "amount": to_minor_units(charge.amount, currency),
                        "description": charge.description,
                        "date_from": unix_seconds(charge.date_from),
                        "date_to": unix_seconds(charge.date_to, end_of_day=True),
                        "reference": charge.reference,
                    }
                    for charge in batch
                ],
            }
            action = f"post {len(batch)} charge(s) for customer {customer_billing_id}"
            body, again = self._post("unbilled_charges", params, key, action)
            for item in body.get("unbilled_charges") or []:
                records.append(ExternalRecord(id=str(item.get("id")), data=item, created=not again))
        return records

    def invoice_charges(self, *, customer_billing_id: str, idempotency_key: str) -> list[ExternalRecord]:
        """Turn the customer's unbilled charges into an invoice now."""
        action = f"invoice the unbilled charges of customer {customer_billing_id}"
        body, again = self._post(
            "unbilled_charges/invoice_unbilled_charges", {"customer_id": customer_billing_id}, idempotency_key, action
        )
        return [
            ExternalRecord(id=str(item.get("id")), data=item, created=not again) for item in body.get("invoices") or []
        ]

    def record_payment(
        self, invoice_id: str, *, amount: Decimal, method: str, paid_on: datetime.date, idempotency_key: str
    ) -> ExternalRecord:
        """Record an offline payment against an invoice (its currency is read from the invoice)."""
        invoice = self.http.get_json(f"invoices/{path_segment(invoice_id)}", action=f"read invoice {invoice_id}")
        invoice = invoice.get("invoice", invoice) if isinstance(invoice, dict) else {}
        currency = invoice.get("currency_code")
        if not currency:
            raise self.missing_in_answer("currency", f"read invoice {invoice_id}", invoice)
        action = f"record a payment of {amount} {currency} on invoice {invoice_id}"
        params = {
            "transaction": {
                "amount": to_minor_units(amount, currency),
                "payment_method": PAYMENT_METHODS.get((method or "").lower(), "other"),
                "date": paid_on,
            }
        }
        body, again = self._post(f"invoices/{path_segment(invoice_id)}/record_payment", params, idempotency_key, action)
        transaction = body.get("transaction") or {}
        return ExternalRecord(id=str(transaction.get("id") or invoice_id), data=body, created=not again)

    def find_customers(self, *, customer, rules: list[str]) -> list[CustomerCandidate]:
        """Customers that may be ours: Chargebee filters its customer list by id, e-mail and company only, so a
        tax ID or an e-mail domain is compared on the customers those searches find."""
        searches = {"id[is]": customer.number, "company[is]": customer.name}
        if customer.billing_email:
            searches["email[is]"] = customer.billing_email
        found = {}
        for param, value in searches.items():
            if param == "id[is]" and CustomerMatchRule.EXTERNAL_ID not in rules:
                continue
            entries = self.http.paginate(
                "customers",
                style=PAGING_NEXT_OFFSET,
                params={param: value},
                page_size=PAGE_LIMIT,
                action=f"look for customer {customer.number} by {param[:-4]}",
            )
            for entry in entries:
                data = entry.get("customer", entry)
                found.setdefault(str(data.get("id")), data)
        return [
            CustomerCandidate(
                id=record_id,
                name=str(data.get("company") or ""),
                email=str(data.get("email") or ""),
                tax_id=str(data.get("vat_number") or ""),
                data=data,
            )
            for record_id, data in found.items()
        ]

    def list_invoices(self, *, page_size: int = 100) -> Iterator[dict]:
        """Every invoice, oldest pages first as Chargebee lists them."""
        entries = self.http.paginate(
            "invoices", style=PAGING_NEXT_OFFSET, page_size=min(page_size, PAGE_LIMIT), action="list invoices"
        )
        for entry in entries:
            yield entry.get("invoice", entry)

    def list_billing_schedules(self, *, page_size: int = 100) -> Iterator[dict]:
        """Every billing schedule (ours are `BS-<project code>`, with the project code in `project_ref`)."""
        entries = self.http.paginate(
            "billing_schedules",
            style=PAGING_NEXT_OFFSET,
            page_size=min(page_size, PAGE_LIMIT),
            action="list billing schedules",
        )
        for entry in entries:
            yield entry.get("billing_schedule", entry)

    def _post(self, path: str, params: dict, idempotency_key: str, action: str) -> tuple[dict, bool]:
        """POST form parameters; the answer's JSON and whether it was replayed from an earlier attempt."""
        response = self.http.request("POST", path, data=to_form(params), idempotency_key=idempotency_key, action=action)
        body = self.http.json(response, action=action)
        return (body if isinstance(body, dict) else {}), replayed(response)

    def _create_or_fetch(
        self, collection: str, key: str, our_id: str, params: dict, idempotency_key: str, action: str
    ) -> ExternalRecord:
        try:
            body, again = self._post(collection, params, idempotency_key, action)
        except TargetRejected as exc:
            if exc.vendor_code != "duplicate_entry" or our_id not in exc.vendor_message:
                raise
            found = self.http.get_json(f"{collection}/{path_segment(our_id)}", action=f"read {key} {our_id}")
            record = found.get(key) if isinstance(found, dict) else None
            if not record:
                raise self.missing_in_answer(key, f"read {key} {our_id}", found) from exc
            return ExternalRecord(id=str(record.get("id", our_id)), data=record, created=False)
        record = body.get(key)
        if not record:
            raise self.missing_in_answer(key, action, body)
        return ExternalRecord(id=str(record.get("id", our_id)), data=record, created=not again)


def schedule_id_for(schedule) -> str:
    """Our ID of a project's billing schedule in Chargebee, the same for every revision."""
    return f"BS-{schedule.project.code}"
