"""Benchmarks: the load model, the harness, the plan's claims measured (see bench/README.md)."""
