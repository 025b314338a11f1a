#!/usr/bin/env bash
# Installs PostgreSQL from Debian (packages `postgresql` and `postgresql-client`). Idempotent. Prints
# the server's bin directory (initdb, postgres, pg_isready, psql), newest major version first.
source "$(dirname "$0")/lib.sh"

bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
complete() { local dir="$1"; [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && [ -x "$dir/psql" ]; }

dir="$(bin_dir)"
if ! complete "$dir"; then
  debian_ensure postgres
  dir="$(bin_dir)"
fi
complete "$dir" || { log "postgresql is installed but initdb, postgres or psql is missing under /usr/lib/postgresql/*/bin"; exit 1; }
"$dir/postgres" --version >&2
echo "$dir"
