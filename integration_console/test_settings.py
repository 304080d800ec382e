"""Settings for the test suite: the production settings, plus what tests need, said here and nowhere else.

The environment is set before the production settings are read, so the processes tests start (workers,
the demo console) read the same values.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-insecure-key-not-for-any-deployment-0123456789abcdef")
os.environ.setdefault("SANDBOX_ENABLED", "1")  # the vendor simulators the tests talk to
# Persistent connections would outlive the live server's threads and keep the test database from being dropped.
os.environ.setdefault("CONN_MAX_AGE", "0")
# The test client and the live server speak plain HTTP.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")

from .settings import *  # noqa: E402, F403

# Throttles count in the cache: one per test process, emptied before each test (tests/conftest.py).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
