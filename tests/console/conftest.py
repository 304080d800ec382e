"""A small workflow whose one step maps a region through a value map, so tests make real exceptions."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.mapping.models import ValueMap, ValueMapEntry
from apps.mapping.services import value_map_lookup
from apps.sync.engine import StepResult, run_step
from apps.sync.registry import StepSpec, Subject, WorkflowDefinition, register
from apps.sync.services import transaction_start


@register
class RegionFlow(WorkflowDefinition):
    name = "console_region_test"
    owner_role = "mapping_steward"

    def plan(self, data):
        return [StepSpec("map_region", "Map the region")]

    def subject(self, data):
        return Subject(
            business_key=f"deal:{data['n']}",
            label=f"Deal {data['n']}",
            value_at_risk=Decimal(data["amount"]),
            currency=data["currency"],
        )

    def step_map_region(self, ctx):
        target = value_map_lookup("region-subsidiary", ctx.input["region"], on=datetime.date(2026, 12, 1))
        return StepResult(output={"subsidiary": target})


@pytest.fixture
def region_map(db):
    value_map = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
    ValueMapEntry.objects.create(
        value_map=value_map, source_value="EMEA", target_value="NW-UK", effective_from=datetime.date(2026, 1, 1)
    )
    return value_map


@pytest.fixture
def failing_deal(region_map):
    """Start a deal transaction and run its step now; an unknown region makes it an exception."""

    def make(n: int, *, region: str = "LATAM", amount: str = "72000", currency: str = "USD"):
        txn = transaction_start(
            workflow="console_region_test",
            data={"n": n, "region": region, "amount": amount, "currency": currency},
            reason="test",
        )
        step = txn.steps.get()
        step.next_attempt_at = timezone.now() - datetime.timedelta(seconds=1)
        step.save()
        run_step(step.pk)
        txn.refresh_from_db()
        return txn

    return make


def run_pending(txn):
    """Run a re-queued transaction's due step now, as a worker would."""
    for step in txn.steps.filter(status="pending", next_attempt_at__isnull=False):
        run_step(step.pk)
    txn.refresh_from_db()
    return txn
