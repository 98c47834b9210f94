"""Development (``make run``): PostgreSQL and Redis from DATABASE_URL / REDIS_URL, else the
embedded servers under ``.data/`` (started on first use; nothing is switched off in that
mode); a random secret key kept under ``.data/`` unless SECRET_KEY is set."""

from config.env import env_bool, env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import broker_from_redis_url, wire
from devtools import embedded


def local_services(broker_db: int) -> dict[str, str]:
    """Service URLs from the environment, the embedded servers standing in for missing ones."""
    redis_url = env_str("REDIS_URL")
    if env_str("CELERY_BROKER_URL"):
        broker_url = env_str("CELERY_BROKER_URL")
    elif redis_url:
        broker_url = broker_from_redis_url(redis_url, broker_db)
    else:
        broker_url = f"redis+socket://{embedded.redis_socket()}?virtual_host={broker_db}"
    return {
        "secret_key": env_str("SECRET_KEY") or embedded.dev_secret_key(),
        "database_url": env_str("DATABASE_URL") or embedded.postgres_url(),
        "redis_url": redis_url or embedded.redis_url(db=0),
        "broker_url": broker_url,
    }


globals().update(wire(**local_services(broker_db=1)))

# GraphiQL and introspection at /graphql/ in development only (off in base, hence prod).
GRAPHQL_IDE = env_bool("GRAPHQL_IDE", True)
GRAPHQL_INTROSPECTION = env_bool("GRAPHQL_INTROSPECTION", True)
DEMO_STAFF_ENABLED = True  # `make run`'s demo staff account (accounts ensure_demo_staff)
