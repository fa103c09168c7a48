#!/usr/bin/env python
"""Django's command-line utility for CorreLi.

``platform/`` is a plain folder (no ``__init__.py``: a package called ``platform`` would shadow
the standard library module that uuid, Django and Celery import), so its apps and ``config``
are made importable by putting the folder itself on ``sys.path``.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> None:
    for path in (ROOT, ROOT / "platform"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
