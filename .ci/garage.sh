#!/usr/bin/env bash
# Starts a single-node Garage (a real S3-compatible object store, https://garagehq.deuxfleurs.fr)
# on loopback for the object-storage vault tests (tests/vault_s3.rs):
#   S3 API on 127.0.0.1:$S3_PORT (default 3900), RPC on 3901, admin API on 3903,
#   state under $STATE/garage, bucket `ferry`, one access key allowed to read and write it.
# Appends TEST_S3_ENDPOINT/TEST_S3_BUCKET/TEST_S3_KEY_ID/TEST_S3_SECRET/TEST_S3_REGION and
# GARAGE_PID exports to $STATE/env (source it). Called at the end of .ci/services.sh; can be run
# alone (it stops the Garage an earlier run of it started, then starts afresh).
#
# Debian has no S3 server package, so Garage is built from crates.io with `cargo install` the
# first time (into $GARAGE_ROOT, outside the repository, reused by later runs). That build takes
# 6-10 minutes on 2 cores: acceptable within CI's 90 minutes, and the only way to get a real
# object store (not a mock) from the registries this project may use.
set -euo pipefail
STATE=${STATE:-/srv/ocitest}; S3_PORT=${S3_PORT:-3900}
GARAGE_ROOT=${GARAGE_ROOT:-/opt/ferry-tools/garage}; GARAGE_VERSION=${GARAGE_VERSION:-2.5.0}
GARAGE=$GARAGE_ROOT/bin/garage
D=$STATE/garage
BUCKET=ferry REGION=garage

if [ ! -x "$GARAGE" ]; then
  echo "garage.sh: building Garage $GARAGE_VERSION into $GARAGE_ROOT (cargo install, 6-10 minutes)"
  nice -n 10 cargo install garage --locked --version "$GARAGE_VERSION" --root "$GARAGE_ROOT" --quiet
fi

# Stop the Garage an earlier run started (only a process whose command line names our state dir).
if [ -f "$D/garage.pid" ]; then
  pid=$(cat "$D/garage.pid")
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$D"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
fi

rm -rf "$D"; install -d -m 0700 "$D" "$D/meta" "$D/data"
cat > "$D/garage.toml" <<CONF
metadata_dir = "$D/meta"
data_dir = "$D/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((S3_PORT + 1))"
rpc_public_addr = "127.0.0.1:$((S3_PORT + 1))"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$((S3_PORT + 3))"
admin_token = "$(openssl rand -hex 32)"
CONF
chmod 0600 "$D/garage.toml"
g() { "$GARAGE" -c "$D/garage.toml" "$@"; }

RUST_LOG=${GARAGE_LOG:-warn} "$GARAGE" -c "$D/garage.toml" server >"$D/garage.log" 2>&1 & GARAGE_PID=$!
echo "$GARAGE_PID" > "$D/garage.pid"
for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null || { cat "$D/garage.log"; exit 1; }

# A single node holding everything; buckets work only once the layout is applied.
NODE=$(g node id -q | cut -d@ -f1)
g layout assign -z dc1 -c 1G "$NODE" >/dev/null
g layout apply --version 1 >/dev/null
g bucket create "$BUCKET" >/dev/null
# Import a key we generate (rather than parsing `key create` output): GK + 24 hex, 64 hex secret.
KEY_ID="GK$(openssl rand -hex 12)"; SECRET=$(openssl rand -hex 32)
g key import --yes -n ferry-test "$KEY_ID" "$SECRET" >/dev/null
g bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID" >/dev/null

touch "$STATE/env"
sed -i '/TEST_S3_\|GARAGE_PID/d' "$STATE/env"
cat >> "$STATE/env" <<ENV
export GARAGE_PID=$GARAGE_PID
export TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT TEST_S3_BUCKET=$BUCKET TEST_S3_REGION=$REGION
export TEST_S3_KEY_ID=$KEY_ID TEST_S3_SECRET=$SECRET
ENV
echo "garage up: pid $GARAGE_PID, S3 API on 127.0.0.1:$S3_PORT, bucket $BUCKET; . $STATE/env"
