"""The Redis Cluster cache backend (core/cache/cluster.py) against a real 3+3 cluster."""

from __future__ import annotations

import pytest

from core.cache.cluster import RedisClusterCache

pytestmark = pytest.mark.cluster


@pytest.fixture
def cache(cluster):
    backend = RedisClusterCache(cluster.redis_cluster_urls[:2], {
        "KEY_PREFIX": "cachetest", "TIMEOUT": 60, "OPTIONS": {"WAIT_REPLICAS": 1, "WAIT_TIMEOUT_MS": 500},
    })
    backend.clear()
    yield backend
    backend.clear()


def _keys_on_every_master(cache, count: int = 60) -> list[str]:
    client = cache.redis_client()
    keys = [f"k{i}" for i in range(count)]
    nodes = {client.get_node_from_key(cache.make_key(k)).name for k in keys}
    assert len(nodes) == 3  # the batch really crosses slots and nodes
    return keys


def test_values_round_trip_with_their_types(cache):
    for value in (1, 0, -5, True, False, "text", b"bytes", 1.5, {"a": [1, 2]}, None):
        cache.set("v", value)
        assert cache.get("v", default="absent") == value
        assert type(cache.get("v", default="absent")) is type(value)
    assert cache.get("missing", default="absent") == "absent"


def test_add_touch_delete_ttl_has_key(cache):
    assert cache.add("a", 1, 30) is True
    assert cache.add("a", 2, 30) is False
    assert cache.get("a") == 1
    assert 0 < cache.ttl("a") <= 30
    assert cache.touch("a", None) is True
    assert cache.ttl("a") is None
    cache.set("short", 1, 0.3)
    assert 0 <= cache.ttl("short") <= 1
    assert cache.has_key("a")
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert not cache.has_key("a")
    cache.set("gone", 1, 0)  # timeout 0: not stored
    assert cache.get("gone") is None


def test_incr_is_atomic_on_stored_integers_and_refuses_missing_keys(cache):
    cache.set("n", 10)
    assert cache.incr("n") == 11
    assert cache.incr("n", 5) == 16
    assert cache.decr("n", 6) == 10
    with pytest.raises(ValueError):
        cache.incr("absent")


def test_batches_work_across_hash_slots(cache):
    keys = _keys_on_every_master(cache)
    cache.set_many({k: f"value {k}" for k in keys}, 30)
    assert cache.get_many([*keys, "absent"]) == {k: f"value {k}" for k in keys}
    cache.delete_many(keys[:30])
    assert set(cache.get_many(keys)) == set(keys[30:])


def test_delete_pattern_and_clear_touch_only_this_prefix(cache, cluster):
    other = RedisClusterCache(cluster.redis_cluster_urls, {"KEY_PREFIX": "othertest"})
    keys = _keys_on_every_master(cache)
    cache.set_many({k: 1 for k in keys})
    cache.set("keep", 1)
    other.set("k1", "other")
    assert cache.delete_pattern("k[0-9]*") == len(keys)
    assert cache.get_many(keys) == {}
    assert cache.get("keep") == 1
    assert other.get("k1") == "other"
    other.clear()


def test_raw_client_mget_and_pipelines_cross_slots(cache):
    """Code written for one Redis (versioned keys, rate limits) pipelines MGET of any keys."""
    client = cache.redis_client()
    names = [cache.make_key(k) for k in _keys_on_every_master(cache, 20)]
    for i, name in enumerate(names):
        client.set(name, i)
    assert client.mget(names) == [str(i).encode() for i in range(20)]
    pipe = client.pipeline(transaction=False)
    pipe.incr(names[0])
    pipe.mget(names[:5])
    pipe.expire(names[0], 30)
    pipe.mget(names[5], names[6])
    assert pipe.execute() == [1, [b"1", b"1", b"2", b"3", b"4"], True, [b"5", b"6"]]


def test_writes_wait_for_a_replica(cache, cluster):
    """With WAIT_REPLICAS, a write is on a replica when set() returns (a failover keeps it)."""
    from redis import Redis

    keys = _keys_on_every_master(cache, 30)
    cache.set_many({k: k for k in keys})
    client = cache.redis_client()
    for key in keys:
        made = cache.make_key(key)
        master = client.get_node_from_key(made)
        replicas = [n for n in client.get_nodes() if n.server_type == "replica"
                    and _replica_of(n, master)]
        assert replicas
        direct = Redis(host=replicas[0].host, port=replicas[0].port)
        direct.execute_command("READONLY")
        assert direct.get(made) is not None


def _replica_of(node, master) -> bool:
    from redis import Redis

    info = Redis(host=node.host, port=node.port).info("replication")
    return int(info.get("master_port", 0)) == master.port
