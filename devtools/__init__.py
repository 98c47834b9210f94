"""Tools for development, tests and benchmarks: the embedded PostgreSQL and Redis servers."""
