"""Reads on replicas, writes on the primary, read-your-writes by WAL position, lag skipping.

Against a real primary and two streaming replicas; which server served a read is counted in
each server's statement log (tests/cluster/conftest.py).
"""

from __future__ import annotations

import time

import pytest

from tests.cluster.conftest import HEALTH_TTL_S, LAG_LIMIT_S, new_user, reads_per_server
from tests.waiting import DEADLINE_S, wait_until

pytestmark = pytest.mark.cluster


def _user_row_on(cluster, index: int, user_id: str) -> str:
    return cluster.sql(index, f"SELECT display_name FROM users WHERE id = '{user_id}'")


def _replicated(cluster, *users) -> None:
    """Wait until both replicas have the users, and every app process has seen them catch up."""
    for user in users:
        wait_until(lambda u=user: all(_user_row_on(cluster, r, u.user_id) for r in (1, 2)), DEADLINE_S, "replication")
    time.sleep(2 * HEALTH_TTL_S)


def test_writes_land_on_the_primary_and_replicate(cluster):
    user = new_user(cluster)
    user.set_name("written")

    assert _user_row_on(cluster, 0, user.user_id) == "written"
    for replica in (1, 2):
        wait_until(lambda r=replica: _user_row_on(cluster, r, user.user_id) == "written", DEADLINE_S,
                   f"the write on replica {replica}")
    assert cluster.sql(1, "SELECT pg_is_in_recovery()") == "t"


def test_reads_are_served_by_the_replicas(cluster):
    user = new_user(cluster)
    _replicated(cluster, user)

    for _ in range(40):
        assert user.get_me()["display_name"] == "probe"

    primary, replica1, replica2 = reads_per_server(cluster, user.user_id)
    assert primary == 0
    assert replica1 + replica2 == 40
    assert replica1 > 0 and replica2 > 0  # both replicas share the reads


def test_a_user_reads_their_own_write_while_replicas_are_delayed(cluster):
    writer, other = new_user(cluster), new_user(cluster)
    _replicated(cluster, writer, other)
    for replica in (1, 2):
        cluster.sql(replica, "SELECT pg_wal_replay_pause()")
    try:
        before = reads_per_server(cluster, writer.user_id)
        assert writer.set_name("my new name")["display_name"] == "my new name"
        # Immediately, and on every later request: the replicas have not replayed the write.
        for _ in range(5):
            assert writer.get_me()["display_name"] == "my new name"
        after = reads_per_server(cluster, writer.user_id)
        assert after[0] - before[0] == 6  # the PATCH's own read and 5 GETs, all on the primary
        assert after[1:] == before[1:]
        assert _user_row_on(cluster, 1, writer.user_id) == "probe"  # the replicas really are behind

        # Someone else's reads still use the replicas (still well within the lag limit).
        for _ in range(10):
            assert other.get_me()["display_name"] == "probe"
        assert sum(reads_per_server(cluster, other.user_id)[1:]) == 10
    finally:
        for replica in (1, 2):
            cluster.sql(replica, "SELECT pg_wal_replay_resume()")

    # Once the replicas have replayed past the write, the writer's reads go back to them.
    def served_by_a_replica():
        before = reads_per_server(cluster, writer.user_id)
        assert writer.get_me()["display_name"] == "my new name"
        return sum(reads_per_server(cluster, writer.user_id)[1:]) > sum(before[1:])

    wait_until(served_by_a_replica, DEADLINE_S, "the writer's reads back on a replica", interval=HEALTH_TTL_S / 2)


def test_a_replica_lagging_past_the_limit_is_skipped_then_used_again(cluster):
    reader, writer = new_user(cluster), new_user(cluster)
    _replicated(cluster, reader, writer)
    cluster.sql(1, "SELECT pg_wal_replay_pause()")
    try:
        # Writes keep arriving while replica 1 replays nothing: its lag grows past the limit.
        deadline = time.monotonic() + LAG_LIMIT_S + 3 * HEALTH_TTL_S + 0.5
        n = 0
        while time.monotonic() < deadline:
            writer.set_name(f"name {n}")
            n += 1
            time.sleep(0.05)
        before = reads_per_server(cluster, reader.user_id)
        for _ in range(20):
            reader.get_me()
        after = reads_per_server(cluster, reader.user_id)
        assert after[1] == before[1], "the lagging replica must be skipped"
        assert after[2] - before[2] == 20, "the healthy replica serves the reads"
    finally:
        cluster.sql(1, "SELECT pg_wal_replay_resume()")

    def replica1_used_again():
        before = reads_per_server(cluster, reader.user_id)[1]
        for _ in range(6):
            reader.get_me()
        return reads_per_server(cluster, reader.user_id)[1] > before

    wait_until(replica1_used_again, DEADLINE_S, "replica 1 used again after catching up", interval=HEALTH_TTL_S)
