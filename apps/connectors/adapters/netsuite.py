"""NetSuite (ERP) through its REST record service.

Every write is an upsert by external ID, `PUT <record>/eid:<our key>`: our customer number, project
code, invoice number and payment reference are the external IDs, so a repeated write can never make a
second record (natural idempotency), and `Idempotency-Key` is sent as well. NetSuite answers 204 with
the record's `Location`; we read the record back so callers get NetSuite's own view (internal ID, totals
it computed, amount remaining). Before writing we look the external ID up: a customer or project found
there is updated (`created=False`); an invoice or payment found there was already posted and is
returned as is, since AR documents must not be rewritten by a retry.
"""

from collections.abc import Iterator

from apps.systems.models import CustomerMatchRule

from ..errors import PermanentError
from ..http import PAGING_LINKS, path_segment
from ..interfaces import ExternalRecord, InvoiceLineSpec
from ..matching import CustomerCandidate
from .base import Adapter, drop_empty, replayed

REFERENCE_RECORDS = {
    "subsidiary": "subsidiary",
    "currency": "currency",
    "tax_code": "salesTaxItem",
    "exchange_rate": "currencyRate",
    "department": "department",
    "class": "classification",
    "item": "item",
}


class NetSuiteERP(Adapter):
    """NetSuite REST web services (record API v1) as the ERP."""

    vendor_label = "NetSuite"
    oauth_token_path = "/services/rest/auth/oauth2/v1/token"

    def parse_error(self, body) -> tuple[str, str]:
        """NetSuite answers problem JSON: {"title", "status", "o:errorDetails": [{"detail", "o:errorCode"}]}."""
        if isinstance(body, dict) and isinstance(body.get("o:errorDetails"), list):
            details = [d for d in body["o:errorDetails"] if isinstance(d, dict)]
            message = "; ".join(str(d.get("detail", "")) for d in details) or str(body.get("title", ""))
            return message, str(details[0].get("o:errorCode", "")) if details else ""
        return super().parse_error(body)

    def fetch(self, record_type: str, record_id: str) -> dict:
        """One record by internal ID (or 'eid:<external ID>')."""
        return self.http.get_json(
            f"{path_segment(record_type)}/{path_segment(record_id)}", action=f"read {record_type} {record_id}"
        )

    def upsert_customer(
        self, *, customer, subsidiary_id: str, currency_id: str, idempotency_key: str, record_id: str | None = None
    ) -> ExternalRecord:
        """Create or update the customer whose external ID is our customer number."""
        fields = drop_empty(
            {
                "entityId": customer.number,
                "companyName": customer.name,
                "subsidiary": {"id": subsidiary_id},
                "currency": {"id": currency_id},
                "email": customer.billing_email,
                "vatRegNumber": customer.tax_id,
                "isInactive": customer.status == "inactive",
            }
        )
        return self._upsert("customer", customer.number, fields, idempotency_key, f"upsert customer {customer.number}")

    def find_customers(self, *, customer, rules: list[str]) -> list[CustomerCandidate]:
        """Customers that may be ours, by `q=<field> IS "<value>"` on the record list, read in full.

        A customer whose external ID is already something other than our number belongs to another
        integration and is never offered; an e-mail domain is compared on what the other searches find.
        """
        searches = {CustomerMatchRule.EXTERNAL_ID: ("externalId", customer.number)}
        searches[CustomerMatchRule.NAME] = ("companyName", customer.name)
        searches[CustomerMatchRule.EMAIL] = ("email", customer.billing_email)
        searches[CustomerMatchRule.TAX_ID] = ("vatRegNumber", customer.tax_id)
        ids: list[str] = []
        for rule, (field, value) in searches.items():
            if rule not in rules or not value:
                continue
            escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
            items = self.http.paginate(
                "customer",
                style=PAGING_LINKS,
                params={"q": f'{field} IS "{escaped}"'},
                action=f"look for customer {customer.number} by {field}",
            )
            ids += [str(item["id"]) for item in items if str(item["id"]) not in ids]
        candidates = []
        for record_id in ids:
            data = self.fetch("customer", record_id)
            external_id = str(data.get("externalId") or "")
            if external_id and external_id != customer.number:
                continue
            candidates.append(
                CustomerCandidate(
                    id=record_id,
                    name=str(data.get("companyName") or ""),
                    email=str(data.get("email") or ""),
                    tax_id=str(data.get("vatRegNumber") or ""),
                    external_id=external_id,
                    subsidiary_id=str((data.get("subsidiary") or {}).get("id") or ""),
                    data=data,
                )
            )
        return candidates

    def adopt_customer(self, record_id: str, *, customer, idempotency_key: str) -> None:
        """Give an existing NetSuite customer our customer number as its external ID, so every later upsert
        (`PUT customer/eid:<number>`) updates it instead of creating a second one."""
        self.http.request(
            "PATCH",
            f"customer/{path_segment(record_id)}",
            json={"externalId": customer.number},
            idempotency_key=idempotency_key,
            action=f"link customer {record_id} to {customer.number}",
        )

    def upsert_financial_project(
        self, *, project, customer_erp_id: str, subsidiary_id: str, idempotency_key: str
    ) -> ExternalRecord:
        """Create or update the financial project (job) whose external ID is our project code."""
        fields = drop_empty(
            {
                "entityId": project.code,
                "companyName": project.name,
                "parent": {"id": customer_erp_id},
                "subsidiary": {"id": subsidiary_id},
                "startDate": project.start_date,
                "projectedEndDate": project.end_date,
            }
        )
        return self._upsert("job", project.code, fields, idempotency_key, f"upsert financial project {project.code}")

    def post_invoice(
        self, *, invoice, customer_erp_id: str, lines: list[InvoiceLineSpec], idempotency_key: str
    ) -> ExternalRecord:
        """Post an invoice to AR once; a retry finds it by external ID (our invoice number) and returns it."""
        fields = drop_empty(
            {
                "entity": {"id": customer_erp_id},
                "tranId": invoice.number,
                "tranDate": invoice.issue_date,
                "dueDate": invoice.due_date,
                "item": {
                    "items": [
                        drop_empty(
                            {
                                "item": {"id": line.item_id},
                                "description": line.description,
                                "quantity": line.quantity,
                                "amount": line.amount,
                                "taxCode": {"id": line.tax_code_id},
                            }
                        )
                        for line in lines
                    ]
                },
            }
        )
        return self._upsert(
            "invoice", invoice.number, fields, idempotency_key, f"post invoice {invoice.number}", post_once=True
        )

    def apply_payment(
        self, *, payment, customer_erp_id: str, invoice_erp_id: str, idempotency_key: str
    ) -> ExternalRecord:
        """Record a customer payment applied to one invoice, once (external ID: the payment reference)."""
        fields = {
            "customer": {"id": customer_erp_id},
            "payment": payment.amount,
            "tranDate": payment.received_on,
            "memo": payment.reference,
            "apply": {"items": [{"doc": {"id": invoice_erp_id}, "amount": payment.amount, "apply": True}]},
        }
        return self._upsert(
            "customerPayment",
            payment.reference,
            fields,
            idempotency_key,
            f"apply payment {payment.reference} of {payment.amount} {payment.currency}",
            post_once=True,
        )

    def list_invoices(self, *, page_size: int = 100) -> Iterator[dict]:
        """Every invoice, as full records."""
        for item in self.http.paginate("invoice", style=PAGING_LINKS, page_size=page_size, action="list invoices"):
            yield self._full_record("invoice", item)

    def list_payments(self, *, page_size: int = 100) -> Iterator[dict]:
        """Every customer payment with its applications to invoices, as full records."""
        yield from self.list_records("customerPayment", page_size=page_size)

    def list_records(self, record_type: str, *, page_size: int = 100) -> Iterator[dict]:
        """Every record of a type, as full records; an incomplete listing (a page short) raises, never truncates."""
        action = f"list {record_type} records"
        url, query, seen, expected = record_type, {"limit": page_size, "offset": 0}, 0, None
        while url:
            body = self.http.get_json(url, params=query, action=action)
            items = body.get("items", [])
            expected = body.get("totalResults", expected)
            for item in items:
                seen += 1
                yield self._full_record(record_type, item)
            next_href = next((link.get("href") for link in body.get("links", []) if link.get("rel") == "next"), None)
            if not next_href or body.get("hasMore") is False:
                break
            url, query = next_href, None
        if expected is not None and seen != expected:
            raise PermanentError(
                f"{self.name} listed {seen} {record_type} records but said it holds {expected}; a page is missing.",
                fix=f"Run the reconciliation again; if it keeps happening, tell the owner of {self.name}.",
                technical=f"{action}: {seen} items received, totalResults {expected}",
                system=self.system.slug,
            )

    def reference_data(self, kind: str) -> list[dict]:
        """kind: 'subsidiary', 'currency', 'tax_code', 'exchange_rate', 'department', 'class', 'item'."""
        if kind not in REFERENCE_RECORDS:
            raise ValueError(f"Unknown reference data kind {kind!r}; known: {', '.join(REFERENCE_RECORDS)}")
        record_type = REFERENCE_RECORDS[kind]
        items = self.http.paginate(record_type, style=PAGING_LINKS, action=f"list {kind.replace('_', ' ')}s")
        return [self._full_record(record_type, item) for item in items]

    def _full_record(self, record_type: str, item: dict) -> dict:
        """NetSuite lists give {"id", "links"}; fetch the record unless the list already carried its fields."""
        if set(item) - {"id", "links"}:
            return item
        return self.fetch(record_type, str(item["id"]))

    def _find_external(self, record_type: str, external_id: str) -> dict | None:
        try:
            return self.fetch(record_type, f"eid:{external_id}")
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise

    def _upsert(
        self, record_type: str, external_id: str, fields: dict, idempotency_key: str, action: str, post_once=False
    ) -> ExternalRecord:
        existing = self._find_external(record_type, external_id)
        if existing is not None and post_once:
            return ExternalRecord(id=str(existing.get("id")), data=existing, created=False)
        response = self.http.request(
            "PUT",
            f"{record_type}/eid:{path_segment(external_id)}",
            json=fields,
            idempotency_key=idempotency_key,
            action=action,
        )
        location = response.headers.get("Location", "")
        internal_id = location.rstrip("/").rsplit("/", 1)[-1] if location else ""
        if not internal_id or internal_id.startswith("eid:"):
            record = self.fetch(record_type, f"eid:{external_id}")
        else:
            record = self.fetch(record_type, internal_id)
        if not record.get("id"):
            raise self.missing_in_answer(f"{record_type} internal ID", action, record)
        return ExternalRecord(id=str(record["id"]), data=record, created=existing is None and not replayed(response))
