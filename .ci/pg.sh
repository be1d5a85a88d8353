#!/usr/bin/env bash
# Starts a private PostgreSQL cluster on loopback for the ledger tests (see
# docs/test-services.md), without touching any system cluster:
#   - data under $STATE/pg, port $PG_PORT (default 5433), listening on 127.0.0.1 only;
#   - TLS on (a self-signed certificate for 127.0.0.1/localhost) and password (SCRAM) logins;
#   - roles: ferry_writer (the pipelines' role; CREATEDB only so that tests can make one database
#     each) and ferry_viewer (read-only), as in the README's SQL. No test logs in as a superuser.
# Appends TEST_PG_* exports to $STATE/env (removing those of an earlier run) and writes
# $STATE/pg.env. Idempotent: stops the cluster an earlier run of this script started.
# Needs root and Debian's `postgresql` package. Can be run alone.
set -euo pipefail
STATE=${STATE:-/srv/ocitest}; PG_PORT=${PG_PORT:-5433}
PGDIR=$STATE/pg
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] || { echo "pg.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
WRITER_PASS=${PG_WRITER_PASS:-writer-pw-$(openssl rand -hex 6)}
VIEWER_PASS=${PG_VIEWER_PASS:-viewer-pw-$(openssl rand -hex 6)}
as_pg() { su postgres -s /bin/sh -c "$*"; }

if [ -f "$PGDIR/data/postmaster.pid" ]; then
  as_pg "$PGBIN/pg_ctl -D $PGDIR/data stop -m fast -w" >/dev/null 2>&1 || true
fi
rm -rf "$PGDIR"
install -d -m 0755 -o postgres -g postgres "$PGDIR"
as_pg "$PGBIN/initdb -D $PGDIR/data -U postgres --auth-local=trust --auth-host=reject" >"$STATE/pg-initdb.log"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -addext basicConstraints=critical,CA:FALSE \
  -keyout "$PGDIR/server.key" -out "$PGDIR/server.crt" 2>/dev/null
chown postgres:postgres "$PGDIR/server.key" "$PGDIR/server.crt"
chmod 0600 "$PGDIR/server.key"
cat >>"$PGDIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PGDIR'
ssl = on
ssl_cert_file = '$PGDIR/server.crt'
ssl_key_file = '$PGDIR/server.key'
password_encryption = 'scram-sha-256'
max_connections = 200
CONF
cat >"$PGDIR/data/pg_hba.conf" <<HBA
local all postgres trust
host  all all 127.0.0.1/32 scram-sha-256
HBA
as_pg "$PGBIN/pg_ctl -D $PGDIR/data -l $PGDIR/log start -w" >/dev/null

as_pg "psql -h $PGDIR -p $PG_PORT -U postgres -v ON_ERROR_STOP=1 -q" <<SQL
CREATE ROLE ferry_writer LOGIN CREATEDB PASSWORD '$WRITER_PASS';
CREATE ROLE ferry_viewer LOGIN PASSWORD '$VIEWER_PASS';
CREATE DATABASE ferry OWNER ferry_writer;
\c ferry
GRANT CONNECT ON DATABASE ferry TO ferry_viewer;
GRANT USAGE ON SCHEMA public TO ferry_viewer;
ALTER DEFAULT PRIVILEGES FOR ROLE ferry_writer IN SCHEMA public GRANT SELECT ON TABLES TO ferry_viewer;
SQL

cat >"$STATE/pg.env" <<ENV
export PG_PID=$(head -1 "$PGDIR/data/postmaster.pid")
export TEST_PG_HOST=127.0.0.1 TEST_PG_PORT=$PG_PORT TEST_PG_DB=ferry TEST_PG_CA=$PGDIR/server.crt
export TEST_PG_WRITER=ferry_writer TEST_PG_WRITER_PASSWORD=$WRITER_PASS
export TEST_PG_VIEWER=ferry_viewer TEST_PG_VIEWER_PASSWORD=$VIEWER_PASS
export TEST_PG_URL=postgres://ferry_writer@127.0.0.1:$PG_PORT/ferry
ENV
touch "$STATE/env"
grep -v -e '^export PG_PID=' -e '^export TEST_PG_' "$STATE/env" >"$STATE/env.tmp" || true
cat "$STATE/pg.env" >>"$STATE/env.tmp"
mv "$STATE/env.tmp" "$STATE/env"
echo "postgresql up on 127.0.0.1:$PG_PORT (data $PGDIR/data); . $STATE/env"
