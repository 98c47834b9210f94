"""core.cache.response on the scale-out topology: Redis Cluster (two round trips), three app
instances behind nginx, replicas.  A stored answer is reused by every instance and dies with
any version it was built from."""

from __future__ import annotations

import time

import pytest
from redis.cluster import ClusterNode, RedisCluster

from tests.cluster.conftest import new_user

pytestmark = pytest.mark.cluster


def _stored_entries(cluster, user_id: str) -> dict[str, int]:
    """{entry key: seconds it has left} of the user's stored responses."""
    nodes = [ClusterNode(*url.removeprefix("redis://").split(":")) for url in cluster.redis_cluster_urls]
    client = RedisCluster(startup_nodes=nodes)
    try:
        keys = list(client.scan_iter(match=f"*:rc:{user_id}:*", target_nodes=RedisCluster.PRIMARIES))
        return {key: client.ttl(key) for key in keys}
    finally:
        client.close()


def test_a_cached_profile_is_shared_by_the_instances_and_follows_an_edit(cluster):
    probe = new_user(cluster)
    url = f"{probe.base}/api/v1/users/{probe.user_id}/"
    first = probe.session.get(url, headers=probe._auth(), timeout=10)
    assert first.status_code == 200, first.text
    stored = _stored_entries(cluster, probe.user_id)
    assert len(stored) == 1
    time.sleep(2.1)
    for _ in range(6):  # nginx spreads these over the three instances: all answer from the entry
        again = probe.session.get(url, headers=probe._auth(), timeout=10)
        assert again.status_code == 200
        assert again.json() == first.json()
        assert again.headers["ETag"] == first.headers["ETag"]
    # No instance stored it again (a store would have reset its time to live).
    assert _stored_entries(cluster, probe.user_id).keys() == stored.keys()
    assert max(_stored_entries(cluster, probe.user_id).values()) <= max(stored.values()) - 2

    edit = probe.session.patch(f"{probe.base}/api/v1/me/", json={"display_name": "Renamed"},
                               headers=probe._auth(), timeout=10)
    assert edit.status_code == 200, edit.text
    for _ in range(6):
        assert probe.session.get(url, headers=probe._auth(), timeout=10).json()["display_name"] == "Renamed"
    etag = probe.session.get(url, headers=probe._auth(), timeout=10).headers["ETag"]
    not_modified = probe.session.get(url, headers={**probe._auth(), "If-None-Match": etag}, timeout=10)
    assert not_modified.status_code == 304


def test_a_logout_is_refused_by_every_instance_at_once(cluster):
    """Revocation markers on Redis Cluster: the check's pipeline (plain reads) and the cache
    lookup's guards (stored answers) refuse the token from the next request on."""
    probe = new_user(cluster)
    profile = f"{probe.base}/api/v1/users/{probe.user_id}/"
    for _ in range(3):  # stored, then served from the entry by the instances
        assert probe.session.get(profile, headers=probe._auth(), timeout=10).status_code == 200
        assert probe.session.get(f"{probe.base}/api/v1/blocks/", headers=probe._auth(), timeout=10).status_code == 200
    assert probe.session.post(f"{probe.base}/api/v1/auth/logout/", headers=probe._auth(), timeout=10).status_code == 204
    for _ in range(6):  # nginx spreads these over the three instances
        for url in (profile, f"{probe.base}/api/v1/blocks/", f"{probe.base}/api/v1/me/"):
            response = probe.session.get(url, headers=probe._auth(), timeout=10)
            assert response.status_code == 401, (url, response.status_code, response.text)
