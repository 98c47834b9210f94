"""Access tokens stop working at once: logout, a revoked session, deactivation, erasure and
demotion take effect with the next request, through Redis markers or, with Redis away, the
database."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from django.db import connections
from rest_framework.test import APIClient

from accounts import revocation, services
from accounts.models import User
from core.cache import breaker as redis_breaker
from core.cache.client import redis_client
from tests.conftest import client_for
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

# A non-cacheable read, a cacheable read (core.cache.response) and a write.
NON_CACHEABLE = "/api/v1/blocks/"


def _cacheable(user) -> str:
    return f"/api/v1/users/{user.pk}/"


@pytest.fixture(autouse=True)
def _closed_breaker():
    redis_breaker.reset()
    revocation.take_unsent()
    yield
    redis_breaker.reset()
    revocation.take_unsent()


def _login(user) -> tuple[APIClient, str]:
    session, access, _refresh = services.open_session(user, user_agent="pytest")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client, str(session.pk)


def _all_refused(client, user) -> None:
    for url in (NON_CACHEABLE, _cacheable(user), "/api/v1/me/"):
        response = client.get(url)
        assert response.status_code == 401, (url, response.status_code, response.content)
        assert "session has ended" in response.json()["detail"]


def _all_served(client, user) -> None:
    for url in (NON_CACHEABLE, _cacheable(user), "/api/v1/me/"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content)


def test_logout_ends_the_access_token_at_once():
    user = make_user()
    client, _sid = _login(user)
    _all_served(client, user)  # the cacheable read is now stored in the response cache
    _all_served(client, user)
    assert client.post("/api/v1/auth/logout/").status_code == 204
    _all_refused(client, user)


def test_revoking_another_session_ends_its_tokens_only():
    user = make_user()
    phone, other_sid = _login(user)
    laptop, _sid = _login(user)
    _all_served(phone, user)
    assert laptop.delete(f"/api/v1/auth/sessions/{other_sid}/").status_code == 204
    _all_refused(phone, user)
    _all_served(laptop, user)


def test_replaying_a_rotated_refresh_token_ends_the_access_tokens_too():
    user = make_user()
    _session, access, refresh = services.open_session(user)
    services.rotate_refresh_token(refresh)
    with pytest.raises(services.InvalidToken):
        services.rotate_refresh_token(refresh)  # replay: the session is revoked
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    _all_refused(client, user)


def test_deactivation_ends_every_token_and_reactivation_lets_new_logins_in():
    user = make_user()
    one, _ = _login(user)
    two, _ = _login(user)
    _all_served(one, user)
    services.deactivate_user(user.pk)
    _all_refused(one, user)
    _all_refused(two, user)
    User.objects.filter(pk=user.pk).update(is_active=True)
    services.reactivated(user.pk)
    fresh, _ = _login(user)
    _all_served(fresh, user)
    _all_refused(one, user)  # the old sessions stay revoked


def test_log_out_everywhere_ends_every_token():
    user = make_user()
    one, _ = _login(user)
    two, _ = _login(user)
    assert services.revoke_all_sessions(user.pk) == 2
    _all_refused(one, user)
    _all_refused(two, user)


def test_erasure_ends_the_token_at_once():
    user = make_user()
    client, _ = _login(user)
    other, _ = _login(user)
    assert client.delete("/api/v1/me/").status_code == 204
    for url in (NON_CACHEABLE, "/api/v1/me/", "/api/v1/stories/"):
        assert other.get(url).status_code == 401, url


def test_a_shadow_ban_keeps_the_account_usable():
    user = make_user()
    client, _ = _login(user)
    services.set_shadow_ban([user.pk], True)
    _all_served(client, user)


def test_a_demoted_staff_member_loses_staff_access_with_the_next_request():
    staff = make_user(is_staff=True)
    client, _ = _login(staff)
    assert client.get("/api/v1/admin/stats/").status_code == 200
    User.objects.filter(pk=staff.pk).update(is_staff=False)
    assert client.get("/api/v1/admin/stats/").status_code == 404
    # A token never grants more than it says: a promotion shows after the next refresh.
    plain = make_user()
    pclient, _ = _login(plain)
    User.objects.filter(pk=plain.pk).update(is_staff=True)
    assert pclient.get("/api/v1/admin/stats/").status_code == 404


def test_with_redis_away_the_database_decides():
    user = make_user()
    live, _ = _login(user)
    revoked, revoked_sid = _login(user)
    services.revoke_session(revoked_sid)
    redis_breaker.trip(ConnectionError("test: Redis away"), "test")
    assert not redis_breaker.available()
    assert live.get(NON_CACHEABLE).status_code == 200
    assert live.get(_cacheable(user)).status_code == 200
    assert revoked.get(NON_CACHEABLE).status_code == 401
    assert revoked.get(_cacheable(user)).status_code == 401
    User.objects.filter(pk=user.pk).update(is_active=False)  # even without the service's markers
    assert live.get(NON_CACHEABLE).status_code == 401


def test_a_marker_lost_to_an_outage_is_written_with_the_next_check():
    user = make_user()
    client, sid = _login(user)
    bystander, _ = _login(make_user())
    redis_breaker.trip(ConnectionError("test: Redis away"), "test")
    services.revoke_session(sid)  # the marker cannot be written now
    marker = revocation.session_marker(user.pk, sid)
    redis_breaker.reset()
    assert not redis_client().exists(marker)
    assert bystander.get(NON_CACHEABLE).status_code == 200  # any check in this process sends it
    assert redis_client().exists(marker)
    assert client.get(NON_CACHEABLE).status_code == 401


def test_the_check_shares_the_rate_limit_round_trip(round_trips):
    user = make_user()
    client = client_for(user)
    client.get(NON_CACHEABLE)  # warm: the activity mark, the scripts
    round_trips.clear()
    assert client.get(NON_CACHEABLE).status_code == 200
    # The markers and the rate-limit count in one script, as the count alone took before;
    # the other is core.db.router's read-your-writes pin (the test settings have a replica).
    assert len(round_trips) == 2

    target = user
    assert client.get(_cacheable(target)).status_code == 200  # stored
    round_trips.clear()
    assert client.get(_cacheable(target)).status_code == 200
    assert len(round_trips) == 1  # the response cache's lookup checks the markers and counts


def test_no_database_query_to_authenticate():
    user = make_user()
    client = client_for(user)
    client.get(NON_CACHEABLE)
    executed: list[str] = []

    def record(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(record))
        assert client.get(NON_CACHEABLE).status_code == 200
    assert not [sql for sql in executed if '"sessions"' in sql or '"users"' in sql], executed
    assert len(executed) == 1  # the blocks page itself
