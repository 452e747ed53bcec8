#!/bin/sh
# Writes PgBouncer's auth file from the compose secret (the database password never
# sits in an image, a config file or the environment), then runs PgBouncer.
set -eu
: "${PGBOUNCER_USER:=tracetrack}"
password=$(cat "${POSTGRES_PASSWORD_FILE:?set POSTGRES_PASSWORD_FILE}")
umask 077
# userlist.txt quotes names and passwords with "; a " inside is written twice.
printf '"%s" "%s"\n' "$PGBOUNCER_USER" "$(printf '%s' "$password" | sed 's/"/""/g')" \
  > /run/pgbouncer/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
