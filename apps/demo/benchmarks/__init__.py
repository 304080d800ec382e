"""Benchmarks the `bench` command calls: each module measures one row of the performance table."""
