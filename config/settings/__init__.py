"""Settings per environment: ``base`` (read from the environment) and ``dev``, ``test``,
``prod``, ``bench`` built on it.

``DJANGO_SETTINGS_MODULE=config.settings.<env>`` names one; the default ``config.settings``
picks the one named by ``DJANGO_ENV`` (``dev`` unless set).  Design: docs/subsystems/platform.md.
"""

import os
from importlib import import_module

from django.core.exceptions import ImproperlyConfigured

ENVIRONMENTS = ("dev", "test", "prod", "bench")

if os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings") == "config.settings":
    _env = os.environ.get("DJANGO_ENV", "dev").strip() or "dev"
    if _env not in ENVIRONMENTS:
        raise ImproperlyConfigured(f"DJANGO_ENV must be one of {', '.join(ENVIRONMENTS)}, not {_env!r}")
    _module = import_module(f"config.settings.{_env}")
    globals().update({name: value for name, value in vars(_module).items() if name.isupper()})
