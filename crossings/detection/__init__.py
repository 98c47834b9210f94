"""Crossing detection: ``core`` matches pings (numpy, no database), ``run`` is the batch runner over the database."""
