"""Refuse to start a container with a missing or weak SECRET_KEY, or a database password (or
the object store's secret key) left at the example value of deploy/env.example. Prints one line saying what to fix; exit 1."""

import os
import sys
from urllib.parse import urlsplit

EXAMPLE_PREFIX = "change-me"


def problems(environ) -> list[str]:
    found = []
    key = environ.get("SECRET_KEY", "")
    if not key:
        found.append("SECRET_KEY is not set")
    elif key.startswith((EXAMPLE_PREFIX, "django-insecure", "build-only")):
        found.append("SECRET_KEY is still the example value")
    elif len(key) < 50 or len(set(key)) < 5:
        found.append("SECRET_KEY is weak (need at least 50 characters, 5 distinct)")
    passwords = {"POSTGRES_PASSWORD": environ.get("POSTGRES_PASSWORD")}
    url = environ.get("DATABASE_URL", "")
    if url:
        passwords["the DATABASE_URL password"] = urlsplit(url).password
    # the object store's secret, when the stack uses one (deploy/env.example has an example)
    passwords["CORRELI_S3_SECRET_ACCESS_KEY"] = environ.get("CORRELI_S3_SECRET_ACCESS_KEY")
    for name, value in passwords.items():
        if value is not None and (value == "" or value.startswith(EXAMPLE_PREFIX)):
            found.append(f"{name} is empty or still the example value")
    return found


if __name__ == "__main__":
    found = problems(os.environ)
    if found:
        print(
            "correli: refusing to start: " + "; ".join(found) + " (set them in deploy/.env)",
            file=sys.stderr,
        )
        sys.exit(1)
