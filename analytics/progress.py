"""A dependency-free progress bar for management commands.

On a terminal it redraws one line; in a log (not a TTY) it prints a line every 10 %, so
long operator commands show progress in both.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, *, stream=None, width: int = 30, enabled: bool = True):
        self.label, self.total, self.width, self.enabled = label, max(int(total), 0), width, enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1
        self._last_printed = -1
        self._last_draw = 0.0

    def __enter__(self):
        self._draw(force=True)
        return self

    def __exit__(self, *exc):
        self.done = self.total if exc[0] is None else self.done
        self._draw(force=True)
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()
        return False

    def advance(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total) if self.total else self.done + n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        fraction = self.done / self.total if self.total else 1.0
        elapsed = time.monotonic() - self.started
        if self._tty:
            now = time.monotonic()
            if not force and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            filled = int(self.width * fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{self.label:<22} [{bar}] {self.done}/{self.total} {elapsed:6.1f}s")
            self.stream.flush()
            return
        decile = int(fraction * 10)
        if (force and self.done != self._last_printed) or decile > self._last_decile:
            self._last_decile, self._last_printed = decile, self.done
            self.stream.write(f"{self.label}: {self.done}/{self.total} ({fraction:.0%}) {elapsed:.1f}s\n")
            self.stream.flush()
