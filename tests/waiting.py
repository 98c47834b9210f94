"""Waiting in tests: poll a condition against a generous deadline, never a fixed sleep.

CI machines are small and may be busy; a wait that depends on timing must give up only after
a deadline far above what the wait takes on an idle machine.
"""

from __future__ import annotations

import time

DEADLINE_S = 120.0


def wait_until(check, timeout: float = DEADLINE_S, what: str = "the condition", interval: float = 0.1):
    """Call ``check`` until it returns something true (returned), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {what}")
        time.sleep(interval)
