#!/bin/sh
# Container entry point: "web" (migrate, then gunicorn), "worker" (a Celery worker) or "beat"
# (the periodic-task scheduler).
# Both refuse to start with a missing/weak SECRET_KEY or an example database password.
set -e
cd /app
case "${1:-web}" in
  web | worker | beat) python /app/deploy/check_env.py ;;
esac
case "${1:-web}" in
  web)
    # The database may still be starting (or restarting): retry the migration, bounded.
    tries=0
    until python manage.py migrate --noinput; do
      tries=$((tries + 1))
      if [ "$tries" -ge "${MIGRATE_RETRIES:-30}" ]; then
        echo "correli: database not reachable after $tries attempts" >&2
        exit 1
      fi
      sleep 2
    done
    exec gunicorn config.asgi:application --config /app/deploy/gunicorn.conf.py
    ;;
  worker)
    exec celery -A config.celery_app worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}"
    ;;
  beat)
    # Periodic tasks: job liveness (requeue jobs of dead workers), stale partial uploads,
    # retried file removals. Exactly one beat per stack.
    exec celery -A config.celery_app beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule /tmp/celerybeat-schedule
    ;;
  *)
    exec "$@"
    ;;
esac
