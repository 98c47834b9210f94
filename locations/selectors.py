"""Reads about cities and pings that other apps (and our API) may call."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from accounts import selectors as account_selectors
from core.geo import EARTH_RADIUS_M, distance_m
from locations.models import City, Ping, PingStatus

#: Other processes notice a changed city within this many seconds (cachalot, behind this
#: in-process copy, is invalidated at once; this copy saves even its Redis round trip).


@dataclass(frozen=True)
class _CityShape:
    """A city with a bounding box around its circle, so most points are rejected cheaply."""

    city: City
    min_lat: float
    max_lat: float
    min_lng: float
    max_lng: float
    radius_m: float

    @classmethod
    def of(cls, city: City) -> _CityShape:
        radius_m = city.radius_km * 1000.0
        dlat = math.degrees(radius_m / EARTH_RADIUS_M)
        cos_lat = math.cos(math.radians(min(89.0, abs(city.lat) + dlat)))
        dlng = min(180.0, dlat / max(cos_lat, 1e-6))
        return cls(city, city.lat - dlat, city.lat + dlat, city.lng - dlng, city.lng + dlng, radius_m)

    def distance_if_inside(self, lat: float, lng: float) -> float | None:
        if not (self.min_lat <= lat <= self.max_lat):
            return None
        if not (self.min_lng <= lng <= self.max_lng) and not (self.min_lng < -180 or self.max_lng > 180):
            return None
        d = distance_m(self.city.lat, self.city.lng, lat, lng)
        return d if d <= self.radius_m else None


class _CityCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._loaded_at = -math.inf
        self._shapes: tuple[_CityShape, ...] = ()

    def shapes(self) -> tuple[_CityShape, ...]:
        if time.monotonic() - self._loaded_at > settings.CITY_CACHE_S:
            with self._lock:
                if time.monotonic() - self._loaded_at > settings.CITY_CACHE_S:
                    # cachalot caches this query in Redis (locations_city is a cachable table).
                    cities = list(City.objects.filter(active=True).order_by("id"))
                    self._shapes = tuple(_CityShape.of(c) for c in cities)
                    self._loaded_at = time.monotonic()
        return self._shapes

    def clear(self, **kwargs) -> None:
        self._loaded_at = -math.inf


_city_cache = _CityCache()


def clear_city_cache(**kwargs) -> None:
    """Forget the in-process copy of the cities (a receiver of City saves and deletes)."""
    _city_cache.clear()


def cities() -> list[City]:
    """Active cities, from the in-process cache."""
    return [shape.city for shape in _city_cache.shapes()]


def city_ids_for_points(points) -> list[int]:
    """``city_id`` (0 outside every city) for each ``(lat, lng)``: one cache read for all."""
    shapes = _city_cache.shapes()
    result = []
    for lat, lng in points:
        best, best_d = 0, math.inf
        for shape in shapes:
            d = shape.distance_if_inside(lat, lng)
            if d is not None and d < best_d:
                best, best_d = shape.city.id, d
        result.append(best)
    return result


def user_pings(user_id):
    """A user's own stored pings, newest first (only ever shown to that user).

    Read from the primary: ingest does not pin the user to it (see services.ingest_pings),
    and a user who just sent pings expects to see them.
    """
    return Ping.objects.using("default").filter(user_id=user_id).order_by("-recorded_at")


# ---------------------------------------------------------------- the detector's reads
#
# Each ping row carries ``ingest_xid``, the id of the transaction that inserted it (see
# locations.models).  The crossing detector keeps a watermark of those ids; these builders
# give it (and the detector-lag metric) the SQL for "pings since the watermark" without any
# other app spelling out this table.  They return SQL text and parameters because the
# detector streams them with ``COPY ... (FORMAT BINARY)``.

MATCHABLE_SQL = (f"status = {int(PingStatus.MATCHABLE)} AND expires_at > now() "
                 f"AND user_id IN ({account_selectors.matchable_users_sql()})")
_INGESTED_BETWEEN = "ingest_xid >= %s::text::xid8 AND ingest_xid < %s::text::xid8"


#: A detection shard's pings: those of the cities ``c`` with ``c % count == index`` (``NO_CITY``,
#: 0, is shard 0's).  Parameters: count, index.
_IN_SHARD = "mod(city_id, %s) = %s"


def pings_since_watermark_sql(columns: str, watermark: int, horizon: int,
                              received_after=None, shard: tuple[int, int] | None = None) -> tuple[str, list]:
    """SELECT ``columns`` of matchable pings ingested by transactions in [watermark, horizon).

    ``received_after`` (a lower bound on ``received_at`` that every such ping satisfies)
    only lets the BRIN index prune.  ``shard`` (index, count): only that shard's cities.
    """
    sql = f"SELECT {columns} FROM {Ping._meta.db_table} WHERE {MATCHABLE_SQL} AND {_INGESTED_BETWEEN}"
    params: list[object] = [watermark, horizon]
    if shard is not None:
        sql += f" AND {_IN_SHARD}"
        params += [shard[1], shard[0]]
    if received_after is not None:
        sql += " AND received_at >= %s"
        params.append(received_after)
    return sql, params


@dataclass(frozen=True)
class Area:
    """Where a shard's context is read: pings of any city but ``far_cities`` (their partitions
    are not scanned) that are the shard's own or whose tile ``floor(lat / tile_deg) * 2**32 +
    floor(lng / tile_deg)`` is one of ``tiles``."""

    tile_deg: float
    tiles: list[int]
    far_cities: list[int]


def pings_recorded_between_sql(columns: str, lo, hi, watermark: int, horizon: int,
                               shard: tuple[int, int] | None = None, area: Area | None = None) -> tuple[str, list]:
    """SELECT ``columns`` plus an "ingested in [watermark, horizon)" flag of matchable pings
    recorded between ``lo`` and ``hi`` (the context a batch is matched against).

    With ``shard`` (index, count) the flag is set only on that shard's pings; with ``area``
    only the pings in it are read.
    """
    new = _INGESTED_BETWEEN
    params: list[object] = [watermark, horizon]
    if shard is not None:
        new += f" AND {_IN_SHARD}"
        params += [shard[1], shard[0]]
    sql = (f"SELECT {columns}, ({new}) FROM {Ping._meta.db_table} "
           f"WHERE {MATCHABLE_SQL} AND recorded_at BETWEEN %s AND %s")
    params += [lo, hi]
    if area is not None:
        # The shard's own pings are all read (no tile to compute); the others' by tile, through
        # a hashed subplan (a constant "= ANY(array)" was searched linearly, 20 us a row).
        sql += (" AND city_id <> ALL(%s::integer[]) AND (" + _IN_SHARD + " OR (floor(lat / %s::float8)::bigint "
                "* 4294967296 + floor(lng / %s::float8)::bigint) IN (SELECT unnest(%s::bigint[])))")
        assert shard is not None, "an area is read for a shard"
        params += [area.far_cities, shard[1], shard[0], area.tile_deg, area.tile_deg, area.tiles]
    return sql, params


def pings_of_users_sql(columns: str, user_ids: list, lo, hi) -> tuple[str, list]:
    """SELECT ``columns`` of the given users' matchable pings recorded between ``lo`` and ``hi``."""
    sql = (f"SELECT {columns} FROM {Ping._meta.db_table} WHERE {MATCHABLE_SQL} "
           "AND user_id = ANY(%s::uuid[]) AND recorded_at BETWEEN %s AND %s")
    return sql, [[str(u) for u in user_ids], lo, hi]


def oldest_ping_age_since(watermark: int | None, received_after=None, shard: tuple[int, int] | None = None) -> float:
    """Seconds since the oldest matchable ping at or above ``watermark`` arrived (0 if none).

    ``watermark`` None means nothing was processed yet: every ping of the last day counts.
    ``shard`` (index, count): only that detection shard's pings.
    """
    sql = f"SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(received_at)), 0) FROM {Ping._meta.db_table} " \
          f"WHERE {MATCHABLE_SQL} AND received_at >= COALESCE(%s, now() - interval '24 hours')"
    params: list = [received_after]
    if shard is not None:
        sql += f" AND {_IN_SHARD}"
        params += [shard[1], shard[0]]
    if watermark is not None:
        sql += " AND ingest_xid >= %s::text::xid8"
        params.append(watermark)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(float(cursor.fetchone()[0]), 0.0)
