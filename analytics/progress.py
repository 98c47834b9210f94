"""A dependency-free progress bar for management commands.

On a terminal it redraws one line; in a log (not a TTY) it prints a line every 10 %, so
long operator commands show progress in both.
"""

from __future__ import annotations

import sys
import threading
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


class Activity:
    """A phase of unknown size (one long query, the crossing detector): a status line that
    moves every few seconds (elapsed time, and what :meth:`note` last said) so that a silent
    minute never looks like a hang.  On a terminal it redraws one line every half second; in a
    log it prints a line every ``every`` seconds."""

    def __init__(self, label: str, *, stream=None, enabled: bool = True, every: float = 5.0, status: str = ""):
        self.label, self.enabled, self.every, self.status = label, enabled, every, status
        self.stream = stream or sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.started = time.monotonic()

    def note(self, status: str) -> None:
        """What the phase is doing now; shown from the next line on."""
        self.status = status

    def __enter__(self):
        self.started = time.monotonic()
        if self.enabled:
            if self._tty:  # in a log, a phase that ends within ``every`` seconds prints one line
                self._write(force_newline=False)
            self._thread = threading.Thread(target=self._run, name=f"progress-{self.label}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.enabled:
            self.status = "done" if exc[0] is None else "failed"
            self._write(force_newline=True)
        return False

    def _run(self) -> None:
        period = 0.5 if self._tty else self.every
        while not self._stop.wait(period):
            self._write(force_newline=not self._tty)

    def _write(self, force_newline: bool) -> None:
        elapsed = time.monotonic() - self.started
        text = f"{self.label}: {self.status + ', ' if self.status else ''}{elapsed:.0f} s"
        with self._lock:
            if self._tty:
                self.stream.write(f"\r{text:<78}" + ("\n" if force_newline else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
