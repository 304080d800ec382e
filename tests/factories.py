"""Small builders for test data (plain functions; no factory library needed)."""

import datetime
import itertools
from decimal import Decimal

from django.utils import timezone

from apps.canonical.models import (
    Contract,
    Customer,
    LegalEntity,
    Project,
    RateCard,
    RateCardLine,
    RateCardVersion,
    Resource,
)
from apps.sync.models import ExceptionGroup, ExceptionGroupMember, Transaction, Workflow
from apps.systems.models import ConnectedSystem, OwnershipRule

_seq = itertools.count(1)


def system(slug: str, kind: str, **fields) -> ConnectedSystem:
    defaults = {"name": slug.replace("-", " ").title(), "vendor": slug, "kind": kind}
    defaults.update(fields)
    obj, _ = ConnectedSystem.objects.update_or_create(slug=slug, defaults=defaults)
    return obj


def legal_entity(code: str = "ACME-US", **fields) -> LegalEntity:
    defaults = {"name": f"{code} Ltd", "country": "US", "currency": "USD", "tax_region": "US-NY"}
    defaults.update(fields)
    obj, _ = LegalEntity.objects.get_or_create(code=code, defaults=defaults)
    return obj


def customer(**fields) -> Customer:
    n = next(_seq)
    defaults = {"number": f"C-{1000 + n}", "name": f"Customer {n}", "currency": "USD"}
    defaults.update(fields)
    if "legal_entity" not in defaults:
        defaults["legal_entity"] = legal_entity()
    return Customer.objects.create(**defaults)


def rate_card(code: str = "STD-US", currency: str = "USD", versions=(), **fields) -> RateCard:
    """A rate card; versions are (from, to, status, {role: bill_rate}) tuples."""
    card = RateCard.objects.create(code=code, name=fields.pop("name", code), currency=currency, **fields)
    for number, (start, end, status, rates) in enumerate(versions, start=1):
        # Rates are added while the version is a draft: an approved version's rates are frozen.
        version = RateCardVersion.objects.create(
            rate_card=card, version=number, effective_from=start, effective_to=end, status="draft"
        )
        for role, bill in rates.items():
            RateCardLine.objects.create(
                version=version,
                role=role,
                bill_rate=Decimal(str(bill)),
                cost_rate=Decimal(str(bill)) / 2,
                currency=currency,
            )
        if status != "draft":
            version.status = status
            version.save()
    return card


def resource(**fields) -> Resource:
    n = next(_seq)
    defaults = {
        "employee_number": f"E-{n}",
        "name": f"Consultant {n}",
        "role": "Consultant",
        "cost_rate": Decimal("80"),
        "cost_currency": "USD",
    }
    defaults.update(fields)
    if "legal_entity" not in defaults:
        defaults["legal_entity"] = legal_entity()
    return Resource.objects.create(**defaults)


def contract(**fields) -> Contract:
    n = next(_seq)
    cust = fields.pop("customer", None) or customer()
    defaults = {
        "number": f"K-{n}",
        "name": f"Engagement {n}",
        "customer": cust,
        "legal_entity": cust.legal_entity,
        "contract_type": "fixed_fee",
        "currency": "USD",
        "start_date": datetime.date(2026, 1, 1),
    }
    defaults.update(fields)
    return Contract.objects.create(**defaults)


def project(**fields) -> Project:
    n = next(_seq)
    k = fields.pop("contract", None) or contract()
    defaults = {
        "code": f"P-{n}",
        "name": f"Project {n}",
        "customer": k.customer,
        "contract": k,
        "legal_entity": k.legal_entity,
        "billing_method": k.contract_type,
        "currency": k.currency,
        "status": "active",
        "rate_card": k.rate_card,
    }
    defaults.update(fields)
    return Project.objects.create(**defaults)


def ownership_rule(
    object_type, owner, *, field="", start=datetime.date(2026, 1, 1), end=None, may_create=(), may_update=()
) -> OwnershipRule:
    rule = OwnershipRule(object_type=object_type, field=field, owner=owner, effective_from=start, effective_to=end)
    rule.full_clean()
    rule.save()
    rule.may_create.set(may_create)
    rule.may_update.set(may_update)
    return rule


LEDGER_STATUSES = ["exception", "waiting_retry", "completed", "exception", "completed", "resolved", "pending"]


def ledger(count: int, *, start: int = 0) -> list[Transaction]:
    """`count` transactions of mixed statuses and workflows, the exceptions filed under two groups."""
    now = timezone.now()
    rows = []
    for n in range(start, start + count):
        status = LEDGER_STATUSES[n % len(LEDGER_STATUSES)]
        rows.append(
            Transaction(
                workflow=[Workflow.TIME_TO_BILL, Workflow.INVOICE_TO_ERP][n % 2],
                correlation_id=f"list-{n}",
                status=status,
                subject=f"Invoice {n}",
                value_at_risk=Decimal(100 + n),
                currency=["USD", "GBP"][n % 2],
                owner_role=["finance_ops", "delivery_ops"][(n // 2) % 2],
                error_message="No rate" if status != "completed" else "",
                exception_at=now - datetime.timedelta(minutes=n) if status in ("exception", "resolved") else None,
            )
        )
    created = Transaction.objects.bulk_create(rows)  # test data: history is not what these tests are about
    groups = [
        ExceptionGroup.objects.get_or_create(
            fingerprint=f"list-group-{g}",
            defaults={
                "workflow": Workflow.TIME_TO_BILL,
                "title": f"Cause {g}",
                "owner_role": "finance_ops",
                "first_seen": now,
                "last_seen": now,
            },
        )[0]
        for g in range(2)
    ]
    ExceptionGroupMember.objects.bulk_create(
        ExceptionGroupMember(group=groups[txn.pk % 2], transaction=txn)
        for txn in created
        if txn.status in ("exception", "resolved")
    )
    return created
