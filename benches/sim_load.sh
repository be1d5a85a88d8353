#!/usr/bin/env bash
# Load test of the emulator (issue #3): `ferry sim` (release build) must never be what a benchmark
# of ferry measures. Measures with wrk (Debian package `wrk`):
#   1. list requests per second  (GET /ic/api/integration/v1/integrations?limit=100, Basic auth)
#   2. archive download throughput (GET .../integrations/{id}/archive of a 256 MiB archive)
# and the emulator's peak RSS (VmHWM) before and after.
#
#   cargo build --release && benches/sim_load.sh [path/to/ferry]
set -euo pipefail
FERRY=${1:-${CARGO_TARGET_DIR:-target}/release/ferry}
DUR=${DUR:-10}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is needed: apt-get install jq" >&2; exit 2; }
tmp=$(mktemp -d); trap 'kill $SIM 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$FERRY" sim --gen 2 --instance dev:sample --instance big:500 >"$tmp/info" 2>/dev/null & SIM=$!
for _ in $(seq 100); do [ -s "$tmp/info" ] && break; sleep 0.1; done
base=$(jq -r '.instances[0].base_url' "$tmp/info")
user=$(jq -r '.instances[0].username' "$tmp/info"); pass=$(jq -r '.instances[0].password' "$tmp/info")
auth="Authorization: Basic $(printf '%s:%s' "$user" "$pass" | base64 -w0)"
rss() { awk '/VmHWM/ {print $2/1024 " MiB"}' "/proc/$SIM/status"; }
echo "emulator peak RSS at start: $(rss)"
echo "== list: GET $base/ic/api/integration/v1/integrations?limit=100 (4 threads, 32 connections, ${DUR}s)"
wrk -t4 -c32 -d"${DUR}s" -H "$auth" "$base/ic/api/integration/v1/integrations?limit=100" | grep -E "Requests/sec|Latency|requests in|Non-2xx"
id='HR_EMPLOYEE_SYNC%7C01.00.0000'
curl -sf -o /dev/null -X POST "$base/__sim/archive_size" -H 'content-type: application/json' \
  -d '{"instance":"dev","id":"HR_EMPLOYEE_SYNC|01.00.0000","bytes":268435456}'
echo "== download: GET .../integrations/$id/archive, 256 MiB archive (2 threads, 4 connections, ${DUR}s)"
wrk -t2 -c4 -d"${DUR}s" -H "$auth" "$base/ic/api/integration/v1/integrations/$id/archive" | grep -E "Transfer/sec|Requests/sec|requests in|Non-2xx"
echo "emulator peak RSS after the downloads: $(rss)"
