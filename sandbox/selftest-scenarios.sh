#!/usr/bin/env bash
# Self-test of the Planfix scenario HTTP requests the sandbox sends (the
# triggers of the REST and XML writes, the templates, the serial sender per
# account with its retries and pause, the delivery log, the test receiver).
#
# Sourced by selftest.sh, which runs scenarios_main against its instance after
# the Planado checks and counts the results with them. Run directly, it runs
# only these checks (selftest.sh with SELFTEST_ONLY=scenarios): it starts a
# private instance, stops it, and ends with "N passed, N failed".
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  SELFTEST_ONLY=scenarios exec bash "$(cd "$(dirname "$0")" && pwd)/selftest.sh" "$@"
fi

# sflush [JSON]: waits until no scenario request is pending.
sflush() { ctl POST /planfix/scenarios/flush "${1:-}"; }
# srecv [QUERY]: the test receiver's recorded requests into $WORK/recv.
srecv() { call GET "$CTL/planfix/receiver${1:-}"; cp "$WORK/body" "$WORK/recv"; }
# sreqs [QUERY]: the delivery log into $WORK/reqs.
sreqs() { call GET "$CTL/planfix/requests${1:-}"; cp "$WORK/body" "$WORK/reqs"; }
# scenario JSON: registers a scenario; its id in SC.
scenario() { ctl POST /planfix/scenarios "$1"; SC="$(pjl d.scenario.id)"; }

scenarios_main() {
PRECV="$PLANAPI_SANDBOX_PLANFIX_RECEIVER_URL"
XML="$HTTPS/xml/"

# ------------------------------------------------------------- env and config
check "scenarios: env planfix_receiver_url" "$PRECV" \
  "http://127.0.0.1:$PLANAPI_SANDBOX_HTTP_PORT/_sandbox/planfix/test-receiver"
check "scenarios: env.lua planfix_receiver_url" \
  "$(E="$PLANAPI_SANDBOX_DIR/env.lua" lua5.4 -e 'io.write(dofile(os.getenv("E")).planfix_receiver_url)')" "$PRECV"
ctl POST /reset
ctl GET /config
check "scenarios: default schedule (documented minutes, 3-minute pause)" \
  "$(pjl 'table.concat(d.config.scenarios.delays, ",") .. "|" .. d.config.scenarios.pause .. "|" .. d.config.scenarios.factor')" \
  "300,900,1800,3600,3600|180|1"
ctl POST /config '{"scenarios":{"nope":1}}'
check "scenarios: unknown config key -> 400" "$CODE" 400
ctl POST /config '{"scenarios":{"factor":-1}}'
check "scenarios: bad factor -> 400" "$CODE" 400

# ------------------------------------------------------------- registration
scenario '{"url":"https://127.0.0.1:1/x"}'
check "scenarios: https url -> 400" "$CODE" 400
scenario '{"url":"http://10.0.0.1/x"}'
check "scenarios: non-loopback url -> 400" "$CODE" 400
scenario "{\"url\":\"$PRECV\",\"triggers\":[\"task_deleted\"]}"
check "scenarios: unknown trigger -> 400" "$CODE" 400
scenario "{\"url\":\"$PRECV\",\"body\":{\"x\":\"{{task.nope}}\"}}"
check_match "scenarios: unknown placeholder -> 400 naming it" "$CODE $(pjl d.error)" "^400 unknown placeholder \{\{task.nope\}\}"
scenario "{\"url\":\"$PRECV\",\"encoding\":\"form\",\"body\":\"a=b\"}"
check "scenarios: form body must be an object -> 400" "$CODE" 400
scenario "{\"url\":\"$PRECV/json?token={{task.id}}\",\"headers\":{\"X-Token\":\"s3cret\"},
  \"body\":{\"event\":\"{{event}}\",\"task\":\"{{task.id}}\",\"title\":\"Task {{task.name}}\",
            \"status\":\"{{task.status.id}}\",\"at\":\"{{change_time}}\",\"q1\":\"{{field.101}}\"}}"
check "scenarios: register -> 200 with id" "$CODE/$SC" "200/1"
SJ="$SC"
scenario "{\"url\":\"$PRECV/form\",\"encoding\":\"form\",\"triggers\":[\"comment_added\"],
  \"body\":{\"event\":\"{{event}}\",\"text\":\"{{comment.text}}\",\"secret\":\"a&b=c\"}}"
SF="$SC"
ctl GET /planfix/scenarios
check "scenarios: listed" "$(pjl 'map(d.scenarios, function(s) return s.id .. s.encoding end)')" "1json,2form"

# ------------------------------------------------------------- triggers (REST)
api POST /task/ '{"name":"Hooked"}'
TID="$(pjl d.id)"
sflush
srecv
check "scenarios: task created -> one request" "$(pjl '#d.requests .. "|" .. d.requests[1].event' "$WORK/recv")" "1|task_created"
check "scenarios: whole-placeholder values keep their type, others are text" \
  "$(pjl 'math.type(d.requests[1].json.task) .. "|" .. d.requests[1].json.title .. "|" .. d.requests[1].json.status' "$WORK/recv")" \
  "integer|Task Hooked|1"
check_match "scenarios: change time" "$(pjl 'd.requests[1].json.at' "$WORK/recv")" '^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}Z$'
check "scenarios: the template's header, query and content type" \
  "$(pjl 'd.requests[1].headers["x-token"] .. "|" .. d.requests[1].query.token .. "|" .. d.requests[1].headers["content-type"] .. "|" .. d.requests[1].path' "$WORK/recv")" \
  "s3cret|$TID|application/json; charset=utf-8|/json"
check "scenarios: no signature header (Planfix signs nothing)" \
  "$(pjl 'keys(d.requests[1].headers)' "$WORK/recv")" "connection,content-length,content-type,host,user-agent,x-token"
ctl DELETE /planfix/receiver
api POST "/task/$TID" '{"status":{"id":3}}'
sflush
srecv
check "scenarios: a status change -> task_changed then status_changed" \
  "$(pjl 'map(d.requests, function(r) return r.event .. ":" .. r.json.status end)' "$WORK/recv")" "task_changed:3,status_changed:3"
ctl DELETE /planfix/receiver
api POST "/task/$TID" '{"name":"Renamed"}'
api POST "/task/1" '{"customFieldData":[{"field":{"id":101},"value":"Q2"}]}'
sflush
srecv
check "scenarios: other changes -> task_changed only, field values filled" \
  "$(pjl 'map(d.requests, function(r) return r.event .. ":" .. r.json.title .. ":" .. (r.json.q1 == null and "null" or r.json.q1) end)' "$WORK/recv")" \
  "task_changed:Task Renamed:null,task_changed:Task Prepare quarterly report:Q2"
ctl DELETE /planfix/receiver
api POST "/task/$TID/comments/" '{"description":"Called the client"}'
sflush
srecv "?path=/form"
check "scenarios: comment added -> form body, fields decoded" \
  "$(pjl 'd.requests[1].event .. "|" .. d.requests[1].fields.text .. "|" .. d.requests[1].fields.secret .. "|" .. d.requests[1].body' "$WORK/recv")" \
  "comment_added|Called the client|a&b=c|event=comment_added&secret=a%26b%3Dc&text=Called%20the%20client"
check "scenarios: form content type" "$(pjl 'd.requests[1].headers["content-type"]' "$WORK/recv")" \
  "application/x-www-form-urlencoded; charset=utf-8"
srecv "?path=/json"
check "scenarios: the JSON scenario heard the comment too" "$(pjl '#d.requests .. "|" .. d.requests[1].event' "$WORK/recv")" "1|comment_added"

scenario "{\"url\":\"$PRECV/named\",\"triggers\":[\"task_created\"],\"headers\":{\"X-Name\":\"{{task.name}}\"}}"
api POST /task/ '{"name":"Line one\r\nX-Evil: 1"}'
sflush
srecv "?path=/named"
check "scenarios: a line break in a header's value does not make a header" \
  "$(pjl 'd.requests[1].headers["x-name"] .. "|" .. tostring(d.requests[1].headers["x-evil"])' "$WORK/recv")" "Line one X-Evil: 1|nil"
ctl DELETE "/planfix/scenarios/$SC"

# ------------------------------------------------------------- triggers (XML)
ctl DELETE /planfix/receiver
xcall "$(xreq task.add '<task><title>From XML</title></task>')"
XID="$(xq 't"task.id"')"
xcall "$(xreq task.changeStatus "<task><id>$XID</id><status>3</status></task>")"
xcall "$(xreq action.add "<action><description>Done</description><task><id>$XID</id></task><taskNewStatus>6</taskNewStatus></action>")"
sflush
srecv "?path=/json"
check "scenarios: XML task.add, task.changeStatus, action.add with a new status" \
  "$(pjl 'map(d.requests, function(r) return r.event .. ":" .. r.json.task .. ":" .. r.json.status end)' "$WORK/recv")" \
  "task_created:$XID:1,task_changed:$XID:3,status_changed:$XID:3,comment_added:$XID:6,task_changed:$XID:6,status_changed:$XID:6"

# ------------------------------------------------------------- delivery log
sreqs "?event=comment_added&scenario_id=$SF"
check "scenarios: delivery log filtered" \
  "$(pjl 'map(d.requests, function(r) return r.attempt .. ":" .. r.status .. ":" .. tostring(r.success) end)' "$WORK/reqs")" \
  "1:200:true,1:200:true"
check "scenarios: delivery log fields" "$(pjl 'keys(d.requests[1])' "$WORK/reqs")" \
  "account,attempt,body,due,duration_ms,error,event,event_id,headers,id,method,scenario_id,status,success,task_id,time,url"
ctl GET "/planfix/events?task_id=$XID"
check "scenarios: events of a task" "$(pjl 'map(d.events, function(e) return e.event end)')" \
  "task_created,task_changed,status_changed,comment_added,task_changed,status_changed"

# ------------------------------------------------------------- one at a time, retries, pause
ctl POST /reset
ctl POST /config '{"scenarios":{"factor":0.002}}'
scenario "{\"url\":\"$PRECV\",\"triggers\":[\"task_created\"],\"body\":{\"task\":\"{{task.id}}\"}}"
ctl POST /planfix/receiver '{"delay":0.2}'
for n in 1 2 3; do api POST /task/ "{\"name\":\"serial $n\"}"; done
sflush
sreqs
check "scenarios: one at a time per account (each starts after the previous answer)" \
  "$(pjl 'local ok = #d.requests == 3 for i = 2, #d.requests do ok = ok and d.requests[i].time >= d.requests[i - 1].time + d.requests[i - 1].duration_ms / 1000 - 0.002 end return ok' "$WORK/reqs")" true
ctl DELETE /planfix/requests
ctl POST /planfix/receiver '{"delay":0,"script":[500]}'
api POST /task/ '{"name":"fails once"}'
A="$(pjl d.id)"
api POST /task/ '{"name":"waits for the pause"}'
B="$(pjl d.id)"
sflush '{"timeout":10}'
sreqs
# factor 0.002: the first retry 300 s -> 0.6 s after the failure, the pause 180 s -> 0.36 s.
check "scenarios: failure, the pause, then the retry" \
  "$(pjl 'map(d.requests, function(r) return r.task_id .. "#" .. r.attempt .. ":" .. r.status end)' "$WORK/reqs")" \
  "$A#1:500,$B#1:200,$A#2:200"
check "scenarios: the next request waited for the pause, the retry for its delay" \
  "$(pjl 'local r = d.requests local t = r[1].time + r[1].duration_ms / 1000 return tostring(r[2].time - t >= 0.35) .. "|" .. tostring(r[3].time - t >= 0.59)' "$WORK/reqs")" "true|true"
ctl POST /config '{"scenarios":{"factor":1,"delays":[0,0],"pause":0}}'
ctl POST /planfix/receiver '{"status":503,"script":[]}'
ctl DELETE /planfix/requests
api POST /task/ '{"name":"never accepted"}'
sflush
sreqs
check "scenarios: given up after 1 + #delays attempts" \
  "$(pjl 'map(d.requests, function(r) return r.attempt .. ":" .. r.error end) .. "|" .. d.pending' "$WORK/reqs")" \
  "1:HTTP 503,2:HTTP 503,3:HTTP 503|0"
ctl POST /config '{"scenarios":{"delays":[],"timeout":0.3}}'
ctl POST /planfix/receiver '{"status":200,"delay":1}'
ctl DELETE /planfix/requests
api POST /task/ '{"name":"too slow"}'
sflush
sreqs
check "scenarios: a timeout is a failure" "$(pjl 'd.requests[1].status .. "|" .. tostring(d.requests[1].success)' "$WORK/reqs")" "timeout|false"

# ------------------------------------------------------------- accounts, removal, reset
ctl POST /config '{"scenarios":{"delays":[60],"pause":60,"timeout":2}}'
ctl POST /planfix/receiver '{"delay":0}'
ctl DELETE /planfix/scenarios/1
check "scenarios: delete" "$CODE" 200
ctl DELETE /planfix/scenarios/1
check "scenarios: delete unknown -> 404" "$CODE" 404
scenario '{"url":"http://127.0.0.1:1/closed","account":"down","triggers":["task_created"]}'
scenario "{\"url\":\"$PRECV/up\",\"account\":\"up\",\"triggers\":[\"task_created\"]}"
ctl DELETE /planfix/requests
api POST /task/ '{"name":"one"}'
api POST /task/ '{"name":"two"}'
sflush '{"timeout":1}'
check "scenarios: flush times out while the failed account pauses -> 504" "$CODE/$(pjl d.pending)" "504/2"
sreqs
check "scenarios: a paused account does not hold the others" \
  "$(pjl 'map(where(d.requests, "account", "down"), function(r) return r.status end) .. "|" .. map(where(d.requests, "account", "up"), function(r) return r.status end)' "$WORK/reqs")" \
  "error|200,200"
ctl GET /stats
# Since the reset: 3 serial, 3 retried, 3 given up, 1 timed out, 3 here.
check "scenarios: stats" "$(pjl 'd.scenario_pending .. "|" .. d.scenario_requests .. "|" .. d.scenario_events')" "2|13|9"
ctl POST /reset
ctl GET /stats
check "scenarios: reset stops the senders" "$(pjl 'd.scenario_pending .. "|" .. d.scenario_requests .. "|" .. d.scenario_events')" "0|0|0"
ctl GET /planfix/scenarios
check "scenarios: reset removes them" "$(pjl '#d.scenarios')" 0
srecv
check "scenarios: reset clears the receiver" "$(pjl '#d.requests')" 0
}
