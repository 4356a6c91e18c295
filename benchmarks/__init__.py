"""Benchmarks: see the performance issue; `make bench` runs them once they land."""
