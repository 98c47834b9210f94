"""The statistics view, its refresh, and who may read it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.utils import timezone

from analytics import selectors, services
from tests.conftest import client_for
from tests.factories import make_user


def _refresh():
    result = services.refresh_stats()
    assert result.refreshed
    return result


@pytest.mark.django_db
def test_view_counts_users_after_refresh():
    now = timezone.now()
    make_user(is_verified=True, last_active_at=now - timedelta(hours=1))
    make_user(created_at=now - timedelta(days=3), last_active_at=now - timedelta(days=2))
    make_user(is_verified=True, created_at=now - timedelta(days=10))
    before = selectors.stats()
    _refresh()
    after = selectors.stats()
    assert after["users"] == {"total_users": 3, "new_users_24h": 1, "active_users_24h": 1, "verified_users": 2}
    assert after["refreshed_at"] > before["refreshed_at"]


@pytest.mark.django_db
def test_figures_are_the_views_until_the_next_refresh():
    _refresh()
    make_user()
    assert selectors.stats()["users"]["total_users"] == 0
    _refresh()
    assert selectors.stats()["users"]["total_users"] == 1


@pytest.mark.django_db
def test_unknown_view_is_refused():
    with pytest.raises(ValueError, match="not a statistics view"):
        services.refresh_stats(views=["users; DROP TABLE users"])


@pytest.mark.django_db(transaction=True)
def test_reads_do_not_block_and_a_second_refresh_is_skipped_while_one_runs():
    """A refresh holds its lock until commit; meanwhile reads answer and a rival skips."""
    _refresh()  # the view starts at 0 users (views are not emptied between tests)
    make_user()
    started, release, outcome = threading.Event(), threading.Event(), {}

    def slow_refresh():
        try:
            with transaction.atomic():
                outcome["first"] = services.refresh_stats()
                started.set()
                release.wait(10)
        finally:
            connections.close_all()

    worker = threading.Thread(target=slow_refresh)
    worker.start()
    try:
        assert started.wait(10)
        with transaction.atomic(), connections["default"].cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")
            cursor.execute("SELECT total_users FROM user_stats_mv")
            assert cursor.fetchone()[0] == 0  # the previous figures, not blocked by the refresh
        assert services.refresh_stats().skipped
    finally:
        release.set()
        worker.join(10)
    assert outcome["first"].refreshed
    assert selectors.stats()["users"]["total_users"] == 1
    assert services.refresh_stats().refreshed  # the lock went with the first transaction


@pytest.mark.django_db
def test_refresh_task_runs_the_service():
    from analytics.tasks import refresh_stats

    make_user()
    result = refresh_stats.apply().get()
    assert result["refreshed"] is True
    assert "user_stats_mv" in result["seconds"]
    assert selectors.stats()["users"]["total_users"] == 1


# --- the staff API -------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_reads_stats(api):
    staff = make_user(is_staff=True)
    make_user(is_verified=True)
    _refresh()
    response = client_for(staff).get("/api/v1/admin/stats/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["users"]["total_users"] == 2
    assert body["users"]["verified_users"] == 1
    assert body["refreshed_at"]


@pytest.mark.django_db
def test_non_staff_get_404_and_anonymous_401(api, auth_client):
    assert auth_client.get("/api/v1/admin/stats/").status_code == 404
    assert api.get("/api/v1/admin/stats/").status_code == 401


@pytest.mark.django_db
def test_stats_endpoint_refuses_writes():
    staff = make_user(is_staff=True)
    assert client_for(staff).post("/api/v1/admin/stats/", {}).status_code == 405


# --- the admin page ------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_page_shows_figures_and_refreshed_at(client):
    admin = make_user(is_staff=True, is_superuser=True)
    make_user()
    _refresh()
    client.force_login(admin)
    response = client.get("/admin/analytics/userstats/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "Refreshed at" in text
    assert 'id="refreshed-at"' in text and "never" not in text
    assert "Total users" in text
    index = client.get("/admin/").content.decode()
    assert "/admin/analytics/userstats/" in index


@pytest.mark.django_db
def test_admin_refresh_button_queues_a_refresh(client, monkeypatch):
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)  # run the queued task here, now
    admin = make_user(is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.post("/admin/analytics/userstats/refresh/")
    assert response.status_code == 302
    assert selectors.stats()["users"]["total_users"] == 1


@pytest.mark.django_db
def test_admin_page_is_closed_to_staff_without_permission(client):
    staff = make_user(is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/analytics/userstats/").status_code == 403
    client.logout()
    assert client.get("/admin/analytics/userstats/").status_code == 302  # to the login page


# --- the commands --------------------------------------------------------------------------


@pytest.mark.django_db
def test_refresh_stats_command(capsys):
    make_user()
    call_command("refresh_stats")
    out = capsys.readouterr().out
    assert "user_stats_mv" in out and "Refreshed at" in out
    assert selectors.stats()["users"]["total_users"] == 1


@pytest.mark.django_db
def test_refresh_stats_dry_run_changes_nothing(capsys):
    before = selectors.stats()
    make_user()
    call_command("refresh_stats", "--dry-run")
    assert "Dry run" in capsys.readouterr().out
    assert selectors.stats() == before


@pytest.mark.django_db
def test_city_view_counts_pings_and_crossings_of_the_last_day():
    from crossings.models import Crossing
    from tests.factories import make_city, make_crossing, make_ping

    now = timezone.now()
    berlin = make_city("berlin", lat=52.52, lng=13.405)
    make_city("paris", lat=48.8566, lng=2.3522)
    a, b, c = make_user(), make_user(), make_user()
    make_ping(a, 52.52, 13.405, now - timedelta(minutes=5))
    make_ping(b, 52.521, 13.405, now - timedelta(minutes=4))
    make_ping(c, 48.8566, 2.3522, now - timedelta(minutes=3))
    fresh = make_crossing(a, b, at=now - timedelta(minutes=4))
    old = make_crossing(a, c, at=now - timedelta(days=2))
    Crossing.objects.filter(pk__in=[fresh.pk, old.pk]).update(city_id=berlin.id)
    _refresh()
    figures = selectors.stats()
    cities = {city["slug"]: city for city in figures["cities"]}
    assert cities["berlin"] == {"slug": "berlin", "name": "Berlin", "pings_24h": 2, "crossings_24h": 1}
    assert cities["paris"]["pings_24h"] == 1 and cities["paris"]["crossings_24h"] == 0
    assert figures["totals"]["pings_24h"] == 3 and figures["totals"]["crossings_24h"] == 1
    assert figures["totals"]["crossings_total"] == 2


@pytest.mark.django_db
def test_activity_view_counts_connections_messages_and_live_stories():
    from connections.models import Connection
    from connections.services import send_message
    from tests.factories import make_connection, make_crossing, make_story

    now = timezone.now()
    a, b, c, d = make_user(), make_user(), make_user(), make_user()
    make_crossing(a, b)
    make_crossing(a, c)
    accepted = make_connection(a, b, status="accepted")
    make_connection(a, c, status="pending")
    old = make_connection(c, d, status="accepted")
    Connection.objects.filter(pk=old.pk).update(responded_at=now - timedelta(days=3))
    send_message(user_id=a.pk, connection_id=accepted.pk, body="hi")
    send_message(user_id=b.pk, connection_id=accepted.pk, body="hello")
    make_story(a)
    make_story(b, hours_left=-1)  # expired
    _refresh()
    totals = selectors.stats()["totals"]
    assert totals["crossings_total"] == 2
    assert totals["connections_accepted"] == 2
    assert totals["connections_made_24h"] == 1
    assert totals["connection_requests_pending"] == 1
    assert totals["messages_24h"] == 2
    assert totals["stories_live"] == 1


@pytest.mark.django_db
def test_activity_reaches_the_stats_through_the_counter_flush():
    """A request marks its user active in Redis; beat's flush writes last_active_at; the view counts it."""
    from accounts.models import User
    from config.celery import BEAT_SCHEDULE, app

    app.loader.import_default_modules()
    user = make_user()
    staff = make_user(is_staff=True)
    assert User.objects.get(pk=user.pk).last_active_at is None
    assert client_for(user).get("/api/v1/admin/stats/").status_code == 404  # any authenticated request
    _refresh()
    assert selectors.stats()["users"]["active_users_24h"] == 0  # the mark is still in Redis
    flush = app.tasks[BEAT_SCHEDULE["flush-last-active"]["task"]]
    assert flush.apply().get() == 1
    assert flush.apply().get() == 0  # nothing pending: a repeated run changes nothing
    assert User.objects.get(pk=user.pk).last_active_at is not None
    _refresh()
    body = client_for(staff).get("/api/v1/admin/stats/").json()
    assert body["users"]["active_users_24h"] == 1


@pytest.mark.django_db
def test_admin_page_for_staff_with_view_permission_only(client):
    from django.contrib.auth.models import Permission

    staff = make_user(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_userstats"))
    client.force_login(staff)
    response = client.get("/admin/analytics/userstats/")
    assert response.status_code == 200 and "Total users" in response.content.decode()
    assert "Refresh now" not in response.content.decode()
    before = selectors.stats()["refreshed_at"]
    assert client.post("/admin/analytics/userstats/refresh/").status_code == 302
    assert selectors.stats()["refreshed_at"] == before  # only superusers may force a refresh
