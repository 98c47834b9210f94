import pytest


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Media files of these tests go to a temporary directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MEDIA_CDN_URL = ""
