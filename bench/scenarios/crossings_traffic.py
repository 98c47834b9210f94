"""City-scale ping traffic of docs/load-model.md, generated with numpy (no database).

Users are spread over cities of 20 000: half in a 10 km x 10 km centre, half in the 30 km x
30 km area around it (the centre excluded).  They walk at 1.4 m/s with random turns, stop for
5 to 30 minutes now and then, and ping every 30 s (each user at a random phase).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.geo import M_PER_DEG

CITY_CENTRES = [(52.52, 13.405), (48.8566, 2.3522), (51.5074, -0.1278), (40.4168, -3.7038), (41.9028, 12.4964)]
PING_EVERY_S = 30
WALK_SPEED = 1.4
US = 1_000_000


@dataclass
class Traffic:
    user: np.ndarray  # int64 user index
    city: np.ndarray  # int64 city index (1-based)
    t_us: np.ndarray  # int64 epoch microseconds
    lat: np.ndarray
    lng: np.ndarray


def _initial_positions(rng, n):
    """(x, y) metres from the city centre: half in the centre square, half around it."""
    centre = n // 2
    xy = np.empty((n, 2))
    xy[:centre] = rng.uniform(-5_000, 5_000, (centre, 2))
    outer = n - centre
    pts = rng.uniform(-15_000, 15_000, (outer * 2, 2))
    pts = pts[(np.abs(pts) > 5_000).any(axis=1)][:outer]
    xy[centre:] = pts
    return xy


def generate(users_per_city: int = 20_000, cities: int = 5, minutes: float = 11.0, *, seed: int = 1,
             start_us: int = 1_800_000_000 * US) -> Traffic:
    """Pings of every user over ``minutes``, sorted by time."""
    rng = np.random.default_rng(seed)
    n = users_per_city * cities
    city = np.repeat(np.arange(1, cities + 1), users_per_city)
    xy = np.concatenate([_initial_positions(rng, users_per_city) for _ in range(cities)])
    heading = rng.uniform(0, 2 * np.pi, n)
    # A stay ends at stay_until; walking users have stay_until in the past.  Start with a mix.
    staying = rng.random(n) < 0.5
    stay_until = np.where(staying, rng.uniform(0, 30 * 60, n), -1.0)
    phase = rng.uniform(0, PING_EVERY_S, n)
    steps = int(minutes * 60 / PING_EVERY_S)
    out_t, out_x, out_y = [], [], []
    for step in range(steps):
        now = step * PING_EVERY_S
        walking = stay_until < now
        heading[walking] += rng.normal(0, 0.4, walking.sum())
        xy[walking, 0] += np.cos(heading[walking]) * WALK_SPEED * PING_EVERY_S
        xy[walking, 1] += np.sin(heading[walking]) * WALK_SPEED * PING_EVERY_S
        # A walker stops with probability 1/20 per step (every 10 minutes on average).
        stop = walking & (rng.random(n) < 1 / 20)
        stay_until[stop] = now + rng.uniform(5 * 60, 30 * 60, stop.sum())
        out_t.append(now + phase)
        out_x.append(xy[:, 0].copy())
        out_y.append(xy[:, 1].copy())
    t = np.concatenate(out_t)
    x = np.concatenate(out_x)
    y = np.concatenate(out_y)
    user = np.tile(np.arange(n), steps)
    cities_idx = np.tile(city, steps)
    centre = np.array(CITY_CENTRES[:cities])[cities_idx - 1]
    lat = centre[:, 0] + y / M_PER_DEG
    lng = centre[:, 1] + x / (M_PER_DEG * np.cos(np.radians(centre[:, 0])))
    order = np.argsort(t, kind="stable")
    return Traffic(user=user[order].astype(np.int64), city=cities_idx[order].astype(np.int64),
                   t_us=(start_us + (t[order] * US).astype(np.int64)), lat=lat[order], lng=lng[order])
