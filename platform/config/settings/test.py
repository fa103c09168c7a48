"""Settings for pytest. DATABASE_URL / CELERY_BROKER_URL from the environment are honoured
(CI points them at PostgreSQL and Redis); otherwise SQLite and the embedded broker are used.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import DATABASES, STATIC_ROOT, VAR_DIR, env, env_bool

DEBUG = False
SECRET_KEY = "correli-test-secret-key-not-for-production-use-0123456789"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

# Web tests run tasks in-process; the integration suite turns this off and uses a real worker.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)

VAR_DIR.mkdir(parents=True, exist_ok=True)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
if env("MEDIA_ROOT"):
    MEDIA_ROOT = Path(env("MEDIA_ROOT"))
else:
    # A private media root per test process, removed when the process ends (the twin tests
    # write a few hundred MB there).
    MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="correli-test-media-"))
    atexit.register(shutil.rmtree, MEDIA_ROOT, ignore_errors=True)
CORRELI_RESULTS_ROOT = MEDIA_ROOT / "results"
CORRELI_UPLOAD_TMP = MEDIA_ROOT / "upload-tmp"
CORRELI_DATA_ROOT = MEDIA_ROOT / "data"
CORRELI_CACHE_DIR = Path(env("CORRELI_CACHE_DIR", str(MEDIA_ROOT / "input-cache")))
CORRELI_SCRATCH_DIR = Path(env("CORRELI_SCRATCH_DIR", str(MEDIA_ROOT / "scratch")))

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so that a worker subprocess in the integration suite can share it;
    # one per test process so that parallel runs on one machine do not collide.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-correli-{os.getpid()}.sqlite3")}

STORAGES = {
    "default": default_storage_setting(),  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Tests log in many times from one address: the throttling tests set their own low rates.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"login_address": "10000/min", "login_username": "10000/min"},
}
