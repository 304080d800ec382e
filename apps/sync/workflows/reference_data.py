"""Reference data pulled from ERP on a schedule: code lists, the currency map, exchange rates."""

from decimal import Decimal

from django.utils import timezone

from apps.canonical.models import ExchangeRate
from apps.core.context import system_context
from apps.core.history import save_if_changed
from apps.mapping.models import ReferenceValue, ValueMap, ValueMapEntry
from apps.systems.models import SystemKind

from ..models import Transaction, Workflow
from ..registry import StepSpec, Subject, WorkflowDefinition, register, target_system
from ..services import transaction_start
from ..steps import StepResult
from . import maps
from .common import day

KINDS = ["subsidiary", "currency", "tax_code", "item", "department", "class"]


def start_scheduled_pull() -> str | None:
    """Entry point of the hourly schedule: start a pull unless one is still open."""
    if target_system(SystemKind.ERP, workflow=Workflow.REFERENCE_DATA) is None:
        return None
    if Transaction.objects.filter(workflow=Workflow.REFERENCE_DATA, status__in=Transaction.OPEN_STATUSES).exists():
        return None
    with system_context("Scheduled reference data pull"):
        txn = transaction_start(workflow=Workflow.REFERENCE_DATA, data={"kinds": KINDS, "exchange_rates": True})
    return txn.correlation_id


def _code(value) -> str:
    """A currency code from a plain value or a NetSuite reference ({"id": "2", "refName": "GBP"})."""
    if isinstance(value, dict):
        return str(value.get("refName") or value.get("symbol") or "")
    return str(value or "")


@register
class ReferenceData(WorkflowDefinition):
    name = Workflow.REFERENCE_DATA
    owner_role = "integration_admin"

    def plan(self, data):
        return [
            StepSpec("pull_codes", "Pull subsidiaries, currencies, tax codes, items and dimensions", target="erp"),
            StepSpec("pull_exchange_rates", "Pull exchange rates", target="erp"),
        ]

    def subject(self, data):
        return Subject(
            business_key=f"reference-data:{timezone.localdate().isoformat()}", label="Reference data from ERP"
        )

    def step_pull_codes(self, ctx):
        erp = ctx.target
        connector = ctx.connector()
        pulled = {kind: connector.reference_data(kind) for kind in ctx.input.get("kinds", KINDS)}

        def apply():
            counts = {}
            for kind, rows in pulled.items():
                seen = set()
                known = {value.external_id: value for value in ReferenceValue.objects.filter(system=erp, kind=kind)}
                for row in rows:
                    external_id = str(row.get("id"))
                    seen.add(external_id)
                    value = known.get(external_id) or ReferenceValue(system=erp, kind=kind, external_id=external_id)
                    save_if_changed(
                        value,
                        code=str(row.get("code") or row.get("symbol") or "")[:120],
                        name=str(row.get("name") or "")[:255],
                        active=not row.get("isInactive", False),
                        data=row,
                    )
                for stale in ReferenceValue.objects.filter(system=erp, kind=kind, active=True).exclude(
                    external_id__in=seen
                ):
                    save_if_changed(stale, active=False)
                counts[kind] = len(rows)
            self._currency_map(erp)
            return {"pulled": counts}

        return StepResult(apply=apply)

    def _currency_map(self, erp) -> None:
        """Keep the ISO currency → ERP currency id map in line with ERP's own currency list."""
        value_map, _ = ValueMap.objects.get_or_create(
            name=maps.CURRENCY_ERP,
            defaults={"source_label": "currency", "target_label": f"{erp.name} currency id", "target_system": erp},
        )
        today = timezone.localdate()
        for currency in ReferenceValue.objects.filter(system=erp, kind="currency", active=True):
            if not currency.code:
                continue
            entry = (
                ValueMapEntry.objects.in_force(today).filter(value_map=value_map, source_value=currency.code).first()
            )
            if entry is None:
                entry = ValueMapEntry(
                    value_map=value_map,
                    source_value=currency.code,
                    target_value=currency.external_id,
                    effective_from=today,
                    note="From ERP reference data",
                )
                entry.full_clean()
                entry.save()
            elif entry.target_value != currency.external_id:
                entry.effective_to = today if entry.effective_from == today else today - timezone.timedelta(days=1)
                entry.save()
                replacement = ValueMapEntry(
                    value_map=value_map,
                    source_value=currency.code,
                    target_value=currency.external_id,
                    effective_from=entry.effective_to + timezone.timedelta(days=1),
                    note="From ERP reference data",
                )
                replacement.full_clean()
                replacement.save()

    def step_pull_exchange_rates(self, ctx):
        erp = ctx.target
        if not ctx.input.get("exchange_rates", True):
            return StepResult(skipped="Exchange rates were not requested.")
        rows = ctx.connector().reference_data("exchange_rate")

        def apply():
            written = 0
            dates = {day(row.get("effectiveDate") or row.get("effective_date"), field="effectiveDate") for row in rows}
            known = {
                (rate.base, rate.quote, rate.effective_date): rate
                for rate in ExchangeRate.objects.filter(effective_date__in=dates)
            }
            for row in rows:
                on = day(row.get("effectiveDate") or row.get("effective_date"), field="effectiveDate")
                base = _code(row.get("baseCurrency") or row.get("base"))
                quote = _code(row.get("transactionCurrency") or row.get("quote"))
                rate = Decimal(str(row.get("exchangeRate") or row.get("rate")))
                current = known.get((base, quote, on)) or ExchangeRate(base=base, quote=quote, effective_date=on)
                written += save_if_changed(current, rate=rate, source=erp.slug)
            return {"exchange_rates_written": written, "exchange_rates_seen": len(rows)}

        return StepResult(apply=apply)
