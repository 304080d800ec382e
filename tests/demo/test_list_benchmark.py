"""The A1 list benchmark's ledger fixture: every listed table filled set-based, indexes and constraints intact."""

import pytest
from django.db import connection

from apps.canonical.models import TimeEntry
from apps.demo.benchmarks import lists
from apps.inbound.models import Delivery, InboundEvent
from apps.mapping.models import CrossReference
from apps.sync.models import Step, StepAttempt, Transaction

from .. import factories

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the list benchmark runs on PostgreSQL only"),
]


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)", [list(lists.ANALYZED)])
        return {name for (name,) in cursor.fetchall()}


def test_the_fixture_fills_every_listed_table_and_rebuilds_the_indexes_it_dropped():
    project, _resource = factories.project(), factories.resource()
    before = _indexes()
    lists.generate(300)
    assert _indexes() == before
    for model in (Transaction, Step, StepAttempt, Delivery, InboundEvent, CrossReference):
        assert model.objects.count() == 300, model
    assert TimeEntry.objects.filter(project=project).count() == 300
    assert Transaction.history.count() == 300
    assert Step.objects.filter(transaction__status="completed").exists()  # the foreign keys point at real rows
    client = lists._client()
    for page, path, query in lists.PAGES:
        query = {key: 6 if value == lists.DEEP_PAGE else value for key, value in query.items()}  # 300 rows: 6 pages
        assert client.get(path, query).status_code == 200, page
