"""Settings every environment shares, read from the environment (README.md lists every variable).

The services (database, Redis, broker) and the secret key are wired by the environment's own
module through :func:`wire`: ``prod`` requires them in the environment, ``dev`` and ``test``
fall back to the embedded servers of ``devtools``.  This module starts nothing.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import sentry_sdk
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff

from config.env import env_bool, env_float, env_int, env_list, env_str
from core.cache.breaker import BreakerRetry

BASE_DIR = Path(__file__).resolve().parents[2]
DATA_DIR = Path(env_str("CROSSINGS_DATA_DIR") or BASE_DIR / ".data").resolve()
TESTING = False  # config.settings.test turns it on

# ----------------------------------------------------------------------------- core


SECRET_KEY = env_str("SECRET_KEY")  # required in prod; dev and test keep one under .data/
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django_prometheus",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "cachalot",
    # ours, in dependency order (an app may use those above it, never those below)
    "core",
    "accounts",
    "locations",
    "crossings",
    "connections",
    "stories",
    "analytics",
    "realtime",
]

MIDDLEWARE = [
    "core.observability.middleware.HttpMetricsMiddleware",  # the dashboards' request metrics
    "core.observability.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.api.middleware.WebOnlyRequestMiddleware",  # WEB_ONLY_MIDDLEWARE["request"]: not for /api/
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.cache.response.ResponseCacheMiddleware",
    "core.api.middleware.WebOnlyAdminMiddleware",  # WEB_ONLY_MIDDLEWARE["admin"], not for /api/
]
# Middleware of browser pages (admin, GraphiQL, docs) that token-authenticated API requests do
# not need: run in this order in place of their WebOnly* entry above, except for requests under
# a path under API_PATH_PREFIXES (core/api/middleware.py).
API_PATH_PREFIXES: tuple[str, ...] = ("/api/",)
WEB_ONLY_MIDDLEWARE = {
    "request": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    "admin": [
        "accounts.admin_security.AdminLoginThrottleMiddleware",  # admin pages only
        "accounts.admin_security.AdminContentSecurityPolicyMiddleware",
    ],
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ------------------------------------------------------------------------- database

# Pool limits default to max 100, min/idle 25, lifetime 5 min,
# idle 2 min.  They are per process and per alias: size them to max_connections.
DB_POOL = {
    "min_size": env_int("DB_POOL_MIN_SIZE", 25),
    "max_size": env_int("DB_POOL_MAX_SIZE", 100),
    "max_lifetime": env_float("DB_POOL_MAX_LIFETIME_S", 300),
    "max_idle": env_float("DB_POOL_MAX_IDLE_S", 120),
    "timeout": env_float("DB_POOL_TIMEOUT_S", 10),
}
DB_POOL_ENABLED = env_bool("DB_POOL", True)
if DB_POOL["min_size"] > DB_POOL["max_size"]:
    # psycopg_pool would refuse it on the first query of every request: say so at start-up.

    raise ImproperlyConfigured(f"DB_POOL_MIN_SIZE ({DB_POOL['min_size']}) is above DB_POOL_MAX_SIZE "
                               f"({DB_POOL['max_size']}).")
# Server-side binding lets psycopg prepare statements executed more than
# DB_PREPARE_THRESHOLD times per connection.
DB_SERVER_SIDE_BINDING = env_bool("DB_SERVER_SIDE_BINDING", True)
DB_PREPARE_THRESHOLD = env_int("DB_PREPARE_THRESHOLD", 5)
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 30_000)


def _database(url: str) -> dict:
    config: dict = dict(dj_database_url.parse(url, conn_max_age=0, conn_health_checks=False))
    config["ENGINE"] = "core.db.backend"  # django-prometheus's database metrics, cheaper per request
    options = config.setdefault("OPTIONS", {})
    if DB_POOL_ENABLED:
        options["pool"] = dict(DB_POOL)
    else:
        config["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 0)
    if DB_SERVER_SIDE_BINDING:
        options["server_side_binding"] = True
        options["prepare_threshold"] = DB_PREPARE_THRESHOLD
    options["options"] = f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"
    return config


REPLICA_URLS = env_list("DATABASE_REPLICA_URLS")
# Filled in by each environment's module through wire() (below), from its service URLs.
DATABASE_URL = ""
DATABASES: dict[str, dict] = {}
REPLICA_ALIASES: list[str] = []
DATABASE_ROUTERS = ["core.db.router.PrimaryReplicaRouter"]
# After a user writes, their reads stay on the primary this long (the fallback when the
# replica's replay position cannot be compared with the write's WAL position).
REPLICA_PIN_SECONDS = env_float("REPLICA_PIN_SECONDS", 5.0)
REPLICA_MAX_LAG_S = env_float("REPLICA_MAX_LAG_S", 5.0)
# Each process re-checks a replica's health and replay position at most this often.
REPLICA_HEALTH_TTL_S = env_float("REPLICA_HEALTH_TTL_S", 1.0)
REPLICA_CONNECT_TIMEOUT_S = env_int("REPLICA_CONNECT_TIMEOUT_S", 1)

# ---------------------------------------------------------------------------- cache

CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "crossings")
REDIS_URL = ""  # wire()
CACHES: dict[str, dict] = {}  # wire()
CELERY_BROKER_URL = ""  # wire()
# A Redis Cluster for the cache (core/cache/cluster.py) when REDIS_CLUSTER_URLS lists its
# nodes; the Celery broker stays on one Redis (CELERY_BROKER_URL or REDIS_URL).
REDIS_CLUSTER_URLS = env_list("REDIS_CLUSTER_URLS")



def _redis_retry():
    return BreakerRetry(NoBackoff(), env_int("REDIS_RETRIES", 1))


DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# After a Redis error, every Redis call fails fast this long (core/cache/breaker.py).
CACHE_BREAKER_SECONDS = env_float("CACHE_BREAKER_SECONDS", 2.0)

# django-cachalot caches ORM queries, but only on tables that are written rarely;
# everything hot is cached explicitly by the apps with versioned keys.
CACHALOT_ENABLED = env_bool("CACHALOT_ENABLED", True)
CACHALOT_ONLY_CACHABLE_TABLES = frozenset(
    {"locations_city", "django_content_type", "auth_group", "auth_permission", "auth_group_permissions"}
)
CACHALOT_TIMEOUT = 3600
# cachalot serves the engines it knows by name: the project's (core.db.backend, Django's
# PostgreSQL engine with the metrics) is one of those.
CACHALOT_ADDITIONAL_SUPPORTED_DATABASES = {"core.db.backend"}
# Raw SQL writes invalidate those tables through core.cache.raw_writes, which looks for the
# whitelisted tables only (cachalot's own hook scans every model's table on each raw write).
CACHALOT_INVALIDATE_RAW = False
# A write on the primary must invalidate what a replica alias cached (core.cache.cachalot_keys).
CACHALOT_TABLE_KEYGEN = "core.cache.cachalot_keys.get_table_cache_key"
# Decides "not cachable" from the query's tables before compiling its SQL (see there).
CACHALOT_QUERY_KEYGEN = "core.cache.cachalot_keys.get_query_cache_key"
# django-prometheus's RedisCache is django-redis's with metrics; cachalot only knows the
# latter by name, so its "unsupported backend" warning does not apply.
# admin.E408-E410 and security.W003 look for the session, auth, messages and CSRF middleware in
# MIDDLEWARE only; they are in WEB_ONLY_MIDDLEWARE, which core.api.middleware's own check
# (core.E001) inspects instead.
SILENCED_SYSTEM_CHECKS = ["cachalot.W001", "admin.E408", "admin.E409", "admin.E410", "security.W003"]

# ----------------------------------------------------------------------------- celery

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# The beat schedule lives in config/celery.py, beside the Celery app.

# ------------------------------------------------------------------------ API / DRF

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["core.api.rest.OrjsonRenderer"],
    # JSON only; the upload views (stories/, me/) add multipart themselves.
    "DEFAULT_PARSER_CLASSES": ["core.api.rest.OrjsonParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.api.rest.JsonFirstNegotiation",
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.AccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.rest.NewestFirstCursorPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("RATE_LIMIT_USER", "100/minute"),
        "auth_ip": env_str("RATE_LIMIT_AUTH_IP", "30/minute"),
        "auth_phone": env_str("RATE_LIMIT_AUTH_PHONE", "10/minute"),
        "code_phone": env_str("RATE_LIMIT_CODE_PHONE", "5/hour"),
    },
    "EXCEPTION_HANDLER": "core.api.rest.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
RATE_LIMIT_ENABLED = env_bool("RATE_LIMIT_ENABLED", True)
# Proxies of ours in front of the app (nginx: 1).  The client's IP is the address that many
# hops from the right of X-Forwarded-For; 0 uses the peer address and ignores the header.
NUM_PROXIES = env_int("NUM_PROXIES", 0)
REST_FRAMEWORK["NUM_PROXIES"] = NUM_PROXIES  # DRF's own get_ident, should anything call it
# /metrics and /health/ready/: clients on these networks, or with this bearer token.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Readiness fails when the crossing detector is further behind than this.
READY_MAX_DETECTOR_LAG_S = env_float("READY_MAX_DETECTOR_LAG_S", 300.0)

SPECTACULAR_SETTINGS = {
    "TITLE": "Crossings API",
    "DESCRIPTION": "People who cross paths in the street find each other later. See docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One Error body on every 4xx, page_size's bounds (core/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.postprocess",
    ],
    # Stable names for the two reasons lists (a user report's and a story report's).
    "ENUM_NAME_OVERRIDES": {
        "UserReportReasonEnum": "accounts.models.ReportReason",
        "StoryReportReasonEnum": "stories.models.StoryReportReason",
    },
}

# GraphQL (/graphql/, docs/api.md): limits that answer an error instead of running long, the
# persisted-query allow-list (on in prod), and the dev-only IDE and introspection.
GRAPHQL_MAX_DEPTH = env_int("GRAPHQL_MAX_DEPTH", 10)
GRAPHQL_MAX_ALIASES = env_int("GRAPHQL_MAX_ALIASES", 15)
GRAPHQL_MAX_TOKENS = env_int("GRAPHQL_MAX_TOKENS", 2000)
GRAPHQL_PERSISTED_ONLY = env_bool("GRAPHQL_PERSISTED_ONLY", False)
GRAPHQL_IDE = env_bool("GRAPHQL_IDE", False)
GRAPHQL_INTROSPECTION = env_bool("GRAPHQL_INTROSPECTION", False)

# Request bodies: JSON bodies are small; media uploads are limited separately.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1_048_576)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# ----------------------------------------------------------------------- auth tokens

ACCESS_TOKEN_TTL = timedelta(seconds=env_int("ACCESS_TOKEN_TTL_S", 300))
REFRESH_TOKEN_TTL = timedelta(days=env_int("REFRESH_TOKEN_TTL_DAYS", 30))
JWT_SIGNING_KEY = ""  # wire(): JWT_SIGNING_KEY, else SECRET_KEY
JWT_ALGORITHM = "HS256"
SMS_BACKEND = env_str("SMS_BACKEND", "accounts.sms.ConsoleSMSBackend")
PHONE_CODE_TTL = timedelta(seconds=env_int("PHONE_CODE_TTL_S", 600))
PHONE_CODE_MAX_ATTEMPTS = env_int("PHONE_CODE_MAX_ATTEMPTS", 5)

# Argon2id first (memory-hard); older hashes still verify and are upgraded at the next login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

DEMO_STAFF_ENABLED = False  # dev.py turns it on: `ensure_demo_staff` refuses anywhere else

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ------------------------------------------------------------------ static and media

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = env_str("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_CDN_URL = env_str("MEDIA_CDN_URL")  # e.g. https://cdn.example.com/ ; empty serves MEDIA_URL
STORAGES = {
    "default": {"BACKEND": env_str("MEDIA_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --------------------------------------------------------------------- security / TLS

# Set HTTPS=1 in production behind TLS: it turns on redirects, HSTS and secure cookies.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO", HTTPS) else None
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# ---------------------------------------------------------------- domain parameters

CROSSING_CELL_M = env_float("CROSSING_CELL_M", 200.0)
CROSSING_WINDOW_S = env_int("CROSSING_WINDOW_S", 600)
CROSSING_REPEAT_GAP_S = env_int("CROSSING_REPEAT_GAP_S", 3600)
CROSSING_RETENTION_DAYS = env_int("CROSSING_RETENTION_DAYS", 7)
PING_RETENTION_HOURS = env_int("PING_RETENTION_HOURS", 24)
MAX_PLAUSIBLE_SPEED_KMH = env_float("MAX_PLAUSIBLE_SPEED_KMH", 300.0)
# Which stored pings may match (docs/crossings.md): received within CROSSING_LIVE_S of their
# time, at most MATCH_MAX_SPEED_KMH and at least MATCH_MIN_INTERVAL_S from the user's matchable
# neighbours (GPS jitter allowed up to the reported accuracy, at most MATCH_JITTER_MAX_M).
CROSSING_LIVE_S = env_int("CROSSING_LIVE_S", 600)
MATCH_MAX_SPEED_KMH = env_float("MATCH_MAX_SPEED_KMH", 60.0)
MATCH_MIN_INTERVAL_S = env_float("MATCH_MIN_INTERVAL_S", 20.0)
MATCH_JITTER_MAX_M = env_float("MATCH_JITTER_MAX_M", 50.0)
# A record is not rewritten while an encounter goes on; the stored end of the latest encounter
# may lag by this much (the detector recomputes it from pings where it matters).
CROSSING_END_SLACK_S = env_int("CROSSING_END_SLACK_S", 1800)
# New people one account may cross per rolling 24 h; further new pairs are dropped.
CROSSINGS_NEW_PER_DAY = env_int("CROSSINGS_NEW_PER_DAY", 300)
# Detection shards (docs/subsystems/detection.md, "Shards"): city c belongs to shard c % N; each
# shard has its own watermark and lock, so N Celery workers can detect at once.
CROSSING_SHARDS = env_int("CROSSING_SHARDS", 1)
STORY_TTL_HOURS = env_int("STORY_TTL_HOURS", 24)
# Stories (connections/ and stories/): media limits, nearby search, cache TTLs.  Media go to
# STORAGES["default"]: local files, or S3-compatible storage with
# MEDIA_STORAGE_BACKEND=storages.backends.s3.S3Storage (needs boto3) and the AWS_* below.
STORY_MAX_IMAGE_BYTES = env_int("STORY_MAX_IMAGE_BYTES", 10 * 1024 * 1024)
STORY_MAX_VIDEO_BYTES = env_int("STORY_MAX_VIDEO_BYTES", 50 * 1024 * 1024)
STORY_MAX_IMAGE_PIXELS = env_int("STORY_MAX_IMAGE_PIXELS", 40_000_000)  # width x height x frames
STORY_MAX_IMAGE_FRAMES = env_int("STORY_MAX_IMAGE_FRAMES", 100)
STORY_NEARBY_RADII_KM = [float(r) for r in env_list("STORY_NEARBY_RADII_KM", "5,10,15,20")]
STORY_NEARBY_ENOUGH = env_int("STORY_NEARBY_ENOUGH", 10)
STORY_NEARBY_CACHE_S = env_int("STORY_NEARBY_CACHE_S", 60)
# Whole responses of cacheable reads, checked against the versions they were built from
# (core.cache.response); the TTL only bounds memory, invalidation is by version.
RESPONSE_CACHE_ENABLED = env_bool("RESPONSE_CACHE_ENABLED", True)
RESPONSE_CACHE_S = env_int("RESPONSE_CACHE_S", 300)
CONNECTIONS_CACHE_S = env_int("CONNECTIONS_CACHE_S", 300)  # connection lists
PROFILE_CACHE_S = env_int("PROFILE_CACHE_S", 600)  # public profiles and the blocked/hidden sets
CROSSINGS_CACHE_S = env_int("CROSSINGS_CACHE_S", 900)  # pages of a user's crossings
CITY_CACHE_S = env_float("CITY_CACHE_S", 30.0)  # each process's copy of the city list
STATS_CHARTS_CACHE_S = env_int("STATS_CHARTS_CACHE_S", 60)  # the admin statistics' hourly series
# Cache version keys outlive every value cached under them (core.cache.keys).
CACHE_VERSION_TTL_S = env_int("CACHE_VERSION_TTL_S", 7 * 24 * 3600)
STORY_FEED_CACHE_S = env_int("STORY_FEED_CACHE_S", 300)
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 2000)
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None  # e.g. MinIO, R2, Spaces
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
AWS_S3_CUSTOM_DOMAIN = env_str("AWS_S3_CUSTOM_DOMAIN") or None
AWS_QUERYSTRING_AUTH = env_bool("AWS_QUERYSTRING_AUTH", False)  # public media behind the CDN
AWS_DEFAULT_ACL = None
AWS_S3_FILE_OVERWRITE = False
AWS_S3_OBJECT_PARAMETERS = {"CacheControl": "public, max-age=86400, immutable"}

# ------------------------------------------------------------- realtime (WebSockets)

# The ASGI server (uvicorn) that serves GET /ws/v1/ beside gunicorn; `manage.py serve` starts it.
WS_BIND = env_str("WS_BIND", "127.0.0.1:8001")
# Pub/sub and the per-user socket counts live on one plain Redis (not the cache's cluster):
# REALTIME_REDIS_URL, else REDIS_URL (filled in by wire()).  docs/realtime.md says why.
REALTIME_REDIS_URL = env_str("REALTIME_REDIS_URL")
WS_MAX_CONNECTIONS_PER_USER = env_int("WS_MAX_CONNECTIONS_PER_USER", 3)
WS_HEARTBEAT_S = env_float("WS_HEARTBEAT_S", 30.0)  # each socket's slot is refreshed this often
WS_STALE_S = env_float("WS_STALE_S", 90.0)  # a slot not refreshed this long is free (crashed instance)
WS_TOKEN_WARNING_S = env_float("WS_TOKEN_WARNING_S", 60.0)  # token.expiring this long before expiry
REALTIME_EVENT_RETENTION_HOURS = env_int("REALTIME_EVENT_RETENTION_HOURS", 24)  # the resume window
REALTIME_REPLAY_BATCH = env_int("REALTIME_REPLAY_BATCH", 500)
WS_MAX_PENDING_EVENTS = env_int("WS_MAX_PENDING_EVENTS", 500)  # a socket this far behind is dropped (4408)
# Garbage collection of the ASGI process (realtime/heap.py): collect and freeze survivors this
# often (0: Python's default collector alone); unfreeze and walk everything this often.
WS_GC_FREEZE_S = env_float("WS_GC_FREEZE_S", 2.0)
WS_GC_THAW_S = env_float("WS_GC_THAW_S", 3600.0)

# ------------------------------------------------------------------------- logging

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_JSON = env_bool("LOG_JSON", not DEBUG)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.observability.middleware.RequestIdLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(client_ip)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}


def command_logging(argv: list[str], log_file: str, logging: dict) -> dict:
    """An operator's ``manage.py <command>`` prints one human line per result itself: its log
    records go to ``log_file`` (JSON) and only warnings reach the terminal, in plain words.
    So does ``make run``'s set-up (devtools/run.py).  Servers (``serve``, ``runserver``), shells
    and ``COMMAND_LOG_FILE=-`` keep the console."""
    program = Path(argv[0]) if argv else Path()
    person = (program.name == "manage.py" and len(argv) > 1
              and argv[1] not in {"serve", "runserver", "shell", "dbshell", "help"})
    if not (person or program.parts[-2:] == ("devtools", "run.py")) or log_file == "-":
        return logging
    try:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only disk: the console it is
        return logging
    handlers = {
        "console": {"class": "logging.StreamHandler", "level": "WARNING", "formatter": "brief"},
        "file": {"class": "logging.handlers.WatchedFileHandler", "filename": log_file, "delay": True,
                 "formatter": "json", "filters": ["request_id"]},
    }
    formatters = {**logging["formatters"], "brief": {"format": "%(levelname)s %(name)s: %(message)s"}}
    return {**logging, "formatters": formatters, "handlers": handlers,
            "root": {**logging["root"], "handlers": ["console", "file"]}}


# Where an operator command's log records go (JSON, one per line); `-` keeps them on stderr.
COMMAND_LOG_FILE = env_str("COMMAND_LOG_FILE", str(DATA_DIR / "logs" / "commands.log"))
LOGGING = command_logging(sys.argv, COMMAND_LOG_FILE, LOGGING)

SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:  # pragma: no cover - needs a Sentry server

    sentry_sdk.init(dsn=SENTRY_DSN, traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
                    send_default_pii=False)

PROMETHEUS_METRIC_NAMESPACE = ""

# ------------------------------------------------------------------ services wiring


def broker_from_redis_url(redis_url: str, db: int = 1) -> str:
    """The Celery broker on another database of the cache's Redis."""
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{db}"))


def _caches(redis_url: str, key_prefix: str) -> dict:
    if REDIS_CLUSTER_URLS:
        return {"default": {
            "BACKEND": "core.cache.cluster.RedisClusterCache",
            "LOCATION": REDIS_CLUSTER_URLS,
            "KEY_PREFIX": key_prefix,
            "TIMEOUT": 300,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": env_float("REDIS_CONNECT_TIMEOUT_S", 0.5),
                "SOCKET_TIMEOUT": env_float("REDIS_SOCKET_TIMEOUT_S", 0.5),
                "MAX_CONNECTIONS": env_int("REDIS_MAX_CONNECTIONS", 200),
                # A master's failover takes about cluster-node-timeout plus an election.
                "RETRY_SECONDS": env_float("REDIS_CLUSTER_RETRY_S", 5.0),
                # Writes wait until a replica has them, so a failover cannot lose an invalidation.
                "WAIT_REPLICAS": env_int("REDIS_CLUSTER_WAIT_REPLICAS", 1),
                "WAIT_TIMEOUT_MS": env_int("REDIS_CLUSTER_WAIT_TIMEOUT_MS", 100),
                "IGNORE_EXCEPTIONS": env_bool("REDIS_IGNORE_EXCEPTIONS", True),
            },
        }}
    return {"default": {
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        "LOCATION": redis_url,
        "KEY_PREFIX": key_prefix,
        "TIMEOUT": 300,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": env_float("REDIS_CONNECT_TIMEOUT_S", 0.5),
            "SOCKET_TIMEOUT": env_float("REDIS_SOCKET_TIMEOUT_S", 0.5),
            "CONNECTION_POOL_KWARGS": {
                "max_connections": env_int("REDIS_MAX_CONNECTIONS", 200),
                # redis-py 8 retries 3 times with up to 10 s backoff: a Redis outage would
                # stall every request for seconds.  One immediate retry covers a dropped socket.
                "retry": _redis_retry(),
            },
            # Redis down: cache reads are misses and writes are dropped, so every endpoint
            # answers from the database (connections/ and stories/ test this on a real outage).
            "IGNORE_EXCEPTIONS": env_bool("REDIS_IGNORE_EXCEPTIONS", True),
        },
    }}


def wire(*, secret_key: str, database_url: str, redis_url: str, broker_url: str,
         cache_key_prefix: str = CACHE_KEY_PREFIX, test_database: str | None = None) -> dict:
    """The settings that depend on the services and the secret key, for ``globals().update``.

    ``test_database`` (test settings) names the test database and adds a replica alias that
    mirrors the primary when none is configured, so that the router's read path is exercised.
    """
    databases = {"default": _database(database_url)}
    replica_aliases: list[str] = []
    for index, url in enumerate(REPLICA_URLS, start=1):
        alias = f"replica{index}"
        databases[alias] = {**_database(url), "TEST": {"MIRROR": "default"}}
        replica_aliases.append(alias)
    if test_database is not None:
        databases["default"]["TEST"] = {"NAME": test_database}
        if not replica_aliases:
            databases["replica1"] = {**_database(database_url), "TEST": {"MIRROR": "default"}}
            replica_aliases.append("replica1")
    for alias in replica_aliases:
        databases[alias]["OPTIONS"]["connect_timeout"] = REPLICA_CONNECT_TIMEOUT_S
        # Replicas restart (maintenance, failover) without this process noticing: the pool then
        # checks a connection before handing it out, so a stale one is replaced instead of
        # failing a request.  One empty round trip per request that reads from a replica.
        databases[alias]["CONN_HEALTH_CHECKS"] = env_bool("REPLICA_CONN_HEALTH_CHECKS", True)
    middleware = list(MIDDLEWARE)
    if replica_aliases:
        # A read-only request whose replica died under it is served again from the primary.
        middleware.insert(middleware.index("core.observability.middleware.RequestContextMiddleware") + 1,
                          "core.db.router.ReplicaFallbackMiddleware")
    return {
        "SECRET_KEY": secret_key,
        "JWT_SIGNING_KEY": env_str("JWT_SIGNING_KEY") or secret_key,
        "DATABASE_URL": database_url,
        "DATABASES": databases,
        "REPLICA_ALIASES": replica_aliases,
        "MIDDLEWARE": middleware,
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": cache_key_prefix,
        "CACHES": _caches(redis_url, cache_key_prefix),
        "CELERY_BROKER_URL": broker_url,
        "REALTIME_REDIS_URL": REALTIME_REDIS_URL or redis_url,
    }
