"""The statistics page's charts: activity per hour over the last 24 hours and per city,
drawn on the server as SVG (no script, nothing from another site: the admin's CSP).

``hourly_activity`` counts per UTC hour: pings received, distinct users who sent them
(active users), messages sent, new crossings (pairs whose first encounter falls in the hour)
and sign-ups.  The materialized views hold 24-hour totals only, so these are counted live,
one query per table over the last day (pings are kept about a day anyway; crossings and users
through their time indexes; messages are scanned, as ``activity_stats_mv`` does), and kept in
the cache for ``STATS_CHARTS_CACHE_S`` seconds so that reloading the page costs nothing.  Per city,
the charts read ``city_stats_mv`` (analytics.selectors), as the table below them does.
Hours without activity are zero, not missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.models import User
from connections.models import Message
from crossings.models import Crossing
from locations.models import Ping

HOURS = 24
HOURLY_CACHE_KEY = "analytics:charts:hourly:v1"

SERIES = (
    ("pings", "Pings received"),
    ("active_users", "Active users (sent a ping)"),
    ("messages", "Messages sent"),
    ("new_crossings", "New crossings"),
    ("new_users", "Sign-ups"),
)


def hour_starts(now: datetime) -> list[datetime]:
    """The starts of the last ``HOURS`` UTC hours, oldest first; the last is the current hour."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]


def _per_hour(queryset, column: str, starts: list[datetime], **counts) -> dict[str, list[int]]:
    end = starts[-1] + timedelta(hours=1)
    rows = (queryset.filter(**{f"{column}__gte": starts[0], f"{column}__lt": end})
            .annotate(hour=TruncHour(column, tzinfo=UTC)).order_by().values("hour").annotate(**counts))
    index = {start: i for i, start in enumerate(starts)}
    series = {name: [0] * len(starts) for name in counts}
    for row in rows:
        i = index.get(row["hour"].astimezone(UTC))
        if i is not None:
            for name in counts:
                series[name][i] = row[name]
    return series


def hourly_activity(now: datetime | None = None) -> dict:
    """``{"hours": [start, ...], "<series>": [count per hour, ...]}`` for the last 24 hours."""
    starts = hour_starts(now or timezone.now())
    series: dict = {"hours": starts}
    series.update(_per_hour(Ping.objects.all(), "recorded_at", starts,
                            pings=Count("*"), active_users=Count("user_id", distinct=True)))
    series.update(_per_hour(Message.objects.all(), "created_at", starts, messages=Count("*")))
    # A new pair's last encounter is no older than its first: the index on last_crossed_at
    # narrows the scan to the day's crossings.
    recent = Crossing.objects.filter(last_crossed_at__gte=starts[0])
    series.update(_per_hour(recent, "first_crossed_at", starts, new_crossings=Count("*")))
    series.update(_per_hour(User.objects.all(), "created_at", starts, new_users=Count("*")))
    return series


def cached_hourly_activity() -> dict:
    """``hourly_activity`` as of at most ``STATS_CHARTS_CACHE_S`` seconds ago."""
    series = cache.get_or_set(HOURLY_CACHE_KEY, hourly_activity, settings.STATS_CHARTS_CACHE_S)
    return series if series is not None else hourly_activity()  # None: the cache is down


# ------------------------------------------------------------------------- drawing


def nice_ceiling(value: float) -> int:
    """The axis top: the smallest 1, 2 or 5 x 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass
class Chart:
    """Geometry for the template: a ``viewBox`` of ``width`` x ``height`` user units."""

    key: str
    title: str
    width: int
    height: int
    bars: list[Bar]
    total: int
    peak: int
    axis_top: int
    grid: list[tuple[float, str]] = field(default_factory=list)  # (y, label) for horizontal lines
    ticks: list[tuple[float, str]] = field(default_factory=list)  # (x, label) under the bars
    plot_left: float = 0
    plot_right: float = 0
    baseline: float = 0


HOUR_W, HOUR_H = 480, 170
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 22


def hourly_chart(key: str, title: str, hours: list[datetime], values: list[int]) -> Chart:
    """A column per hour, the axis from zero to a round number above the busiest hour."""
    plot_w, plot_h = HOUR_W - LEFT - RIGHT, HOUR_H - TOP - BOTTOM
    band = plot_w / len(values)
    top = nice_ceiling(max(values, default=0))
    baseline = TOP + plot_h
    bars = []
    for i, (start, value) in enumerate(zip(hours, values, strict=True)):
        height = plot_h * value / top
        label = f"{start:%H:00}–{start + timedelta(hours=1):%H:00} UTC: {value}"
        bars.append(Bar(x=round(LEFT + i * band + band * 0.1, 2), y=round(baseline - height, 2),
                        width=round(band * 0.8, 2), height=round(height, 2), value=value, label=label))
    grid = [(round(baseline - plot_h * f, 2), f"{top * f:,g}") for f in (0, 0.5, 1) if f == 0 or top * f >= 1]
    ticks = [(round(LEFT + i * band + band / 2, 2), f"{start:%H:00}")
             for i, start in enumerate(hours) if i % 6 == 0 or i == len(hours) - 1]
    return Chart(key=key, title=title, width=HOUR_W, height=HOUR_H, bars=bars, total=sum(values),
                 peak=max(values, default=0), axis_top=top, grid=grid, ticks=ticks, plot_left=LEFT,
                 plot_right=HOUR_W - RIGHT, baseline=baseline)


CITY_W, CITY_ROW, CITY_LABEL = 480, 22, 110
MAX_CITIES = 12


def city_chart(key: str, title: str, cities: list[dict], figure: str) -> Chart:
    """A horizontal bar per city (the busiest ``MAX_CITIES``), longest on top."""
    rows = sorted(cities, key=lambda city: (-city[figure], city["name"]))[:MAX_CITIES]
    top = nice_ceiling(max((city[figure] for city in rows), default=0))
    plot_w = CITY_W - CITY_LABEL - 60  # room for the value after the bar
    bars = []
    for i, city in enumerate(rows):
        value = city[figure]
        bars.append(Bar(x=CITY_LABEL, y=TOP + i * CITY_ROW + 3, width=round(plot_w * value / top, 2),
                        height=CITY_ROW - 6, value=value, label=city["name"]))
    height = TOP + max(1, len(rows)) * CITY_ROW + 4
    return Chart(key=key, title=title, width=CITY_W, height=height, bars=bars,
                 total=sum(city[figure] for city in cities), peak=max((b.value for b in bars), default=0),
                 axis_top=top, plot_left=CITY_LABEL, plot_right=CITY_LABEL + plot_w, baseline=height)


def charts(figures: dict, hourly: dict) -> dict[str, list[Chart]]:
    """Everything the statistics page draws."""
    hours = hourly["hours"]
    return {
        "hourly": [hourly_chart(key, title, hours, hourly[key]) for key, title in SERIES],
        "cities": [city_chart("city_pings", "Pings per city, 24 h", figures["cities"], "pings_24h"),
                   city_chart("city_crossings", "Crossings per city, 24 h", figures["cities"], "crossings_24h")],
    }
