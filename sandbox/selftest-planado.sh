#!/usr/bin/env bash
# Self-test of the Planado API v2 emulation (/planado/v2/) and its webhook
# sender.
#
# Sourced by selftest.sh, which runs planado_main against its instance after the
# REST and XML checks and counts the results with them. Run directly, it runs
# only these checks (selftest.sh with SELFTEST_ONLY=planado): it starts a private
# instance, stops it, and ends with "N passed, N failed".
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  SELFTEST_ONLY=planado exec bash "$(cd "$(dirname "$0")" && pwd)/selftest.sh" "$@"
fi

# pjl EXPR [FILE]: like jl (selftest.sh), plus dec(s): a JSON string decoded
# (numbers normalised the same way), has(list, v), map(list, fn) (comma-joined)
# and where(list, key, value) (the items whose key equals value).
pjl() {
  EXPR="$1" FILE="${2:-$WORK/body}" lua5.4 -e '
        local cjson = require("cjson")
        local f = assert(io.open(os.getenv("FILE"), "rb"))
        local text = f:read("a"); f:close()
        local function norm(v)
            if type(v) == "number" then return math.tointeger(v) or v end
            if type(v) == "table" then for k, x in pairs(v) do v[k] = norm(x) end end
            return v
        end
        local okd, d = pcall(cjson.decode, text)
        if not okd then io.write("INVALID_JSON") return end
        d = norm(d)
        local function keys(t)
            local ks = {}
            for k in pairs(t) do ks[#ks + 1] = tostring(k) end
            table.sort(ks)
            return table.concat(ks, ",")
        end
        local function dec(s) return norm(cjson.decode(s)) end
        local function has(list, v)
            for _, x in ipairs(list or {}) do if x == v then return true end end
            return false
        end
        local function map(list, fn)
            local out = {}
            for i, x in ipairs(list or {}) do out[i] = tostring(fn(x)) end
            return table.concat(out, ",")
        end
        local function where(list, k, v)
            local out = {}
            for _, x in ipairs(list or {}) do if x[k] == v then out[#out + 1] = x end end
            return out
        end
        local env = setmetatable({ d = d, null = cjson.null, keys = keys, dec = dec, has = has, map = map, where = where },
            { __index = _G })
        -- An expression, or a chunk with its own "return" (e.g. "local x = … return …").
        local fn = load("return " .. os.getenv("EXPR"), "expr", "t", env)
            or assert(load(os.getenv("EXPR"), "expr", "t", env))
        local okv, v = pcall(fn)
        if not okv then io.write("ERROR: " .. tostring(v)) return end
        if type(v) == "table" then v = cjson.encode(v) end
        io.write(tostring(v))
    ' 2>&1
}

# papi METHOD PATH [JSON] [curl args...]: a Planado call with the Bearer key.
papi() {
  local method="$1" path="$2" data="${3:-}"; shift 3 2>/dev/null || shift $#
  if [[ -n "$data" ]]; then
    call "$method" "$PL$path" -H "Authorization: Bearer sandbox-planado-key" \
      -H "Content-Type: application/json" --data-binary "$data" "$@"
  else
    call "$method" "$PL$path" -H "Authorization: Bearer sandbox-planado-key" "$@"
  fi
}
# uid KIND N: the sandbox's deterministic uuid (kind 1 job, 2 client, 3 site, 5 template,
# 7 user, 8 skill, 11 webhook, 12 event, 15 resolution, 16 custom field).
uid() { printf '%08x-0000-4000-8000-%012x' "$1" "$2"; }
# perr: "status|first error message" of the last answer.
perr() { echo "$CODE|$(pjl 'd.errors[1].message')"; }
flush() { ctl POST /planado/webhooks/flush "${1:-}"; }
# receiver: the test receiver's recorded requests into $WORK/recv.
receiver() { call GET "$CTL/planado/receiver${1:-}"; cp "$WORK/body" "$WORK/recv"; }
deliveries() { call GET "$CTL/planado/deliveries${1:-}"; cp "$WORK/body" "$WORK/deliv"; }

planado_main() {
PL="$HTTPS/planado/v2"
RECV="$PLANAPI_SANDBOX_PLANADO_RECEIVER_URL"
J1="$(uid 1 1)"; J2="$(uid 1 2)"; J3="$(uid 1 3)"; J4="$(uid 1 4)"
C1="$(uid 2 1)"; C2="$(uid 2 2)"; S1="$(uid 3 1)"
U1="$(uid 7 1)"; U2="$(uid 7 2)"; U3="$(uid 7 3)"
CF1="$(uid 16 1)"; CF2="$(uid 16 2)"; RF1="$(uid 16 3)"

# ------------------------------------------------------------- env
check "planado: env planado_url" "$PLANAPI_SANDBOX_PLANADO_URL" "$HTTPS/planado/v2/"
check "planado: env.lua urls" "$(E="$PLANAPI_SANDBOX_DIR/env.lua" lua5.4 -e 'local e = dofile(os.getenv("E")) io.write(e.planado_url, " ", e.planado_receiver_url)')" \
  "$HTTPS/planado/v2/ http://127.0.0.1:$PLANAPI_SANDBOX_HTTP_PORT/_sandbox/planado/test-receiver"

# ------------------------------------------------------------- auth
ctl POST /reset
papi GET /jobs
check "planado: Bearer -> 200" "$CODE" 200
check "planado: JSON content type" "$(header Content-Type)" "application/json; charset=utf-8"
call GET "$PL/jobs" -H "X-Planado-API-Key: sandbox-planado-key"
check "planado: legacy X-Planado-API-Key -> 200" "$CODE/$(pjl '#d.jobs')" "200/3"
call GET "$PL/jobs"
check "planado: no key -> 401 JSON errors" "$(perr)" "401|API key is missing"
check "planado: 401 is JSON" "$(header Content-Type)" "application/json; charset=utf-8"
call GET "$PL/jobs" -H "Authorization: Bearer wrong"
check "planado: wrong Bearer -> 401" "$(perr)" "401|Invalid API key"
call GET "$PL/jobs" -H "X-Planado-API-Key: wrong"
check "planado: wrong legacy key -> 401" "$CODE" 401
call GET "$PL/jobs" -H "Authorization: Bearer wrong" -H "X-Planado-API-Key: sandbox-planado-key"
check "planado: Authorization wins over the legacy header" "$CODE" 401
call GET "$PL/jobs" -H "Authorization: sandbox-planado-key"
check "planado: key without Bearer -> 401" "$CODE" 401
ctl POST /config '{"planado":{"legacy_header":false}}'
call GET "$PL/jobs" -H "X-Planado-API-Key: sandbox-planado-key"
check "planado: legacy_header false -> 401" "$CODE" 401
ctl POST /config '{"planado":{"legacy_header":true,"api_key":"other-key"}}'
call GET "$PL/jobs" -H "Authorization: Bearer other-key"
check "planado: configured api_key" "$CODE" 200
ctl POST /config '{"planado":{"bogus":1}}'
check "planado: unknown config key -> 400" "$CODE" 400
ctl POST /reset
papi GET /nope
check "planado: unknown path -> 404 JSON" "$CODE/$(pjl 'type(d.errors[1].message)')" "404/string"
papi GET /jobs/
check "planado: trailing slash -> 404" "$CODE" 404
call GET "$HTTPS/planado/v1/jobs" -H "Authorization: Bearer sandbox-planado-key"
check "planado: other version -> 404" "$CODE" 404
papi PUT /jobs "{}"
check "planado: wrong method -> 404" "$CODE" 404
CODE="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer sandbox-planado-key" \
    "http://127.0.0.1:$PLANAPI_SANDBOX_HTTP_PORT/planado/v2/jobs")"
check "planado: plain http port serves it" "$CODE" 200

# ------------------------------------------------------------- jobs: read
ctl POST /reset
papi GET /jobs
check "jobs: seeded list newest first" "$(pjl 'map(d.jobs, function(j) return j.serial_no end)')" "3,2,1"
check "jobs: seeded uuids" "$(pjl 'd.jobs[1].uuid .. " " .. d.jobs[3].uuid')" "$J3 $J1"
check "jobs: compact keys (no address)" "$(pjl 'keys(d.jobs[2])')" \
  "assignee,assignees,client_uuid,completion_of_uuid,contacts,created_at,external_id,external_order_id,initial_job_uuid,resolution,scheduled_at,scheduled_duration,serial_no,site_uuid,skill_uuids,status,template_uuid,territory_uuid,type_uuid,updated_at,uuid,version"
check "jobs: compact refs" "$(pjl 'd.jobs[2].template_uuid .. "|" .. d.jobs[2].site_uuid .. "|" .. d.jobs[2].assignee.worker_uuid .. "|" .. d.jobs[2].skill_uuids[1] .. "|" .. d.jobs[2].status')" \
  "$(uid 5 1)|$S1|$U2|$(uid 8 1)|scheduled"
papi GET "/jobs/$J2"
check "jobs: full keys" "$(pjl 'keys(d.job)')" \
  "address,assignee,assignees,client,contacts,created_at,custom_fields,description,external_id,external_order_id,possible_resolutions,report_fields,resolution,scheduled_at,scheduled_duration,serial_no,site,skills,status,template,territory,timestamps,type,updated_at,uuid,version"
check "jobs: full refs" "$(pjl 'd.job.template.name .. "|" .. d.job.type.code .. "|" .. d.job.client.external_id .. "|" .. d.job.site.external_id .. "|" .. d.job.assignee.worker.email .. "|" .. d.job.territory.name .. "|" .. d.job.scheduled_duration.minutes')" \
  "Installation|installation|acme|acme-hq|ivan.worker@sandbox.test|North|120"
check "jobs: ISO times with ms and Z" "$(pjl 'd.job.scheduled_at .. " " .. d.job.created_at')" "2024-01-02T09:00:00.000Z 2024-01-01T10:21:00.000Z"
check "jobs: null keys are present" "$(pjl 'tostring(d.job.resolution == null) .. tostring(d.job.timestamps.started_at == null)')" "truetrue"
papi GET /jobs/job-ext-1
check "jobs: GET by external_id" "$(pjl 'd.job.uuid .. "|" .. d.job.status')" "$J1|posted"
papi GET "/jobs/$J3"
check "jobs: finished job has a resolution" "$(pjl 'd.job.resolution.name .. "|" .. d.job.timestamps.finished_at')" "Done|2024-01-03T10:50:00.000Z"
papi GET "/jobs/$(uid 1 999)"
check "jobs: unknown uuid -> 404" "$(perr)" "404|Job not found"

# ------------------------------------------------------------- jobs: create
papi POST /jobs ""
check "jobs: POST {} -> 201 job_uuid" "$CODE/$(pjl 'd.job_uuid')" "201/$J4"
papi GET "/jobs/$J4"
check "jobs: new job defaults" "$(pjl 'd.job.status .. "|" .. d.job.version .. "|" .. tostring(d.job.description == null) .. "|" .. d.job.serial_no .. "|" .. d.job.type.code .. "|" .. #d.job.possible_resolutions')" "posted|1|true|4|default|2"
papi POST /jobs '{"description":"typo","type_uuid":"x","bogus":{"a":1}}'
check "jobs: unknown keys silently ignored" "$CODE" 201
NEWJ="$(pjl d.job_uuid)"
ctl GET /log
check "jobs: log lists ignored keys" "$(pjl 'table.concat(d[#d].changes.ignored, ",") .. "|" .. table.concat(d[#d].changes.set, ",")')" "bogus,type_uuid|description"
papi POST /jobs '{"template":{"name":"Repair"},"external_id":"ext-tpl"}'
papi GET /jobs/ext-tpl
check "jobs: template defaults (type, description, duration)" "$(pjl 'd.job.template.name .. "|" .. d.job.type.code .. "|" .. d.job.description .. "|" .. d.job.scheduled_duration.minutes')" "Repair|repair|Diagnose and repair|60"
papi POST /jobs "{\"scheduled_at\":\"2026-03-01T09:00:00+03:00\",\"assignee\":{\"worker\":{\"uuid\":\"$U3\"}},\"scheduled_duration\":{\"hours\":1,\"minutes\":30}}"
papi GET "/jobs/$(pjl d.job_uuid)"
check "jobs: scheduled_at + assignee -> scheduled, time normalised" "$(pjl 'd.job.status .. "|" .. d.job.scheduled_at .. "|" .. d.job.scheduled_duration.minutes .. "|" .. d.job.assignees[1].uuid .. "/" .. d.job.assignees[1].access')" \
  "scheduled|2026-03-01T06:00:00.000Z|90|$U3/edit"
papi POST /jobs '{"external_id":null}'
check "jobs: create with external_id null -> 422" "$(perr)" "422|external_id: must not be null"
papi POST /jobs '{"external_id":"job-ext-1"}'
check "jobs: duplicate external_id -> 422" "$(perr)" "422|external_id: has already been taken"
papi POST /jobs '{"assignees":null}'
check "jobs: create with assignees null -> 422" "$CODE" 422
papi POST /jobs '{"possible_resolutions":[{"name":"Fine","successful":true}]}'
check "jobs: resolutions need a failure too -> 422" "$CODE" 422
papi POST /jobs "{\"assignees\":[{\"uuid\":\"$U2\",\"access\":\"edit\"},{\"uuid\":\"$U3\",\"access\":\"edit\"}]}"
check "jobs: two edit assignees -> 422" "$(perr)" "422|assignees: exactly one assignee must have edit access"
papi POST /jobs "{\"client\":{\"uuid\":\"$(uid 2 999)\"}}"
check "jobs: unknown client uuid -> 422" "$CODE" 422
papi POST /jobs '{"scheduled_at":"tomorrow"}'
check "jobs: bad datetime -> 422" "$CODE" 422
papi POST /jobs '{"description":'
check "jobs: invalid JSON -> 400" "$CODE/$(pjl 'type(d.errors[1].message)')" "400/string"
papi POST /jobs '[1,2]'
check "jobs: array body -> 400" "$CODE" 400
papi POST /jobs '[]'
check "jobs: empty array body -> 400" "$CODE" 400
papi POST /jobs '{"client":{"organization":true,"organization_name":"Nested Org","external_id":"nested-org"}}'
JN="$(pjl d.job_uuid)"
papi GET /clients/nested-org
check "jobs: a new-client object creates the client" "$CODE/$(pjl 'd.client.name')" "200/Nested Org"
CN="$(pjl d.client.uuid)"
papi GET "/jobs/$JN"
check "jobs: ... and links it" "$(pjl 'd.job.client.uuid')" "$CN"

# ------------------------------------------------------------- jobs: missing key vs null
ctl POST /reset
papi POST /jobs "{\"external_id\":\"tri\",\"description\":\"d1\",\"external_order_id\":\"o1\",\"scheduled_at\":\"2026-01-01T10:00:00Z\",\"assignee\":{\"worker\":{\"uuid\":\"$U2\"}},\"contacts\":[{\"name\":\"Bob\",\"value\":\"+1555\",\"type\":\"phone\"}],\"address\":{\"formatted\":\"1 Road\",\"floor\":\"2\",\"apartment\":\"12\"},\"custom_fields\":[{\"uuid\":\"$CF1\",\"value\":\"SN-1\"}]}"
JT="$(pjl d.job_uuid)"
check "tri: created" "$CODE" 201
papi PATCH /jobs/tri '{"description":null}'
check "tri: PATCH -> 200 job_uuid" "$CODE/$(pjl d.job_uuid)" "200/$JT"
papi GET "/jobs/$JT"
check "tri: null clears description" "$(pjl 'tostring(d.job.description == null)')" true
check "tri: absent keys unchanged" "$(pjl 'd.job.external_order_id .. "|" .. d.job.scheduled_at .. "|" .. d.job.contacts[1].name .. "|" .. d.job.address.formatted .. "|" .. d.job.custom_fields[1].value .. "|" .. d.job.assignee.worker.uuid')" \
  "o1|2026-01-01T10:00:00.000Z|Bob|1 Road|SN-1|$U2"
check "tri: version 2" "$(pjl 'd.job.version .. "|" .. d.job.status')" "2|scheduled"
ctl GET /log
check "tri: log entry set/nulled" "$(pjl 'local e = d[#d - 1] return e.kind .. "|" .. e.method .. "|" .. table.concat(e.changes.set, ",") .. "|" .. table.concat(e.changes.nulled, ",") .. "|" .. e.entity.version .. "|" .. e.entity.uuid')" "planado|PATCH||description|2|$JT"
check "tri: log entry absent keys" "$(pjl 'local a = d[#d - 1].changes.absent return tostring(has(a, "external_order_id") and has(a, "address") and not has(a, "description") and not has(a, "template"))')" true
ctl GET "/store/planado_jobs/$JT"
check "tri: store _history records it" "$(pjl 'd.record.version .. "|" .. #d.record._history .. "|" .. d.record._history[2].action .. "|" .. table.concat(d.record._history[2].nulled, ",") .. "|" .. tostring(has(d.record._history[2].absent, "contacts"))')" \
  "2|2|update|description|true"
papi PATCH "/jobs/$JT" '{"address":{"floor":null,"entrance_no":"B"}}'
papi GET "/jobs/$JT"
check "tri: nested address merge" "$(pjl 'tostring(d.job.address.floor == null) .. "|" .. d.job.address.apartment .. "|" .. d.job.address.formatted .. "|" .. d.job.address.entrance_no')" "true|12|1 Road|B"
ctl GET /log
check "tri: nested paths in the log" "$(pjl 'table.concat(d[#d - 1].changes.set, ",") .. "|" .. table.concat(d[#d - 1].changes.nulled, ",")')" "address,address.entrance_no|address.floor"
papi PATCH "/jobs/$JT" '{"scheduled_at":null}'
papi GET "/jobs/$JT"
check "tri: clearing scheduled_at -> posted" "$(pjl 'tostring(d.job.scheduled_at == null) .. "|" .. d.job.status .. "|" .. d.job.version')" "true|posted|4"
for k in assignees possible_resolutions address contacts skills custom_fields report_fields template; do
  papi PATCH "/jobs/$JT" "{\"$k\":null}"
  check "tri: $k null -> 422" "$(perr)" "422|$k: must not be null"
done
papi PATCH "/jobs/$JT" '{"description":"no","contacts":null}'
papi GET "/jobs/$JT"
check "tri: a refused PATCH changes nothing" "$(pjl 'd.job.version .. "|" .. tostring(d.job.description == null)')" "4|true"
for k in external_order_id scheduled_duration assignee client site territory; do
  papi PATCH "/jobs/$JT" "{\"$k\":null}"
  check "tri: nullable $k null -> 200" "$CODE" 200
done
papi GET "/jobs/$JT"
check "tri: nullables cleared" "$(pjl 'tostring(d.job.external_order_id == null and d.job.assignee == null and #d.job.assignees == 0)')" true
V="$(pjl d.job.version)"
papi PATCH "/jobs/$JT" '{"client_uuid":"x","type_uuid":"y","job_type":{"code":"repair"}}'
papi GET "/jobs/$JT"
check "tri: only unknown/create-only keys: 200, no new version" "$CODE/$(pjl d.job.version)/$(pjl d.job.type.code)" "200/$V/default"
ctl GET /log
check "tri: ... logged as ignored" "$(pjl 'table.concat(d[#d - 1].changes.ignored, ",")')" "client_uuid,job_type,type_uuid"
papi PATCH "/jobs/$JT" "{\"custom_fields\":[{\"uuid\":\"$CF2\",\"value\":\"x\"}]}"
check "tri: custom field type check -> 422" "$CODE" 422
papi PATCH "/jobs/$JT" "{\"custom_fields\":[{\"uuid\":\"$CF2\",\"value\":7}],\"report_fields\":[{\"uuid\":\"$RF1\",\"value\":true}]}"
papi GET "/jobs/$JT"
check "tri: custom/report field values" "$(pjl 'd.job.custom_fields[1].value .. "|" .. d.job.custom_fields[2].value .. "|" .. tostring(d.job.report_fields[1].value)')" "SN-1|7|true"
papi PATCH "/jobs/$JT" '{"description":"quiet"}' -H "X-Planado-Notify-Assignees: false"
ctl GET /log
check "tri: X-Planado-Notify-Assignees recorded" "$(pjl 'd[#d].notify_assignees .. "|" .. d[#d].headers["x-planado-notify-assignees"]')" "false|false"
ctl GET "/store/planado_jobs/$JT"
check "tri: ... and in the history" "$(pjl 'd.record._history[#d.record._history].notify_assignees')" false
papi PATCH "/jobs/$(uid 1 999)" '{"description":"x"}'
check "tri: PATCH unknown job -> 404" "$CODE" 404
ctl POST "/planado/jobs/$JT/start"
check "tri: control start" "$CODE/$(pjl d.job.status)" "200/started"
papi PATCH "/jobs/$JT" "{\"assignee\":{\"worker\":{\"uuid\":\"$U3\"}}}"
check "tri: assignee after start -> 422" "$(perr)" "422|assignee: cannot be changed once the job has started"
papi PATCH "/jobs/$JT" '{"description":"still editable"}'
check "tri: other keys after start -> 200" "$CODE" 200

# ------------------------------------------------------------- jobs: delete
papi DELETE "/jobs/$J2"
check "delete: 200 job_uuid" "$CODE/$(pjl d.job_uuid)" "200/$J2"
papi GET "/jobs/$J2"
check "delete: then 404" "$CODE" 404
papi DELETE "/jobs/$J2"
check "delete: again 404" "$CODE" 404
papi DELETE /jobs/job-ext-1
check "delete: by external_id -> 404 (uuid only)" "$CODE" 404
papi GET "/jobs?after=$J2"
check "delete: after=<deleted uuid> still pages" "$CODE/$(pjl 'map(d.jobs, function(j) return j.serial_no end)')" "200/1"
papi GET "/jobs?after=$(uid 1 999)"
check "paging: unknown after -> 422" "$CODE" 422
ctl GET "/planado/events?entity_uuid=$J2"
check "delete: job_deleted event (version +1, previous_job)" "$(pjl 'local e = d.events[#d.events] return e.event_type .. "|" .. e.version .. "|" .. e.body.job.version .. "|" .. e.body.previous_job.version')" "job_deleted|2|2|1"
ctl GET "/store/planado_tombstones/$J2"
check "delete: tombstone keeps the record" "$(pjl 'd.record.record.uuid .. "|" .. d.record.record._history[#d.record.record._history].action')" "$J2|delete"

# ------------------------------------------------------------- jobs: history
ctl POST /reset
papi POST /jobs '{"description":"v1"}'
JH="$(pjl d.job_uuid)"
for i in $(seq 2 26); do papi PATCH "/jobs/$JH" "{\"description\":\"v$i\"}"; done
papi GET "/jobs/$JH/history"
check "history: first chunk of 20, oldest first" "$(pjl '#d.events .. "|" .. d.events[1].version .. "|" .. d.events[20].version .. "|" .. d.events[1].type .. "|" .. d.events[2].type')" "20|1|20|job_created|job_updated"
check "history: event keys" "$(pjl 'keys(d.events[2]) .. "|" .. d.events[2].payload.description .. "|" .. d.events[2].context.source')" "context,payload,type,uuid,version|v2|api"
papi GET "/jobs/$JH/history?after=20"
check "history: after=20" "$(pjl '#d.events .. "|" .. d.events[1].version .. "|" .. d.events[6].version')" "6|21|26"
papi GET "/jobs/$JH/history?after=26"
check "history: after the last -> []" "$(cat "$WORK/body")" '{"events":[]}'
papi GET "/jobs/$JH/history?after=x"
check "history: bad after -> 422" "$CODE" 422
papi GET "/jobs/$J1/history"
check "history: seeded job has its creation" "$(pjl '#d.events .. "|" .. d.events[1].type .. "|" .. d.events[1].context.source')" "1|job_created|web"

# ------------------------------------------------------------- clients and sites
ctl POST /reset
papi GET /clients
check "clients: seeded, newest first" "$(pjl 'map(d.clients, function(c) return c.name end)')" "Petrov Ivan,Acme LLC"
papi GET /clients/acme
check "clients: GET by external_id" "$(pjl 'd.client.uuid .. "|" .. tostring(d.client.organization) .. "|" .. d.client.version')" "$C1|true|1"
check "clients: keys" "$(pjl 'keys(d.client)')" "contacts,created_at,external_id,first_name,last_name,middle_name,name,organization,organization_name,site_address,updated_at,uuid,version"
papi POST /clients '{"first_name":"Anna","external_id":"anna"}'
check "clients: POST -> 201 client_uuid" "$CODE/$(pjl d.client_uuid)" "201/$(uid 2 3)"
papi POST /clients '{"organization":true}'
check "clients: organization without name -> 422" "$CODE" 422
papi POST /clients '{"organization":false}'
check "clients: person without names -> 422" "$CODE" 422
papi PATCH /clients/upsert-1 '{"organization":true,"organization_name":"Upsert Org"}'
check "clients: PATCH unknown external_id creates -> 201" "$CODE/$(pjl d.client_uuid)" "201/$(uid 2 4)"
papi PATCH /clients/upsert-1 '{"organization_name":"Upsert Org 2"}'
check "clients: PATCH it again -> 200" "$CODE/$(pjl d.client_uuid)" "200/$(uid 2 4)"
papi GET /clients/upsert-1
check "clients: upserted record" "$(pjl 'd.client.external_id .. "|" .. d.client.name .. "|" .. d.client.version')" "upsert-1|Upsert Org 2|2"
papi PATCH /clients/upsert-2 '{"first_name":null}'
check "clients: upsert that cannot create -> 422" "$CODE" 422
papi PATCH "/clients/$(uid 2 999)" '{"first_name":"x"}'
check "clients: PATCH unknown uuid -> 404" "$CODE" 404
papi PATCH /clients/acme '{"organization":false}'
check "clients: organization cannot change -> 422" "$CODE" 422
papi PATCH /clients/anna '{"last_name":"Smith","site_address":{"formatted":"5 Lane"}}'
papi PATCH /clients/anna '{"first_name":null}'
papi GET /clients/anna
check "clients: null clears, absent stays" "$(pjl 'tostring(d.client.first_name == null) .. "|" .. d.client.last_name .. "|" .. d.client.site_address.formatted .. "|" .. d.client.name .. "|" .. d.client.version')" "true|Smith|5 Lane|Smith|3"
papi PATCH /clients/anna '{"contacts":null}'
check "clients: contacts null -> 422" "$CODE" 422
papi GET /sites/acme-hq
check "sites: seeded" "$(pjl 'd.site.uuid .. "|" .. d.site.name .. "|" .. d.site.client.uuid .. "|" .. d.site.address.geolocation.latitude')" "$S1|Acme HQ|$C1|55.75"
papi POST /sites '{"description":"no name"}'
check "sites: POST without name -> 422" "$(perr)" "422|name: is required"
papi POST /sites "{\"name\":\"Warehouse\",\"client\":{\"uuid\":\"$C2\"},\"address\":{\"formatted\":\"9 Dock\"}}"
check "sites: POST -> 201 site_uuid" "$CODE/$(pjl d.site_uuid)" "201/$(uid 3 2)"
papi PATCH /sites/site-up '{"name":"Upserted site"}'
check "sites: PATCH unknown external_id creates -> 201" "$CODE/$(pjl d.site_uuid)" "201/$(uid 3 3)"
papi PATCH /sites/site-up '{"description":"now described"}'
check "sites: PATCH again -> 200" "$CODE" 200
papi PATCH /sites/site-up2 '{"description":"no name"}'
check "sites: upsert without name -> 422" "$CODE" 422
papi PATCH /sites/acme-hq '{"name":null}'
check "sites: name null -> 422" "$CODE" 422
papi GET /sites
check "sites: list newest first" "$(pjl 'map(d.sites, function(s) return s.name end)')" "Upserted site,Warehouse,Acme HQ"

# ------------------------------------------------------------- reference lists
papi GET /job_types
check "job_types" "$(pjl 'map(d.job_types, function(t) return t.code end)')" "default,installation,repair"
papi GET /templates
check "templates: oldest first" "$(pjl 'map(d.templates, function(t) return t.name end)')" "Installation,Repair,Inspection"
check "templates: keys" "$(pjl 'keys(d.templates[1])')" "assignee,created_at,description,name,scheduled_duration,type_uuid,updated_at,uuid"
papi GET "/templates/$(uid 5 2)"
check "templates: GET one" "$(pjl 'd.template.name')" Repair
papi GET /teams
check "teams" "$(pjl 'map(d.teams, function(t) return t.name end) .. "|" .. d.teams[1].territory.name .. "|" .. tostring(d.teams[2].territory == null)')" "Field team North,Night shift|North|true"
papi GET /users
check "users" "$(pjl 'map(d.users, function(u) return u.email end)')" "admin@sandbox.test,ivan.worker@sandbox.test,olga.field@sandbox.test"
papi POST /users '{"first_name":"X","last_name":"Y","email":"x@y.z","password":"p"}'
check "users: POST is restricted -> 403" "$CODE" 403
papi GET /skills
check "skills: page of 20" "$(pjl '#d.skills .. "|" .. d.skills[1].name .. "|" .. d.skills[20].uuid')" "20|Skill 01|$(uid 8 20)"
papi GET "/skills?after=$(uid 8 20)"
check "skills: second page" "$(pjl '#d.skills .. "|" .. d.skills[5].name')" "5|Skill 25"
papi GET "/skills?after=$(uid 8 25)"
check "skills: then []" "$(cat "$WORK/body")" '{"skills":[]}'
papi GET /catalog/services
check "services" "$(pjl '#d.services .. "|" .. d.services[1].currency .. "|" .. d.services[1].price_default')" "2|rub|1500"
papi POST /catalog/services '{"name":"Cable laying","category":{"name":"Networking"},"price_default":99.5}'
check "services: POST -> 201 service_uuid" "$CODE/$(pjl 'type(d.service_uuid)')" "201/string"
papi POST /catalog/services '{"description":"no name"}'
check "services: POST without name -> 422" "$CODE" 422
papi POST /catalog/products '{"name":"Cable"}'
check "products: POST without unit -> 422" "$CODE" 422
papi POST /catalog/products '{"name":"Cable","unit":{"name":"m"},"price_default":2}'
check "products: POST -> 201 product_uuid" "$CODE/$(pjl 'type(d.product_uuid)')" "201/string"
papi GET /catalog/products
check "products: list" "$(pjl 'map(d.products, function(p) return p.name end) .. "|" .. d.products[1].unit_uuid')" "Router,Cable|$(uid 19 1)"
ctl POST /config '{"planado":{"print":{"max_running":2,"duration":60}}}'
papi POST /print/requests "{\"job\":{\"uuid\":\"$J1\"},\"print_template\":{\"uuid\":\"$(uid 20 1)\"}}"
check "print: POST -> 201 uuid" "$CODE/$(pjl 'type(d.uuid)')" "201/string"
papi POST /print/requests "{\"job\":{\"uuid\":\"$J1\"},\"print_template\":{\"uuid\":\"$(uid 20 1)\"}}"
papi POST /print/requests "{\"job\":{\"uuid\":\"$J1\"},\"print_template\":{\"uuid\":\"$(uid 20 1)\"}}"
check "print: over max_running -> 429" "$CODE" 429
papi POST /print/requests "{\"job\":{\"uuid\":\"$(uid 1 999)\"},\"print_template\":{\"uuid\":\"x\"}}"
check "print: unknown job -> 422" "$CODE" 422

# ------------------------------------------------------------- paging
ctl POST /reset
ctl POST /data '{"planado_jobs":0}'
papi GET /jobs
check "paging: 0 jobs -> []" "$(cat "$WORK/body")" '{"jobs":[]}'
ctl POST /data '{"planado_jobs":1}'
papi GET /jobs
check "paging: 1 job" "$(pjl '#d.jobs .. "|" .. d.jobs[1].uuid')" "1|$J1"
papi GET "/jobs?after=$J1"
check "paging: after the only one -> []" "$(pjl '#d.jobs')" 0
ctl POST /data '{"planado_jobs":50}'
papi GET /jobs
check "paging: one full page (50)" "$(pjl '#d.jobs .. "|" .. d.jobs[1].serial_no .. "|" .. d.jobs[50].serial_no')" "50|50|1"
papi GET "/jobs?after=$(uid 1 1)"
check "paging: after a full last page -> []" "$(pjl '#d.jobs')" 0
ctl POST /data '{"planado_jobs":101}'
SEEN=""; PAGES=""; AFTER=""
for i in 1 2 3 4 5; do
  papi GET "/jobs${AFTER:+?after=$AFTER}"
  n="$(pjl '#d.jobs')"
  PAGES="$PAGES$n,"
  [[ "$n" == 0 ]] && break
  SEEN="$SEEN$(pjl 'map(d.jobs, function(j) return j.serial_no end)'),"
  AFTER="$(pjl 'd.jobs[#d.jobs].uuid')"
done
check "paging: 101 = 50 + 50 + 1, then []" "$PAGES" "50,50,1,0,"
check "paging: every job once, newest first" "$(tr ',' '\n' <<<"$SEEN" | sed '/^$/d' | paste -sd,)" "$(seq 101 -1 1 | paste -sd,)"
papi GET "/jobs?after=$(uid 1 52)"
P1="$(cat "$WORK/body")"
papi GET "/jobs?after=$(uid 1 52)"
check "paging: stable for a given after" "$(cat "$WORK/body")" "$P1"
check "paging: after=job 52 starts at 51" "$(pjl 'd.jobs[1].serial_no .. "|" .. #d.jobs')" "51|50"
ctl POST /config '{"planado":{"page_size":7,"page_sizes":{"skills":5}}}'
papi GET /jobs
check "paging: page_size 7" "$(pjl '#d.jobs')" 7
papi GET /skills
check "paging: page_sizes.skills 5" "$(pjl '#d.skills')" 5
ctl GET /config
check "paging: config shows the sizes" "$(pjl 'd.config.planado.page_size .. "|" .. d.config.planado.page_sizes.skills .. "|" .. d.config.planado.page_sizes.clients')" "7|5|7"
ctl POST /config '{"planado":{"page_sizes":{"nope":1}}}'
check "paging: unknown list name -> 400" "$CODE" 400
ctl POST /config '{"planado":{"page_size":50}}'
ctl POST /data '{"planado_clients":60}'
papi GET /clients
check "paging: 60 clients, first page" "$(pjl '#d.clients .. "|" .. d.clients[1].external_id')" "50|client-60"
papi GET "/clients?after=$(pjl 'd.clients[50].uuid')"
check "paging: 60 clients, second page" "$(pjl '#d.clients .. "|" .. d.clients[10].external_id')" "10|client-1"
papi GET "/templates?after=$(uid 5 1)"
check "paging: templates after the first" "$(pjl 'map(d.templates, function(t) return t.name end)')" "Repair,Inspection"

# ------------------------------------------------------------- filters
ctl POST /data '{"planado_jobs":20}'
papi GET "/jobs?status%5B%5D=posted"
check "filters: status%5B%5D=posted" "$(pjl 'map(d.jobs, function(j) return j.serial_no end)')" "17,13,9,5,1"
papi GET "/jobs?status%5B%5D=posted&status%5B%5D=finished"
check "filters: two statuses" "$(pjl 'map(d.jobs, function(j) return j.serial_no end)')" "20,17,16,13,12,9,8,5,4,1"
ctl GET /log
check "filters: repeated status[] logged as an array" "$(pjl 'table.concat(d[#d].query["status[]"], ",")')" "posted,finished"
papi GET "/jobs?external_order_id=order-3"
check "filters: external_order_id" "$(pjl 'map(d.jobs, function(j) return j.serial_no end)')" "6,5"
papi GET "/jobs?assignee%5Bworker_uuid%5D=$U2"
check "filters: assignee[worker_uuid]" "$(pjl 'map(d.jobs, function(j) return j.serial_no end)')" "19,15,11,7,3"
papi GET "/jobs?scheduled_at%5Bafter%5D=2024-01-01T20:00:00Z&scheduled_at%5Bbefore%5D=2024-01-02T00:00:00.000Z"
check "filters: scheduled_at[after]/[before], inclusive" "$(pjl 'map(d.jobs, function(j) return j.serial_no end)')" "14,12,11,10"
papi GET "/jobs?scheduled_at%5Bafter%5D=2024-01-01T23:00:00%2B03:00&status%5B%5D=scheduled"
check "filters: zone offset + status" "$(pjl 'map(d.jobs, function(j) return j.serial_no end)')" "18,14,10"
papi GET "/jobs?scheduled_at%5Bafter%5D=soon"
check "filters: bad date -> 422" "$CODE" 422
ctl POST /config '{"planado":{"page_size":2}}'
papi GET "/jobs?status%5B%5D=scheduled"
A1="$(pjl 'map(d.jobs, function(j) return j.serial_no end)')"
papi GET "/jobs?status%5B%5D=scheduled&after=$(pjl 'd.jobs[2].uuid')"
check "filters: paging with a filter" "$A1|$(pjl 'map(d.jobs, function(j) return j.serial_no end)')" "18,14|10,6"
ctl POST /config '{"planado":{"page_size":50}}'

# ------------------------------------------------------------- rate limit
ctl POST /reset
# 6 a minute: the bucket leaks one request in 10 s, so four requests fall
# within one leak however slowly a loaded machine runs curl.
ctl POST /config '{"planado":{"rate":{"enabled":true,"per_minute":6,"burst":3}}}'
R=""
for i in 1 2 3 4; do papi GET /job_types; R="$R$CODE,"; done
check "rate: burst 3, then 429" "$R" "200,200,200,429,"
check "rate: 429 is JSON, no Retry-After by default" "$(pjl 'd.errors[1].message')|$(header Retry-After)" "Rate Limit Exceeded|"
ctl GET /stats
check "rate: planado_rate_violations" "$(pjl 'd.planado_rate_violations .. "|" .. d.rate_violations')" "1|0"
call GET "$REST/ping" -H "Authorization: Bearer sandbox-token"
check "rate: the Planfix API is not limited by it" "$CODE" 200
ctl POST /config '{"planado":{"rate":{"retry_after":true}}}'
papi GET /job_types; papi GET /job_types; papi GET /job_types; papi GET /job_types
# The seconds until the bucket has room: up to one leak (10 s), fewer as time passes.
RA="$(header Retry-After)"
check "rate: retry_after -> Retry-After header" "$CODE/$([[ "$RA" =~ ^([1-9]|10)$ ]] && echo "1..10 s" || echo "$RA")" "429/1..10 s"
# One per second, not faster: two requests back to back must fall within
# one leak interval even on a loaded machine (at 600/min, 0.1 s, a slow
# second curl saw 200), and load only makes the wait after them longer.
ctl POST /reset
ctl POST /config '{"planado":{"rate":{"enabled":true,"per_minute":60,"burst":1,"retry_after":false}}}'
papi GET /job_types; C1S="$CODE"; papi GET /job_types; C2S="$CODE"; sleep 1.05; papi GET /job_types
check "rate: the bucket leaks (60/min: one per 1 s)" "$C1S,$C2S,$CODE" "200,429,200"
ctl POST /config '{"planado":{"rate":{"text":true,"burst":1,"per_minute":1}}}'
papi GET /job_types; papi GET /job_types
check "rate: text mode answers the 200 quirk" "$CODE|$(header Content-Type)|$(cat "$WORK/body")" "200|text/plain|Rate Limit Exceeded"
ctl POST /config '{"planado":{"rate":false}}'
papi GET /job_types
check "rate: off" "$CODE" 200
ctl GET /log
check "rate: log marks limited requests" "$(pjl 'tostring(d[#d - 1].rate_limited)')" true

# ------------------------------------------------------------- faults
ctl POST /reset
ctl POST /fault '{"mode":"rate_text","count":2}'
papi GET /jobs; R1="$CODE|$(header Content-Type)|$(cat "$WORK/body")"
papi GET /jobs; R2="$CODE"
papi GET /jobs
check "fault rate_text: HTTP 200 text/plain body" "$R1" "200|text/plain|Rate Limit Exceeded"
check "fault rate_text: count 2, then normal JSON" "$R2/$CODE/$(pjl '#d.jobs')" "200/200/3"
ctl GET /log
check "fault rate_text: logged" "$(pjl 'd[1].fault .. "|" .. d[1].kind .. "|" .. d[3].kind .. "|" .. tostring(d[3].fault == nil)')" "rate_text|planado|planado|true"
ctl POST /fault '{"mode":"status","status":503}'
papi GET /jobs
check "fault status on /planado/: Planado-shaped body" "$(perr)" "503|Service temporarily unavailable"
ctl POST /fault '{"mode":"status","status":500,"error":"boom"}'
papi GET /jobs
check "fault status with error text" "$(perr)" "500|boom"
ctl POST /fault '{"mode":"code","code":3,"status":200}'
papi GET /jobs
check "fault code on /planado/" "$(perr)" "200|Object is being modified"
ctl POST /fault '{"mode":"reset"}'
papi GET /jobs
check "fault reset on /planado/ (curl 52)" "$RC" 52
ctl POST /fault '{"mode":"truncate"}'
papi GET /jobs
check "fault truncate on /planado/ (curl 18)" "$RC" 18
ctl POST /fault '{"mode":"malformed"}'
papi GET /jobs
check "fault malformed on /planado/" "$CODE/$(pjl 1)" "200/INVALID_JSON"
ctl POST /fault '{"mode":"html"}'
papi GET /jobs
check "fault html on /planado/" "$CODE/$(header Content-Type)" "502/text/html"
ctl POST /fault '{"mode":"oversize","size":100000}'
papi GET /jobs
check "fault oversize on /planado/" "$CODE/$(wc -c <"$WORK/body")/$(pjl '#d.padding')" "200/100000/99986"
ctl POST /fault '{"mode":"slow","delay":0.5}'
T0=$(date +%s.%N); papi GET /jobs; T1=$(date +%s.%N)
check "fault slow on /planado/" "$CODE/$(lua5.4 -e "print($T1 - $T0 >= 0.5)")" "200/true"
ctl POST /fault '{"mode":"status","status":502,"path":"/planado/v2/clients"}'
papi GET /jobs; R1="$CODE"; call GET "$REST/ping" -H "Authorization: Bearer sandbox-token"; R2="$CODE"
papi GET /clients
check "fault path filter on /planado/" "$R1/$R2/$CODE" "200/200/502"
ctl POST /fault '{"mode":"status","status":503,"path":"/planado/"}'
call GET "$REST/ping" -H "Authorization: Bearer sandbox-token"
R1="$CODE"; ctl GET /fault; R2="$(pjl '#d.pending')"
check "fault: a /planado/ fault leaves REST alone" "$R1/$R2" "200/1"
ctl DELETE /fault

# ------------------------------------------------------------- log
ctl POST /reset
ctl DELETE /log
BODY='{ "description" :  "exact bytes",
  "bogus": [1, 2] }'
call POST "$PL/jobs?x=1&x=2&flag" -H "Authorization: Bearer sandbox-planado-key" -H "Content-Type: application/json" --data-binary "$BODY"
ctl GET /log
check "log: planado entry" "$(pjl 'd[1].kind .. "|" .. d[1].method .. "|" .. d[1].path .. "|" .. d[1].uri .. "|" .. d[1].status .. "|" .. d[1].auth')" \
  "planado|POST|/jobs|/planado/v2/jobs?x=1&x=2&flag|201|bearer"
check "log: exact body bytes" "$(pjl 'd[1].body')" "$BODY"
check "log: json, query, headers" "$(pjl 'd[1].json.description .. "|" .. table.concat(d[1].query.x, ",") .. "|" .. tostring(d[1].query.flag) .. "|" .. d[1].headers["content-type"]')" "exact bytes|1,2|true|application/json"
check "log: changes and entity" "$(pjl 'table.concat(d[1].changes.ignored, ",") .. "|" .. d[1].entity.type .. "|" .. d[1].entity.action .. "|" .. d[1].entity.version')" "bogus|job|create|1"
ctl GET /stats
check "stats: planado counters" "$(pjl 'd.planado_requests .. "|" .. d.planado_accepted .. "|" .. d.requests')" "1|1|1"

# ------------------------------------------------------------- webhooks
ctl POST /reset
ctl POST /config '{"planado":{"webhook":{"delays":[0.2,0.4,0.8],"timeout":1,"max_attempts":4}}}'
check "webhooks: config" "$CODE/$(pjl 'd.config.planado.webhook.max_attempts .. "|" .. d.config.planado.webhook.timeout')" "200/4|1"
ctl POST /planado/webhooks '{"url":"https://127.0.0.1/x"}'
check "webhooks: https URL refused" "$CODE" 400
ctl POST /planado/webhooks '{"url":"http://example.com/x"}'
check "webhooks: non-loopback URL refused" "$CODE" 400
ctl POST /planado/webhooks "{\"url\":\"$RECV/w1\",\"event_types\":[\"job_exploded\"]}"
check "webhooks: unknown event type refused" "$CODE" 400
ctl POST /planado/webhooks "{\"url\":\"$RECV/w1\",\"secret\":\"s3cret\",\"event_types\":[\"job_created\",\"job_updated\",\"job_started\",\"job_finished\",\"client_updated\"]}"
W1="$(pjl d.webhook.uuid)"
check "webhooks: registered" "$CODE/$W1" "200/$(uid 11 1)"
papi GET /webhooks
check "webhooks: GET /webhooks" "$(pjl 'd.webhooks[1].uuid .. "|" .. d.webhooks[1].url .. "|" .. d.webhooks[1].secret .. "|" .. #d.webhooks[1].event_types')" "$W1|$RECV/w1|s3cret|5"

papi POST /jobs '{"description":"hooked","external_id":"hook-1"}'
JW="$(pjl d.job_uuid)"
flush
check "webhooks: flush -> 200, nothing pending" "$CODE/$(pjl d.pending)" "200/0"
receiver
check "webhooks: one delivery of job_created" "$(pjl '#d.requests .. "|" .. d.requests[1].event_type .. "|" .. d.requests[1].path .. "|" .. d.requests[1].method' "$WORK/recv")" "1|job_created|/w1|POST"
check "webhooks: headers" "$(pjl 'd.requests[1].headers["content-type"] .. "|" .. d.requests[1].headers["x-planado-secret"] .. "|" .. d.requests[1].headers["x-planado-delivery-attempt"]' "$WORK/recv")" "application/json|s3cret|1"
check "webhooks: body keys (no previous_job on create)" "$(pjl 'keys(dec(d.requests[1].body))' "$WORK/recv")" "context,event_type,event_uuid,job"
check "webhooks: context" "$(pjl 'keys(dec(d.requests[1].body).context) .. "|" .. dec(d.requests[1].body).context.source .. "|" .. dec(d.requests[1].body).context.user_uuid' "$WORK/recv")" \
  "created_at,device_uuid,happened_at,source,user_email,user_uuid|api|$U1"
check "webhooks: job is the full shape" "$(pjl 'local j = dec(d.requests[1].body).job return j.uuid .. "|" .. j.version .. "|" .. j.description .. "|" .. tostring(j.address ~= nil)' "$WORK/recv")" "$JW|1|hooked|true"
E1="$(pjl 'd.requests[1].event_uuid' "$WORK/recv")"
papi PATCH /jobs/hook-1 '{"description":"hooked 2"}'
flush
receiver
check "webhooks: job_updated with previous_job" "$(pjl 'local b = dec(d.requests[2].body) return b.event_type .. "|" .. b.job.version .. "|" .. b.previous_job.version .. "|" .. b.previous_job.description .. "|" .. b.job.description' "$WORK/recv")" \
  "job_updated|2|1|hooked|hooked 2"
papi POST /clients '{"first_name":"Hook"}'
CW="$(pjl d.client_uuid)"
papi POST /sites '{"name":"Hook site"}'
flush; receiver
check "webhooks: unsubscribed types are not sent" "$(pjl '#d.requests' "$WORK/recv")" 2
papi PATCH "/clients/$CW" '{"last_name":"Client"}'
flush; receiver
check "webhooks: client_updated uses client/previous_client" "$(pjl 'local b = dec(d.requests[3].body) return keys(b) .. "|" .. b.client.name .. "|" .. b.previous_client.name .. "|" .. b.client.version' "$WORK/recv")" \
  "client,context,event_type,event_uuid,previous_client|Client Hook|Hook|2"
ctl POST "/planado/jobs/$JW/finish" '{"resolution":{"name":"Done","successful":true},"comment":"all fine"}'
check "webhooks: control finish" "$CODE/$(pjl 'd.job.status .. "|" .. d.job.version .. "|" .. d.job.resolution.comment')" "200/finished|3|all fine"
flush; receiver
check "webhooks: job_finished from the web" "$(pjl 'local b = dec(d.requests[4].body) return b.event_type .. "|" .. b.context.source .. "|" .. b.job.resolution.name .. "|" .. tostring(b.job.resolution.successful) .. "|" .. b.previous_job.status' "$WORK/recv")" \
  "job_finished|web|Done|true|posted"
ctl POST "/planado/jobs/$JW/finish" '{}'
check "webhooks: finishing twice -> 400" "$CODE" 400

# retries after 500s
ctl DELETE /planado/receiver
ctl POST /planado/receiver '{"script":[500,503]}'
papi PATCH "/jobs/$JW" '{"description":"retry me"}'
flush
# JW's versions: 1 created, 2 PATCH, 3 finished, 4 this PATCH.
deliveries "?entity_uuid=$JW"
check "retries: 500, 503, then 200" "$(pjl 'map(where(d.deliveries, "version", 4), function(x) return x.attempt .. ":" .. tostring(x.status) end)' "$WORK/deliv")" "1:500,2:503,3:200"
check "retries: growing delays (0.2, 0.4)" "$(pjl 'local x = where(d.deliveries, "version", 4) return tostring(x[2].time - x[1].time >= 0.19 and x[3].time - x[2].time >= 0.39)' "$WORK/deliv")" true
receiver
check "retries: same event, attempt header 1..3" "$(pjl 'map(d.requests, function(r) return r.attempt end) .. "|" .. tostring(d.requests[1].event_uuid == d.requests[3].event_uuid)' "$WORK/recv")" "1,2,3|true"

# timeout
ctl DELETE /planado/receiver
ctl POST /planado/receiver '{"script":[{"delay":1.5}]}'
papi PATCH "/jobs/$JW" '{"description":"slow receiver"}'
flush
deliveries "?entity_uuid=$JW"
check "timeout: counted as failed, then retried" "$(pjl 'map(where(d.deliveries, "version", 5), function(x) return x.attempt .. ":" .. tostring(x.status) end)' "$WORK/deliv")" "1:timeout,2:200"

# max_attempts
ctl DELETE /planado/receiver
ctl POST /planado/receiver '{"status":500}'
papi PATCH "/jobs/$JW" '{"description":"never delivered"}'
flush
deliveries "?entity_uuid=$JW"
check "max_attempts: 4 attempts, then given up" "$(pjl 'local n, s = 0, {} for _, x in ipairs(d.deliveries) do if x.version == 6 then n = n + 1 s[#s + 1] = x.status end end return n .. "|" .. table.concat(s, ",") .. "|" .. d.pending' "$WORK/deliv")" "4|500,500,500,500|0"

# order per resource
ctl POST /planado/receiver '{"status":200,"script":[500]}'
ctl DELETE /planado/receiver
papi PATCH "/jobs/$JW" '{"description":"o1"}'
papi PATCH "/jobs/$JW" '{"description":"o2"}'
flush; receiver
check "order: a failed event holds back the next one" "$(pjl 'map(d.requests, function(r) return dec(r.body).job.version .. "/" .. r.attempt .. "/" .. r.status end)' "$WORK/recv")" "7/1/500,7/2/200,8/1/200"

# duplicates
ctl DELETE /planado/receiver
ctl POST /config '{"planado":{"webhook":{"duplicate":true}}}'
papi PATCH "/jobs/$JW" '{"description":"twice"}'
flush; receiver
check "duplicate: same event twice, attempts 1 then 2" "$(pjl '#d.requests .. "|" .. tostring(d.requests[1].event_uuid == d.requests[2].event_uuid) .. "|" .. d.requests[1].attempt .. "," .. d.requests[2].attempt' "$WORK/recv")" "2|true|1,2"
deliveries "?entity_uuid=$JW"
check "duplicate: flagged in the delivery log" "$(pjl 'map(where(d.deliveries, "version", 9), function(x) return x.attempt .. ":" .. tostring(x.duplicate) end)' "$WORK/deliv")" "1:false,2:true"
ctl POST /config '{"planado":{"webhook":{"duplicate":false}}}'

# replay (out of order)
ctl DELETE /planado/receiver
ctl POST /planado/webhooks/replay "{\"event_uuid\":\"$E1\"}"
check "replay: accepted" "$CODE/$(pjl d.deliveries)" "200/1"
flush; receiver
check "replay: the old version arrives after newer ones" "$(pjl 'local b = dec(d.requests[1].body) return b.event_uuid .. "|" .. b.job.version .. "|" .. d.requests[1].attempt' "$WORK/recv")" "$E1|1|2"
deliveries "?event_uuid=$E1"
check "replay: flagged in the delivery log" "$(pjl 'tostring(d.deliveries[2].replay) .. "|" .. d.deliveries[2].version' "$WORK/deliv")" "true|1"
ctl POST /planado/webhooks/replay '{"event_uuid":"nope"}'
check "replay: unknown event -> 404" "$CODE" 404

# the §3.5 delivery log
papi GET "/webhooks/$W1/requests"
check "requests: §3.5 fields" "$(pjl 'keys(d.requests[1])')" \
  "attempt_no,entity_type,entity_uuid,entity_version,error_description,error_type,event_type,event_uuid,http_request_body,http_response_code,request_time_ms,send_at,sent_at,status,uuid"
check "requests: first entry" "$(pjl 'd.requests[1].event_type .. "|" .. d.requests[1].entity_type .. "|" .. d.requests[1].entity_version .. "|" .. d.requests[1].attempt_no .. "|" .. d.requests[1].status .. "|" .. d.requests[1].http_response_code')" \
  "job_created|job|1|1|success|200"
check "requests: http_request_body is a JSON string" "$(pjl 'type(d.requests[1].http_request_body) .. "|" .. dec(d.requests[1].http_request_body).event_uuid')" "string|$E1"
check "requests: a failure" "$(pjl 'local r for _, x in ipairs(d.requests) do if x.http_response_code == 500 and not r then r = x end end return r.status .. "|" .. r.error_type')" "failure|http_status"
check "requests: timeout entry" "$(pjl 'local r for _, x in ipairs(d.requests) do if x.error_type == "timeout" then r = x end end return tostring(r.http_response_code == null)')" true
ctl POST /config '{"planado":{"page_sizes":{"requests":2}}}'
papi GET "/webhooks/$W1/requests"
R1="$(pjl 'd.requests[2].uuid')"
papi GET "/webhooks/$W1/requests?after=$R1"
check "requests: after paging" "$(pjl '#d.requests .. "|" .. tostring(d.requests[1].uuid ~= "'"$R1"'")')" "2|true"
papi GET "/webhooks/$(uid 11 99)/requests"
check "requests: unknown webhook -> 404" "$CODE" 404

# connection errors, flush timeout, reset
ctl POST /planado/webhooks '{"url":"http://127.0.0.1:1/closed","event_types":["site_created"]}'
W2="$(pjl d.webhook.uuid)"
papi POST /sites '{"name":"Nobody listens"}'
flush
deliveries "?webhook_uuid=$W2"
check "errors: refused connection -> status error" "$(pjl '#d.deliveries .. "|" .. d.deliveries[1].status' "$WORK/deliv")" "4|error"
ctl DELETE "/planado/webhooks/$W2"
check "webhooks: unregister" "$CODE" 200
papi POST /sites '{"name":"Nobody registered"}'
flush
deliveries "?webhook_uuid=$W2"
check "webhooks: nothing for an unregistered webhook" "$(pjl '#d.deliveries' "$WORK/deliv")" 4
call POST "$CTL/planado/test-receiverX" --data-binary '{}'
check "receiver: only /test-receiver and /test-receiver/<name>" "$CODE" 404
ctl POST /config '{"planado":{"webhook":{"delays":[30]}}}'
ctl POST /planado/receiver '{"script":[500]}'
papi PATCH "/jobs/$JW" '{"description":"pending"}'
flush '{"timeout":0.3}'
check "flush: times out -> 504 with pending" "$CODE/$(pjl d.pending)" "504/1"
ctl GET /stats
check "stats: pending deliveries" "$(pjl 'd.planado_pending_deliveries .. "|" .. tostring(d.planado_delivery_attempts > 10)')" "1|true"
ctl POST /reset
ctl GET /stats
check "reset: nothing pending" "$(pjl 'd.planado_pending_deliveries .. "|" .. d.planado_delivery_attempts')" "0|0"
papi GET /webhooks
check "reset: no webhooks" "$(cat "$WORK/body")" '{"webhooks":[]}'
ctl GET /planado/events
check "events: seeded creation events" "$(pjl '#d.events .. "|" .. d.events[1].event_type')" "6|client_created"
}
