"""Business numbers under concurrency: two workers recording records at the same moment never share a number."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from apps.canonical.models import Customer
from apps.canonical.services import next_number
from tests.factories import customer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite's immediate transactions serialise writers already"
    ),
]


def test_two_workers_numbering_customers_at_once_get_different_numbers():
    customer(number="C-00007")
    barrier = threading.Barrier(2)
    numbers, errors = [], []

    def worker(name):
        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                number = next_number(Customer, "C")
                time.sleep(0.3)  # the other worker reads the highest number meanwhile
                customer(number=number, name=name)
                numbers.append(number)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"Parallel {n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(numbers) == ["C-00008", "C-00009"]
