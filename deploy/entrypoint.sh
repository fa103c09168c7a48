#!/bin/sh
# Container entry point: "web" (migrate, then gunicorn) or "worker" (a Celery worker).
set -e
cd /app
case "${1:-web}" in
  web)
    python manage.py migrate --noinput
    exec gunicorn config.asgi:application --config /app/deploy/gunicorn.conf.py
    ;;
  worker)
    exec celery -A config.celery_app worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}"
    ;;
  *)
    exec "$@"
    ;;
esac
