"""What inbound tells the layers above it. Inbound stores deliveries and events and knows nothing of what
happens to them next; the ledger (`apps.sync`) listens here.
"""

from django.dispatch import Signal

# Sent inside the database transaction that stored a delivery with at least one new event (after it, when
# PostgreSQL stored it in one statement and no `pick_up_message` receiver gave a row).
# Arguments: delivery (the stored Delivery). Receivers that start work should do so once the
# transaction commits (`transaction.on_commit`): until then the events do not exist for anyone else.
events_stored = Signal()

# Asked by PostgreSQL's one-statement intake (`apps.inbound.onestatement`) before it writes a webhook delivery:
# arguments system, keys (the events' idempotency keys) and using (the database alias). A receiver may return
# {"model": ..., "values": {field: value}}, a row that statement inserts only if at least one event is new, so
# it commits exactly with them (a queue message on the ORM broker). If no receiver returns a row,
# `events_stored` is sent once the statement has committed, as on the ORM path.
pick_up_message = Signal()
