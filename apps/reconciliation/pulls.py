"""Pull what a run compares from each system through the connectors into the run's snapshot tables.

Listings are paged and rate-limited by the connectors' HttpClient; rows are written in bounded batches,
each its own short transaction, so memory stays flat and SQLite's writer is never held for long. A pull
that fails or comes back incomplete raises `PullIncomplete`; the run then compares nothing that needs
that system.
"""

import datetime
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import islice

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.canonical.models import Customer, Invoice, Project
from apps.connectors.errors import ConnectorError
from apps.connectors.registry import adapter_for
from apps.core.money import MINOR_UNITS, quantize, to_decimal
from apps.mapping.models import CrossReference

from .models import (
    ReconciliationRun,
    SnapshotBillingSchedule,
    SnapshotInvoice,
    SnapshotInvoiceLine,
    SnapshotPayment,
)

BILLING, ERP, CONSOLE = "billing", "erp", "console"
BILLING_OPEN = {"posted", "payment_due", "not_paid"}
BILLING_NOT_POSTED = {"pending"}


class PullIncomplete(Exception):
    """A system could not be listed completely; its figures must not be compared."""

    def __init__(self, system: str, reason: str):
        super().__init__(reason)
        self.system = system
        self.reason = reason


def batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def period_of(day: datetime.date | None) -> str:
    return f"{day:%Y-%m}" if day else ""


def _customers_by_external_id(system, external_ids: set[str]) -> dict[str, tuple[str, str]]:
    """External customer (or financial project) ID → (customer number, legal entity code), in two queries."""
    refs = CrossReference.objects.filter(
        system=system, object_type__in=["customer", "project"], external_id__in=external_ids
    ).values_list("object_type", "object_id", "external_id")
    by_customer, by_project = {}, {}
    for object_type, object_id, external_id in refs:
        (by_customer if object_type == "customer" else by_project)[object_id] = external_id
    found = {}
    for pk, number, entity in Customer.objects.filter(pk__in=by_customer).values_list(
        "pk", "number", "legal_entity__code"
    ):
        found[by_customer[pk]] = (number, entity or "")
    for pk, number, entity in Project.objects.filter(pk__in=by_project).values_list(
        "pk", "customer__number", "legal_entity__code"
    ):
        found[by_project[pk]] = (number, entity or "")
    return found


def _invoice_numbers_by_external_id(system, external_ids: set[str]) -> dict[str, str]:
    refs = dict(
        CrossReference.objects.filter(system=system, object_type="invoice", external_id__in=external_ids).values_list(
            "object_id", "external_id"
        )
    )
    return {refs[pk]: number for pk, number in Invoice.objects.filter(pk__in=refs).values_list("pk", "number")}


def _write(model, rows: list) -> None:
    if rows:
        model.objects.bulk_create(rows, batch_size=len(rows))  # history-ok: snapshots keep no history


def _from_minor(value, currency: str) -> Decimal:
    return Decimal(int(value or 0)).scaleb(-MINOR_UNITS.get(currency, 2))


def _date_from_unix(value) -> datetime.date | None:
    if not value:
        return None
    return timezone.localdate(datetime.datetime.fromtimestamp(int(value), tz=datetime.UTC))


def pull_billing(run: ReconciliationRun, system) -> dict:
    """Invoices (with lines and the payments applied to them) from the billing platform, into the snapshot.

    Several billing platforms (routed per legal entity) all go into the billing side of one snapshot; a
    platform that cannot list billing schedules (Stripe) answers no `schedules` count.
    """
    adapter = adapter_for(system, correlation_id=run.correlation_id)
    counts = {"invoices": 0, "lines": 0, "payments": 0, "schedules": 0}
    try:
        listing = adapter.list_invoices(page_size=settings.RECONCILIATION_PAGE_SIZE)
        for chunk in batches(listing, settings.RECONCILIATION_BATCH_SIZE):
            _billing_batch(run, system, chunk, counts)
        if not hasattr(adapter, "list_billing_schedules"):
            del counts["schedules"]
            return counts
        schedules = adapter.list_billing_schedules(page_size=settings.RECONCILIATION_PAGE_SIZE)
        for chunk in batches(schedules, settings.RECONCILIATION_BATCH_SIZE):
            rows = [
                SnapshotBillingSchedule(
                    run=run,
                    system=BILLING,
                    external_id=str(item.get("id", "")),
                    project_key=str(item.get("project_ref") or ""),
                    status=str(item.get("status") or ""),
                )
                for item in chunk
            ]
            with transaction.atomic():
                _write(SnapshotBillingSchedule, rows)
            counts["schedules"] += len(rows)
    except ConnectorError as exc:
        raise PullIncomplete(BILLING, f"{exc.message} {exc.fix}".strip()) from exc
    return counts


def _billing_batch(run, system, chunk: list[dict], counts: dict) -> None:
    customers = _customers_by_external_id(system, {str(item.get("customer_id", "")) for item in chunk})
    numbers = _invoice_numbers_by_external_id(system, {str(item.get("id", "")) for item in chunk})
    invoices, lines, payments = [], [], []
    for item in chunk:
        external_id = str(item.get("id", ""))
        currency = str(item.get("currency_code") or "").upper()
        key = numbers.get(external_id, external_id)
        customer, entity = customers.get(str(item.get("customer_id", "")), ("", ""))
        issued = _date_from_unix(item.get("date"))
        status = str(item.get("status") or "")
        due = _from_minor(item.get("amount_due"), currency)
        invoices.append(
            SnapshotInvoice(
                run=run,
                system=BILLING,
                external_id=external_id,
                invoice_key=key,
                customer_key=customer,
                legal_entity_code=entity,
                period=period_of(issued),
                issued_on=issued,
                currency=currency,
                subtotal=_from_minor(item.get("sub_total"), currency),
                tax_total=_from_minor(item.get("tax"), currency),
                total=_from_minor(item.get("total"), currency),
                amount_paid=_from_minor(item.get("amount_paid"), currency),
                balance=due if status in BILLING_OPEN else Decimal(0),
                status=status,
            )
        )
        for number, line in enumerate(item.get("line_items") or [], start=1):
            lines.append(
                SnapshotInvoiceLine(
                    run=run,
                    system=BILLING,
                    invoice_key=key,
                    line_number=number,
                    currency=currency,
                    amount=_from_minor(line.get("amount"), currency),
                    tax_amount=_from_minor(line.get("tax_amount"), currency),
                    reference=str(line.get("reference") or "")[:100],
                )
            )
        for applied in item.get("linked_payments") or []:
            payments.append(
                SnapshotPayment(
                    run=run,
                    system=BILLING,
                    payment_key=str(applied.get("txn_id", "")),
                    invoice_key=key,
                    currency=currency,
                    applied_amount=_from_minor(applied.get("applied_amount"), currency),
                    received_on=_date_from_unix(applied.get("txn_date")),
                )
            )
    with transaction.atomic():
        _write(SnapshotInvoice, invoices)
        _write(SnapshotInvoiceLine, lines)
        _write(SnapshotPayment, payments)
    counts["invoices"] += len(invoices)
    counts["lines"] += len(lines)
    counts["payments"] += len(payments)


def _decimal(value) -> Decimal:
    return to_decimal(value if value not in (None, "") else 0)


def _ref_name(value) -> str:
    return str(value.get("refName", "")) if isinstance(value, dict) else str(value or "")


def pull_erp(run: ReconciliationRun, system) -> dict:
    """Invoices (with lines and tax) and customer payments with their applications from the ERP."""
    adapter = adapter_for(system, correlation_id=run.correlation_id)
    counts = {"invoices": 0, "lines": 0, "payments": 0}
    page_size = settings.RECONCILIATION_PAGE_SIZE
    try:
        for chunk in batches(adapter.list_records("invoice", page_size=page_size), settings.RECONCILIATION_BATCH_SIZE):
            _erp_invoice_batch(run, system, chunk, counts)
        for chunk in batches(adapter.list_payments(page_size=page_size), settings.RECONCILIATION_BATCH_SIZE):
            _erp_payment_batch(run, chunk, counts)
    except ConnectorError as exc:
        raise PullIncomplete(ERP, f"{exc.message} {exc.fix}".strip()) from exc
    return counts


def _erp_invoice_batch(run, system, chunk: list[dict], counts: dict) -> None:
    customers = _customers_by_external_id(system, {str((item.get("entity") or {}).get("id", "")) for item in chunk})
    invoices, lines = [], []
    for item in chunk:
        currency = _ref_name(item.get("currency")).upper()
        key = str(item.get("tranId") or item.get("externalId") or item.get("id"))
        customer, entity = customers.get(str((item.get("entity") or {}).get("id", "")), ("", ""))
        issued = datetime.date.fromisoformat(item["tranDate"][:10]) if item.get("tranDate") else None
        status = str(item.get("status") or "")
        invoices.append(
            SnapshotInvoice(
                run=run,
                system=ERP,
                external_id=str(item.get("id", "")),
                invoice_key=key,
                customer_key=customer,
                legal_entity_code=entity,
                period=period_of(issued),
                issued_on=issued,
                currency=currency,
                subtotal=_decimal(item.get("subtotal")),
                tax_total=_decimal(item.get("taxTotal")),
                total=_decimal(item.get("total")),
                amount_paid=_decimal(item.get("amountPaid")),
                balance=_decimal(item.get("amountRemaining")),
                status=status,
            )
        )
        sublist = item.get("item") if isinstance(item.get("item"), dict) else {}
        for number, line in enumerate(sublist.get("items") or [], start=1):
            lines.append(
                SnapshotInvoiceLine(
                    run=run,
                    system=ERP,
                    invoice_key=key,
                    line_number=number,
                    currency=currency,
                    amount=_decimal(line.get("amount")),
                    tax_amount=_decimal(line.get("tax1Amt")),
                )
            )
    with transaction.atomic():
        _write(SnapshotInvoice, invoices)
        _write(SnapshotInvoiceLine, lines)
    counts["invoices"] += len(invoices)
    counts["lines"] += len(lines)


def _erp_payment_batch(run, chunk: list[dict], counts: dict) -> None:
    doc_ids = {
        str((line.get("doc") or {}).get("id", ""))
        for item in chunk
        for line in ((item.get("apply") or {}).get("items") or [])
    }
    invoices = {
        external_id: (key, currency)
        for external_id, key, currency in SnapshotInvoice.objects.filter(
            run=run, system=ERP, external_id__in=doc_ids
        ).values_list("external_id", "invoice_key", "currency")
    }
    payments = []
    for item in chunk:
        paid_on = datetime.date.fromisoformat(item["tranDate"][:10]) if item.get("tranDate") else None
        for line in (item.get("apply") or {}).get("items") or []:
            doc = str((line.get("doc") or {}).get("id", ""))
            key, currency = invoices.get(doc, (f"erp:{doc}", ""))
            payments.append(
                SnapshotPayment(
                    run=run,
                    system=ERP,
                    payment_key=str(item.get("id", "")),
                    invoice_key=key,
                    currency=currency or _ref_name(item.get("currency")).upper(),
                    applied_amount=quantize(_decimal(line.get("amount")), currency or "USD"),
                    received_on=paid_on,
                )
            )
    with transaction.atomic():
        _write(SnapshotPayment, payments)
    counts["payments"] += len(payments)


def discard_snapshots(run_ids, system: str | None = None) -> None:
    """Drop snapshot rows (no history: they are copies of other systems' data)."""
    for model in (SnapshotInvoice, SnapshotInvoiceLine, SnapshotPayment, SnapshotBillingSchedule):
        rows = model.objects.filter(run_id__in=run_ids)
        if system:
            rows = rows.filter(system=system)
        rows.delete()
