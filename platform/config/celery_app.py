"""The Celery application shared by the web process (which enqueues) and the workers.

Start a worker with ``celery -A config.celery_app worker`` from ``platform/`` (or with
``platform`` on ``PYTHONPATH``). Configuration comes from Django settings prefixed ``CELERY_``.
"""

import os
import sys
from pathlib import Path

from celery import Celery

_PLATFORM_DIR = Path(__file__).resolve().parent.parent
for _path in (_PLATFORM_DIR.parent, _PLATFORM_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("correli")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
