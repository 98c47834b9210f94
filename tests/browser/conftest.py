"""A real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) against
pytest-django's live server.  `make test-browser` installs the two packages when missing.

Screenshots go to docs/screenshots/ only when SCREENSHOTS=1 (CI leaves the tree clean).
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")
WIDTH, HEIGHT = 1280, 900
MAX_HEIGHT = 1600
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# The staff roles as stories/migrations/0002_staff_roles.py and analytics/migrations/
# 0004_moderators_view_statistics.py make them: a transactional test
# (the live server needs one) empties every table afterwards, groups included.
MODERATOR_PERMISSIONS = [
    ("stories", "view_story"), ("stories", "change_story"), ("stories", "delete_story"),
    ("stories", "moderate_story"), ("stories", "view_storyreport"), ("stories", "change_storyreport"),
    ("accounts", "view_userreport"), ("accounts", "change_userreport"), ("accounts", "view_user"),
    ("analytics", "view_userstats"),
]


@pytest.fixture
def staff_roles(transactional_db):
    moderators, _ = Group.objects.get_or_create(name="moderators")
    for app_label, codename in MODERATOR_PERMISSIONS:
        moderators.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    admins, _ = Group.objects.get_or_create(name="admins")
    admins.permissions.set(Permission.objects.all())


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    assert not missing, f"{missing} missing: `make test-browser` installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WIDTH},{HEIGHT}", "--force-device-scale-factor=1", "--lang=en-US",
                     "--hide-scrollbars"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser):
    """``screenshot(name)``: the whole page at 1280 px wide, when SCREENSHOTS=1."""

    def take(name: str) -> Path | None:
        if os.environ.get("SCREENSHOTS") != "1":
            return None
        height = min(int(browser.execute_script("return document.documentElement.scrollHeight")), MAX_HEIGHT)
        shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}})
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    return take
