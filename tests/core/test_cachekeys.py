"""core.cache.keys on the real Redis: round trips, invalidation, eviction, outage, recovery."""

from __future__ import annotations

from django.core.cache import cache

from core.cache import keys as cachekeys


def test_many_keys_in_one_round_trip(round_trips):
    owners = [f"u{i}" for i in range(50)]
    cachekeys.get_many_versioned("t", owners).fill({o: {"n": o} for o in owners}, 60)
    round_trips.clear()
    batch = cachekeys.get_many_versioned("t", owners)
    assert len(round_trips) == 1  # one EVALSHA (two round trips on Redis Cluster)
    assert batch.missing() == [] and batch.hits["u7"] == {"n": "u7"}


def test_bump_invalidates_only_its_owners():
    cachekeys.get_many_versioned("t", ["a", "b"]).fill({"a": 1, "b": 2}, 60)
    cachekeys.bump("t", "a")
    batch = cachekeys.get_many_versioned("t", ["a", "b"])
    assert batch.hits == {"b": 2} and batch.missing() == ["a"]


def test_an_evicted_version_never_resurrects_an_old_value():
    cachekeys.get_many_versioned("t", ["a"]).fill({"a": "old"}, 60)
    cachekeys.bump("t", "a")
    cachekeys.get_many_versioned("t", ["a"]).fill({"a": "new"}, 60)
    cache.delete("v:t:a")  # memory pressure evicts the version key
    cachekeys.bump("t", "a")  # restarts from a fresh, larger version, not from 1
    assert cachekeys.get_many_versioned("t", ["a"]).hits == {}


def test_get_versioned_loads_once():
    calls = []

    def loader():
        calls.append(1)
        return {"x": 1}

    assert cachekeys.get_versioned("t", "a", loader, 60) == {"x": 1}
    assert cachekeys.get_versioned("t", "a", loader, 60) == {"x": 1}
    assert len(calls) == 1


def test_several_namespaces_in_one_round_trip(round_trips):
    batch = cachekeys.read_entries([("t", "a", "page1"), ("u", "a", "")])
    batch.fill({("t", "a", "page1"): [1], ("u", "a", ""): {"n": 2}}, 60)
    round_trips.clear()
    batch = cachekeys.read_entries([("t", "a", "page1"), ("u", "a", "")])
    assert len(round_trips) == 1
    assert batch.hits == {("t", "a", "page1"): [1], ("u", "a", ""): {"n": 2}}
    cachekeys.bump("u", "a")
    assert cachekeys.read_entries([("t", "a", "page1"), ("u", "a", "")]).missing() == [("u", "a", "")]


def test_cluster_path_reads_the_same_in_two_round_trips(monkeypatch, round_trips):
    """Redis Cluster cannot run the script across slots: the pipelined path must agree with it."""
    cachekeys.get_many_versioned("t", ["a", "b"]).fill({"a": 1, "b": 2}, 60)
    monkeypatch.setattr(cachekeys, "is_cluster", lambda client: True)
    round_trips.clear()
    batch = cachekeys.get_many_versioned("t", ["a", "b", "c"])
    assert len(round_trips) == 2
    assert batch.hits == {"a": 1, "b": 2} and batch.missing() == ["c"]
    batch.fill({"c": 3}, 60)
    monkeypatch.setattr(cachekeys, "is_cluster", lambda client: False)
    assert cachekeys.get_many_versioned("t", ["a", "b", "c"]).hits == {"a": 1, "b": 2, "c": 3}
    cachekeys.bump("t", "b")
    assert cachekeys.get_many_versioned("t", ["a", "b", "c"]).missing() == ["b"]


def test_prefetched_reads_need_no_round_trip_and_give_fresh_values(round_trips):
    cachekeys.read_entries([("t", "a", ""), ("u", "b", "p")]).fill({("t", "a", ""): {"n": 1}, ("u", "b", "p"): [2]}, 60)
    round_trips.clear()
    with cachekeys.prefetch([("t", "a", ""), ("u", "b", "p"), ("t", "c", "")]):
        assert len(round_trips) == 1
        first = cachekeys.get_many_versioned("t", ["a"]).hits["a"]
        first["n"] = 99  # a caller that changes its copy changes nobody else's
        assert cachekeys.get_many_versioned("t", ["a"]).hits == {"a": {"n": 1}}
        assert cachekeys.read_entries([("u", "b", "p")]).hits == {("u", "b", "p"): [2]}
        assert len(round_trips) == 1
        missed = cachekeys.get_many_versioned("t", ["c"])
        assert missed.missing() == ["c"] and len(round_trips) == 1
        missed.fill({"c": "loaded"}, 60)  # one round trip to store it
        stored = len(round_trips)
        assert cachekeys.get_many_versioned("t", ["c"]).hits == {"c": "loaded"}  # seen without Redis
        assert len(round_trips) == stored
        cachekeys.get_many_versioned("t", ["z"])  # not prefetched: read from Redis as usual
        assert len(round_trips) == stored + 1
    assert cachekeys.get_many_versioned("t", ["c"]).hits == {"c": "loaded"}  # it was stored for real


def test_a_bump_inside_a_prefetch_sends_later_reads_to_redis():
    cachekeys.get_many_versioned("t", ["a"]).fill({"a": "old"}, 60)
    with cachekeys.prefetch([("t", "a", "")]):
        assert cachekeys.get_many_versioned("t", ["a"]).hits == {"a": "old"}
        cachekeys.bump("t", "a")
        assert cachekeys.get_many_versioned("t", ["a"]).missing() == ["a"]


def test_prefetched_reads_record_their_versions_for_dependent_results():
    """A result built from prefetched reads (a cached response) depends on the same versions as
    one built from plain reads, so a bump still retires it."""
    cachekeys.read_entries([("t", "a", ""), ("u", "b", "")]).fill({("t", "a", ""): 1, ("u", "b", ""): 2}, 60)
    plain, token = cachekeys.collect_dependencies()
    cachekeys.get_many_versioned("t", ["a"])
    cachekeys.get_many_versioned("u", ["b"])
    cachekeys.stop_collecting(token)
    deps, token = cachekeys.collect_dependencies()
    with cachekeys.prefetch([("t", "a", ""), ("u", "b", "")]):
        cachekeys.get_many_versioned("t", ["a"])
        cachekeys.get_many_versioned("u", ["b"])
    cachekeys.stop_collecting(token)
    assert deps.complete and deps.versions == plain.versions and len(deps.versions) == 3  # the epoch and two owners


def test_prefetch_with_redis_down_leaves_reads_to_their_usual_path(monkeypatch):
    cachekeys.get_many_versioned("t", ["a"]).fill({"a": 1}, 60)
    monkeypatch.setattr(cachekeys, "redis_available", lambda: False)
    with cachekeys.prefetch([("t", "a", "")]):
        assert cachekeys.get_many_versioned("t", ["a"]).missing() == ["a"]  # down: a miss, as without prefetch
    monkeypatch.undo()
    with cachekeys.prefetch([("t", "a", "")]):
        assert cachekeys.get_many_versioned("t", ["a"]).hits == {"a": 1}
