"""Staff tools: moderators work stories and reports in the admin; message bodies stay hidden."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from connections.models import Message
from stories import services
from stories.models import Story, StoryReport
from tests.factories import make_connection, make_story, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator_client():
    moderator = make_user(is_staff=True, display_name="Mod")
    moderator.groups.add(Group.objects.get(name="moderators"))
    client = Client()
    client.force_login(moderator)
    return client


def test_moderator_removes_a_reported_story_from_the_admin(moderator_client, django_capture_on_commit_callbacks):
    author, reporter = make_user(), make_user()
    story = make_story(author, "spam spam", visibility="public")
    services.report_story(reporter.pk, story.pk, "spam")
    assert moderator_client.get("/admin/stories/storyreport/").status_code == 200
    assert moderator_client.get("/admin/stories/story/").status_code == 200
    report = StoryReport.objects.get()
    assert moderator_client.get(f"/admin/stories/storyreport/{report.pk}/change/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = moderator_client.post("/admin/stories/storyreport/", {
            "action": "resolve_and_remove", "_selected_action": [str(report.pk)]})
    assert response.status_code == 302
    assert not Story.objects.exists()
    assert StoryReport.objects.get().status == "resolved"


def test_moderators_cannot_delete_users_or_read_chat(moderator_client):
    a, b = make_user(), make_user()
    conn = make_connection(a, b)
    Message.objects.create(connection=conn, sender=a, body="very private words")
    assert moderator_client.get(f"/admin/accounts/user/{a.pk}/delete/").status_code == 403
    assert moderator_client.get("/admin/connections/message/").status_code == 403  # no permission at all
    superuser = make_user(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(superuser)
    page = client.get("/admin/connections/message/")
    assert page.status_code == 200 and b"very private words" not in page.content
    message = Message.objects.get()
    detail = client.get(f"/admin/connections/message/{message.pk}/change/")
    assert detail.status_code == 200 and b"very private words" not in detail.content
