"""Connection and message lists: names, short ids, message counts; bodies stay private."""

from __future__ import annotations

import pytest

from accounts.admin import excerpt
from connections.models import Connection, Message
from tests.browser import world as world_module
from tests.conftest import admin_client_for

pytestmark = pytest.mark.django_db




def test_connections_show_names_and_message_counts(world):
    html = admin_client_for(world.admin).get("/admin/connections/connection/").content.decode()
    conn = Connection.objects.filter(messages__isnull=False).distinct().first()
    count = Message.objects.filter(connection=conn).count()
    assert f'title="{conn.pk}">{str(conn.pk)[-8:]}</span>' in html
    row = html.split(f'title="{conn.pk}"', 1)[1].split("</tr>", 1)[0]
    assert f'class="field-messages">{count}<' in row
    # Names are cut at 30 characters (the whole name is on the user's page).
    assert excerpt(conn.user_low.display_name, 30) in row and excerpt(conn.user_high.display_name, 30) in row


def test_messages_show_who_and_how_much_never_what(world):
    html = admin_client_for(world.admin).get("/admin/connections/message/").content.decode()
    message = Message.objects.order_by("-id").first()
    assert f'href="/admin/connections/connection/{message.connection_id}/change/"' in html
    assert "private message" not in html
    assert f'class="field-length">{len(message.body)}<' in html
    detail = admin_client_for(world.admin).get(f"/admin/connections/message/{message.pk}/change/").content.decode()
    assert "private message" not in detail


def test_list_pages_run_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    client = admin_client_for(world.admin)
    for url in ["/admin/connections/connection/", "/admin/connections/message/"]:
        client.get(url)  # warm the permission and content-type caches
        with django_assert_max_num_queries(10):
            response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.context["cl"].result_list) >= world_module.ROWS, url
