#!/usr/bin/env bash
# Self-test of the Planfix XML endpoint (POST /xml/) of the sandbox.
#
# Sourced by selftest.sh, which runs xml_main against its instance after the
# REST checks and counts the results with them. Run directly, it runs only
# these checks (selftest.sh with SELFTEST_ONLY=xml): it starts a private
# instance, stops it, and ends with "N passed, N failed".
#
# XML answers are checked with lua5.4 + lua-expat (see xq below).
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  SELFTEST_ONLY=xml exec bash "$(cd "$(dirname "$0")" && pwd)/selftest.sh" "$@"
fi

# xq EXPR [FILE]: evaluates a Lua expression over the XML answer in FILE
# (default: the last response body). Helpers, with dotted paths below
# <response> ("tasks.task[2].id": [i] picks the i-th sibling of that name):
#   t(path)        text of the element, or nil
#   a(path, name)  attribute value, or nil ("" path = <response> itself)
#   n(path, name)  number of children called name (nil when path is missing)
#   st             the response status attribute; code = t("code")
#   ids(path, name) texts of the children called name, comma-joined
# nil prints as "nil"; an unparsable body prints INVALID_XML.
xq() {
  EXPR="$1" FILE="${2:-$WORK/body}" lua5.4 -e '
        local lxp = require("lxp")
        local f = assert(io.open(os.getenv("FILE"), "rb"))
        local text = f:read("a"); f:close()
        local root, stack = nil, {}
        local p = lxp.new({
            StartElement = function(_, name, attrs)
                local node = { name = name, attrs = {}, children = {}, text = {} }
                for k, v in pairs(attrs) do if type(k) == "string" then node.attrs[k] = v end end
                if stack[#stack] then table.insert(stack[#stack].children, node) else root = node end
                stack[#stack + 1] = node
            end,
            EndElement = function() local nd = table.remove(stack); nd.text = table.concat(nd.text) end,
            CharacterData = function(_, s) if stack[#stack] then table.insert(stack[#stack].text, s) end end,
        })
        local ok = p:parse(text) and p:parse()
        if not ok or not root then io.write("INVALID_XML") return end
        local function find(path)
            local node = root
            if path == nil or path == "" then return node end
            for part in path:gmatch("[^.]+") do
                local name, idx = part:match("^([^%[]+)%[(%d+)%]$")
                name, idx = name or part, tonumber(idx) or 1
                local hit, k = nil, 0
                for _, c in ipairs(node.children) do
                    if c.name == name then k = k + 1; if k == idx then hit = c break end end
                end
                if not hit then return nil end
                node = hit
            end
            return node
        end
        local env = setmetatable({
            t = function(path) local nd = find(path) return nd and nd.text end,
            a = function(path, name) local nd = find(path) return nd and nd.attrs[name] end,
            n = function(path, name)
                local nd = find(path)
                if not nd then return nil end
                local k = 0
                for _, c in ipairs(nd.children) do if c.name == name then k = k + 1 end end
                return k
            end,
            ids = function(path, name)
                local nd = find(path)
                if not nd then return nil end
                local out = {}
                for _, c in ipairs(nd.children) do if c.name == name then out[#out + 1] = c.text end end
                return table.concat(out, ",")
            end,
            st = root.attrs.status, root = root,
        }, { __index = _G })
        env.code = env.t("code")
        local fn = assert(load("return " .. os.getenv("EXPR"), "expr", "t", env))
        local okv, v = pcall(fn)
        if not okv then io.write("ERROR: " .. tostring(v)) return end
        io.write(tostring(v))
    ' 2>&1
}

# xcall BODY [USER:PASSWORD] [curl args...]: POST BODY to /xml/ (default auth:
# API key + the full token). Sets CODE, RC; body in $WORK/body.
xcall() {
  local body="$1" cred="${2:-sandbox-api-key:sandbox-xml-token}"
  shift 2 2>/dev/null || shift $#
  call POST "$XML" -H "Content-Type: application/xml" -H "Accept: application/xml" \
    -u "$cred" --data-binary "$body" "$@"
}
# xreq METHOD INNER: a <request> document for the sandbox account.
xreq() { printf '<?xml version="1.0" encoding="UTF-8"?><request method="%s"><account>sandbox</account>%s</request>' "$1" "$2"; }
# xerr: "status/code" of the last answer, e.g. "200/0005".
xerr() { echo "$CODE/$(xq 'st .. "/" .. tostring(code)')"; }

xml_main() {
XML="$HTTPS/xml/"
TOK="sandbox-api-key:sandbox-xml-token"
RO="sandbox-api-key:readonly-xml-token"
LOGIN="sandbox-api-key:"

# ------------------------------------------------------------- envelope and errors
check "env: xml_url" "$PLANAPI_SANDBOX_XML_URL" "$HTTPS/xml/"
check "env.lua: xml_url" "$(E="$PLANAPI_SANDBOX_DIR/env.lua" lua5.4 -e 'io.write(dofile(os.getenv("E")).xml_url)')" "$HTTPS/xml/"
ctl POST /reset
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: task.get 200 ok" "$CODE/$(xq st)" "200/ok"
check "xml: content type" "$(header Content-Type)" "application/xml; charset=utf-8"
check "xml: XML declaration first" "$(head -c 38 "$WORK/body")" '<?xml version="1.0" encoding="UTF-8"?>'
check "xml: task fields" "$(xq 't"task.id" .. "|" .. t"task.general" .. "|" .. t"task.title" .. "|" .. t"task.status" .. "|" .. t"task.owner.id" .. "|" .. t"task.project.id" .. "|" .. t"task.beginDateTime"')" \
  "1|1001|Prepare quarterly report|2|1|1|01-01-2024 10:00"
call POST "http://127.0.0.1:$PLANAPI_SANDBOX_HTTP_PORT/xml/" -u "$TOK" --data-binary "$(xreq task.get '<task><id>1</id></task>')"
check "xml: plain http port serves /xml/" "$CODE/$(xq st)" "200/ok"
call GET "$XML" -u "$TOK"
check "xml: GET -> 405 XML error" "$CODE/$(xq st)/$(header Allow)" "405/error/POST"
check "xml: 405 is XML" "$(header Content-Type)" "application/xml; charset=utf-8"
call POST "$HTTPS/xml" -u "$TOK" --data-binary "$(xreq task.get '<task><id>1</id></task>')"
check "xml: /xml without the slash -> 404 XML" "$CODE/$(xq st)" "404/error"
xcall "$(xreq task.getList '<sort>TASKTITLE_DESC</sort><pageSize>1</pageSize>')"
check "xml: sort TASKTITLE_DESC (byte order)" "$(xq 't"tasks.task.id"')" 6
xcall '<request method="task.get"><account>sandbox</account><task><id>1</id></task>'
check "xml: invalid XML -> 0003" "$(xerr)" "200/error/0003"
check "xml: error has a <message>" "$(xq 't"message" ~= nil')" true
xcall '<?xml version="1.0"?><!DOCTYPE request [<!ENTITY x "sandbox">]><request method="task.get"><account>&x;</account></request>'
check "xml: DOCTYPE/entity -> 0003" "$(xerr)" "200/error/0003"
xcall '<request><account>sandbox</account></request>'
check "xml: no method attribute -> 0008" "$(xerr)" "200/error/0008"
xcall "$(xreq task.frobnicate '')"
check "xml: unknown method -> 0008" "$(xerr)" "200/error/0008"
xcall '<request method="task.get"><task><id>1</id></task></request>'
check "xml: no account -> 0004" "$(xerr)" "200/error/0004"
xcall '<request method="task.get"><account>acme</account><task><id>1</id></task></request>'
check "xml: unknown account -> 0004" "$(xerr)" "200/error/0004"
xcall "$(xreq task.get '<task><id>1</id></task>')" "wrong-key:sandbox-xml-token"
check "xml: wrong API key -> 0001" "$(xerr)" "200/error/0001"
call POST "$XML" --data-binary "$(xreq task.get '<task><id>1</id></task>')"
check "xml: no Authorization -> 0001" "$(xerr)" "200/error/0001"
xcall "$(xreq task.get '<task><id>1</id></task>')" "sandbox-api-key:no-such-token"
check "xml: unknown token -> 0012" "$(xerr)" "200/error/0012"
xcall "$(xreq task.get '<task><id>1</id></task>')" "$RO"
check "xml: readonly token reads" "$(xerr)" "200/ok/nil"
xcall "$(xreq task.update '<task><id>1</id><title>x</title></task>')" "$RO"
check "xml: readonly token write -> 0020" "$(xerr)" "200/error/0020"
xcall "$(xreq task.accept '<task><id>1</id></task>')"
check "xml: known but not emulated -> 0018" "$(xerr)" "200/error/0018"
xcall "$(xreq task.get '<task><id>99999</id></task>')"
check "xml: missing task -> 3001" "$(xerr)" "200/error/3001"
ctl POST /config '{"xml":{"error_status":500}}'
check "config xml.error_status" "$CODE/$(jl d.config.xml.error_status)" "200/500"
xcall "$(xreq task.get '<task><id>99999</id></task>')"
check "xml: configurable error status" "$(xerr)" "500/error/3001"
ctl POST /config '{"xml":{"bogus":1}}'
check "config unknown xml key -> 400" "$CODE" 400
ctl GET /config
check "config shows xml defaults" "$(jl 'd.config.xml.account .. "/" .. d.config.xml.api_key .. "/" .. d.config.xml.private_key .. "/" .. d.config.xml.session_ttl')" \
  "sandbox/sandbox-api-key/sandbox-private-key/3600"

# ------------------------------------------------------------- login mode and sessions
ctl POST /reset
xcall "$(xreq auth.login '<login>robot</login><password>wrong</password>')" "$LOGIN"
check "xml: auth.login wrong password -> 1001" "$(xerr)" "200/error/1001"
xcall "$(xreq auth.login '<login>robot</login><password>robot-pass</password>')" "$LOGIN"
SID="$(xq 't"sid"')"
check_match "xml: auth.login -> 32 hex sid" "$CODE/$(xq st)/$SID" "^200/ok/[0-9a-f]{32}$"
xcall "$(xreq task.get "<sid>$SID</sid><task><id>1</id></task>")" "$LOGIN"
check "xml: sid with empty password" "$(xerr)" "200/ok/nil"
xcall "$(xreq task.get "<sid>$SID</sid><task><id>1</id></task>")" "sandbox-api-key:X"
check "xml: sid with password X" "$(xerr)" "200/ok/nil"
xcall "$(xreq task.get '<task><id>1</id></task>')" "$LOGIN"
check "xml: login mode without sid -> 0012" "$(xerr)" "200/error/0012"
xcall "$(xreq task.get '<sid>0123456789abcdef0123456789abcdef</sid><task><id>1</id></task>')" "$LOGIN"
check "xml: unknown sid -> 0005" "$(xerr)" "200/error/0005"
ctl POST /xml/expire_sessions
check "expire_sessions" "$CODE/$(jl d.expired)" "200/1"
xcall "$(xreq task.get "<sid>$SID</sid><task><id>1</id></task>")" "$LOGIN"
check "xml: expired session -> 0005" "$(xerr)" "200/error/0005"
xcall "$(xreq auth.login '<login>robot</login><password>robot-pass</password>')" "$LOGIN"
SID2="$(xq 't"sid"')"
xcall "$(xreq task.get "<sid>$SID2</sid><task><id>1</id></task>")" "$LOGIN"
check "xml: re-login works" "$(xerr)/$([[ "$SID2" != "$SID" ]] && echo new)" "200/ok/nil/new"
ctl GET /stats
check "stats xml_logins / xml_login_failures" "$(jl 'd.xml_logins .. "/" .. d.xml_login_failures')" "2/1"
ctl POST /config '{"xml":{"session_ttl":1}}'
xcall "$(xreq auth.login '<login>robot</login><password>robot-pass</password>')" "$LOGIN"
SID2="$(xq 't"sid"')"
xcall "$(xreq task.get "<sid>$SID2</sid><task><id>1</id></task>")" "$LOGIN"
A="$(xerr)"
sleep 1.1
xcall "$(xreq task.get "<sid>$SID2</sid><task><id>1</id></task>")" "$LOGIN"
check "xml: session_ttl: alive, then 0005" "$A,$(xerr)" "200/ok/nil,200/error/0005"

# ------------------------------------------------------------- signature
ctl POST /reset
sign() { # XML [KEY]: POST /_sandbox/xml/sign
  local body
  body="$(X="$1" K="${2:-}" lua5.4 -e 'local cjson = require("cjson")
        local t = { xml = os.getenv("X") }
        if os.getenv("K") ~= "" then t.key = os.getenv("K") end
        io.write(cjson.encode(t))')"
  ctl POST /xml/sign "$body"
}
sign '<request method="auth.login"><account>acme</account><password>Secr3t!</password><login>ivan.petrov</login></request>' 'k3y-Private_0123'
check "sign vector 1 (auth.login)" "$(jl 'd.string .. " " .. d.md5')" "auth.loginacmeivan.petrovSecr3t!k3y-Private_0123 3118aa3705a0a1eca90a8307c5668802"
sign '<request method="task.getList"><account>acme</account><sid>7f1c2a9be0d44c3f8a5b6e7d9c0b1a23</sid>
  <target>in</target><pageSize>100</pageSize><pageCurrent>2</pageCurrent><sort>NUMBER_DESC</sort></request>' 'k3y-Private_0123'
check "sign vector 2 (task.getList)" "$(jl 'd.string .. " " .. d.md5')" "task.getListacme21007f1c2a9be0d44c3f8a5b6e7d9c0b1a23NUMBER_DESCink3y-Private_0123 c34e04fe501fcbb5c1d22e6d8d16c2e1"
sign '<request method="task.update"><account>acme</account><silent>1</silent>
  <task><id>1001</id><title>Fix pump</title><description></description>
    <workers><users><id>7</id><id>3</id></users></workers>
    <customData><customValue><id>42</id><value>B</value></customValue>
                <customValue><id>17</id><value>A</value></customValue></customData>
    <periodicity unset="1"/></task></request>' 'k3y-Private_0123'
check "sign vector 3 (nested task.update)" "$(jl 'd.string .. " " .. d.md5')" "task.updateacme142B17A10011Fix pump73k3y-Private_0123 6887b4c102a05cfae66005db13abc2b7"
sign '<request method="x"><account>a</account><signature>whatever</signature></request>'
check "sign: default key, <signature> skipped" "$(jl d.string)" "xasandbox-private-key"
sign '<request'
check "sign: invalid XML -> 400" "$CODE" 400
UNSIGNED="$(xreq task.get '<task><id>1</id></task>')"
sign "$UNSIGNED"
GOOD="$(jl d.md5)"
xcall "${UNSIGNED/<\/request>/<signature>$GOOD</signature></request>}"
check "xml: correct signature accepted" "$(xerr)" "200/ok/nil"
xcall "${UNSIGNED/<\/request>/<signature>0123456789abcdef0123456789abcdef</signature></request>}"
check "xml: wrong signature -> 0006" "$(xerr)" "200/error/0006"
sign "$UNSIGNED" k3y-Private_0123
xcall "${UNSIGNED/<\/request>/<signature>$(jl d.md5)</signature></request>}"
check "xml: signature with another key -> 0006" "$(xerr)" "200/error/0006"
xcall "$(xreq auth.login '<login>robot</login><password>robot-pass</password>')" "$LOGIN"
SID="$(xq 't"sid"')"
UNSIGNED="$(xreq task.getList "<sid>$SID</sid><pageSize>2</pageSize><pageCurrent>1</pageCurrent>")"
sign "$UNSIGNED"
xcall "${UNSIGNED/<\/request>/<signature>$(jl d.md5)</signature></request>}" "$LOGIN"
check "xml: signed login-mode request accepted" "$(xerr)" "200/ok/nil"

# ------------------------------------------------------------- lists, counts and paging
ctl POST /data '{"tasks":250}'
SIZES=""
for pg in 1 2 3 4; do
  xcall "$(xreq task.getList "<pageCurrent>$pg</pageCurrent><pageSize>100</pageSize>")"
  SIZES+="$(xq 'a("tasks","count") .. "/" .. a("tasks","totalCount") .. "/" .. n("tasks","task")'),"
done
check "xml: 250 tasks page as count/totalCount" "$SIZES" "100/250/100,100/250/100,50/250/50,0/250/0,"
check "xml: empty page is <tasks count=\"0\" totalCount=\"250\"/>" "$(grep -c '<tasks count="0" totalCount="250"/>' "$WORK/body")" 1
xcall "$(xreq task.getList '<pageCurrent>3</pageCurrent><pageSize>100</pageSize>')"
check "xml: page 3 content" "$(xq 't"tasks.task[1].id" .. "," .. t"tasks.task[50].title"')" "201,Task 250"
xcall "$(xreq task.getList '')"
check "xml: default pageSize 100" "$(xq 'a("tasks","count")')" 100
xcall "$(xreq task.getList '<pageSize>101</pageSize>')"
check "xml: pageSize 101 -> 0021" "$(xerr)" "200/error/0021"
xcall "$(xreq task.getList '<pageCurrent>0</pageCurrent>')"
check "xml: pageCurrent 0 -> totalCount only" "$(xq 'tostring(a("tasks","count")) .. "/" .. a("tasks","totalCount") .. "/" .. n("tasks","task")')" "nil/250/0"
xcall "$(xreq task.getList '<sort>NUMBER_DESC</sort><pageSize>2</pageSize>')"
check "xml: sort NUMBER_DESC" "$(xq 'ids("tasks.task[1]","id") .. "," .. ids("tasks.task[2]","id")')" "250,249"
xcall "$(xreq task.getMulti '<tasks><id>1</id><id>99999</id><id>3</id></tasks>')"
check "xml: task.getMulti -> <tasks count> only" "$(xq 'a("tasks","count") .. "/" .. tostring(a("tasks","totalCount"))')" "2/nil"
ctl POST /data '{"handbook_records":250}'
SIZES=""
for pg in 1 2 3 4; do
  xcall "$(xreq handbook.getRecords "<handbook><id>1</id></handbook><pageCurrent>$pg</pageCurrent><pageSize>100</pageSize>")"
  SIZES+="$(xq 'n("records","record") .. tostring(a("records","count")) .. tostring(a("records","totalCount"))'),"
done
check "xml: handbook records page without counts" "$SIZES" "100nilnil,100nilnil,50nilnil,0nilnil,"
check "xml: empty handbook page is <records/>" "$(grep -c '<records/>' "$WORK/body")" 1
xcall "$(xreq handbook.getRecords '<handbook><id>1</id></handbook><pageCurrent>3</pageCurrent><pageSize>100</pageSize>')"
check "xml: handbook record fields" "$(xq 't"records.record[1].key" .. "|" .. t"records.record[1].name" .. "|" .. t"records.record[1].customData.customValue[2].value"')" "201|Record 201|2010"
ctl POST /data '{"actions":150}'
xcall "$(xreq action.getList '<task><id>1</id></task><pageCurrent>2</pageCurrent><pageSize>100</pageSize>')"
check "xml: 150 actions, page 2" "$(xq 'a("actions","count") .. "/" .. a("actions","totalCount") .. "/" .. t"actions.action[1].id"')" "50/150/50"
xcall "$(xreq action.getList '<task><id>1</id></task><sort>asc</sort><pageSize>1</pageSize>')"
check "xml: actions sort asc" "$(xq 't"actions.action.id"')" 1

# ------------------------------------------------------------- seed values: 0/1-item lists, text
ctl POST /reset
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: one worker" "$(xq 'n("task.workers.users","id") .. ":" .. ids("task.workers.users","id")')" "1:2"
check "xml: custom values" "$(xq 'n("task.customData","customValue") .. ":" .. t"task.customData.customValue[1].id" .. "=" .. t"task.customData.customValue[1].value"')" "2:101=Q1"
xcall "$(xreq task.get '<task><id>3</id></task>')"
check "xml: no worker" "$(xq 'tostring(n("task.workers.users","id"))')" 0
xcall "$(xreq task.get '<task><general>1006</general></task>')"
check "xml: task by general, two workers" "$(xq 't"task.id" .. ":" .. ids("task.workers.users","id")')" "6:2,3"
check "xml: Cyrillic title" "$(xq 't"task.title"')" "Счёт №42 для ООО «Ромашка»"
check "xml: code with a leading zero stays text" "$(xq 't"task.customData.customValue.value"')" "0042"
xcall "$(xreq task.get '<task><id>7</id></task>')"
check "xml: special characters decoded" "$(xq 't"task.title"')" "Check A < B & C > D"
check "xml: special characters escaped on the wire" "$(grep -c '<title>Check A &lt; B &amp; C &gt; D</title>' "$WORK/body")" 1
xcall "$(xreq task.getList '<project><id>2</id></project>')"
check "xml: task.getList by project" "$(xq 'a("tasks","count") .. ":" .. ids("tasks.task[2].workers.users","id")')" "2:2,3"
xcall "$(xreq task.getPossibleStatusToChange '<task><id>1</id></task>')"
check "xml: statusList totalCount" "$(xq 'a("statusList","totalCount") .. "/" .. tostring(a("statusList","count")) .. "/" .. t"statusList.status[1].value"')" "4/nil/1"
xcall "$(xreq contact.get '<contact><id>14</id></contact>')"
check "xml: contact with & and code 007" "$(xq 't"contact.name" .. "|" .. t"contact.general" .. "|" .. t"contact.customData.customValue.value"')" "Рога & Копыта|1014|007"
xcall "$(xreq contact.getList '<pageCurrent>1</pageCurrent><pageSize>3</pageSize>')"
check "xml: contact.getList counts" "$(xq 'a("contacts","count") .. "/" .. a("contacts","totalCount")')" "3/4"
xcall "$(xreq contact.getList '<target>company</target>')"
check "xml: contact.getList companies" "$(xq 'ids("contacts.contact[1]","id") .. "," .. ids("contacts.contact[2]","id")')" "11,14"
xcall "$(xreq contact.get '<contact><id>999</id></contact>')"
check "xml: missing contact -> 8002" "$(xerr)" "200/error/8002"
xcall "$(xreq project.get '<project><general>1002</general></project>')"
check "xml: project by general" "$(xq 't"project.id" .. "|" .. t"project.title" .. "|" .. t"project.client.id"')" "2|Mobile app|11"
xcall "$(xreq project.getList '')"
check "xml: project.getList counts" "$(xq 'a("projects","count") .. "/" .. a("projects","totalCount")')" "3/3"
xcall "$(xreq project.get '<project><id>99</id></project>')"
check "xml: missing project -> 2001" "$(xerr)" "200/error/2001"
xcall "$(xreq user.get '<user><id>2</id></user>')"
check "xml: user.get" "$(xq 't"user.login" .. "|" .. t"user.userGroups.userGroup.name"')" "ivan.petrov|Developers"
xcall "$(xreq user.getList '')"
check "xml: user.getList counts" "$(xq 'a("users","count") .. "/" .. a("users","totalCount")')" "3/3"
xcall "$(xreq user.get '<user><id>99</id></user>')"
check "xml: missing user -> 6004" "$(xerr)" "200/error/6004"
xcall "$(xreq handbook.getRecord '<handbook><id>1</id></handbook><key>2</key>')"
check "xml: handbook.getRecord" "$(xq 't"record.name" .. "|" .. t"record.customData.customValue[2].field.name" .. "=" .. t"record.customData.customValue[2].value"')" "Monitor|Price=300"
xcall "$(xreq handbook.getRecord '<handbook><id>1</id></handbook><key>99</key>')"
check "xml: missing handbook record -> 0101" "$(xerr)" "200/error/0101"
xcall "$(xreq analitic.getHandbook '<handbook><id>1</id></handbook>')"
check "xml: analitic.getHandbook attributes" "$(xq 'n("records","record") .. "|" .. a("records.record[1].value[1]","value") .. "|" .. a("records.record[1].value[1]","name") .. "|" .. a("records.record[1].value[1]","isDisplayed") .. "|" .. tostring(a("records","count"))')" \
  "3|Laptop|Name|1|nil"

# ------------------------------------------------------------- writes
xcall "$(xreq task.add '<task><title>Новая задача &amp; тест</title><description>from selftest</description><importance>HIGH</importance><project><id>1</id></project><workers><users><id>2</id><id>3</id></users></workers><customData><customValue><id>101</id><value>007</value></customValue></customData></task>')"
check "xml: task.add -> id and general" "$(xq 'st .. "/" .. t"task.id" .. "/" .. t"task.general"')" "ok/1000/2000"
xcall "$(xreq task.get '<task><id>1000</id></task>')"
check "xml: added task readable" "$(xq 't"task.title" .. "|" .. t"task.importance" .. "|" .. ids("task.workers.users","id") .. "|" .. t"task.customData.customValue.value"')" \
  "Новая задача & тест|HIGH|2,3|007"
xcall "$(xreq task.add '<task><description>no title</description></task>')"
check "xml: task.add without title -> 0009" "$(xerr)" "200/error/0009"
xcall "$(xreq task.add '<task><title>x</title><project><id>999</id></project></task>')"
check "xml: task.add unknown project -> 3003" "$(xerr)" "200/error/3003"
xcall "$(xreq task.update '<silent>1</silent><task><id>1000</id><title>Renamed</title><workers><users><id>2</id></users></workers></task>')"
check "xml: task.update -> ok" "$(xq 'st .. "/" .. t"task.id"')" "ok/1000"
ctl GET /store/tasks/1000
check "xml: silent update in history" "$(jl 'tostring(d.record._history[1].silent) .. "/" .. d.record._history[1].api .. "/" .. table.concat(d.record._history[1].fields, ",")')" \
  "true/xml/title,workers"
check "xml: task.update reset omitted fields" "$(jl 'table.concat(d.record._history[1].reset, ",") .. "/" .. d.record.description .. "/" .. d.record.priority')" \
  "auditors,description,importance,members//NotUrgent"
xcall "$(xreq task.update '<task><general>2000</general><title>Again</title><description>kept</description></task>')"
ctl GET /store/tasks/1000
check "xml: non-silent update by general" "$(jl 'tostring(d.record._history[2].silent) .. "/" .. d.record.name .. "/" .. d.record.description')" "false/Again/kept"
xcall "$(xreq task.update '<task><id>99999</id><title>x</title></task>')"
check "xml: update missing task -> 3001" "$(xerr)" "200/error/3001"
xcall "$(xreq task.changeStatus '<task><id>1000</id><status>3</status></task>')"
A="$(xq st)"
xcall "$(xreq task.get '<task><id>1000</id></task>')"
check "xml: task.changeStatus" "$A/$(xq 't"task.status"')" "ok/3"
xcall "$(xreq task.changeStatus '<task><id>1</id><status>6</status></task>')"
check "xml: status outside the process -> 0016" "$(xerr)" "200/error/0016"
xcall "$(xreq action.add '<action><description>Позвонил клиенту</description><task><id>1</id></task><taskNewStatus>3</taskNewStatus></action>')"
ACT="$(xq 't"action.id"')"
check "xml: action.add -> id" "$(xq st)/$ACT" "ok/100"
xcall "$(xreq action.get "<action><id>$ACT</id></action>")"
check "xml: action.get" "$(xq 't"action.description" .. "|" .. t"action.task.id" .. "|" .. t"action.owner.id"')" "Позвонил клиенту|1|1"
xcall "$(xreq action.getList '<task><id>1</id></task>')"
check "xml: action in task list (newest first)" "$(xq 'a("actions","count") .. "/" .. t"actions.action[1].id"')" "4/$ACT"
xcall "$(xreq action.get '<action><id>9999</id></action>')"
check "xml: missing action -> 4002" "$(xerr)" "200/error/4002"
xcall "$(xreq contact.add '<contact><name>Пётр</name><lastName>Сидоров</lastName><email>petr@example.test</email></contact>')"
CID="$(xq 't"contact.id"')"
check "xml: contact.add" "$(xq st)/$CID/$(xq 't"contact.general"')" "ok/100/1100"
xcall "$(xreq contact.update "<silent>1</silent><contact><id>$CID</id><email>p@example.test</email></contact>")"
ctl GET "/store/contacts/$CID"
check "xml: contact.update silent" "$(jl 'd.record.email .. "/" .. tostring(d.record._history[1].silent)')" "p@example.test/true"
xcall "$(xreq contact.getList '<search>сидоров</search>')"
XS="$(xq 'a("contacts","totalCount") .. ":" .. t"contacts.contact.id"')"
xcall "$(xreq contact.getList '<search>nobody</search>')"
check "xml: contact.getList search (Cyrillic, any case)" "$XS/$(xq 'a("contacts","count") .. "," .. a("contacts","totalCount")')" "1:$CID/0,0"
check "xml: empty contact list" "$(grep -c '<contacts count="0" totalCount="0"/>' "$WORK/body")" 1

# ------------------------------------------------------------- custom fields and handbooks
xcall "$(xreq task.add '<task><title>Monthly</title><template>101</template><customData><customValue><id>106</id><value>ORD-9</value></customValue><customValue><id>107</id><value>North</value></customValue></customData></task>')"
TPL_TASK="$(xq 't"task.id"')"
xcall "$(xreq task.get "<task><id>$TPL_TASK</id></task>")"
check "xml: a field not on the template is not stored" "$(xq 'n("task.customData","customValue") .. "|" .. t"task.customData.customValue.id"')" "1|106"
xcall "$(xreq task.updateCustomData '<task><id>1</id><customData><customValue><id>503</id><value>11-10-2022</value></customValue><customValue><id>514</id><value>[1,2]</value></customValue></customData></task>')"
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: date and multi-value custom data read back as written" "$(xq 't"task.customData.customValue[3].value" .. "|" .. t"task.customData.customValue[4].value"')" "11-10-2022|[1,2]"
xcall "$(xreq contact.updateCustomData '<contact><id>12</id><customData><customValue><id>601</id><value>many</value></customValue></customData></contact>')"
check "xml: a value the field's type cannot take -> 0015" "$(xerr)" "200/error/0015"
xcall "$(xreq handbook.addRecord '<handbook><id>3</id></handbook><customData><customValue><id>321</id><value>Podcast</value></customValue></customData>')"
check "xml: handbook.addRecord -> key" "$(xq 'st .. "/" .. t"key"')" "ok/151"
xcall "$(xreq handbook.updateRecord '<handbook><id>3</id></handbook><key>151</key><name>Radio</name>')"
xcall "$(xreq handbook.getRecord '<handbook><id>3</id></handbook><key>151</key>')"
check "xml: handbook.updateRecord" "$(xq 't"record.name" .. "|" .. t"record.customData.customValue.value"')" "Radio|Podcast"
xcall "$(xreq handbook.getStructure '<handbook><id>3</id></handbook>')"
check "xml: handbook.getStructure" "$(xq 't"handbook.name" .. "|" .. n("handbook.fields","field")')" "Lead sources|2"

# ------------------------------------------------------------- files
xcall "$(xreq file.download '<file><id>1</id></file>')"
check "xml: file.download 200 raw bytes" "$CODE/$(cat "$WORK/body")" "200/Hello from the Planfix sandbox."
check "xml: file.download content type" "$(header Content-Type)" "text/plain"
xcall "$(xreq file.download '<file><id>3</id></file>')"
LOCATION="$(header Location)"
check_match "xml: external file -> 302 Location" "$CODE/$LOCATION" "^302/https://127\\.0\\.0\\.1:$PLANAPI_SANDBOX_HTTPS_PORT/files-download/[0-9a-f]+/"
curl -sS --cacert "$CA" -o "$WORK/downloaded" "$LOCATION"
check "xml: following the 302 gives the bytes" "$(head -c 8 "$WORK/downloaded")" "%PDF-1.4"
xcall "$(xreq file.download '<file><id>999</id></file>')"
check "xml: file.download unknown -> 404 XML 9002" "$(xerr)/$(header Content-Type)" "404/error/9002/application/xml; charset=utf-8"
xcall "$(xreq file.get '<file><id>3</id></file>')"
check "xml: file.get" "$(xq 't"file.name" .. "|" .. t"file.isExternal"')" "Договор №7.pdf|1"

# ------------------------------------------------------------- quota and rate
ctl POST /reset
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: no quota -> no X-RateLimit-Remaining" "$(header X-RateLimit-Remaining)" ""
ctl POST /config '{"quota":{"limit":20000,"remaining":2}}'
xcall "$(xreq task.get '<task><id>1</id></task>')"; A="$(xq st)/$(header X-RateLimit-Remaining)"
api GET /ping; B="$CODE/$(header X-RateLimit-Remaining)"
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: quota shared with REST, counts down" "$A,$B" "ok/1,200/0"
check "xml: spent quota -> 0007 with header" "$(xerr)/$(header X-RateLimit-Remaining)" "200/error/0007/0"
xcall "$(xreq task.get '<task><id>1</id></task>')" "wrong-key:x"
check "xml: header on other errors too" "$(xerr)/$(header X-RateLimit-Remaining)" "200/error/0001/0"
ctl POST /config '{"quota":false,"rate":{"enabled":true,"interval":1.0}}'
xcall "$(xreq task.get '<task><id>1</id></task>')"; A="$CODE"
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: rate -> 429 with Retry-After" "$A/$CODE/$(header Retry-After)/$(xq st)" "200/429/1/error"
ctl GET /stats
check "xml: rate violation counted" "$(jl d.rate_violations)" 1

# ------------------------------------------------------------- faults
ctl POST /reset
ctl POST /fault '{"mode":"status","status":503,"path":"/xml/"}'
api GET /ping; A="$CODE"
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: fault with path /xml/ skips REST, hits XML" "$A/$CODE/$(xq 'st .. "/" .. tostring(code)')" "200/503/error/nil"
ctl POST /fault '{"mode":"code","count":2}'
xcall "$(xreq task.get '<task><id>1</id></task>')"; A="$(xerr)"
ctl POST /fault '{"mode":"code","code":5}'
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: code fault, count 2 (default 3014)" "$A,$(xerr)" "200/error/3014,200/error/3014"
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: queued code fault 0005" "$(xerr)" "200/error/0005"
ctl POST /fault '{"mode":"code","code":3014,"xml_method":"task.update"}'
xcall "$(xreq task.get '<task><id>1</id></task>')"; A="$(xerr)"
xcall "$(xreq task.update '<task><id>1</id><title>x</title></task>')"
check "xml: fault filtered by xml_method" "$A,$(xerr)" "200/ok/nil,200/error/3014"
ctl POST /fault '{"mode":"malformed"}'
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: fault malformed -> invalid XML" "$CODE/$(xq st)" "200/INVALID_XML"
ctl POST /fault '{"mode":"reset","path":"/xml/"}'
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: fault reset (curl 52)" "$RC" 52
ctl POST /fault '{"mode":"oversize","size":100000}'
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: fault oversize -> valid XML of that size" "$CODE/$(wc -c <"$WORK/body")/$(xq st)" "200/100000/ok"
ctl POST /fault '{"mode":"truncate"}'
xcall "$(xreq task.get '<task><id>1</id></task>')"
check "xml: fault truncate (curl 18)" "$RC" 18

# ------------------------------------------------------------- log
ctl POST /reset
xcall "$(xreq task.getMulti '<tasks><id>1</id><id>2</id></tasks><pageSize>5</pageSize>')"
ctl POST /fault '{"mode":"status","status":502}'
xcall "$(xreq task.get '<task><id>1</id></task>')"
xcall '<request method="task.get"'
ctl GET /log
check "log: xml entries" "$(jl '#d .. ":" .. d[1].kind .. " " .. d[1].method .. " " .. d[1].path .. " " .. d[1].status')" "3:xml POST / 200"
check "log: xml_method and parsed request" "$(jl 'd[1].xml_method .. "|" .. d[1].xml.account .. "|" .. d[1].xml.pageSize .. "|" .. table.concat(d[1].xml.tasks.id, ",")')" "task.getMulti|sandbox|5|1,2"
check "log: raw XML body and auth header" "$(jl 'd[1].body:sub(1, 5) .. "|" .. d[1].headers.authorization:sub(1, 6)')" "<?xml|Basic "
check "log: faulted xml request" "$(jl 'd[2].fault .. "/" .. d[2].status .. "/" .. d[2].xml.task.id')" "status/502/1"
check "log: unparsable body -> xml null" "$(jl 'tostring(d[3].xml == null) .. "/" .. tostring(d[3].xml_method == null)')" "true/true"
}
