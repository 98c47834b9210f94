"""The user, session, block and report lists as moderators read them: short ids, names,
compact times, escaped excerpts, no phone numbers (admins only), and a fixed number of
queries however many rows a page shows."""

from __future__ import annotations

import re

import pytest

from accounts.admin import excerpt, short_id
from tests.browser import world as world_module
from tests.conftest import admin_client_for

pytestmark = pytest.mark.django_db

LISTS = ("/admin/accounts/user/", "/admin/accounts/userreport/", "/admin/accounts/session/",
         "/admin/accounts/block/")




def _phones_in(html: str, world) -> list[str]:
    digits = re.sub(r"\D", "", html)
    return [phone for phone in world.phones if phone in html or phone[1:] in digits]


def _row(html: str, pk) -> str:
    """The changelist row of the object ``pk``."""
    return re.search(rf'<tr>(?:(?!</tr>).)*title="{pk}".*?</tr>', html, flags=re.S).group(0)


def test_short_id_and_excerpt_helpers():
    html = str(short_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))
    # The random end of a UUIDv7: its start is the creation time, shared by a minute's rows.
    assert html == '<span class="short-id" title="0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b">2e3f4a5b</span>'
    assert excerpt("a  b\n\nc") == "a b c"
    long = excerpt("word " * 40)
    assert len(long) <= 80 and long.endswith("…")
    assert excerpt(None) == ""


def test_users_list_shows_short_ids_names_and_counts_without_phones_for_moderators(world):
    page = admin_client_for(world.moderator).get("/admin/accounts/user/")
    assert page.status_code == 200
    html = page.content.decode()
    member = world.members[1]
    assert f'title="{member.pk}">{str(member.pk)[-8:]}</span>' in html
    assert member.display_name in html
    assert "column-phone_number" not in html and "column-open_reports" in html
    assert _phones_in(html, world) == []
    assert "phone" not in html.lower()  # not even in the search box's help
    # Each member was reported once (by the previous one); four of those were resolved.
    row = _row(html, member.pk)
    assert re.search(r'class="field-open_reports">1<', row), row


def test_admins_get_the_phone_column_and_phone_search(world):
    admin = admin_client_for(world.admin)
    html = admin.get("/admin/accounts/user/").content.decode()
    assert "column-phone_number" in html
    assert world.members[3].phone in html
    found = admin.get("/admin/accounts/user/", {"q": world.members[3].phone})
    assert [u.pk for u in found.context["cl"].result_list] == [world.members[3].pk]
    moderator = admin_client_for(world.moderator)
    found = moderator.get("/admin/accounts/user/", {"q": world.members[3].phone})
    assert list(found.context["cl"].result_list) == []
    by_name = moderator.get("/admin/accounts/user/", {"q": "chia"})
    assert [u.display_name for u in by_name.context["cl"].result_list] == ["Chiara K."]


def test_user_reports_queue_shows_who_what_and_why_escaped(world):
    html = admin_client_for(world.moderator).get("/admin/accounts/userreport/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert excerpt(world_module.LONG) in html  # the report text, cut at 80 characters
    assert world_module.LONG not in html
    for column in ("report_id", "status", "reason", "reported_user", "profile_excerpt", "reporter_user",
                   "details_excerpt"):
        assert f"column-{column}" in html
    reported = world.members[2]
    assert f'href="/admin/accounts/user/{reported.pk}/change/"' in html
    assert _phones_in(html, world) == []
    open_first = admin_client_for(world.moderator).get("/admin/accounts/userreport/").context["cl"].result_list
    statuses = [r.status for r in open_first]
    assert statuses == sorted(statuses, key=lambda s: s != "open")


def test_search_and_filters_keep_working(world):
    moderator = admin_client_for(world.moderator)
    resolved = moderator.get("/admin/accounts/userreport/", {"status__exact": "resolved"})
    assert {r.status for r in resolved.context["cl"].result_list} == {"resolved"}
    assert len(resolved.context["cl"].result_list) == 4
    admin = admin_client_for(world.admin)
    sessions = admin.get("/admin/accounts/session/", {"q": str(world.members[0].pk)})
    assert [s.user_id for s in sessions.context["cl"].result_list] == [world.members[0].pk]
    verified = moderator.get("/admin/accounts/user/", {"is_verified__exact": "1"})
    assert all(u.is_verified for u in verified.context["cl"].result_list)


def test_list_pages_run_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    client = admin_client_for(world.admin)
    for url in LISTS:
        client.get(url)  # warm the permission and content-type caches
        with django_assert_max_num_queries(10):
            response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.context["cl"].result_list) >= world_module.ROWS, url
