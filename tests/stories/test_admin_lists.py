"""Story and story-report lists for moderators: text excerpts, thumbnails for images, a
label for videos, the reported content beside the report, no coordinates for moderators."""

from __future__ import annotations

import re

import pytest

from accounts.admin import excerpt
from tests.browser import world as world_module
from tests.conftest import admin_client_for

pytestmark = pytest.mark.django_db




def test_story_list_shows_excerpts_and_thumbnails(world):
    html = admin_client_for(world.moderator).get("/admin/stories/story/").content.decode()
    assert excerpt(world_module.LONG) in html and world_module.LONG not in html
    assert "&lt;script&gt;" in html and "<script>alert" not in html
    image = world.image_story
    thumb = re.search(r'<img class="thumb"[^>]*>', html).group(0)
    assert f'src="{image.media.url}"' in thumb and 'loading="lazy"' in thumb
    assert 'width="40"' in thumb and 'height="40"' in thumb
    assert "Look at this sky" in html  # a media story's caption is its text
    assert html.count('<img class="thumb"') == 1  # the video has no image, text stories nothing
    assert "▶ video" in html
    assert world.members[1].display_name in html


def test_moderators_see_no_coordinates_admins_do(world):
    story = world.stories[0]
    change = f"/admin/stories/story/{story.pk}/change/"
    moderator_page = admin_client_for(world.moderator).get(change).content.decode()
    assert "place_lat" not in moderator_page and f"{story.place_lat}" not in moderator_page
    admin_page = admin_client_for(world.admin).get(change).content.decode()
    assert "field-place_lat" in admin_page and f"{story.place_lat}" in admin_page
    assert "place_lat" not in admin_client_for(world.moderator).get("/admin/stories/story/").content.decode()


def test_story_reports_show_reason_story_text_and_report_text(world):
    response = admin_client_for(world.moderator).get("/admin/stories/storyreport/")
    html = response.content.decode()
    for column in ("report_id", "status", "reason", "reported_excerpt", "author_name",
                   "reporter_name", "details_excerpt"):
        assert f"column-{column}" in html
    story = world.stories[1]
    assert f'href="/admin/stories/story/{story.pk}/change/"' in html
    assert excerpt(story.text) in html  # the reported content
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # the report's own text, escaped
    assert [r.status for r in response.context["cl"].result_list][:3] == ["open"] * 3


def test_list_pages_run_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    client = admin_client_for(world.admin)
    for url in ["/admin/stories/story/", "/admin/stories/storyreport/",
                                 "/admin/stories/closefriend/"]:
        client.get(url)  # warm the permission and content-type caches
        with django_assert_max_num_queries(10):
            response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.context["cl"].result_list) >= world_module.ROWS, url
