#!/usr/bin/env bash
# Self-test of the sandbox: starts a private instance (own runtime dir),
# drives it with the curl CLI and asserts the contract in sandbox/README.md
# (Planfix REST here, the Planfix XML API in selftest-xml.sh, the Planado API
# v2 and its webhooks in selftest-planado.sh, the Planfix scenario requests
# in selftest-scenarios.sh), then stops it. Exits non-zero
# on any failure; the last line is "N passed, N failed".
#
# JSON answers are checked with lua5.4 + lua-cjson (see jl below), XML
# answers with lua5.4 + lua-expat (xq in selftest-xml.sh).
set -uo pipefail # no -e: a failed check is counted, not fatal

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN="$HERE/run"

if ! command -v curl >/dev/null; then
  if [[ "$(id -u)" == 0 ]]; then
    apt-get install -y curl >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y curl >/dev/null 2>&1; }
  fi
  command -v curl >/dev/null || { echo "selftest: curl is required"; echo "0 passed, 1 failed"; exit 1; }
fi

# lua-expat: the sandbox's XML endpoint and xq (selftest-xml.sh) need it.
if ! lua5.4 -e 'require("lxp")' >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]]; then
    apt-get install -y lua-expat >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y lua-expat >/dev/null 2>&1; }
  fi
  lua5.4 -e 'require("lxp")' >/dev/null 2>&1 || { echo "selftest: lua-expat is required"; echo "0 passed, 1 failed"; exit 1; }
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/planapi-sandbox-selftest.XXXXXX")"
export PLANAPI_SANDBOX_DIR="$WORK/run"
# SELFTEST_KEEP=1 keeps the runtime dir (logs, certs) for inspection.
trap '"$RUN" stop >/dev/null 2>&1; [[ -n "${SELFTEST_KEEP:-}" ]] && echo "# kept $WORK" >&2 || rm -rf "$WORK"' EXIT

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "FAIL - $1${2:+ ($2)}"; }

# check NAME ACTUAL EXPECTED
check() {
  if [[ "$2" == "$3" ]]; then ok "$1"; else not_ok "$1" "got '$2', want '$3'"; fi
}
# check_match NAME ACTUAL REGEX
check_match() {
  if [[ "$2" =~ $3 ]]; then ok "$1"; else not_ok "$1" "got '$2', want /$3/"; fi
}

# jl EXPR [FILE]: evaluates a Lua expression over the decoded JSON in FILE
# (default: last response body) as `d`; tables print as JSON, nil as "nil".
jl() {
  EXPR="$1" FILE="${2:-$WORK/body}" lua5.4 -e '
        local cjson = require("cjson")
        local f = assert(io.open(os.getenv("FILE"), "rb"))
        local text = f:read("a"); f:close()
        local okd, d = pcall(cjson.decode, text)
        if not okd then io.write("INVALID_JSON") return end
        -- cjson under Lua 5.4 decodes every number as a float; make
        -- integral ones integers so they print as "1", not "1.0".
        local function norm(v)
            if type(v) == "number" then return math.tointeger(v) or v end
            if type(v) == "table" then
                for k, x in pairs(v) do v[k] = norm(x) end
            end
            return v
        end
        d = norm(d)
        -- keys(t): sorted, comma-joined keys of an object.
        local function keys(t)
            local ks = {}
            for k in pairs(t) do ks[#ks + 1] = tostring(k) end
            table.sort(ks)
            return table.concat(ks, ",")
        end
        local env = setmetatable({ d = d, null = cjson.null, keys = keys }, { __index = _G })
        local fn = assert(load("return " .. os.getenv("EXPR"), "expr", "t", env))
        local okv, v = pcall(fn)
        if not okv then io.write("ERROR") return end
        if type(v) == "table" then v = cjson.encode(v) end
        io.write(tostring(v))
    ' 2>/dev/null
}

# call METHOD URL [curl args...]: sets CODE (HTTP status), RC (curl exit),
# body in $WORK/body, headers in $WORK/headers.
call() {
  local method="$1" url="$2"; shift 2
  CODE="$(curl -sS --cacert "$CA" -X "$method" -o "$WORK/body" -D "$WORK/headers" \
        -w '%{http_code}' "$@" "$url" 2>"$WORK/curl_err")"
  RC=$?
}
header() { # NAME: value of a response header of the last call
  grep -i "^$1:" "$WORK/headers" | tail -n 1 | sed -e 's/^[^:]*:[[:space:]]*//' -e 's/\r$//'
}
api() { # METHOD PATH [JSON body] [curl args...]: authenticated REST call
  local method="$1" path="$2" data="${3:-}"; shift 3 2>/dev/null || shift $#
  if [[ -n "$data" ]]; then
    call "$method" "$REST$path" -H "Authorization: Bearer sandbox-token" \
      -H "Content-Type: application/json" --data-binary "$data" "$@"
  else
    call "$method" "$REST$path" -H "Authorization: Bearer sandbox-token" "$@"
  fi
}
ctl() { # METHOD PATH [JSON]: control API
  if [[ -n "${3:-}" ]]; then call "$1" "$CTL$2" --data-binary "$3"; else call "$1" "$CTL$2"; fi
}

# The Planfix XML checks (xml_main) and their helpers.
source "$HERE/selftest-xml.sh"
# The Planado API checks (planado_main) and their helpers.
source "$HERE/selftest-planado.sh"
# The Planfix scenario request checks (scenarios_main).
source "$HERE/selftest-scenarios.sh"

# The test body is one function so that a failed start can `return` early.
main() {
echo "# starting sandbox in $PLANAPI_SANDBOX_DIR"
START_OUT="$("$RUN" start 2>"$WORK/start_err")"
START_RC=$?
check "run start exits 0" "$START_RC" 0
if [[ $START_RC != 0 ]]; then
  cat "$WORK/start_err"
  return 1
fi
eval "$START_OUT"
CA="$PLANAPI_SANDBOX_CA_FILE"
HTTPS="https://127.0.0.1:$PLANAPI_SANDBOX_HTTPS_PORT"
REST="$HTTPS/rest"
CTL="$HTTPS/_sandbox"

# ------------------------------------------------------------- lifecycle/env
check "env.sh matches the printed env" "$(cat "$PLANAPI_SANDBOX_DIR/env.sh")" "$START_OUT"
ENV_CHECK="$(E1="$PLANAPI_SANDBOX_DIR/env.lua" E2="$PLANAPI_SANDBOX_DIR" E3="$PLANAPI_SANDBOX_HTTPS_PORT" lua5.4 -e '
    local arg = { os.getenv("E1"), os.getenv("E2"), os.getenv("E3") }
    local e = dofile(arg[1])
    local okp = true
    for _, k in ipairs({ "https_port", "http_port", "wrong_host_port", "untrusted_port", "pid" }) do
        okp = okp and math.type(e[k]) == "integer"
    end
    okp = okp and e.dir == arg[2] and e.ca_file == arg[2] .. "/ca.pem"
    okp = okp and e.https_port == tonumber(arg[3])
    io.write(tostring(okp))')"
check "env.lua has all fields" "$ENV_CHECK" true
AGAIN="$("$RUN" start 2>/dev/null)"
check "start again is idempotent (same env)" "$AGAIN" "$START_OUT"
"$RUN" status >/dev/null 2>&1
check "status exits 0 while running" "$?" 0
ctl GET /health
check "GET /_sandbox/health" "$CODE" 200

# ------------------------------------------------------------- TLS ports
call GET "$HTTPS/rest/ping"
check "https with test CA verifies" "$RC" 0
curl -sS --cacert "$CA" -o /dev/null "https://127.0.0.1:$PLANAPI_SANDBOX_WRONG_HOST_PORT/_sandbox/health" 2>/dev/null
check "wrong-host port fails verification (curl 60)" "$?" 60
curl -sS --cacert "$CA" -o /dev/null --resolve "wrong.invalid:$PLANAPI_SANDBOX_WRONG_HOST_PORT:127.0.0.1" \
  "https://wrong.invalid:$PLANAPI_SANDBOX_WRONG_HOST_PORT/_sandbox/health" 2>/dev/null
check "wrong-host cert is otherwise valid (as wrong.invalid)" "$?" 0
curl -sS --cacert "$CA" -o /dev/null "https://127.0.0.1:$PLANAPI_SANDBOX_UNTRUSTED_PORT/_sandbox/health" 2>/dev/null
check "untrusted port fails verification (curl 60)" "$?" 60
curl -sS --cacert "$PLANAPI_SANDBOX_DIR/untrusted-ca.pem" -o /dev/null \
  "https://127.0.0.1:$PLANAPI_SANDBOX_UNTRUSTED_PORT/_sandbox/health" 2>/dev/null
check "untrusted cert is otherwise valid (with its own CA)" "$?" 0
CODE="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer sandbox-token" \
    "http://127.0.0.1:$PLANAPI_SANDBOX_HTTP_PORT/rest/ping")"
check "plain http port serves the API" "$CODE" 200
CONNS="$(curl -sS --cacert "$CA" -H "Authorization: Bearer sandbox-token" -o /dev/null -o /dev/null -o /dev/null \
    -w '%{num_connects}\n' "$REST/ping" "$REST/ping" "$REST/ping" | paste -sd, -)"
check "keep-alive: 3 requests, 1 connection" "$CONNS" "1,0,0"

# SELFTEST_ONLY=xml, =planado or =scenarios (selftest-xml.sh, selftest-planado.sh,
# selftest-scenarios.sh run directly) runs only those checks.
if [[ -z "${SELFTEST_ONLY:-}" ]]; then
# ------------------------------------------------------------- auth
ctl POST /reset
check "POST /_sandbox/reset" "$CODE" 200
api GET /ping
check "ping 200" "$CODE" 200
check "ping body" "$(jl 'd.result')" success
check "JSON content type" "$(header Content-Type)" "application/json; charset=utf-8"
call GET "$REST/ping"
check "no token -> 401" "$CODE" 401
check "no token -> code 1" "$(jl 'd.result .. " " .. d.code .. " " .. d.error')" "fail 1 Access denied, unknown token"
call GET "$REST/ping" -H "Authorization: Bearer nope"
check "unknown token -> 401 code 1" "$CODE/$(jl d.code)" "401/1"
call GET "$REST/ping" -H "Authorization: Bearer inactive-token"
check "inactive token -> 401 code 2" "$CODE/$(jl d.code)/$(jl d.error)" "401/2/Token not active"
call GET "$REST/ping?access_token=sandbox-token"
check "GET with ?access_token" "$CODE" 200
call POST "$REST/task/list?access_token=sandbox-token" --data-binary '{}'
check "POST with ?access_token is refused" "$CODE/$(jl d.code)" "401/1"
call GET "$REST/task/1" -H "Authorization: Bearer readonly-token"
check "readonly token may GET" "$CODE" 200
call POST "$REST/task/list" -H "Authorization: Bearer readonly-token" --data-binary '{}'
check "readonly token may list" "$CODE" 200
call POST "$REST/task/" -H "Authorization: Bearer readonly-token" --data-binary '{"name":"x"}'
check "readonly token write -> 405 code 5" "$CODE/$(jl d.code)/$(jl d.error)" "405/5/Scope denied, method not allowed"

# ------------------------------------------------------------- tasks
api GET /task/1
check "GET task without fields = {id,name}" "$(jl 'keys(d.task) .. "|" .. d.task.id .. "|" .. d.task.name')" "id,name|1|Prepare quarterly report"
api GET "/task/1?fields=id,name,status,project,101,102"
check "GET task with fields" "$(jl 'd.task.status.id .. "/" .. d.task.project.id .. "/" .. #d.task.customFieldData')" "2/1/2"
check "custom field value" "$(jl 'd.task.customFieldData[1].field.id .. "=" .. d.task.customFieldData[1].value')" "101=Q1"
api POST /task/ '{"name":"Sandbox task","description":"made by selftest","status":{"id":2}}'
check "create task -> 201" "$CODE" 201
NEW_ID="$(jl d.id)"
check "create task -> id" "$(jl 'd.result .. " " .. math.type(d.id)')" "success integer"
api GET "/task/$NEW_ID?fields=name,description,status"
check "created task readable" "$(jl 'd.task.name .. "|" .. d.task.description .. "|" .. d.task.status.name')" "Sandbox task|made by selftest|In progress"
api POST /task/ '{"description":"no name"}'
check "create without name -> 400 code 40" "$CODE/$(jl d.code)" "400/40"
api POST /task/ '{"name": broken'
check "invalid JSON -> 400 code 30" "$CODE/$(jl d.code)" "400/30"
api POST "/task/$NEW_ID?silent=true" '{"name":"Renamed"}'
check "update -> 200 success" "$CODE/$(jl 'd.result')/$(jl 'd.failures')" "200/success/nil"
ctl GET "/store/tasks/$NEW_ID"
check "silent=true recorded in history" "$(jl 'd.record._history[1].silent')" true
check "update applied" "$(jl 'd.record.name')" Renamed
api POST "/task/$NEW_ID" '{"name":"Again","bogusField":1,"customFieldData":[{"field":{"id":101},"value":"ok"},{"field":{"id":999},"value":1}]}'
check "partial update -> 200" "$CODE/$(jl d.result)" "200/success"
check "failures list" "$(jl '#d.failures .. ":" .. d.failures[1].field .. "," .. d.failures[2].field')" "2:bogusField,customFieldData.999"
api GET "/task/$NEW_ID?fields=name,101"
check "rest of partial update applied" "$(jl 'd.task.name .. "/" .. d.task.customFieldData[1].value')" "Again/ok"
ctl GET "/store/tasks/$NEW_ID"
check "non-silent update recorded" "$(jl 'd.record._history[2].silent')" false
ctl POST /config "{\"queue_updates\":[$NEW_ID]}"
api POST "/task/$NEW_ID" '{"name":"Queued"}'
check "queued update -> 202 success" "$CODE/$(jl d.result)" "202/success"
api GET "/task/$NEW_ID"
check "queued update applied" "$(jl d.task.name)" Queued
api GET /task/99999
check "missing task -> 404 code 1000" "$CODE/$(jl d.code)" "404/1000"
api POST /task/99999 '{"name":"x"}'
check "update missing task -> 404 code 1000" "$CODE/$(jl d.code)" "404/1000"
api GET /task/abc
check "non-numeric id -> 400 code 41" "$CODE/$(jl d.code)" "400/41"
api GET /no/such/thing
check "unknown path -> 404 code 0" "$CODE/$(jl d.code)" "404/0"
api POST /task '{"name":"x"}'
check "create without trailing slash -> 404" "$CODE" 404

# ------------------------------------------------------------- lists and paging
api POST /task/list '{"pageSize":101}'
check "pageSize 101 -> 400 code 41" "$CODE/$(jl d.code)" "400/41"
api POST /task/list '{"pageSize":0}'
check "pageSize 0 -> 400 code 41" "$CODE/$(jl d.code)" "400/41"
api POST /task/list '{"offset":-1}'
check "offset -1 -> 400 code 41" "$CODE/$(jl d.code)" "400/41"
ctl POST /data '{"tasks":250}'
check "POST /_sandbox/data" "$CODE" 200
SIZES=""
for off in 0 100 200 250; do
  api POST /task/list "{\"offset\":$off,\"pageSize\":100}"
  N="$(jl '#d.tasks')"
  SIZES+="$N,"
done
check "250 tasks page as 100,100,50,0" "$SIZES" "100,100,50,0,"
api POST /task/list '{"offset":200,"pageSize":100,"fields":"id,name"}'
check "page content and no total" "$(jl 'd.tasks[1].id .. "," .. d.tasks[50].name .. "," .. tostring(d.total)')" "201,Task 250,nil"
api POST /task/list '{}'
check "default pageSize 100" "$(jl '#d.tasks')" 100
ctl POST /data '{"tasks":0}'
api POST /task/list '{}'
check "0 tasks -> empty array" "$(jl 'd.tasks')" "{}"
check "empty list is [] on the wire" "$(cat "$WORK/body")" '{"result":"success","tasks":[]}'
ctl POST /data '{"tasks":101}'
api POST /task/list '{"offset":100}'
check "101 tasks: second page has 1" "$(jl '#d.tasks .. ":" .. d.tasks[1].id')" "1:101"
ctl POST /data '{"tasks":30}'
api POST /task/list '{"filters":[{"type":10,"operator":"equal","value":2}],"fields":"id,status"}'
check "filter type 10 (status)" "$(jl '#d.tasks .. ":" .. d.tasks[1].id .. ":" .. d.tasks[1].status.id')" "10:2:2"
api POST /task/list '{"filters":[{"type":8,"operator":"equal","value":"task 2"}]}'
check "filter type 8 (name contains)" "$(jl '#d.tasks')" 11
ctl POST /data '{"comments":101}'
api POST /task/1/comments/list '{"offset":100,"fields":"id,description"}'
check "comments paging" "$(jl '#d.comments .. ":" .. d.comments[1].description')" "1:Comment 101"
ctl POST /reset
api POST /task/1/comments/ '{"description":"hello"}'
check "add comment -> 201 id" "$CODE/$(jl 'math.type(d.id)')" "201/integer"
api POST /comment/list '{}'
check "comment/list without filters -> 400 code 0" "$CODE/$(jl d.code)" "400/0"
api GET "/task/templates?offset=0&pageSize=1"
check "templates paging in query" "$CODE/$(jl '#d.templates')" "200/1"
api POST /task/filters ''
check "task filters" "$(jl 'd.filters[1].id')" ":all"
api GET "/contact/contact:12?fields=name,lastname"
check "contact by prefixed id" "$(jl 'd.contact.id .. " " .. d.contact.name .. " " .. d.contact.lastname')" "12 Ivan Ivanov"
api GET "/user/user:1"
check "user by prefixed id" "$CODE/$(jl d.user.id)" "200/1"
api GET /process/task/1/statuses
check "process statuses" "$(jl '#d.statuses .. ":" .. d.statuses[1].name')" "5:New"
api POST /report/1/generate
check "report generate -> 201 requestId" "$CODE/$(jl 'type(d.requestId)')" "201/string"
RID="$(jl d.requestId)"
api GET "/report/status/$RID"; A="$(jl d.status)"; api GET "/report/status/$RID"
check "report status: in_progress then ready" "$A/$(jl 'd.status .. "/" .. d.save.chunksCount')" "in_progress/ready/1"

# ------------------------------------------------------------- custom fields, templates, directories
ctl POST /reset
api GET /customfield/type
check "customfield types 0..29 (no 18, 19)" "$(jl '#d.customFieldTypes .. ":" .. d.customFieldTypes[1].name .. ":" .. d.customFieldTypes[#d.customFieldTypes].id')" "28:Short text:29"
api GET "/customfield/task?fields=name,type"
check "task fields: README's and one per type" "$(jl '#d.customfields .. ":" .. d.customfields[6].name .. ":" .. tostring(d.customfields[6].enumValues)')" "36:Order number:nil"
api GET "/task/templates?fields=id,name,107"
check "template 100 has Region, 101 not" "$(jl '#d.templates[1].customFieldData .. "," .. #d.templates[2].customFieldData')" "1,0"
api POST /task/ '{"name":"Monthly","template":{"id":101}}'
TPL_TASK="$(jl d.id)"
api POST "/task/$TPL_TASK" '{"customFieldData":[{"field":{"id":106},"value":"ORD-7"},{"field":{"id":107},"value":"North"}]}'
check "field not on the template: 200, no failures" "$CODE/$(jl d.failures)" "200/nil"
api GET "/task/$TPL_TASK?fields=106,107"
check "... and only the attached field stored" "$(jl '#d.task.customFieldData .. ":" .. d.task.customFieldData[1].value')" "1:ORD-7"
ctl GET "/store/tasks/$TPL_TASK"
check "the no-op is noted in the history" "$(jl 'd.record._history[1].notes[1]')" "customFieldData.107: ignored, not on the template"
api POST /task/1 '{"customFieldData":[{"field":{"id":107},"value":"Northwest"},{"field":{"id":506},"value":{"durationSec":60}},{"field":{"id":503},"value":{"date":"11-10-2022"}}]}'
api GET "/task/1?fields=107,506,503"
check "list value stored as given, {durationSec} empty, date completed" "$(jl 'd.task.customFieldData[1].value .. "|" .. type(d.task.customFieldData[2].value) .. "|" .. d.task.customFieldData[3].value.datetime')" "Northwest|userdata|2022-10-11T00:00Z"
api POST /directory/3/entry/list '{"offset":100,"fields":"key,name"}'
check "Lead sources: 50 entries on page 2" "$(jl '#d.directoryEntries .. ":" .. d.directoryEntries[37].name')" "50:Website"
ctl POST /planfix/fields '{"task":[{"name":"Ticket","type":0}]}'
check "control: seed a field" "$CODE/$(jl 'math.type(d.ids.task[1])')" "200/integer"
ctl POST /planfix/fields '{"task":[{"name":"Bad","type":18}]}'
check "control: unknown type -> 400" "$CODE" 400
ctl GET /stats
check "stats count requests per operation" "$(jl 'd.rest_operations["GET /task/{id}"] .. "," .. d.rest_operations["POST /directory/{id}/entry/list"]')" "2,1"

# ------------------------------------------------------------- files
printf 'first line\nsecond \000 binary \377 end\n' >"$WORK/upload.bin"
SRC_SIZE="$(wc -c <"$WORK/upload.bin")"
call POST "$REST/file/?targetType=task" -H "Authorization: Bearer sandbox-token" -F "file=@$WORK/upload.bin;filename=report 1.bin"
check "upload -> 200 id" "$CODE/$(jl 'd.result')" "200/success"
FILE_ID="$(jl d.id)"
ctl GET "/store/files/$FILE_ID"
check "upload stored exact bytes" "$(jl '#d.record.content_base64 > 0 and d.record.name')" "report 1.bin"
api GET "/file/$FILE_ID?fields=id,name,size"
check "file info (size in KB, rounded up)" "$(jl 'd.file.name .. "/" .. d.file.size')" "report 1.bin/1"
api GET "/file/$FILE_ID/download"
check "download -> 302" "$CODE" 302
LOCATION="$(header Location)"
check_match "Location is absolute on same port" "$LOCATION" "^https://127\\.0\\.0\\.1:$PLANAPI_SANDBOX_HTTPS_PORT/files-download/[0-9a-f]+/report%201\\.bin$"
curl -sS --cacert "$CA" -o "$WORK/downloaded" "$LOCATION"
if cmp -s "$WORK/downloaded" "$WORK/upload.bin"; then ok "download returns the uploaded bytes ($SRC_SIZE)"; else not_ok "download returns the uploaded bytes"; fi
call GET "$HTTPS/files-download/0123456789abcdef/report.bin"
check "bad download token -> 403" "$CODE" 403
api POST "/file/$FILE_ID/attach/task?id=2"
check "attach to task" "$CODE" 200
api GET /task/2/files
check "task lists attached file" "$(jl 'd.files[1].id')" "$FILE_ID"
api DELETE "/file/$FILE_ID"
api GET "/file/$FILE_ID"
check "deleted file -> code 7000" "$(jl d.code)" 7000

# ------------------------------------------------------------- faults
ctl POST /reset
ctl POST /fault '{"mode":"status","status":503}'
api GET /ping
check "fault status -> 503 JSON" "$CODE/$(jl 'd.result .. d.code .. d.error')" "503/fail0Rest API error"
api GET /ping
check "fault used once (count 1)" "$CODE" 200
ctl POST /fault '{"mode":"status","status":500,"count":2,"path":"/task/list"}'
api GET /ping
check "fault with path skips other paths" "$CODE" 200
api POST /task/list '{}'
A="$CODE"; api POST /task/list '{}'; B="$CODE"; api POST /task/list '{}'
check "fault count 2 on matching path" "$A,$B,$CODE" "500,500,200"
ctl POST /fault '{"mode":"reset"}'
api GET /ping
check "fault reset -> connection closed (curl 52)" "$RC" 52
ctl POST /fault '{"mode":"slow","delay":1.2}'
T0="$(date +%s.%N)"; api GET /ping; T1="$(date +%s.%N)"
check "fault slow -> normal answer" "$CODE/$(jl d.result)" "200/success"
check "fault slow -> took >= delay" "$(lua5.4 -e "print(($T1 - $T0) >= 1.2)")" true
ctl POST /fault '{"mode":"slow","delay":1.5,"path":"/task/1"}'
curl -sS --cacert "$CA" -H "Authorization: Bearer sandbox-token" -o "$WORK/slow_body" "$REST/task/1" &
SLOW_PID=$!
sleep 0.2
T0="$(date +%s.%N)"; api GET /ping; T1="$(date +%s.%N)"
check "slow request does not block others" "$CODE/$(lua5.4 -e "print(($T1 - $T0) < 0.5)")" "200/true"
wait "$SLOW_PID"
check "slow request completes" "$(jl 'd.task.id' "$WORK/slow_body")" 1
ctl POST /fault '{"mode":"status","status":500,"method":"POST"}'
api GET /ping
A="$CODE"; api POST /task/list '{}'
check "fault with method skips other methods" "$A,$CODE" "200,500"
ctl POST /fault '{"mode":"status","method":"post"}'
check "fault method must be upper case" "$CODE" 400
ctl DELETE /log
ctl POST /fault '{"mode":"late","delay":1.5,"path":"/task/1"}'
# The delay is measured from before the request leaves, so a busy host that
# starts curl late cannot make the answer look early.
T0="$(date +%s.%N)"
curl -sS --cacert "$CA" -H "Authorization: Bearer sandbox-token" -o "$WORK/late_body" "$REST/task/1" &
LATE_PID=$!
sleep 0.4
ctl GET /log
check "late request carried out and logged before its answer" "$(jl 'd[1].path .. " " .. d[1].fault .. " " .. d[1].status')" "/task/1 late 200"
wait "$LATE_PID"; T1="$(date +%s.%N)"
check "late request answered after its delay" "$(lua5.4 -e "print(($T1 - $T0) >= 1.49)")/$(jl 'd.task.id' "$WORK/late_body")" "true/1"
ctl POST /fault '{"mode":"truncate"}'
api GET /ping
check "fault truncate -> curl 18 (partial)" "$RC" 18
ctl POST /fault '{"mode":"malformed"}'
api GET /ping
check "fault malformed -> 200 invalid JSON" "$CODE/$(jl d.result)" "200/INVALID_JSON"
check "fault malformed -> JSON content type" "$(header Content-Type)" "application/json; charset=utf-8"
ctl POST /fault '{"mode":"html"}'
api GET /ping
check "fault html -> 502 text/html" "$CODE/$(header Content-Type)" "502/text/html"
ctl POST /fault '{"mode":"echo","first":"Authorization","pad":3,"format":"text"}'
api GET /ping
check "fault echo -> 502, pad, the header first, then the request line" \
  "$CODE/$(head -c 38 "$WORK/body")/$(grep -c '^GET /rest/ping HTTP/1.1' "$WORK/body")" \
  "502/xxxAuthorization: Bearer sandbox-token/1"
ctl POST /fault '{"mode":"echo","escape":"url","format":"text"}'
api GET /ping
check_match "fault echo escape url -> percent-encoded" "$(cat "$WORK/body")" "Authorization%3A%20Bearer%20sandbox-token%0D%0A"
ctl POST /fault '{"mode":"echo","format":"json","status":401}'
api GET /ping
check_match "fault echo json -> the echo in error" "$CODE/$(jl d.error)" "^401/GET /rest/ping HTTP/1.1"
ctl POST /fault '{"mode":"echo","format":"yaml"}'
check "fault echo: unknown format refused" "$CODE" "400"
ctl POST /fault '{"mode":"oversize","size":3000000}'
api GET /ping
check "fault oversize -> exact size, valid JSON" "$CODE/$(wc -c <"$WORK/body")/$(jl d.result)" "200/3000000/success"
ctl POST /fault '{"mode":"code","code":3}'
api GET /ping
check "fault code -> 200 with fail code 3" "$CODE/$(jl 'd.result .. d.code')" "200/fail3"
ctl POST /fault '[{"mode":"status","status":502},{"mode":"code","code":22}]'
api GET /ping; A="$CODE"; api GET /ping
check "faults queue in order" "$A/$CODE/$(jl d.code)" "502/200/22"
ctl POST /fault '{"mode":"bogus"}'
check "unknown fault mode -> 400" "$CODE" 400

# ------------------------------------------------------------- rate and quota
ctl POST /reset
ctl POST /config '{"rate":{"enabled":true,"interval":1.0}}'
api GET /ping; A="$CODE"; api GET /ping
check "rate: second request within interval -> 429" "$A/$CODE" "200/429"
check "rate: 429 body" "$(jl 'd.result .. d.code .. d.error')" "fail0Too many requests"
check "rate: Retry-After" "$(header Retry-After)" 1
sleep 1.05
api GET /ping
check "rate: after interval accepted" "$CODE" 200
ctl GET /stats
check "stats rate_violations" "$(jl d.rate_violations)" 1
ctl POST /config '{"rate":{"enabled":false},"quota":{"limit":20000,"remaining":2}}'
api GET /ping; A="$CODE/$(header X-RateLimit-Remaining)"
api GET /ping; B="$CODE/$(header X-RateLimit-Remaining)"
api GET /ping
check "quota: remaining counts down" "$A,$B" "200/1,200/0"
check "quota: spent -> 403 code 22" "$CODE/$(jl d.code)/$(jl d.error)" "403/22/Daily request limit exceeded"
ctl POST /config '{"quota":{"status":429}}'
api GET /ping
check "quota: configurable status" "$CODE/$(jl d.code)" "429/22"
ctl GET /stats
# Since the reset: 3 rate + 4 quota requests; accepted (= quota used): 2 + 2.
check "stats requests/quota_used" "$(jl 'd.requests .. "/" .. d.quota_used')" "7/4"
ctl POST /reset
api GET /ping
check "reset turns quota off (no header)" "$CODE/$(header X-RateLimit-Remaining)" "200/"

# ------------------------------------------------------------- log and recorder
ctl POST /reset
api POST "/task/list?x=1&x=2&flag" '{"pageSize":5,"filters":[]}'
call PATCH "$HTTPS/record/some/op/42?a=b" -H "X-Custom: yes" --data-binary 'not json'
check "record endpoint answers success" "$CODE/$(jl d.result)" "200/success"
ctl GET /log
check "log has 2 entries" "$(jl '#d')" 2
check "log rest entry" "$(jl 'd[1].method .. " " .. d[1].path .. " " .. d[1].uri .. " " .. d[1].status')" "POST /task/list /rest/task/list?x=1&x=2&flag 200"
check "log query (repeated -> array)" "$(jl 'd[1].query.x')" '["1","2"]'
check "log headers lowercased" "$(jl 'd[1].headers.authorization')" "Bearer sandbox-token"
check "log json body" "$(jl 'd[1].json.pageSize .. "/" .. d[1].body')" '5/{"pageSize":5,"filters":[]}'
check "log record entry" "$(jl 'd[2].method .. " " .. d[2].path .. " " .. d[2].headers["x-custom"] .. " " .. tostring(d[2].json == null) .. " " .. d[2].body')" "PATCH /some/op/42 yes true not json"
check "log time" "$(jl 'type(d[1].time)')" number
ctl DELETE /log
ctl GET /log
check "DELETE /_sandbox/log clears" "$(cat "$WORK/body")" "[]"
fi # REST checks

# ------------------------------------------------------------- Planfix XML API
[[ -z "${SELFTEST_ONLY:-}" || "${SELFTEST_ONLY:-}" == xml ]] && xml_main

# ------------------------------------------------------------- Planado API v2
[[ -z "${SELFTEST_ONLY:-}" || "${SELFTEST_ONLY:-}" == planado ]] && planado_main

# ------------------------------------------------------------- Planfix scenario requests
[[ -z "${SELFTEST_ONLY:-}" || "${SELFTEST_ONLY:-}" == scenarios ]] && scenarios_main

# ------------------------------------------------------------- server health
ERRS="$(grep -c -E '\[(error|crit|alert|emerg)\]' "$PLANAPI_SANDBOX_DIR/error.log")"
check "no errors in nginx error.log" "$ERRS" 0
[[ "$ERRS" == 0 ]] || grep -E '\[(error|crit|alert|emerg)\]' "$PLANAPI_SANDBOX_DIR/error.log" | tail -n 10

# ------------------------------------------------------------- stop
"$RUN" stop >/dev/null 2>&1
check "stop exits 0" "$?" 0
"$RUN" status >/dev/null 2>&1
check "status after stop is non-zero" "$?" 3
"$RUN" stop >/dev/null 2>&1
check "stop when not running is safe" "$?" 0
if [[ -e "$PLANAPI_SANDBOX_DIR/env.lua" ]]; then not_ok "stop removes env.lua"; else ok "stop removes env.lua"; fi

}

main
echo "$PASS passed, $FAIL failed"
[[ $FAIL == 0 ]]
