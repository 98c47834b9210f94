"""The brute-force reference: every pair of pings, O(n^2), straight from docs/crossings.md.

Two pings of different users match when their cells are neighbours and their times are at
most the window apart.  ``Cells.cell_of`` and ``Cells.neighbours`` are that definition; the
detector's candidate search (id ranges, groups) is not used here.
"""

from __future__ import annotations

import itertools

import numpy as np

from crossings.detection.core import Cells


def reference_crossings(pings, *, cell_m=200.0, window_us=600_000_000, repeat_gap_us=3_600_000_000, new=None):
    """``pings``: (user, t_us, lat, lng) tuples.  Returns {(low, high): (first, last, times)}:
    the earliest match, the start of the latest encounter, the number of encounters.

    With ``new`` (a mask), only the matches that involve at least one new ping count.
    """
    if not pings:
        return {}
    cells = Cells(cell_m)
    users = np.array([p[0] for p in pings])
    t = np.array([p[1] for p in pings], dtype=np.int64)
    rows, cols = cells.cell_of([p[2] for p in pings], [p[3] for p in pings])
    match_times: dict[tuple, list[int]] = {}
    for i in range(len(pings)):
        j = np.arange(i + 1, len(pings))
        ok = (users[j] != users[i]) & (np.abs(t[j] - t[i]) <= window_us)
        if new is not None:
            ok &= np.asarray(new)[j] | bool(new[i])
        ok &= cells.neighbours((np.full(len(j), rows[i]), np.full(len(j), cols[i])), (rows[j], cols[j]))
        for k in j[ok]:
            key = (min(users[i], users[k]), max(users[i], users[k]))
            match_times.setdefault(key, []).append(int(max(t[i], t[k])))
    result = {}
    for key, times in match_times.items():
        times.sort()
        starts = [times[0]] + [b for a, b in itertools.pairwise(times) if b - a > repeat_gap_us]
        result[key] = (times[0], starts[-1], len(starts))
    return result
