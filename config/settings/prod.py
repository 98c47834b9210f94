"""Production: every service and the secret key come from the environment, and start-up
fails with a clear message when one is missing.  Nothing here starts a server or invents a
secret."""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import broker_from_redis_url, wire

REQUIRED = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")
_missing = [name for name in REQUIRED if not env_str(name)]
if _missing:
    raise ImproperlyConfigured(
        f"Production settings need {', '.join(_missing)} in the environment (see README.md, Configuration)."
    )

globals().update(wire(
    secret_key=env_str("SECRET_KEY"),
    database_url=env_str("DATABASE_URL"),
    redis_url=env_str("REDIS_URL"),
    broker_url=env_str("CELERY_BROKER_URL") or broker_from_redis_url(env_str("REDIS_URL")),
))

# Only the persisted GraphQL documents shipped in config/graphql_persisted/ run in production.
GRAPHQL_PERSISTED_ONLY = env_bool("GRAPHQL_PERSISTED_ONLY", True)
