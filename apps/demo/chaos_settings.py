"""Settings for the processes `manage.py chaos` starts: the project's settings with a short step lease.

A step whose worker was SIGKILLed is taken over once its lease runs out; in production that is
Q_TIMEOUT + 60 seconds. The harness shortens both (Q_TIMEOUT comes from the environment it sets) so a
run that kills clusters recovers in seconds, keeping the lease longer than the task time limit; and the
sweep re-sends a lost message after 15 s instead of 120 s. The mechanisms are the production ones.
"""

import os

from integration_console.settings import *  # noqa: F403
from integration_console.settings import Q_TIMEOUT

SYNC_LEASE_SECONDS = int(os.environ.get("SYNC_LEASE_SECONDS", Q_TIMEOUT + 10))
# How long the sweep leaves a queued step or a stored event to its message before sending another (120 s).
SYNC_REQUEUE_AFTER_SECONDS = int(os.environ.get("SYNC_REQUEUE_AFTER_SECONDS", 15))
