"""The brute-force reference: every pair of pings, O(n^2), straight from docs/crossings.md."""

from __future__ import annotations

import itertools

import numpy as np

from crossings.detection.core import within_radius


def reference_crossings(pings, *, radius_m=150.0, window_us=600_000_000, repeat_gap_us=3_600_000_000):
    """``pings``: (user, t_us, lat, lng) tuples.  Returns {(low, high): (first, last, times)}:
    the earliest match, the start of the latest encounter, the number of encounters."""
    if not pings:
        return {}
    users = np.array([p[0] for p in pings])
    t = np.array([p[1] for p in pings], dtype=np.int64)
    lat = np.array([p[2] for p in pings], dtype=np.float64)
    lng = np.array([p[3] for p in pings], dtype=np.float64)
    match_times: dict[tuple, list[int]] = {}
    for i in range(len(pings)):
        j = np.arange(i + 1, len(pings))
        ok = (users[j] != users[i]) & (np.abs(t[j] - t[i]) <= window_us)
        ok &= within_radius(lat[i], lng[i], lat[j], lng[j], radius_m)
        for k in j[ok]:
            key = (min(users[i], users[k]), max(users[i], users[k]))
            match_times.setdefault(key, []).append(int(max(t[i], t[k])))
    result = {}
    for key, times in match_times.items():
        times.sort()
        starts = [times[0]] + [b for a, b in itertools.pairwise(times) if b - a > repeat_gap_us]
        result[key] = (times[0], starts[-1], len(starts))
    return result
