"""What every benchmark shares: where results go, what machine produced them, their format.

Every script writes ``bench/results/<name>.json`` (name, time, machine, scale, figures, how);
``make bench`` turns them all into docs/BENCHMARKS.md.  Format: bench/README.md; docs/benchmarks/README.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR", BASE_DIR / "bench" / "results"))


def machine() -> dict:
    """The facts a reader needs to weigh a figure: CPU, cores, memory, versions."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load_avg_1m": round(os.getloadavg()[0], 2),  # other work on the machine when the result was written
        "note": os.environ.get("BENCH_MACHINE_NOTE", "2-core shared VM (other engineers' tests running)"),
    }


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def write_result(name: str, figures: dict, how: str, scale: dict | None = None, **extra) -> Path:
    """Write one result file in the common format and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": name,
        "measured_at": now_iso(),
        "machine": machine(),
        "scale": scale or {},
        "figures": figures,
        "how": how,
        **extra,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    return path


def read_result(name: str) -> dict | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def all_results() -> list[dict]:
    """Every readable result file, sorted by name (unreadable files are skipped, not fatal)."""
    docs = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(doc, dict) and "figures" in doc:
            doc.setdefault("name", path.stem)
            docs.append(doc)
    return docs


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between ranks, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def marked_block(path: Path, begin: str, end: str) -> str:
    """The text a document holds between two markers ('' without them): a generated part of a
    hand-kept page (docs/BENCHMARKS.md's closed-loop and WebSocket blocks)."""
    doc = path.read_text() if path.exists() else ""
    if begin not in doc:
        return ""
    return doc.split(begin, 1)[1].split(end, 1)[0].strip()


def replace_marked_block(path: Path, begin: str, end: str, text: str) -> bool:
    """Put ``text`` between the two markers of a document; False (nothing written) without them."""
    doc = path.read_text()
    if begin not in doc:
        return False
    head, rest = doc.split(begin, 1)
    path.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}")
    return True
