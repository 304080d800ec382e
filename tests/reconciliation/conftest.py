"""Two sets of books for reconciliation tests: the sandbox billing platform and ERP over real HTTP, plus the console.

Records are put straight into the sandboxes in their vendor's shape (Chargebee amounts in minor units,
NetSuite's invoice and payment records), with the console's customers and cross-references beside them,
so each test states exactly which figures differ.
"""

import datetime
from decimal import Decimal
from itertools import count

import pytest

from apps.canonical.models import Customer, ExchangeRate, Invoice
from apps.core.money import to_minor_units
from apps.mapping.models import CrossReference
from apps.sandbox import records
from apps.sandbox.services import sandbox_reset

from .. import factories

PERIOD = "2026-11"
DAY = datetime.date(2026, 11, 12)
CURRENCY_REF = {
    "USD": {"id": "1", "refName": "USD"},
    "GBP": {"id": "2", "refName": "GBP"},
    "EUR": {"id": "4", "refName": "EUR"},
}
ENTITIES = {"USD": ("NW-US", "US"), "GBP": ("NW-UK", "GB"), "EUR": ("NW-DE", "DE"), "JPY": ("NW-JP", "JP")}


def unix(day: datetime.date) -> int:
    return int(datetime.datetime.combine(day, datetime.time(12), datetime.UTC).timestamp())


class Books:
    """Builds matching (or deliberately different) records in billing, ERP and the console."""

    def __init__(self, systems):
        self.erp, self.billing = systems["erp"], systems["billing"]
        self._ids = count(1)
        self.customers: dict[str, Customer] = {}

    def customer(self, currency: str = "USD") -> Customer:
        if currency not in self.customers:
            code, country = ENTITIES[currency]
            entity = factories.legal_entity(code, currency=currency, country=country)
            customer = factories.customer(currency=currency, legal_entity=entity)
            n = next(self._ids)
            records.create("billing", "customer", {"company": customer.name}, internal_id=f"cb_{n}")
            records.create("erp", "customer", {"companyName": customer.name}, internal_id=str(100 + n))
            CrossReference.objects.create(
                system=self.billing, object_type="customer", object_id=customer.pk, external_id=f"cb_{n}"
            )
            CrossReference.objects.create(
                system=self.erp, object_type="customer", object_id=customer.pk, external_id=str(100 + n)
            )
            self.customers[currency] = customer
        return self.customers[currency]

    def _ext(self, system, customer) -> str:
        return CrossReference.objects.get(system=system, object_type="customer", object_id=customer.pk).external_id

    def billing_invoice(self, number, currency, lines, *, day=DAY, status="posted", payments=()):
        """lines: [(amount, tax)] or [(amount, tax, charge reference)]; payments: [(transaction id, amount)]."""
        customer = self.customer(currency)
        lines = [(*line, "")[:3] for line in lines]
        sub = sum(Decimal(a) for a, _, _ in lines)
        tax = sum(Decimal(t) for _, t, _ in lines)
        paid = sum((Decimal(a) for _, a in payments), Decimal(0))
        minor = lambda value: to_minor_units(Decimal(value), currency)  # noqa: E731
        data = {
            "object": "invoice",
            "customer_id": self._ext(self.billing, customer),
            "status": status if paid < sub + tax or status != "posted" else "paid",
            "date": unix(day),
            "currency_code": currency,
            "sub_total": minor(sub),
            "tax": minor(tax),
            "total": minor(sub + tax),
            "amount_paid": minor(paid),
            "amount_due": minor(sub + tax - paid),
            "line_items": [{"amount": minor(a), "tax_amount": minor(t), "reference": ref} for a, t, ref in lines],
            "linked_payments": [
                {"txn_id": txn, "applied_amount": minor(amount), "txn_date": unix(day)} for txn, amount in payments
            ],
        }
        records.create("billing", "invoice", data, internal_id=number)
        return data

    def erp_invoice(self, number, currency, lines, *, day=DAY, paid=Decimal(0)) -> str:
        customer = self.customer(currency)
        internal_id = str(5000 + next(self._ids))
        sub = sum(Decimal(a) for a, _ in lines)
        tax = sum(Decimal(t) for _, t in lines)
        data = {
            "entity": {"id": self._ext(self.erp, customer)},
            "tranId": number,
            "tranDate": day.isoformat(),
            "currency": CURRENCY_REF.get(currency, {"id": "9", "refName": currency}),
            "item": {"items": [{"amount": str(a), "tax1Amt": str(t), "quantity": 1} for a, t in lines]},
            "subtotal": str(sub),
            "taxTotal": str(tax),
            "total": str(sub + tax),
            "amountPaid": str(paid),
            "amountRemaining": str(sub + tax - Decimal(paid)),
            "status": "Open",
        }
        records.create("erp", "invoice", data, internal_id=internal_id, external_id=number)
        return internal_id

    def erp_payment(self, applications, *, day=DAY) -> str:
        """applications: [(ERP invoice internal id, amount)]."""
        internal_id = str(8000 + next(self._ids))
        total = sum(Decimal(a) for _, a in applications)
        data = {
            "payment": str(total),
            "tranDate": day.isoformat(),
            "apply": {"items": [{"doc": {"id": doc}, "amount": str(a), "apply": True} for doc, a in applications]},
        }
        records.create("erp", "customerPayment", data, internal_id=internal_id)
        return internal_id

    def console_invoice(self, number, currency, total, *, paid=Decimal(0), status="posted", day=DAY) -> Invoice:
        customer = self.customer(currency)
        return Invoice.objects.create(
            number=number,
            customer=customer,
            legal_entity=customer.legal_entity,
            issue_date=day,
            due_date=day + datetime.timedelta(days=30),
            currency=currency,
            subtotal=Decimal(total),
            total=Decimal(total),
            amount_paid=Decimal(paid),
            status=status,
        )

    def both(self, number, currency, lines, *, payments=(), console=True):
        """An invoice that agrees everywhere: billing, ERP (with the same payments) and the console."""
        self.billing_invoice(number, currency, lines, payments=payments)
        paid = sum((Decimal(a) for _, a in payments), Decimal(0))
        erp_id = self.erp_invoice(number, currency, lines, paid=paid)
        for _, amount in payments:
            self.erp_payment([(erp_id, amount)])
        if console:
            total = sum(Decimal(a) + Decimal(t) for a, t in lines)
            self.console_invoice(number, currency, total, paid=paid, status="posted" if paid < total else "paid")
        return erp_id


@pytest.fixture
def books(live_server, transactional_db, monkeypatch, settings):
    """Sandbox ERP (NetSuite) and billing (Chargebee) over real HTTP, empty, with rates to USD stored."""
    monkeypatch.setenv("IC_SECRET_RECON_TEST_TOKEN", "test-token")
    settings.REPORTING_CURRENCY = "USD"
    sandbox_reset()
    base = live_server.url.rstrip("/")
    systems = {
        "erp": factories.system(
            "netsuite",
            "erp",
            name="NetSuite",
            vendor="netsuite",
            base_url=f"{base}/sandbox/erp/services/rest/record/v1/",
            outbound_auth="bearer",
            outbound_credentials={"env": "IC_SECRET_RECON_TEST_TOKEN"},
            rate_limit_per_minute=None,
        ),
        "billing": factories.system(
            "chargebee",
            "billing",
            name="Chargebee",
            vendor="chargebee",
            base_url=f"{base}/sandbox/billing/api/v2/",
            outbound_auth="basic",
            outbound_credentials={"username": {"env": "IC_SECRET_RECON_TEST_TOKEN"}},
            rate_limit_per_minute=None,
        ),
    }
    for base_code, rate in (("GBP", "1.26"), ("EUR", "1.09"), ("JPY", "0.0066")):
        ExchangeRate.objects.create(
            base=base_code, quote="USD", rate=Decimal(rate), effective_date=datetime.date(2026, 11, 1)
        )
    return Books(systems)
