#!/bin/sh
# First start: initdb, then the role and database from POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB. Every start: refuse an empty or example password, then run the server.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
case "${POSTGRES_PASSWORD:-}" in
  "" | change-me*)
    echo "correli-postgres: refusing to start: POSTGRES_PASSWORD is empty or still the example value (set it in deploy/.env)" >&2
    exit 1 ;;
esac
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "correli-postgres: initialising $PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
  fi
  pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql "$@"
