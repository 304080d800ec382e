"""Exception groups: same cause, one group; reopen on recurrence; re-run the whole group; bulk plan, run, cancel."""

import datetime

import pytest

from apps.mapping.models import ValueMapEntry
from apps.sync.batches import (
    group_open_transactions,
    rerun_batch_cancel,
    rerun_batch_plan,
    rerun_batch_process,
    rerun_batch_start,
)
from apps.sync.models import ExceptionGroup, RerunBatch, Transaction

from .conftest import run_pending

pytestmark = pytest.mark.django_db


def add_latam(region_map):
    ValueMapEntry.objects.create(
        value_map=region_map, source_value="LATAM", target_value="NW-BR", effective_from=datetime.date(2026, 1, 1)
    )


def test_exceptions_with_the_same_missing_value_map_key_form_one_group(failing_deal):
    first, second, third = failing_deal(1), failing_deal(2, amount="1000", currency="EUR"), failing_deal(3)
    other = failing_deal(4, region="APAC")
    assert {t.status for t in (first, second, third, other)} == {Transaction.Status.EXCEPTION}
    group = ExceptionGroup.objects.get(missing_key="value_map:region-subsidiary=latam")
    assert group.members.count() == 3
    assert group.times_seen == 3
    assert group.missing_label == "value map 'region-subsidiary' has no entry for 'LATAM'"
    assert group.status == ExceptionGroup.Status.OPEN
    assert ExceptionGroup.objects.count() == 2
    assert group.first_seen <= group.last_seen


def test_rerunning_the_whole_group_after_one_fix_completes_every_transaction_and_resolves_it(
    failing_deal, region_map, finance_user, django_capture_on_commit_callbacks
):
    deals = [failing_deal(n) for n in range(1, 4)]
    group = ExceptionGroup.objects.get()
    add_latam(region_map)
    batch = rerun_batch_plan(
        queryset=group_open_transactions(group),
        description="all",
        actor=finance_user,
        reason="added LATAM",
        group=group,
    )
    assert batch.total == 3
    rerun_batch_start(batch=batch, actor=finance_user)
    rerun_batch_process(batch_id=batch.pk)
    with django_capture_on_commit_callbacks(execute=True):
        for txn in deals:
            run_pending(txn)
    assert {Transaction.objects.get(pk=t.pk).status for t in deals} == {Transaction.Status.COMPLETED}
    batch.refresh_from_db()
    assert (batch.status, batch.processed, batch.replayed) == (RerunBatch.Status.COMPLETED, 3, 3)
    group.refresh_from_db()
    assert group.status == ExceptionGroup.Status.RESOLVED


def test_a_resolved_group_reopens_when_its_cause_comes_back(failing_deal, finance_user):
    failing_deal(1)
    group = ExceptionGroup.objects.get()
    group.status = ExceptionGroup.Status.RESOLVED
    group.save()
    failing_deal(2)
    group.refresh_from_db()
    assert group.status == ExceptionGroup.Status.OPEN
    assert group.resolved_at is None
    assert group.times_seen == 2


def test_an_ignored_group_stays_ignored_but_counts_the_recurrence(failing_deal):
    failing_deal(1)
    ExceptionGroup.objects.update(status=ExceptionGroup.Status.IGNORED)
    failing_deal(2)
    group = ExceptionGroup.objects.get()
    assert (group.status, group.times_seen, group.members.count()) == (ExceptionGroup.Status.IGNORED, 2, 2)


def test_a_cancelled_bulk_rerun_leaves_the_rest_untouched(failing_deal, finance_user):
    deals = [failing_deal(n) for n in range(1, 4)]
    batch = rerun_batch_plan(
        queryset=Transaction.objects.filter(workflow="console_region_test"),
        description="filter",
        actor=finance_user,
        reason="try again",
    )
    rerun_batch_start(batch=batch, actor=finance_user)
    rerun_batch_cancel(batch=batch, actor=finance_user, reason="wrong filter")
    rerun_batch_process(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.processed) == (RerunBatch.Status.CANCELLED, 0)
    assert {Transaction.objects.get(pk=t.pk).status for t in deals} == {Transaction.Status.EXCEPTION}


def test_a_plan_needs_a_reason_and_something_to_rerun(failing_deal, finance_user):
    from apps.core.errors import BusinessError

    with pytest.raises(BusinessError, match="Say why"):
        rerun_batch_plan(queryset=Transaction.objects.all(), description="x", actor=finance_user, reason=" ")
    with pytest.raises(BusinessError, match="Nothing to re-run"):
        rerun_batch_plan(queryset=Transaction.objects.all(), description="x", actor=finance_user, reason="go")


def test_a_transaction_failing_for_a_new_reason_moves_to_that_group(
    failing_deal, region_map, finance_user, django_capture_on_commit_callbacks
):
    from apps.sync.services import transaction_replay

    txn = failing_deal(1)
    first = ExceptionGroup.objects.get()
    edited = {**txn.input, "region": "APAC"}
    with django_capture_on_commit_callbacks(execute=True):
        transaction_replay(txn=txn, actor=finance_user, reason="try APAC", input_override=edited)
        run_pending(txn)
    first.refresh_from_db()
    assert ExceptionGroup.objects.get(missing_key="value_map:region-subsidiary=apac").members.get().transaction == txn
    assert first.status == ExceptionGroup.Status.RESOLVED
