"""Benchmarks: `make bench` (see benchmarks/README.md); the harness is the `bench` package."""
