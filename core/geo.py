"""Geometry on the sphere, one definition for the whole project: the earth radius, the
great-circle distance, a fast distance for thresholds, and the coarse place (an H3 cell's
centre) that is all a story or a crossing record keeps of a position."""

from __future__ import annotations

import math
from typing import NamedTuple

import h3

EARTH_RADIUS_M = 6_371_008.8  # the mean radius (IUGG)
M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0  # metres per degree of latitude
#: H3 resolution 7: hexagons of about 1.2 km edge, so a coarse place is at least 500 m wide.
PLACE_RESOLUTION = 7


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Distance in metres: equirectangular below ~50 km (error under 0.1 %, one cosine),
    haversine beyond.  For thresholds (city radius, speed); exact definitions use ``haversine_m``."""
    dlat = lat2 - lat1
    dlng = lng2 - lng1
    if -0.45 < dlat < 0.45 and -0.45 < dlng < 0.45:
        x = dlng * math.cos(math.radians((lat1 + lat2) * 0.5))
        return math.sqrt(x * x + dlat * dlat) * M_PER_DEG
    return haversine_m(lat1, lng1, lat2, lng2)


class Place(NamedTuple):
    """A coarse place: an H3 resolution-7 cell and its centre."""

    cell: str
    lat: float
    lng: float


def coarse_place(lat: float, lng: float) -> Place:
    """The H3 resolution-7 cell holding a point, and the cell's centre."""
    cell = h3.latlng_to_cell(lat, lng, PLACE_RESOLUTION)
    centre_lat, centre_lng = h3.cell_to_latlng(cell)
    return Place(cell, centre_lat, centre_lng)
