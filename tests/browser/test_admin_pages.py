"""The admin as moderators and admins see it, in a real headless Chromium: every list with
data, the report queues and the statistics page.  Checked on each page: the key content is
on screen, moderators see no phone number, the charts have bars, the browser logged no error
(a blocked inline script or style, a missing file), nothing overflows 1280 px sideways and no
row wraps onto a second line."""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By

from analytics import services as analytics
from tests.browser import world as world_module
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]

# The tallest row of one line: text rows are about 34 px, rows with a 40 px thumbnail 45 px.
ONE_LINE_ROW_PX = 48


@pytest.fixture
def world(staff_roles, settings, tmp_path):
    settings.ROOT_URLCONF = "tests.browser.urls"
    settings.MEDIA_ROOT = str(tmp_path / "media")
    built = world_module.build()
    world_module.add_activity(built)
    analytics.refresh_stats()
    return built


def _log_in(browser, live_server, user, password):
    browser.delete_all_cookies()
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(user.phone)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_until(lambda: browser.current_url.rstrip("/").endswith("/admin"), timeout=30)
    assert user.display_name in browser.find_element(By.ID, "user-tools").text or "WELCOME" in \
        browser.find_element(By.ID, "user-tools").text.upper()


def _errors(browser) -> list[str]:
    """The page's console errors (a favicon the app does not have is not one)."""
    return [entry["message"] for entry in browser.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]]


def _open(browser, live_server, path: str) -> str:
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(f"{live_server.url}{path}")
    wait_until(lambda: browser.execute_script("return document.readyState") == "complete", timeout=30)
    assert not _errors(browser), (path, _errors(browser))
    return browser.find_element(By.TAG_NAME, "body").text


def _layout(browser) -> dict:
    return browser.execute_script("""
        const doc = document.documentElement;
        const results = document.querySelector('#changelist .results');
        const rows = [...document.querySelectorAll('#result_list tbody tr')];
        const ids = [...document.querySelectorAll('#result_list .short-id')];
        return {
            viewport: doc.clientWidth, page: doc.scrollWidth,
            tableOverflow: results ? results.scrollWidth - results.clientWidth : 0,
            rows: rows.length,
            tallestRow: Math.max(0, ...rows.map(r => r.getBoundingClientRect().height)),
            idLines: Math.max(0, ...ids.map(e => e.getClientRects().length)),
            monospace: ids.length ? getComputedStyle(ids[0]).fontFamily : '',
            columns: [...document.querySelectorAll('#result_list thead th')].map(th =>
                (th.className.match(/column-([a-z_]+)/) || ['', '?'])[1] + ':'
                + Math.round(th.getBoundingClientRect().width)).join(' '),
        };
    """)


def _check_list(browser, min_rows: int) -> dict:
    layout = _layout(browser)
    assert layout["rows"] >= min_rows, str(layout)
    assert layout["page"] <= layout["viewport"], str(layout)  # no sideways scrolling of the page
    assert layout["tableOverflow"] <= 0, str(layout)  # nor of the table inside it
    assert layout["tallestRow"] <= ONE_LINE_ROW_PX, str(layout)  # no cell wraps onto a second line
    assert layout["idLines"] == 1 and "mono" in layout["monospace"].lower(), str(layout)
    return layout


def _phones_on(browser, world) -> list[str]:
    source = browser.page_source
    digits = re.sub(r"\D", "", source)
    return [phone for phone in world.phones if phone in source or phone[1:] in digits]


def test_a_moderator_works_the_queues(browser, live_server, world, screenshot):
    _log_in(browser, live_server, world.moderator, world.password)

    text = _open(browser, live_server, "/admin/accounts/user/")
    _check_list(browser, world_module.ROWS)
    assert world.members[1].display_name in text
    assert not browser.find_elements(By.CSS_SELECTOR, "th.column-phone_number")
    assert _phones_on(browser, world) == []
    screenshot("moderator-users")

    text = _open(browser, live_server, "/admin/accounts/userreport/")
    _check_list(browser, world_module.ROWS)
    assert "<b>bold</b>" in text  # the report's text as text, not markup
    assert "USER REPORTED" in text.upper() and "REPORT TEXT" in text.upper()
    assert _phones_on(browser, world) == []
    screenshot("moderator-user-reports")

    text = _open(browser, live_server, "/admin/stories/story/")
    _check_list(browser, world_module.ROWS)
    image = browser.find_element(By.CSS_SELECTOR, "#result_list img.thumb")
    wait_until(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image),
               timeout=30)
    assert image.get_attribute("loading") == "lazy" and image.size == {"width": 40, "height": 40}
    assert "▶ video" in text and "Look at this sky" in text
    assert _phones_on(browser, world) == []
    screenshot("moderator-stories")

    text = _open(browser, live_server, "/admin/stories/storyreport/")
    _check_list(browser, world_module.ROWS)
    assert "STORY (AS REPORTED)" in text.upper() and "Sunset over the river" in text
    screenshot("moderator-story-reports")


def test_an_admin_sees_phones_every_list_and_the_charts(browser, live_server, world, screenshot):
    _log_in(browser, live_server, world.admin, world.password)

    text = _open(browser, live_server, "/admin/accounts/user/")
    _check_list(browser, world_module.ROWS)
    assert world.members[0].phone in text and browser.find_elements(By.CSS_SELECTOR, "th.column-phone_number")
    screenshot("admin-users")

    for path, name, rows in (("/admin/accounts/session/", "admin-sessions", world_module.ROWS),
                             ("/admin/accounts/block/", "admin-blocks", world_module.ROWS),
                             ("/admin/connections/connection/", "admin-connections", world_module.ROWS),
                             ("/admin/connections/message/", "admin-messages", world_module.ROWS)):
        text = _open(browser, live_server, path)
        _check_list(browser, rows)
        assert "private message" not in browser.page_source
        screenshot(name)

    text = _open(browser, live_server, "/admin/analytics/userstats/")
    assert "LAST 24 HOURS, PER HOUR" in text.upper() and "Pings per city" in text
    layout = browser.execute_script("""
        const bars = id => [...document.querySelectorAll('#' + id + ' rect.bar')];
        const drawn = id => bars(id).filter(b => b.getBBox().height > 0 && b.getBBox().width > 0).length;
        return {pings: bars('chart-pings').length, pingsDrawn: drawn('chart-pings'),
                users: drawn('chart-active_users'), crossings: drawn('chart-new_crossings'),
                cities: drawn('chart-city_pings'), cityCrossings: drawn('chart-city_crossings'),
                page: document.documentElement.scrollWidth, viewport: document.documentElement.clientWidth,
                fill: getComputedStyle(document.querySelector('#chart-pings rect.bar')).fill};
    """)
    assert layout["pings"] == 24, layout
    assert layout["pingsDrawn"] == 12 and layout["users"] == 12, layout  # pings every other hour
    assert layout["crossings"] >= 5 and layout["cities"] == 2 and layout["cityCrossings"] == 2, layout
    assert layout["page"] <= layout["viewport"], layout
    assert layout["fill"] not in ("", "none", "rgb(0, 0, 0)"), layout  # the stylesheet applied
    screenshot("admin-statistics")
