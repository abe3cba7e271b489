#!/bin/bash
# Runs one PostgreSQL cluster of lifeboat's stack, the way src/stack/postgres.ts does:
#   primary  the sample application; every WAL segment archived by pgBackRest to both regions
#   catalog  lifeboat's own records (its own service and volume, so it outlives the primary)
# Configured by the standard variables PGDATA, PGHOST (socket directory), PGPORT, PGUSER
# (superuser, trust authentication) and PGDATABASE; the primary also needs PGBACKREST_CONFIG
# and PGBACKREST_STANZA (stack-init writes that config and creates the stanza).
set -euo pipefail

role=${1:-}
case $role in
  primary | catalog) ;;
  *) echo "usage: lifeboat-postgres primary|catalog" >&2; exit 64 ;;
esac
for name in PGDATA PGHOST PGPORT PGUSER PGDATABASE; do
  [ -n "${!name:-}" ] || { echo "lifeboat-postgres: set $name" >&2; exit 64; }
done
if [ "$role" = primary ]; then
  for name in PGBACKREST_CONFIG PGBACKREST_STANZA; do
    [ -n "${!name:-}" ] || { echo "lifeboat-postgres: set $name for the primary" >&2; exit 64; }
  done
fi

mkdir -p "$PGDATA" "$PGHOST"
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "lifeboat-postgres: initializing the $role cluster in $PGDATA"
  initdb -D "$PGDATA" -U "$PGUSER" --auth=trust --data-checksums --encoding=UTF8 --locale=C.UTF-8
  # Published ports reach the server from the Docker gateway, not from 127.0.0.1. The ports are
  # published on the host's loopback only (LIFEBOAT_HOST), so trust stays local to this machine.
  echo "host all all samenet trust" >>"$PGDATA/pg_hba.conf"
fi

# TLS with the stack's local CA (deploy/certs), as src/stack/postgres.ts does: the certificate and
# key are copied into the data directory, so backups carry them and restored instances serve them.
tls_dir=${LIFEBOAT_TLS_DIR:-/var/lib/lifeboat/tls}/postgres
if [ -s "$tls_dir/server.crt" ] && [ -s "$tls_dir/server.key" ]; then
  install -m 0644 "$tls_dir/server.crt" "$PGDATA/server.crt"
  install -m 0600 "$tls_dir/server.key" "$PGDATA/server.key"
fi

# Rewritten at every start, so a changed port applies on the next `docker compose up`.
{
  echo "listen_addresses = '*'"
  echo "port = $PGPORT"
  echo "unix_socket_directories = '$PGHOST'"
  echo "max_connections = 100"
  echo "shared_buffers = '128MB'"
  echo "log_line_prefix = '%m [%p] %q%u@%d '"
  if [ -s "$PGDATA/server.key" ]; then
    echo "ssl = on"
    echo "ssl_cert_file = 'server.crt'"
    echo "ssl_key_file = 'server.key'"
  fi
  if [ "$role" = primary ]; then
    echo "wal_level = replica"
    echo "archive_mode = on"
    echo "archive_command = 'pgbackrest --config=$PGBACKREST_CONFIG --stanza=$PGBACKREST_STANZA archive-push %p'"
    # A quiet database still ships WAL at least this often: PITR to within half a minute.
    echo "archive_timeout = 30"
    echo "max_wal_senders = 4"
  fi
} >"$PGDATA/lifeboat.conf"
grep -q "include_if_exists = 'lifeboat.conf'" "$PGDATA/postgresql.conf" ||
  printf "\ninclude_if_exists = 'lifeboat.conf'\n" >>"$PGDATA/postgresql.conf"

# Create the database on a private socket, so the healthcheck (on PGHOST) passes only once
# the real server runs.
init_socket=$(mktemp -d)
pg_ctl -D "$PGDATA" -w -t 60 -o "-c listen_addresses='' -c unix_socket_directories='$init_socket'" start
if [ "$(psql -h "$init_socket" -d postgres -XtAc "SELECT 1 FROM pg_database WHERE datname = '$PGDATABASE'")" != 1 ]; then
  createdb -h "$init_socket" "$PGDATABASE"
  echo "lifeboat-postgres: created database $PGDATABASE"
fi
pg_ctl -D "$PGDATA" -m fast -w -t 60 stop
rmdir "$init_socket" 2>/dev/null || true

exec postgres -D "$PGDATA"
