"""What inbound tells the layers above it. Inbound stores deliveries and events and knows nothing of what
happens to them next; the ledger (`apps.sync`) listens here.
"""

from django.dispatch import Signal

# Sent inside the database transaction that stored a delivery with at least one new event.
# Arguments: delivery (the stored Delivery). Receivers that start work should do so once the
# transaction commits (`transaction.on_commit`): until then the events do not exist for anyone else.
events_stored = Signal()
