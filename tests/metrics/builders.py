"""Hand-built canonical data for the metrics tests: two legal entities, three currencies, one past month."""

import datetime
import itertools
from decimal import Decimal

from django.utils import timezone

from apps.canonical.models import BillingEvent, Expense, Invoice, Payment, TimeEntry
from apps.metrics.periods import Period
from apps.reconciliation.models import Discrepancy, ReconciliationRun
from apps.sync.models import Transaction
from tests import factories

_seq = itertools.count(1)


def last_month() -> Period:
    return Period.of(timezone.localdate()).previous()


def entities():
    uk = factories.legal_entity("NW-UK", country="GB", currency="GBP", tax_region="GB")
    us = factories.legal_entity("NW-US", country="US", currency="USD")
    return uk, us


def project_in(entity, currency: str, **fields):
    customer = factories.customer(legal_entity=entity, currency=currency)
    contract = factories.contract(customer=customer, currency=currency, **fields.pop("contract_fields", {}))
    return factories.project(contract=contract, currency=currency, **fields)


def time_entry(project, *, hours, rate, work_date, status="approved", approved_at=None, currency="", **fields):
    return TimeEntry.objects.create(
        resource=fields.pop("resource", None) or factories.resource(legal_entity=project.legal_entity),
        project=project,
        work_date=work_date,
        hours=Decimal(str(hours)),
        bill_rate=Decimal(str(rate)) if rate is not None else None,
        currency=currency,
        status=status,
        approved_at=approved_at,
        **fields,
    )


def expense(project, *, amount, currency, incurred_on, status="approved", **fields):
    return Expense.objects.create(
        resource=factories.resource(legal_entity=project.legal_entity),
        project=project,
        incurred_on=incurred_on,
        category="Travel",
        amount=Decimal(str(amount)),
        currency=currency,
        status=status,
        **fields,
    )


def invoice(project, *, issued, subtotal, tax="0", currency=None, status="posted", contract=None):
    subtotal, tax = Decimal(str(subtotal)), Decimal(str(tax))
    return Invoice.objects.create(
        number=f"INV-{next(_seq)}",
        customer=project.customer,
        contract=contract or project.contract,
        project=project,
        legal_entity=project.legal_entity,
        issue_date=issued,
        due_date=issued + datetime.timedelta(days=30),
        currency=currency or project.currency,
        subtotal=subtotal,
        tax_total=tax,
        total=subtotal + tax,
        status=status,
    )


def billed(entry, inv):
    """Put a time entry or expense on an invoice through a billing event dated `event_date` (default: work date)."""
    amount = entry.hours * entry.bill_rate if isinstance(entry, TimeEntry) else entry.amount
    event = billing_event(
        entry.project,
        event_date=getattr(entry, "work_date", None) or entry.incurred_on,
        amount=amount,
        inv=inv,
        source="time" if isinstance(entry, TimeEntry) else "expense",
    )
    entry.billing_event = event
    entry.status = "billed"
    entry.save()
    return event


def billing_event(project, *, event_date, amount, inv=None, source="fixed_fee"):
    return BillingEvent.objects.create(
        project=project,
        contract=project.contract,
        source=source,
        event_date=event_date,
        description="Work",
        unit_price=Decimal(str(amount)),
        amount=Decimal(str(amount)),
        currency=project.currency,
        status="invoiced" if inv else "pending",
        invoice=inv,
    )


def payment(inv, *, amount, received_on, status="applied"):
    return Payment.objects.create(
        reference=f"PAY-{next(_seq)}",
        customer=inv.customer,
        invoice=inv,
        received_on=received_on,
        amount=Decimal(str(amount)),
        currency=inv.currency,
        status=status,
    )


def ledger_transaction(**fields):
    n = next(_seq)
    return Transaction.objects.create(workflow="time_to_bill", correlation_id=f"corr-{n}", **fields)


def discrepancy(
    *, entity, period: Period, value_at_risk, status="open", key=None, currency="USD", check="invoice_missing_in_erp"
):
    run = ReconciliationRun.objects.create(period=period.label, period_start=period.start, period_end=period.end)
    now = timezone.now()
    value = Decimal(str(value_at_risk))
    return Discrepancy.objects.create(
        check_type=check,
        business_key=key or f"INV-D-{next(_seq)}",
        legal_entity=entity,
        period=period.label,
        period_close_date=period.end,
        currency=currency,
        left_system="billing",
        right_system="erp",
        left_amount=value,
        right_amount=None,
        difference=value,
        reporting_currency="USD",
        value_at_risk=value,
        description="Posted in billing, missing in ERP",
        status=status,
        first_seen_at=now,
        last_seen_at=now,
        first_seen_run=run,
        last_seen_run=run,
    )
