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
