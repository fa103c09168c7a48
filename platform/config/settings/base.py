"""Settings shared by every environment. Everything site-specific comes from the environment.

Zero-setup defaults: SQLite and an embedded Celery broker (kombu's SQLAlchemy transport on a
SQLite file), both under ``var/`` in the repository root. Production overrides these with
PostgreSQL and Redis and refuses to start without them (see ``production.py``).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

PLATFORM_DIR = Path(__file__).resolve().parent.parent.parent
BASE_DIR = PLATFORM_DIR.parent
VAR_DIR = Path(os.environ.get("CORRELI_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str | None:
    """The environment variable ``name``, or ``default`` when unset or empty."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


SECRET_KEY = env("SECRET_KEY", "correli-insecure-development-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "projects",
    "catalogue",
    "viewer",
    "jobs",
    "uploads",
    "reviews",
    "live",
    "axes",
]

MIDDLEWARE = [
    "config.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "projects.audit.AuditUserMiddleware",
    # last: turns a lockout found during authentication into a 429 response
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "projects.context_processors.correli",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'correli.sqlite3'}"),
        conn_max_age=int(env("CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The web process and the worker processes write to the same file. WAL lets readers run
    # beside a writer; IMMEDIATE transactions take the write lock up front, so a transaction
    # waits (timeout) instead of failing with "database is locked" when it upgrades from read
    # to write while another process writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out username or address before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "projects:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
# Uploaded data lives outside the web root and is served only by permission-checked views.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))

# Where datasets and results live (projects/store.py owns the choice): "local" (MEDIA_ROOT, the
# embedded default) or "s3" (an S3-compatible store: MinIO, AWS S3, Ceph RGW) through
# django-storages. Workers then read inputs through a size-limited local cache and write
# outputs in a scratch area that is uploaded when the job finishes.
CORRELI_STORAGE = (env("CORRELI_STORAGE", "local") or "local").lower()
if CORRELI_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured(f"CORRELI_STORAGE must be local or s3, not {CORRELI_STORAGE!r}")
CORRELI_S3_ENDPOINT_URL = env("CORRELI_S3_ENDPOINT_URL")  # none: AWS S3 itself
CORRELI_S3_BUCKET = env("CORRELI_S3_BUCKET", "correli")
CORRELI_S3_REGION = env("CORRELI_S3_REGION", "us-east-1")
CORRELI_S3_ACCESS_KEY_ID = env("CORRELI_S3_ACCESS_KEY_ID")
CORRELI_S3_SECRET_ACCESS_KEY = env("CORRELI_S3_SECRET_ACCESS_KEY")
CORRELI_S3_ADDRESSING_STYLE = env("CORRELI_S3_ADDRESSING_STYLE", "path")  # MinIO, moto: path
CORRELI_S3_MULTIPART_CHUNK_BYTES = int(env("CORRELI_S3_MULTIPART_CHUNK_BYTES", str(16 * 1024**2)))
CORRELI_S3_MAX_CONCURRENCY = int(env("CORRELI_S3_MAX_CONCURRENCY", "4"))
CORRELI_S3_MAX_ATTEMPTS = int(env("CORRELI_S3_MAX_ATTEMPTS", "5"))  # botocore, per request
CORRELI_S3_TRANSFER_ATTEMPTS = int(env("CORRELI_S3_TRANSFER_ATTEMPTS", "3"))  # whole transfer
CORRELI_CACHE_DIR = Path(env("CORRELI_CACHE_DIR", str(VAR_DIR / "cache")))
CORRELI_CACHE_MAX_BYTES = int(env("CORRELI_CACHE_MAX_BYTES", str(20 * 1024**3)))
CORRELI_SCRATCH_DIR = Path(env("CORRELI_SCRATCH_DIR", str(VAR_DIR / "scratch")))
# The engine (which never reads Django settings) takes its scratch folder from the environment.
os.environ.setdefault("CORRELI_SCRATCH_DIR", str(CORRELI_SCRATCH_DIR))


def s3_storage_setting(
    *,
    bucket: str,
    endpoint_url: str | None,
    region: str | None,
    access_key: str | None,
    secret_key: str | None,
    addressing_style: str = "path",
    max_attempts: int = 5,
) -> dict:
    """``STORAGES["default"]`` for an S3-compatible store (django-storages on boto3)."""
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": region,
            "access_key": access_key,
            "secret_key": secret_key,
            "addressing_style": addressing_style,
            "file_overwrite": False,  # a new upload never replaces a stored file of that name
            "default_acl": None,
            "client_config": Config(
                retries={"max_attempts": max_attempts, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                s3={"addressing_style": addressing_style},
            ),
        },
    }


def default_storage_setting() -> dict:
    """``STORAGES["default"]`` for ``CORRELI_STORAGE`` (read again by the settings modules)."""
    if CORRELI_STORAGE != "s3":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    return s3_storage_setting(
        bucket=CORRELI_S3_BUCKET,
        endpoint_url=CORRELI_S3_ENDPOINT_URL,
        region=CORRELI_S3_REGION,
        access_key=CORRELI_S3_ACCESS_KEY_ID,
        secret_key=CORRELI_S3_SECRET_ACCESS_KEY,
        addressing_style=CORRELI_S3_ADDRESSING_STYLE,
        max_attempts=CORRELI_S3_MAX_ATTEMPTS,
    )


STORAGES = {
    "default": default_storage_setting(),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Large uploads go through tus in chunks; ordinary forms stay small.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

CORRELI_DATA_ROOT = Path(env("CORRELI_DATA_ROOT", str(VAR_DIR / "data")))
CORRELI_RESULTS_ROOT = Path(env("CORRELI_RESULTS_ROOT", str(MEDIA_ROOT / "results")))
CORRELI_UPLOAD_TMP = Path(env("CORRELI_UPLOAD_TMP", str(VAR_DIR / "uploads")))
CORRELI_UPLOAD_MAX_BYTES = int(env("CORRELI_UPLOAD_MAX_BYTES", str(64 * 1024**3)))
# An upload is refused (507) when its declared length would leave less than this free on disk.
CORRELI_UPLOAD_DISK_MARGIN_BYTES = int(env("CORRELI_UPLOAD_DISK_MARGIN_BYTES", str(1024**3)))
# Bytes a project may hold (datasets + unfinished uploads); 0 means no quota.
CORRELI_PROJECT_QUOTA_BYTES = int(env("CORRELI_PROJECT_QUOTA_BYTES", "0"))
# Unfinished uploads untouched this long are purged by the periodic cleanup.
CORRELI_UPLOAD_STALE_HOURS = float(env("CORRELI_UPLOAD_STALE_HOURS", "24"))
# Review links for referees: the longest lifetime an owner may give one.
CORRELI_REVIEW_LINK_MAX_DAYS = int(env("CORRELI_REVIEW_LINK_MAX_DAYS", "90"))

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env("REDIS_URL")}
        if env("REDIS_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Celery. The embedded default needs no server: kombu's SQLAlchemy transport on a SQLite file.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}")
# Optional: nothing in CorreLi needs a result backend (the pipeline and the chunked
# reconstruction fan in through the database, never a chord). With Redis as the broker it
# defaults to Redis, which lets `celery inspect`/flower show task results.
CELERY_RESULT_BACKEND = env(
    "CELERY_RESULT_BACKEND",
    (env("REDIS_URL") or CELERY_BROKER_URL)
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else None,
)
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers a task whose worker died (acks_late) after this many seconds; keep it longer
# than the longest job, or a still-running job is handed to a second worker.
# Redis only: kombu's SQLAlchemy transport (the embedded default) hands transport options to
# SQLAlchemy's create_engine, which rejects them and stops the worker.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "visibility_timeout": int(env("CELERY_VISIBILITY_TIMEOUT", str(6 * 3600))),
        "unacked_restore_interval": int(env("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
        "unacked_restore_throttle": int(env("CELERY_UNACKED_RESTORE_THROTTLE", "10")),
    }
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else {}
)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True

# Liveness: a worker stamps the job it runs every CORRELI_JOB_HEARTBEAT_S; a running job whose
# stamp is older than CORRELI_JOB_STALE_S lost its worker and is requeued (or failed after 3
# attempts) by the periodic check, which Celery beat runs every CORRELI_JOB_LIVENESS_CHECK_S.
# Worst case from a worker's death to its job back in the queue: STALE + CHECK (105 s).
CORRELI_JOB_HEARTBEAT_S = float(env("CORRELI_JOB_HEARTBEAT_S", "15"))
# Memory one job (or chunk of a job) may use in a worker process beyond its idle size, bytes;
# 0: no limit. A chunk whose estimate exceeds it fails before it starts; the engine call runs
# under a soft RLIMIT_AS of this much above the process's size, so running out fails the job
# with a MemoryError instead of swapping or waking the kernel's OOM killer.
CORRELI_WORKER_MEMORY_BYTES = int(env("CORRELI_WORKER_MEMORY_BYTES", "0"))
CORRELI_JOB_STALE_S = float(env("CORRELI_JOB_STALE_S", "75"))
CORRELI_JOB_LIVENESS_CHECK_S = float(env("CORRELI_JOB_LIVENESS_CHECK_S", "30"))

# Periodic tasks (``celery beat``; `./bin/run` starts it inside the worker with --beat, in
# production run one `celery -A config.celery_app beat`). Other apps add their own entries.
CELERY_BEAT_SCHEDULE_FILENAME = env(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(VAR_DIR / "celerybeat-schedule")
)
CELERY_BEAT_SCHEDULE = {
    "jobs-recover-stale": {
        "task": "jobs.recover_stale_jobs",
        "schedule": CORRELI_JOB_LIVENESS_CHECK_S,
    },
    "purge-stale-uploads": {
        "task": "uploads.tasks.purge_stale_uploads",
        "schedule": timedelta(hours=1),
    },
    "retry-file-removals": {
        "task": "projects.tasks.retry_file_removals",
        "schedule": timedelta(minutes=15),
    },
}

REST_FRAMEWORK = {
    # Token first: an unauthenticated request then gets 401 with ``WWW-Authenticate: Token``
    # (session authentication has no challenge to offer and would make it a 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "projects.api.parsers.NulRefusingJSONParser",
        "projects.api.parsers.NulRefusingFormParser",
        "projects.api.parsers.NulRefusingMultiPartParser",
    ],
    # Login attempts (token endpoint and login form): per client address and per username.
    "DEFAULT_THROTTLE_RATES": {
        "login_address": env("CORRELI_LOGIN_RATE_PER_ADDRESS", "20/min"),
        "login_username": env("CORRELI_LOGIN_RATE_PER_USERNAME", "10/min"),
    },
    # Reverse proxies in front of the app (nginx in compose: 1) whose X-Forwarded-For to trust.
    "NUM_PROXIES": int(env("CORRELI_NUM_PROXIES", "0")) or None,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "projects.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "projects.api.exceptions.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "CorreLi API",
    "DESCRIPTION": (
        "Catalogue, uploads, analysis jobs and results of correlative Compton scattering "
        "imaging + X-ray CT battery experiments. Every object belongs to a project; objects "
        "of projects you are not a member of answer 404."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "projects.api.schema.add_error_responses",
    ],
}

# django-axes: after CORRELI_LOGIN_FAILURE_LIMIT failed logins for one username, or from one
# client address, further attempts are refused with 429 for the cool-off time.
AXES_ENABLED = env_bool("CORRELI_LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = int(env("CORRELI_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(env("CORRELI_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "projects.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "projects.throttling.client_address"
AXES_HTTP_RESPONSE_CODE = 429

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Live push (platform/live): Redis pub/sub wakes the web processes at once when a Redis URL is
# configured; otherwise (embedded default) the event table is polled server-side.
CORRELI_LIVE_REDIS_URL = env(
    "CORRELI_LIVE_REDIS_URL",
    env("REDIS_URL")
    or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else None),
)
CORRELI_LIVE_POLL_S = float(env("CORRELI_LIVE_POLL_S", "0.5"))
CORRELI_LIVE_HEARTBEAT_S = float(env("CORRELI_LIVE_HEARTBEAT_S", "15"))
CORRELI_LIVE_MAP_INTERVAL_S = float(env("CORRELI_LIVE_MAP_INTERVAL_S", "2"))
# a live acquisition's resume checkpoint (its whole spectra cube) is written at most this often;
# a resumed worker clusters the chunks committed after it again
CORRELI_LIVE_CHECKPOINT_S = float(env("CORRELI_LIVE_CHECKPOINT_S", "5"))
