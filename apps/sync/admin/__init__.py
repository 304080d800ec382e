"""The ledger in the admin: the exception queue (the transaction list), the trace (a transaction's page), the
actions people take on them, and the read-only step and attempt lists.

The admin reads the ledger and acts through the services only (re-run, resolve, ignore, assign): no row is
edited here. Steps and attempts are listed read-only so auditors can search them.
"""

from . import ledger, queue

__all__ = ["ledger", "queue"]
