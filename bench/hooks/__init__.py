"""Measuring hooks the bench settings add to a server: floor views, per-request counters."""
