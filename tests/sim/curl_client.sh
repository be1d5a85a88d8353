#!/usr/bin/env bash
# Drives the OIC emulator the way public OIC scripts do (plain curl + jq), and checks every response.
# Inputs (environment): GEN2_URL GEN2_USER GEN2_PASS GEN3_URL GEN3_II TOKEN_URL CLIENT_ID CLIENT_SECRET SCOPE WORK
set -euo pipefail

API=/ic/api/integration/v1
fail() { echo "FAIL: $*" >&2; exit 1; }
check() { [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"; echo "ok - $3"; }

# --- Gen2: basic auth, list with paging, export by raw | and %7C (SCR-POON / SCR-ATEAM style) ---
code=$(curl -s -o "$WORK/list.json" -w '%{http_code}' -u "$GEN2_USER:$GEN2_PASS" \
  "$GEN2_URL$API/integrations?limit=4&offset=0")
check 200 "$code" "gen2 list"
check true "$(jq -r .hasMore "$WORK/list.json")" "gen2 hasMore with limit=4"
check 4 "$(jq -r '.items | length' "$WORK/list.json")" "gen2 page size"
ids=$(jq -r '.items[].id' "$WORK/list.json")
[ -n "$ids" ] || fail "no ids"

code=$(curl -s -o "$WORK/sync.iar" -w '%{http_code}' -u "$GEN2_USER:$GEN2_PASS" \
  "$GEN2_URL$API/integrations/HR_EMPLOYEE_SYNC|01.00.0000/archive")
check 200 "$code" "gen2 export with raw |"
code=$(curl -s -o "$WORK/sync2.iar" -w '%{http_code}' -u "$GEN2_USER:$GEN2_PASS" \
  "$GEN2_URL$API/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/archive")
check 200 "$code" "gen2 export with %7C"
# Two exports carry their own time stamps (never byte-identical) but the same files.
cmp -s "$WORK/sync.iar" "$WORK/sync2.iar" && fail "two exports are byte-identical"
[ "$(unzip -Z1 "$WORK/sync.iar" | sort)" = "$(unzip -Z1 "$WORK/sync2.iar" | sort)" ] || fail "raw | and %7C exports differ"
# (the listing is read whole: `grep -q` stopping early would kill unzip with SIGPIPE under pipefail)
listing=$(unzip -l "$WORK/sync.iar")
grep -q "icspackage/project/HR_EMPLOYEE_SYNC_01.00.0000/ics_project_attributes.properties" <<<"$listing" \
  || fail "iar layout"
echo "ok - iar layout"

code=$(curl -s -o /dev/null -w '%{http_code}' -u "$GEN2_USER:wrong" "$GEN2_URL$API/integrations")
check 401 "$code" "gen2 bad password"
code=$(curl -s -o "$WORK/locked.json" -w '%{http_code}' -u "$GEN2_USER:$GEN2_PASS" \
  "$GEN2_URL$API/integrations/FIN_SUPPLIER_SYNC%7C01.00.0000/archive")
check 423 "$code" "gen2 export of a locked integration"

# --- OIC 3: token (client credentials, Basic client auth, unencoded scope as scripts send it) ---
TOKEN=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" \
  -H 'Content-Type: application/x-www-form-urlencoded;charset=UTF-8' \
  -d "grant_type=client_credentials&scope=$SCOPE" "$TOKEN_URL" | jq -r .access_token)
[ -n "$TOKEN" ] && [ "$TOKEN" != null ] || fail "no token"
echo "ok - token"
AUTH="Authorization: Bearer $TOKEN"
Q="integrationInstance=$GEN3_II"

code=$(curl -s -o /dev/null -w '%{http_code}' -u "$CLIENT_ID:$CLIENT_SECRET" "$GEN3_URL$API/integrations?$Q")
check 401 "$code" "gen3 refuses basic auth"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$GEN3_URL$API/integrations")
check 400 "$code" "gen3 without integrationInstance"

# GET → 404 → POST import (SCR-ATEAM logic)
code=$(curl -s -o "$WORK/get.json" -w '%{http_code}' -H "$AUTH" \
  "$GEN3_URL$API/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000?$Q")
check 404 "$code" "target does not have it yet"
check "HTTP 404 Not Found" "$(jq -r .status "$WORK/get.json")" "404 body status"

code=$(curl -s -o "$WORK/import.out" -w '%{http_code}' -X POST -H "$AUTH" \
  -F "file=@$WORK/sync.iar" -F "type=application/octet-stream" \
  "$GEN3_URL$API/integrations/archive?$Q")
check 204 "$code" "import POST"
code=$(curl -s -o "$WORK/import2.json" -w '%{http_code}' -X POST -H "$AUTH" \
  -F "file=@$WORK/sync.iar" -F "type=application/octet-stream" \
  "$GEN3_URL$API/integrations/archive?$Q")
check 409 "$code" "import POST again"
jq -r .status "$WORK/import2.json" | grep -q 409 || fail "409 not detectable with jq -r .status"
echo "ok - conflict detected via jq .status"
grep -q '"type":"https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.10"' "$WORK/import2.json" \
  || fail "409 type url"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$AUTH" \
  -F "file=@$WORK/sync.iar;type=application/octet-stream" \
  "$GEN3_URL$API/integrations/archive?$Q")
check 200 "$code" "import PUT"

curl -s -H "$AUTH" "$GEN3_URL$API/integrations/HR_EMPLOYEE_SYNC|01.00.0000?$Q" > "$WORK/got.json"
grep -q '"code":"HR_EMPLOYEE_SYNC"' "$WORK/got.json" || fail 'grep "code":"X" on compact JSON'
check CONFIGURED "$(jq -r .status "$WORK/got.json")" "imported status"

# Connection test (GH-RCH style)
code=$(curl -s -o "$WORK/test.json" -w '%{http_code}' -X POST -H "$AUTH" \
  "$GEN3_URL$API/connections/HR_REST/test?$Q")
check 200 "$code" "connection test"
check SUCCESS "$(jq -r .status "$WORK/test.json")" "connection test status"

# Activate (async) and poll
code=$(curl -s -o "$WORK/act.json" -w '%{http_code}' -X POST -H "$AUTH" \
  -H "Content-Type: application/json" -H "X-HTTP-Method-Override: PATCH" \
  -d '{"status":"ACTIVATED","tracingEnabledFlag":false,"payloadTracingEnabledFlag":false,"recordEnabledFlag":false}' \
  "$GEN3_URL$API/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000?$Q&enableAsyncActivationMode=true")
check 200 "$code" "activate"
check ACTIVATION_INPROGRESS "$(jq -r .status "$WORK/act.json")" "async activation"
state=""
for _ in $(seq 1 50); do
  state=$(curl -s -H "$AUTH" "$GEN3_URL$API/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/activationStatus?$Q" \
    | jq -r .activationStatus)
  [ "$state" = ACTIVATED ] && break
  sleep 0.1
done
check ACTIVATED "$state" "activation finished"
code=$(curl -s -o "$WORK/again.json" -w '%{http_code}' -X POST -H "$AUTH" \
  -H "Content-Type: application/json" -H "X-HTTP-Method-Override: PATCH" -d '{"status":"ACTIVATED"}' \
  "$GEN3_URL$API/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000?$Q")
check 412 "$code" "activate an active integration"
check "HTTP 412 Precondition Failed" "$(jq -r .status "$WORK/again.json")" "412 body"

# Deactivate, and again (412, which scripts ignore)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$AUTH" -H "Content-Type: application/json" \
  -H "X-HTTP-Method-Override: PATCH" -d '{"status":"CONFIGURED"}' \
  "$GEN3_URL$API/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000?$Q")
check 200 "$code" "deactivate"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$AUTH" -H "Content-Type: application/json" \
  -H "X-HTTP-Method-Override: PATCH" -d '{"status":"CONFIGURED"}' \
  "$GEN3_URL$API/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000?$Q")
check 412 "$code" "deactivate again"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$AUTH" \
  "$GEN3_URL$API/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/schedule/stop?$Q")
check 412 "$code" "schedule stop of an unscheduled integration"

echo "ALL OK"
