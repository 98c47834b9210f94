"""A production configuration passes Django's deployment checks with no warnings."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def test_production_configuration_passes_check_deploy():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DEBUG": "0",
        "HTTPS": "1",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "api.crossings.example",
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_configuration_is_flagged_by_check_deploy():
    """The check is real: the same command fails when HTTPS settings are off."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.prod", "DEBUG": "0", "HTTPS": "0",
           "SECRET_KEY": secrets.token_urlsafe(64),
           "DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # HSTS not set


def test_a_pool_minimum_above_its_maximum_is_refused_at_start_up():
    env = {**os.environ, "DB_POOL_MIN_SIZE": "4", "DB_POOL_MAX_SIZE": "2",
           "DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "DB_POOL_MIN_SIZE (4) is above DB_POOL_MAX_SIZE (2)" in result.stderr


def test_gunicorn_sizes_the_pool_maximum_to_an_explicit_minimum():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_POOL_")}
    env["DB_POOL_MIN_SIZE"] = "4"
    code = ("import os, runpy; runpy.run_path('deploy/gunicorn.conf.py'); "
            "print(os.environ['DB_POOL_MIN_SIZE'], os.environ['DB_POOL_MAX_SIZE'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["4", "4"], result.stderr
