"""`make bench`: the hot paths measured the way a user meets them, each beside its physical floor.

The web tier runs under gunicorn and is loaded with Debian's `wrk` over loopback; the ledger runs on a real
`qcluster`. Each floor is implemented here (`floor.py`) and measured in the same run, interleaved with the
measured path, over several rounds. Everything runs in a database of its own (`bench_database_url()`),
never the demo's. The harness is `harness.py`; `manage.py bench` only parses its arguments.
"""
