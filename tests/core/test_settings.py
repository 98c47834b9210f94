"""Settings per environment: production fails loudly, development falls back to embedded servers."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ENV")


def _settings_process(tmp_path, code: str, **env):
    """Import settings in a fresh process whose data directory is empty."""
    clean = {k: v for k, v in os.environ.items() if k not in SERVICES}
    clean.update({"CROSSINGS_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=120)


def test_production_settings_refuse_to_start_without_services_and_secret(tmp_path):
    result = _settings_process(tmp_path, "import django; django.setup()", DJANGO_SETTINGS_MODULE="config.settings.prod")
    assert result.returncode != 0
    assert "Production settings need SECRET_KEY, DATABASE_URL, REDIS_URL" in result.stderr
    # Nothing was started or invented: no embedded server, no secret key file.
    assert not (tmp_path / "data").exists()


def test_django_env_prod_selects_the_production_settings(tmp_path):
    result = _settings_process(tmp_path, "import django; django.setup()", DJANGO_SETTINGS_MODULE="config.settings",
                               DJANGO_ENV="prod",
                               SECRET_KEY="x" * 50, DATABASE_URL=settings.DATABASE_URL)
    assert result.returncode != 0
    assert "Production settings need REDIS_URL" in result.stderr
    assert not (tmp_path / "data").exists()


def test_production_settings_start_with_every_service_given(tmp_path):
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.CELERY_BROKER_URL, settings.TESTING, 'devtools.embedded' in __import__('sys').modules)")
    result = _settings_process(tmp_path, code, DJANGO_SETTINGS_MODULE="config.settings.prod", SECRET_KEY="k" * 50,
                               DATABASE_URL=settings.DATABASE_URL, REDIS_URL="redis://127.0.0.1:6399/0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis://127.0.0.1:6399/1", "False", "False"]


def test_an_unknown_environment_is_refused(tmp_path):
    result = _settings_process(tmp_path, "import django; django.setup()", DJANGO_SETTINGS_MODULE="config.settings",
                               DJANGO_ENV="staging")
    assert result.returncode != 0
    assert "DJANGO_ENV must be one of dev, test, prod, bench, not 'staging'" in result.stderr


def test_tests_run_on_the_test_settings():
    assert settings.TESTING is True
    assert settings.DATABASES["default"]["TEST"]["NAME"] == f"test_crossings_{os.getpid()}"
    assert settings.CACHE_KEY_PREFIX == f"test{os.getpid()}"
    assert "virtual_host=3" in settings.CELERY_BROKER_URL or settings.CELERY_BROKER_URL.endswith("/3")
