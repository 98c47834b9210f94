"""CPU time of process trees (app, PostgreSQL, Redis), sampled before and after a run.

Reaped children and live descendants are both counted, so the difference of two samples is
exact; how: docs/benchmarks/README.md, "CPU accounting".
"""

from __future__ import annotations

from pathlib import Path

import psutil


def own_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a live process: nanosecond scheduler run time summed over its threads.

    ``/proc/<pid>/task/<tid>/schedstat`` counts exactly; ``cpu_times`` is in 10 ms ticks, too
    coarse for a PostgreSQL backend that spends 30 us per query.  Falls back to ticks.
    """
    try:
        total_ns = 0
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            total_ns += int((task / "schedstat").read_text().split()[0])
        return total_ns / 1e9
    except (OSError, ValueError, IndexError):
        t = proc.cpu_times()
        return t.user + t.system


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU seconds used so far by ``root_pid`` and all its descendants (dead ones too)."""
    try:
        root = psutil.Process(root_pid)
        t = root.cpu_times()
        total = own_cpu(root) + t.children_user + t.children_system
        descendants = root.children(recursive=True)
    except psutil.Error:
        return 0.0
    for child in descendants:
        try:
            total += own_cpu(child)
        except psutil.Error:  # exited between listing and reading: counted in the parent later
            pass
    return total


def pid_from_file(path: Path) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def find_gunicorn_masters() -> list[int]:
    """gunicorn masters serving this project (for ``--url`` runs against a server we did not start)."""
    masters = []
    for proc in psutil.process_iter(["pid", "cmdline", "ppid"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if "gunicorn" in cmd and "config.wsgi" in cmd:
            try:
                parent_cmd = " ".join(psutil.Process(proc.info["ppid"]).cmdline())
            except psutil.Error:
                parent_cmd = ""
            if not ("gunicorn" in parent_cmd and "config.wsgi" in parent_cmd):
                masters.append(proc.info["pid"])
    return masters


class Tiers:
    """The process trees of each tier, e.g. ``{"app": [pid], "db": [pid], "redis": [pid]}``."""

    def __init__(self, pids: dict[str, list[int]]):
        self.pids = {tier: [p for p in roots if p] for tier, roots in pids.items()}

    def sample(self) -> dict[str, float]:
        return {tier: sum(tree_cpu_seconds(p) for p in roots) for tier, roots in self.pids.items()}

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {tier: max(0.0, after[tier] - before.get(tier, 0.0)) for tier in after}
