"""The admin lists runs, discrepancies and sign-offs for finance to read; nothing is edited there."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.reconciliation.models import Discrepancy, PeriodSignOff, ReconciliationRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def records_to_show(make_user):
    preparer = make_user("pat.preparer", "finance_ops")
    now = timezone.now()
    run = ReconciliationRun.objects.create(
        period="2026-11",
        period_start=datetime.date(2026, 11, 1),
        period_end=datetime.date(2026, 11, 30),
        status="succeeded",
        progress=100,
        started_at=now,
        finished_at=now,
    )
    discrepancy = Discrepancy.objects.create(
        check_type="invoice_tax",
        business_key="INV-1",
        period="2026-11",
        period_close_date=datetime.date(2026, 11, 30),
        currency="EUR",
        left_system="billing",
        right_system="erp",
        left_amount=Decimal("190.00"),
        right_amount=Decimal("160.00"),
        difference=Decimal("30.00"),
        reporting_currency="USD",
        value_at_risk=Decimal("32.70"),
        description="Invoice INV-1: billing charged 190.00 EUR tax, ERP recorded 160.00.",
        first_seen_at=now,
        last_seen_at=now,
        first_seen_run=run,
        last_seen_run=run,
    )
    sign_off = PeriodSignOff.objects.create(
        period="2026-11", run=run, figures_digest="x", prepared_by=preparer, prepared_at=now
    )
    return run, discrepancy, sign_off


def test_finance_reads_runs_discrepancies_and_sign_offs_but_cannot_add_or_edit_them(client, make_user, records_to_show):
    run, discrepancy, sign_off = records_to_show
    client.force_login(make_user("fiona.finance", "finance_ops", is_staff=True))
    for model, obj in (("reconciliationrun", run), ("discrepancy", discrepancy), ("periodsignoff", sign_off)):
        listing = client.get(reverse(f"admin:reconciliation_{model}_changelist"))
        assert listing.status_code == 200
        assert client.get(reverse(f"admin:reconciliation_{model}_change", args=[obj.pk])).status_code == 200
        assert client.get(reverse(f"admin:reconciliation_{model}_add")).status_code == 403
    page = client.get(reverse("admin:reconciliation_discrepancy_changelist")).content.decode()
    assert "INV-1" in page and "32.70" in page


def test_someone_without_a_role_sees_no_reconciliation_in_the_admin(client, make_user, records_to_show):
    client.force_login(make_user("olly.outsider", is_staff=True))
    assert client.get(reverse("admin:reconciliation_discrepancy_changelist")).status_code == 403
