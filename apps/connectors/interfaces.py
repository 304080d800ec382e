"""What the workflows need from each kind of target system. Adapters implement these per vendor.

Arguments are canonical records plus values already translated by the workflow (subsidiary, item and
tax code IDs from value maps; other systems' IDs from cross-references). Adapters translate to the
vendor's shape, call it through `apps.connectors.http.HttpClient`, and raise the classified errors of
`apps.connectors.errors`. Every create takes an idempotency key that is stable across retries.
"""

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from .matching import CustomerCandidate


@dataclass(frozen=True)
class ExternalRecord:
    """A record in a target system: its ID there and what it answered."""

    id: str
    data: dict = field(default_factory=dict)
    created: bool = True  # False when an idempotent replay or an upsert found it already there


@dataclass(frozen=True)
class Charge:
    """One billable amount for the billing platform."""

    reference: str  # our billing event key; the target must not create two charges with one reference
    description: str
    amount: Decimal
    currency: str
    date_from: datetime.date
    date_to: datetime.date


@dataclass(frozen=True)
class InvoiceLineSpec:
    description: str
    item_id: str
    quantity: Decimal
    amount: Decimal
    tax_code_id: str


class CRM(Protocol):
    def fetch(self, object_name: str, record_id: str) -> dict: ...
    def update_opportunity(self, record_id: str, fields: dict) -> None: ...
    def update_account(self, record_id: str, fields: dict) -> None: ...
    def create(self, object_name: str, fields: dict, *, idempotency_key: str) -> ExternalRecord: ...


class PSA(Protocol):
    def fetch(self, object_name: str, record_id: str) -> dict: ...
    def find_project(self, external_reference: str) -> ExternalRecord | None: ...
    def create_project(self, *, project, contract, customer, idempotency_key: str) -> ExternalRecord: ...
    def rebaseline_project(self, record_id: str, *, project, contract, amendment, idempotency_key: str) -> None: ...


class ERP(Protocol):
    def fetch(self, record_type: str, record_id: str) -> dict: ...
    def find_customers(self, *, customer, rules: list[str]) -> list[CustomerCandidate]:
        """Customers in the ERP that the rules could match to ours (apps.connectors.matching)."""
        ...

    def adopt_customer(self, record_id: str, *, customer, idempotency_key: str) -> None:
        """Make an existing ERP customer the one our upserts of `customer` write to."""
        ...

    def upsert_customer(
        self, *, customer, subsidiary_id: str, currency_id: str, idempotency_key: str, record_id: str | None = None
    ) -> ExternalRecord:
        """Create or update the customer; `record_id` is its ERP record when the console already knows it (a
        cross-reference or a match), for ERPs that cannot find it by our number (NetSuite finds it by `eid:`)."""
        ...

    def upsert_financial_project(
        self, *, project, customer_erp_id: str, subsidiary_id: str, idempotency_key: str
    ) -> ExternalRecord: ...
    def post_invoice(
        self, *, invoice, customer_erp_id: str, lines: list[InvoiceLineSpec], idempotency_key: str
    ) -> ExternalRecord: ...
    def apply_payment(
        self, *, payment, customer_erp_id: str, invoice_erp_id: str, idempotency_key: str
    ) -> ExternalRecord: ...
    def list_invoices(self, *, page_size: int = 100) -> Iterator[dict]: ...
    def list_payments(self, *, page_size: int = 100) -> Iterator[dict]:
        """Customer payments with their applications to invoices (one payment may settle several)."""
        ...

    def reference_data(self, kind: str) -> list[dict]:
        """kind: 'subsidiary', 'currency', 'tax_code', 'exchange_rate', 'department', 'class', 'item'."""
        ...


class Billing(Protocol):
    def find_customers(self, *, customer, rules: list[str]) -> list[CustomerCandidate]:
        """Customers in the billing platform that the rules could match to ours (apps.connectors.matching)."""
        ...

    def upsert_customer(self, *, customer, erp_customer_id: str | None, idempotency_key: str) -> ExternalRecord: ...
    def create_billing_schedule(
        self, *, schedule, customer_billing_id: str, project_ref: str, idempotency_key: str
    ) -> ExternalRecord: ...
    def revise_billing_schedule(self, record_id: str, *, schedule, idempotency_key: str) -> ExternalRecord: ...
    def post_charges(
        self, *, customer_billing_id: str, currency: str, charges: list[Charge], idempotency_key: str
    ) -> list[ExternalRecord]: ...
    def invoice_charges(self, *, customer_billing_id: str, idempotency_key: str) -> list[ExternalRecord]: ...
    def record_payment(
        self, invoice_id: str, *, amount: Decimal, method: str, paid_on: datetime.date, idempotency_key: str
    ) -> ExternalRecord: ...
    def list_invoices(self, *, page_size: int = 100) -> Iterator[dict]:
        """Invoices with their line items and linked payments, in Chargebee's keys (what reconciliation reads);
        another vendor's adapter translates its own (e.g. Stripe's `invoice_as_billing_row`)."""
        ...

    def list_billing_schedules(self, *, page_size: int = 100) -> Iterator[dict]: ...
