"""WSGI entry point (gunicorn ``config.wsgi:application`` with ``platform`` on the path)."""

import os
import sys
from pathlib import Path

_PLATFORM_DIR = Path(__file__).resolve().parent.parent
for _path in (_PLATFORM_DIR.parent, _PLATFORM_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
