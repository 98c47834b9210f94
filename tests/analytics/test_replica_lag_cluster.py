"""replica_status and the lag gauge against real streaming replicas (``make test-all``; starts
the loopback cluster of deploy/cluster/, about a minute)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from django.conf import settings

from tests.cluster.conftest import LAG_LIMIT_S, cluster  # noqa: F401  (fixture)
from tests.waiting import DEADLINE_S, wait_until

pytestmark = pytest.mark.cluster


def _status(cluster) -> dict[str, list[str]]:  # noqa: F811
    out = subprocess.run([sys.executable, "manage.py", "replica_status"], env=cluster.app_env(),
                         cwd=settings.BASE_DIR, check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}


def test_replica_status_shows_the_lag_of_a_paused_replica(cluster):  # noqa: F811
    rows = _status(cluster)
    assert set(rows) == {"replica1", "replica2"}
    assert all(row[1] == "replica" and row[-1] == "yes" for row in rows.values()), rows
    cluster.sql(1, "SELECT pg_wal_replay_pause()")
    try:
        time.sleep(LAG_LIMIT_S + 0.5)
        cluster.sql(0, "SELECT txid_current()")  # a commit the paused replica receives, not replays
        wait_until(lambda: float(_status(cluster)["replica1"][2]) > LAG_LIMIT_S, DEADLINE_S, "the lag to show")
        rows = _status(cluster)
        assert rows["replica1"][-1] == "no"  # past REPLICA_MAX_LAG_S: the router skips it
        assert float(rows["replica2"][2]) <= LAG_LIMIT_S and rows["replica2"][-1] == "yes"
        failed = subprocess.run([sys.executable, "manage.py", "replica_status", "--fail-over", str(LAG_LIMIT_S)],
                                env=cluster.app_env(), cwd=settings.BASE_DIR, capture_output=True, text=True)
        assert failed.returncode != 0 and "replica1 lags" in failed.stderr
    finally:
        cluster.sql(1, "SELECT pg_wal_replay_resume()")
    wait_until(lambda: float(_status(cluster)["replica1"][2]) == 0.0, DEADLINE_S, "replica1 to catch up")
