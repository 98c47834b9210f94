"""The statistics page's charts: per-hour series over the last 24 hours (zero where nothing
happened) and per-city bars from city_stats_mv, drawn as SVG on the server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import User
from analytics import charts, services
from connections.models import Message
from crossings.models import Crossing
from locations.models import Ping
from tests.factories import make_city, make_connection, make_crossing, make_user

pytestmark = pytest.mark.django_db


def test_hour_starts_are_the_last_24_utc_hours():
    now = datetime(2026, 12, 2, 3, 41, 7, tzinfo=UTC)
    starts = charts.hour_starts(now)
    assert len(starts) == 24
    assert starts[-1] == datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    assert starts[0] == datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


def test_nice_ceiling():
    assert [charts.nice_ceiling(v) for v in (0, 1, 3, 7, 10, 11, 180, 2001)] == [1, 1, 5, 10, 10, 20, 200, 5000]


def _ping(user, city, at):
    Ping.objects.create(user_id=user.pk, city_id=city.id, recorded_at=at, lat=city.lat, lng=city.lng,
                        expires_at=at + timedelta(hours=24))


def test_hourly_series_count_each_hour_and_show_empty_hours_as_zero():
    now = timezone.now()
    starts = charts.hour_starts(now)
    city = make_city("berlin")
    a, b, c = make_user(), make_user(), make_user()
    User.objects.filter(pk__in=[a.pk, b.pk, c.pk]).update(created_at=starts[0] - timedelta(days=2))
    # Hour 5: three pings by two users; hour 20: one ping; one ping just before the window.
    for user, minute in ((a, 1), (a, 2), (b, 3)):
        _ping(user, city, starts[5] + timedelta(minutes=minute))
    _ping(c, city, starts[20] + timedelta(minutes=59))
    _ping(c, city, starts[0] - timedelta(minutes=1))
    conn = make_connection(a, b)
    Message.objects.bulk_create([
        Message(connection=conn, sender=a, body="x", created_at=starts[23] + timedelta(seconds=1)),
        Message(connection=conn, sender=b, body="y", created_at=starts[7] + timedelta(minutes=30))])
    # A crossing first made in hour 10 (and seen again later) counts in hour 10; an older
    # pair crossed again today is not new.
    new = make_crossing(a, c, at=starts[22] + timedelta(minutes=5))
    Crossing.objects.filter(pk=new.pk).update(first_crossed_at=starts[10] + timedelta(minutes=5))
    old = make_crossing(b, c, at=starts[12])
    Crossing.objects.filter(pk=old.pk).update(first_crossed_at=starts[0] - timedelta(days=3))
    make_user(created_at=starts[15] + timedelta(minutes=1))

    series = charts.hourly_activity(now)

    def only(**hours):
        expected = [0] * 24
        for hour, value in hours.items():
            expected[int(hour[1:])] = value
        return expected

    assert series["hours"] == starts
    assert series["pings"] == only(h5=3, h20=1)
    assert series["active_users"] == only(h5=2, h20=1)
    assert series["messages"] == only(h7=1, h23=1)
    assert series["new_crossings"] == only(h10=1)
    assert series["new_users"] == only(h15=1)


def test_hourly_chart_geometry():
    starts = charts.hour_starts(timezone.now())
    values = [0] * 24
    values[3], values[4] = 8, 4
    chart = charts.hourly_chart("pings", "Pings", starts, values)
    assert len(chart.bars) == 24 and chart.axis_top == 10 and chart.total == 12 and chart.peak == 8
    tallest, half = chart.bars[3], chart.bars[4]
    assert tallest.height == pytest.approx(2 * half.height)
    assert tallest.y + tallest.height == pytest.approx(chart.baseline)
    assert chart.bars[0].height == 0
    assert chart.bars[3].label.endswith("UTC: 8")
    assert chart.ticks[0][1] == f"{starts[0]:%H:00}"


def test_city_chart_puts_the_busiest_city_first():
    cities = [{"name": "Lisbon", "pings_24h": 5, "crossings_24h": 0},
              {"name": "Berlin", "pings_24h": 40, "crossings_24h": 2}]
    chart = charts.city_chart("city_pings", "Pings", cities, "pings_24h")
    assert [bar.label for bar in chart.bars] == ["Berlin", "Lisbon"]
    assert chart.bars[0].width == pytest.approx(chart.bars[1].width * 8)


def test_statistics_page_draws_the_charts_from_the_data(client):
    now = timezone.now()
    starts = charts.hour_starts(now)
    berlin, lisbon = make_city("berlin", name="Berlin"), make_city("lisbon", name="Lisbon", lat=38.72, lng=-9.14)
    users = [make_user() for _ in range(3)]
    for i, user in enumerate(users):
        _ping(user, berlin, starts[23 - i] + timedelta(seconds=1))
    _ping(users[0], lisbon, starts[23] + timedelta(seconds=2))
    services.refresh_stats()
    admin = make_user(is_staff=True)
    admin.groups.add(Group.objects.get(name="admins"))
    client.force_login(admin)
    html = client.get("/admin/analytics/userstats/").content.decode()
    pings = re.search(r'<figure class="chart" id="chart-pings">.*?</figure>', html, flags=re.S).group(0)
    values = [int(v) for v in re.findall(r'<rect class="bar"[^>]*data-value="(\d+)"', pings)]
    assert len(values) == 24 and values[-1] == 2 and values[-2] == 1 and values[-3] == 1 and sum(values) == 4
    city = re.search(r'<figure class="chart" id="chart-city_pings">.*?</figure>', html, flags=re.S).group(0)
    assert re.findall(r">(Berlin|Lisbon)</text>", city) == ["Berlin", "Lisbon"]
    assert re.findall(r'data-value="(\d+)"', city) == ["3", "1"]
    assert "<script" not in pings and 'style="' not in html  # the admin's CSP: no inline style or script


def test_moderators_see_the_statistics_and_charts_but_cannot_refresh_them(client):
    moderator = make_user(is_staff=True)
    moderator.groups.add(Group.objects.get(name="moderators"))
    client.force_login(moderator)
    response = client.get("/admin/analytics/userstats/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<figure class="chart" id="chart-pings">' in html
    assert "Statistics" in client.get("/admin/").content.decode()  # listed on their admin index
    staff_without_role = make_user(is_staff=True)
    client.force_login(staff_without_role)
    assert client.get("/admin/analytics/userstats/").status_code == 403
