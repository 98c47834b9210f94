"""Writes of the crossings app: recording matches into crossing records, and expiry.

The detector (crossings/detector.py) finds matches; ``apply_pair_intervals`` merges them
into the records.  Both are idempotent: merging the same matches twice changes nothing.
"""

from __future__ import annotations

import h3

PLACE_RESOLUTION = 7  # H3 resolution 7: hexagons of about 1.2 km edge (>= 500 m, CROSSINGS.md)


def coarse_place(lat: float, lng: float) -> tuple[float, float, str]:
    """The centre of the H3 resolution-7 cell holding the point: (lat, lng, cell)."""
    cell = h3.latlng_to_cell(lat, lng, PLACE_RESOLUTION)
    centre_lat, centre_lng = h3.cell_to_latlng(cell)
    return centre_lat, centre_lng, cell
