"""Tests (pytest): development's services, one test database and cache key prefix per test
process so that several runs share a server, a mirrored replica alias, a broker database of
their own, fast password hashing."""

import os

from config.settings.base import DB_POOL
from config.settings.dev import *  # noqa: F403
from config.settings.dev import local_services, wire

TESTING = True
DB_POOL["min_size"] = min(DB_POOL["min_size"], 2)
globals().update(wire(
    **local_services(broker_db=3),  # away from a dev worker consuming the same Redis
    cache_key_prefix=f"test{os.getpid()}",
    test_database=f"test_crossings_{os.getpid()}",
))
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# Hashing cost is not what tests measure.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
