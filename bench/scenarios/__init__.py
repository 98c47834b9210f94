"""One benchmark per area, each runnable as python -m bench.scenarios.<name>."""
