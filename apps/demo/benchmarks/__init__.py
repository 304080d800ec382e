"""Benchmarks the lead wires into `manage.py bench`: each module has `measure(...) -> list[dict]`."""
