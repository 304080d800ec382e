"""Dynamics 365 Business Central (ERP) through its API v2.0 (OData v4), one company per connected system.

The system's base URL is the company's API root (`…/api/v2.0/companies(<id>)/`). Customers and projects are
found by number (our customer number, our project code) with `$filter`, then created or changed; every
change sends the record's `@odata.etag` as `If-Match`, and a 412 (someone changed it since we read it) is
a `ConcurrencyError`: the step is retried and reads the record again. Sales invoices are created with
their lines in one deep insert (`externalDocumentNumber` = our invoice number, how a retry finds it) and
posted with the `Microsoft.NAV.post` action; payments are customer payments applied to the invoice.
Lists follow `@odata.nextLink`. Webhooks need a subscription, which Business Central creates only after
the notification URL echoes its `validationToken` (the console's inbound endpoint does).

Errors: `{"error": {"code", "message"}}`. `Internal_EntityWithSameKeyExists` is a duplicate,
`Request_EntityChanged` (412) a concurrency conflict, `BadRequest_NotFound` a missing record,
`Authentication_*` credentials; 429 and 5xx are transient.
"""

from collections.abc import Iterator
from urllib.parse import quote

from apps.core.errors import BusinessError
from apps.systems.models import CustomerMatchRule

from ..errors import ConcurrencyError, ConnectorError, PermanentError, TargetRejected
from ..interfaces import ExternalRecord, InvoiceLineSpec
from ..matching import CustomerCandidate
from .base import Adapter, drop_empty

ENTITY_SETS = {
    "customer": "customers",
    "project": "projects",
    "salesInvoice": "salesInvoices",
    "salesInvoiceLine": "salesInvoiceLines",
    "customerPayment": "customerPayments",
    "item": "items",
    "currency": "currencies",
    "taxGroup": "taxGroups",
}
REFERENCE_SETS = {
    "currency": "currencies",
    "tax_code": "taxGroups",
    "item": "items",
    "department": "dimensionValues",
}


def odata_literal(value: str) -> str:
    """A string literal for $filter: quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def key(record_id: str) -> str:
    """An OData key segment: (<guid>)."""
    return f"({quote(str(record_id), safe='-')})"


class BusinessCentralERP(Adapter):
    """Business Central API v2.0 (OAuth 2 client credentials or bearer) as the ERP."""

    vendor_label = "Business Central"
    idempotency_header = "X-Idempotency-Key"  # Business Central ignores it; If-Match and lookups make writes safe

    def parse_error(self, body) -> tuple[str, str]:
        """Business Central (OData): {"error": {"code", "message"}}."""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return str(body["error"].get("message", "")), str(body["error"].get("code", ""))
        return super().parse_error(body)

    # --- reads -------------------------------------------------------------------------------------------

    def fetch(self, record_type: str, record_id: str) -> dict:
        """One record by its id (GUID)."""
        return self._get(f"{self._set(record_type)}{key(record_id)}", f"read {record_type} {record_id}")

    def fetch_document(self, object_name: str, record_id: str, *, params=None, include=()) -> dict:
        """A record and its related lists, e.g. {"salesInvoice": {...}, "salesInvoiceLines": [...]}.

        `params.company_id` reads from that company (a notification names it in its resource path).
        """
        company = (params or {}).get("company_id")
        root = self._company_root(company) if company else ""
        path = f"{root}{self._set(object_name)}{key(record_id)}"
        document = {object_name: self._get(path, f"read {object_name} {record_id}")}
        for name in include:
            document[name] = list(self._list(f"{path}/{name}", f"read the {name} of {object_name} {record_id}"))
        return document

    def find(self, record_type: str, field: str, value: str) -> dict | None:
        """The first record whose field equals value ($filter), or None."""
        params = {"$filter": f"{field} eq {odata_literal(value)}", "$top": "1"}
        body = self._get(self._set(record_type), f"look up {record_type} {value}", params=params)
        rows = body.get("value", [])
        return rows[0] if rows else None

    def find_customers(self, *, customer, rules: list[str]) -> list[CustomerCandidate]:
        """Customers that may be ours, in one `$filter` of `eq` clauses joined by `or`: `number` (our customer
        number, with the `external_id` rule), `displayName`, `email` and `taxRegistrationNumber`. An e-mail
        domain is compared on what those clauses find. The system is one company, so no subsidiary."""
        searches = (
            (CustomerMatchRule.EXTERNAL_ID, "number", customer.number),
            (CustomerMatchRule.NAME, "displayName", customer.name),
            (CustomerMatchRule.EMAIL, "email", customer.billing_email),
            (CustomerMatchRule.EMAIL_DOMAIN, "email", customer.billing_email),
            (CustomerMatchRule.TAX_ID, "taxRegistrationNumber", customer.tax_id),
        )
        clauses = []
        for rule, field, value in searches:
            clause = f"{field} eq {odata_literal(value)}"
            if rule in rules and value and clause not in clauses:
                clauses.append(clause)
        if not clauses:
            return []
        action = f"look for customer {customer.number} in {self.name}"
        rows = self._list("customers", action, params={"$filter": " or ".join(clauses)})
        return [
            CustomerCandidate(
                id=str(row["id"]),
                name=str(row.get("displayName") or ""),
                email=str(row.get("email") or ""),
                tax_id=str(row.get("taxRegistrationNumber") or ""),
                external_id=str(row.get("number") or ""),
                data=row,
            )
            for row in rows
        ]

    # --- writes ------------------------------------------------------------------------------------------

    def adopt_customer(self, record_id: str, *, customer, idempotency_key: str) -> None:
        """Nothing to change in Business Central: its customer keeps its own number, and the console's
        cross-reference (with `record_id` passed to `upsert_customer`) makes later upserts update it."""

    def upsert_customer(
        self, *, customer, subsidiary_id: str, currency_id: str, idempotency_key: str, record_id: str | None = None
    ) -> ExternalRecord:
        """Bring the customer up to date: the record `record_id` when the console knows it (a customer that was
        already there keeps its number), else the one numbered with our customer number, created if missing."""
        fields = drop_empty(
            {
                "number": customer.number,
                "displayName": customer.name,
                "email": customer.billing_email,
                "currencyCode": currency_id,
                "taxRegistrationNumber": customer.tax_id,
            }
        )
        what = f"customer {customer.number}"
        if record_id:
            existing = self.fetch("customer", record_id)
            fields.pop("number")
            return self._change(existing, "customer", fields, what)
        return self._upsert("customer", customer.number, fields, what)

    def upsert_financial_project(
        self, *, project, customer_erp_id: str, subsidiary_id: str, idempotency_key: str
    ) -> ExternalRecord:
        """Create the project numbered with our project code, or rename the one there."""
        fields = {"number": project.code, "displayName": project.name[:100]}
        return self._upsert("project", project.code, fields, f"project {project.code}")

    def post_invoice(
        self, *, invoice, customer_erp_id: str, lines: list[InvoiceLineSpec], idempotency_key: str
    ) -> ExternalRecord:
        """Create the sales invoice with its lines and post it, once: a retry finds it by our invoice number."""
        action = f"post invoice {invoice.number}"
        existing = self.find("salesInvoice", "externalDocumentNumber", invoice.number)
        if existing is None:
            body = drop_empty(
                {
                    "customerId": customer_erp_id,
                    "externalDocumentNumber": invoice.number,
                    "invoiceDate": invoice.issue_date,
                    "dueDate": invoice.due_date,
                }
            )
            body["salesInvoiceLines"] = [
                drop_empty(
                    {
                        "lineType": "Item",
                        "lineObjectNumber": line.item_id,
                        "description": line.description[:100],
                        "quantity": line.quantity,
                        "unitPrice": (line.amount / line.quantity) if line.quantity else line.amount,
                        "taxCode": line.tax_code_id,
                    }
                )
                for line in lines
            ]
            existing = self._send("POST", "salesInvoices", action, json=body)
            created = True
        else:
            created = False
        if existing.get("status") == "Draft":
            self._send("POST", f"salesInvoices{key(existing['id'])}/Microsoft.NAV.post", action, expect_body=False)
            existing = self.fetch("salesInvoice", existing["id"])
        return ExternalRecord(id=str(existing["id"]), data=existing, created=created)

    def apply_payment(
        self, *, payment, customer_erp_id: str, invoice_erp_id: str, idempotency_key: str
    ) -> ExternalRecord:
        """A customer payment applied to the invoice, once (its external document number: our reference)."""
        existing = self.find("customerPayment", "externalDocumentNumber", payment.reference)
        if existing is not None:
            return ExternalRecord(id=str(existing["id"]), data=existing, created=False)
        body = drop_empty(
            {
                "customerId": customer_erp_id,
                "postingDate": payment.received_on,
                "externalDocumentNumber": payment.reference,
                "amount": payment.amount,
                "appliesToInvoiceId": invoice_erp_id,
                "description": f"Payment {payment.reference}"[:100],
            }
        )
        action = f"apply payment {payment.reference} of {payment.amount} {payment.currency}"
        record = self._send("POST", "customerPayments", action, json=body)
        return ExternalRecord(id=str(record["id"]), data=record, created=True)

    def list_invoices(self, *, page_size: int = 100) -> Iterator[dict]:
        """Every sales invoice, page after page as Business Central links them."""
        return self._list("salesInvoices", "list sales invoices", page_size=page_size)

    def reference_data(self, kind: str) -> list[dict]:
        """kind: 'currency', 'tax_code', 'item', 'department' (dimension values); 'subsidiary' is the companies."""
        if kind == "subsidiary":
            return list(self._list(self._api_root() + "companies", "list companies"))
        if kind not in REFERENCE_SETS:
            raise BusinessError(
                f"Business Central has no '{kind.replace('_', ' ')}' list the console can read.",
                fix=f"Map {kind.replace('_', ' ')} values without a lookup, or use one of: "
                f"subsidiary, {', '.join(REFERENCE_SETS)}.",
            )
        return list(self._list(REFERENCE_SETS[kind], f"list {kind.replace('_', ' ')}s"))

    def subscribe(self, *, notification_url: str, resource: str, client_state: str) -> ExternalRecord:
        """Create a webhook subscription; Business Central first checks the URL echoes its validationToken."""
        body = {"notificationUrl": notification_url, "resource": resource, "clientState": client_state}
        record = self._send("POST", self._api_root() + "subscriptions", f"subscribe to {resource}", json=body)
        return ExternalRecord(id=str(record.get("subscriptionId") or record.get("id")), data=record)

    # --- helpers -----------------------------------------------------------------------------------------

    def _upsert(self, record_type: str, number: str, fields: dict, what: str) -> ExternalRecord:
        existing = self.find(record_type, "number", number)
        if existing is None:
            try:
                record = self._send("POST", self._set(record_type), f"create {what}", json=fields)
                return ExternalRecord(id=str(record["id"]), data=record, created=True)
            except TargetRejected as exc:
                if exc.vendor_code != "Internal_EntityWithSameKeyExists":
                    raise
                existing = self.find(record_type, "number", number)  # an earlier attempt made it; change it below
                if existing is None:
                    raise
        return self._change(existing, record_type, fields, what)

    def _change(self, existing: dict, record_type: str, fields: dict, what: str) -> ExternalRecord:
        """PATCH the fields that differ from the record as read (with its ETag); nothing when none do."""
        changed = {name: value for name, value in fields.items() if str(existing.get(name) or "") != str(value)}
        if not changed:
            return ExternalRecord(id=str(existing["id"]), data=existing, created=False)
        record = self.update(record_type, existing["id"], changed, etag=existing.get("@odata.etag"), what=what)
        return ExternalRecord(id=str(record["id"]), data=record, created=False)

    def update(self, record_type: str, record_id: str, fields: dict, *, etag: str | None, what: str = "") -> dict:
        """PATCH fields of a record read earlier, with its ETag: a ConcurrencyError if it changed since."""
        what = what or f"{record_type} {record_id}"
        return self._send(
            "PATCH",
            f"{self._set(record_type)}{key(record_id)}",
            f"update {what} ({', '.join(fields)})",
            json=fields,
            headers={"If-Match": etag or "*"},
        )

    def _set(self, record_type: str) -> str:
        entity_set = ENTITY_SETS.get(record_type, record_type if record_type in ENTITY_SETS.values() else None)
        if entity_set is None:
            raise PermanentError(
                f"The Business Central connector does not know '{record_type}' records.",
                fix=f"Use one of: {', '.join(ENTITY_SETS)}.",
                system=self.system.slug,
            )
        return entity_set

    def _api_root(self) -> str:
        """…/api/v2.0/ (where companies and subscriptions live), from the company's base URL."""
        base = self.system.base_url
        index = base.find("/companies(")
        return (base[:index] if index >= 0 else base.rstrip("/")) + "/"

    def _company_root(self, company_id: str) -> str:
        return f"{self._api_root()}companies{key(company_id)}/"

    def _list(self, path: str, action: str, *, page_size: int = 100, params=None) -> Iterator[dict]:
        url, seen = path, set()
        headers = {"Prefer": f"odata.maxpagesize={page_size}"}
        while url:
            body = self._get(url, action, params=params, headers=headers)
            yield from body.get("value", [])
            url, params = body.get("@odata.nextLink"), None
            if url in seen:
                raise PermanentError(
                    f"{self.name} returned the same page twice while we tried to {action}; listing stopped.",
                    fix=f"Report this to the owner of {self.name}.",
                    system=self.system.slug,
                )
            seen.add(url)

    def _get(self, path: str, action: str, *, params=None, headers=None) -> dict:
        body = self._send("GET", path, action, params=params, headers=headers)
        return body if isinstance(body, dict) else {}

    def _send(self, method: str, path: str, action: str, *, expect_body: bool = True, **kwargs):
        try:
            response = self.http.request(method, path, action=action, **kwargs)
        except ConnectorError as error:
            raise self.classify(error, action) from error
        if not expect_body or response.status_code == 204:
            return {}
        return self.http.json(response, action=action)

    def classify(self, error: ConnectorError, action: str) -> ConnectorError:
        """Business Central's error codes in business words."""
        details = {
            "technical": error.technical,
            "system": error.system,
            "status": error.status,
            "vendor_code": error.vendor_code,
            "vendor_message": error.vendor_message,
            "response_body": error.response_body,
        }
        if error.status == 412 or error.vendor_code == "Request_EntityChanged":
            return ConcurrencyError(
                f"Someone changed the record in {self.name} after we read it, so it refused to {action}; "
                "the step is retried and reads the record again.",
                **details,
            )
        if error.vendor_code == "Internal_EntityWithSameKeyExists":
            return TargetRejected(
                f"{self.name} already has a record with that number, so it refused to {action}: {error.vendor_message}",
                fix=f"Link the existing {self.name} record, or correct the number.",
                **details,
            )
        return error
