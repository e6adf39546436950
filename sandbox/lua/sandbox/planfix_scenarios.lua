-- Planfix scenario HTTP requests (Planfix's documentation, "Scenarios", the
-- action "HTTP request"): a scenario names triggers (task created, task
-- changed, comment added, status changed), a loopback URL, a method,
-- headers and a body template filled with the task's values when the
-- trigger fires. Planfix signs nothing: whatever authenticates the request
-- is what the template carries.
--
-- Delivery, as Planfix's documentation describes it: requests go out one at
-- a time per account; a failed one (non-2xx, timeout, connection error) is
-- retried after 5, +15, +30, +60 minutes; after a failure the account's
-- outgoing requests pause for about 3 minutes. `factor` compresses both the
-- retry delays and the pause for tests. One worker per account runs in an
-- ngx.timer and stops as soon as a reset replaces the state it started with.
-- The HTTP client, the timer sleep and the test receiver are
-- sandbox.outbound's, shared with the Planado webhook sender.
local json = require("sandbox.json")
local outbound = require("sandbox.outbound")

local M = {}
local null = json.null

M.TRIGGERS = { "task_created", "task_changed", "comment_added", "status_changed" }
local KNOWN_TRIGGER = {}
for _, t in ipairs(M.TRIGGERS) do KNOWN_TRIGGER[t] = true end

-- The placeholders a template may use ({{name}}), besides {{field.<id>}}.
M.PLACEHOLDERS = {
  "event", "event_id", "account", "change_time", "change_ts", "task.id", "task.name", "task.description",
  "task.status.id", "task.status.name", "task.priority", "comment.id", "comment.text",
}
local KNOWN_PLACEHOLDER = {}
for _, p in ipairs(M.PLACEHOLDERS) do KNOWN_PLACEHOLDER[p] = true end

local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true }
local ENCODINGS = { json = "application/json", form = "application/x-www-form-urlencoded", text = "text/plain" }

---------------------------------------------------------------- config and state

-- The English page's schedule: 5 more tries after 5, +15, +30, +60 minutes.
-- It names four intervals for five tries; the fifth waits 60 minutes again,
-- as the last two tries of the Russian page's schedule do.
local function default_config()
  return { delays = json.array({ 300, 900, 1800, 3600, 3600 }), pause = 180, timeout = 10, factor = 1 }
end

local function new_state()
  return {
    config = default_config(),
    accounts = {},   -- name -> { items = {...}, busy = bool, paused_until = seconds }
    pending = 0,     -- requests queued, in flight or waiting for a retry
    attempts = 0,    -- requests sent
    seq = 0,         -- arrival order of the queued requests
  }
end

local function new_world()
  return { scenarios = {}, next_scenario = 1, events = {}, next_event = 1, deliveries = {}, next_delivery = 1 }
end

M.state = new_state()
M.world = new_world()

function M.reset()
  M.state = new_state()
  M.world = new_world()
  M.receiver:reset()
end

local function number_in(v, lo, hi)
  return type(v) == "number" and v >= lo and v <= hi
end

local function set_delays(c, delays)
  if type(delays) ~= "table" then return "scenarios.delays must be an array of seconds" end
  local d = json.array()
  for i, v in ipairs(delays) do
    if not number_in(v, 0, 86400) then return "scenarios.delays must be numbers 0..86400" end
    d[i] = v
  end
  c.delays = d
end

-- POST /_sandbox/config {"scenarios":{"factor":0.001,"delays":[…],"pause":180,"timeout":10}}
function M.configure(w)
  if type(w) ~= "table" then return nil, "scenarios must be an object" end
  local c = M.state.config
  for k, v in pairs(w) do
    local err
    if k == "delays" then err = set_delays(c, v)
    elseif k == "pause" then
      if number_in(v, 0, 3600) then c.pause = v else err = "scenarios.pause must be 0..3600 seconds" end
    elseif k == "timeout" then
      if number_in(v, 0.001, 300) and v > 0 then c.timeout = v else err = "scenarios.timeout must be 0..300 seconds" end
    elseif k == "factor" then
      if number_in(v, 0, 10) then c.factor = v else err = "scenarios.factor must be 0..10" end
    else
      err = "unknown scenarios key '" .. tostring(k) .. "'"
    end
    if err then return nil, err end
  end
  return true
end

function M.describe()
  local c = M.state.config
  return { scenarios = { delays = c.delays, pause = c.pause, timeout = c.timeout, factor = c.factor } }
end

function M.stats()
  return {
    scenario_events = M.world.next_event - 1,
    scenario_requests = M.state.attempts,
    scenario_pending = M.state.pending,
  }
end

---------------------------------------------------------------- templates

-- Calls visit(name) for every {{name}} in the strings of a template value.
local function each_placeholder(v, visit)
  if type(v) == "string" then
    for name in v:gmatch("{{%s*([^{}]-)%s*}}") do visit(name) end
  elseif type(v) == "table" then
    for k, x in pairs(v) do
      each_placeholder(k, visit)
      each_placeholder(x, visit)
    end
  end
end

local function check_placeholders(v, where)
  local bad
  each_placeholder(v, function(name)
    if not KNOWN_PLACEHOLDER[name] and not name:match("^field%.%d+$") then bad = bad or name end
  end)
  if bad then
    return "unknown placeholder {{" .. bad .. "}} in " .. where .. " (known: " .. table.concat(M.PLACEHOLDERS, ", ")
      .. ", field.<id>)"
  end
end

local function text_of(v)
  if v == nil or v == null then return "" end
  if type(v) == "table" then return json.encode(v) end
  return tostring(v)
end

-- Fills the placeholders of one string; escape (optional) encodes each value.
local function fill(s, values, escape)
  return (s:gsub("{{%s*([^{}]-)%s*}}", function(name)
    local text = text_of(values[name])
    return escape and escape(text) or text
  end))
end

-- A JSON template: a string that is one placeholder takes the value's own
-- type (a task id stays a number); other strings are filled as text.
local function fill_json(v, values)
  if type(v) == "string" then
    local only = v:match("^{{%s*([^{}]-)%s*}}$")
    if only then
      local x = values[only]
      if x == nil then return null end
      return x
    end
    return fill(v, values)
  elseif type(v) == "table" and v ~= null then
    if #v > 0 then
      local out = json.array()
      for i, x in ipairs(v) do out[i] = fill_json(x, values) end
      return out
    end
    local out = {}
    for k, x in pairs(v) do out[fill(tostring(k), values)] = fill_json(x, values) end
    return out
  end
  return v
end

local function form_encode(t, values)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = ngx.escape_uri(fill(k, values)) .. "=" .. ngx.escape_uri(fill(text_of(t[k]), values))
  end
  return table.concat(parts, "&")
end

local function render_body(sc, values)
  if sc.body == nil or sc.body == null then return "" end
  if sc.encoding == "json" then return json.encode(fill_json(sc.body, values)) end
  if sc.encoding == "form" then return form_encode(sc.body, values) end
  return fill(sc.body, values)
end

-- The request a scenario makes for an event: url, method, headers, body.
local function render(sc, values)
  local headers, has_type = {}, false
  for _, h in ipairs(sc.headers) do
    -- A value with a line break (a task name) must not end the header early.
    headers[#headers + 1] = { h[1], (fill(h[2], values):gsub("[\r\n]+", " ")) }
    if h[1]:lower() == "content-type" then has_type = true end
  end
  local body = render_body(sc, values)
  if not has_type and body ~= "" then
    table.insert(headers, 1, { "Content-Type", ENCODINGS[sc.encoding] .. "; charset=utf-8" })
  end
  return {
    url = fill(sc.url, values, ngx.escape_uri), method = sc.method, headers = headers, body = body,
  }
end

---------------------------------------------------------------- registry

local function sorted_headers(h)
  local list = {}
  if h == nil or h == null then return list end
  if type(h) ~= "table" then return nil, "headers must be an object of strings" end
  for k, v in pairs(h) do
    if type(k) ~= "string" or not k:match("^[%w%-_]+$") or type(v) ~= "string" or v:match("[\r\n]") then
      return nil, "headers must be an object of strings (a name of letters, digits, '-' or '_')"
    end
    list[#list + 1] = { k, v }
  end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  return list
end

local function triggers_of(spec)
  local list = spec.triggers
  if list == nil or list == null then list = spec.trigger end
  if list == nil or list == null then list = M.TRIGGERS end
  if type(list) == "string" then list = { list } end
  if type(list) ~= "table" or #list == 0 then return nil, "triggers must be a non-empty array" end
  local out = json.array()
  for _, t in ipairs(list) do
    if not KNOWN_TRIGGER[t] then
      return nil, "unknown trigger '" .. tostring(t) .. "' (known: " .. table.concat(M.TRIGGERS, ", ") .. ")"
    end
    out[#out + 1] = t
  end
  return out
end

local function check_body(body, encoding)
  if body == nil or body == null then return nil end
  if encoding == "form" and type(body) ~= "table" then return "a form body must be an object" end
  if encoding == "text" and type(body) ~= "string" then return "a text body must be a string" end
  if encoding == "json" and type(body) ~= "table" and type(body) ~= "string" then
    return "a json body must be an object, an array or a string"
  end
  return check_placeholders(body, "body")
end

local SPEC_KEYS = {
  name = true, trigger = true, triggers = true, url = true, method = true, headers = true,
  body = true, encoding = true, account = true,
}

-- POST /_sandbox/planfix/scenarios: checks a scenario and registers it.
function M.register(spec)
  if type(spec) ~= "table" then return nil, "body must be a JSON object" end
  for k in pairs(spec) do
    if not SPEC_KEYS[k] then return nil, "unknown scenario key '" .. tostring(k) .. "'" end
  end
  if not outbound.parse_url(spec.url) then
    return nil, "url must be a plain http loopback URL (http://127.0.0.1:PORT/path)"
  end
  local sc = {
    name = spec.name or null, url = spec.url, method = (spec.method or "POST"):upper(),
    encoding = spec.encoding or "json", account = spec.account or "main", body = spec.body,
  }
  if not METHODS[sc.method] then return nil, "method must be GET, POST, PUT, PATCH or DELETE" end
  if not ENCODINGS[sc.encoding] then return nil, "encoding must be json, form or text" end
  if type(sc.account) ~= "string" or sc.account == "" then return nil, "account must be a non-empty string" end
  local err
  sc.triggers, err = triggers_of(spec)
  if not sc.triggers then return nil, err end
  sc.headers, err = sorted_headers(spec.headers)
  if not sc.headers then return nil, err end
  err = check_placeholders(sc.url, "url") or check_placeholders(spec.headers, "headers")
    or check_body(sc.body, sc.encoding)
  if err then return nil, err end
  local W = M.world
  sc.id = W.next_scenario
  W.next_scenario = W.next_scenario + 1
  W.scenarios[#W.scenarios + 1] = sc
  return sc
end

function M.unregister(id)
  local list = M.world.scenarios
  for i, sc in ipairs(list) do
    if sc.id == id then
      table.remove(list, i)
      return sc
    end
  end
  return nil
end

function M.scenario_view(sc)
  local headers = {}
  for _, h in ipairs(sc.headers) do headers[h[1]] = h[2] end
  return {
    id = sc.id, name = sc.name, triggers = sc.triggers, url = sc.url, method = sc.method,
    headers = headers, body = sc.body == nil and null or sc.body, encoding = sc.encoding, account = sc.account,
  }
end

---------------------------------------------------------------- sender

local function now()
  ngx.update_time()
  return ngx.now()
end

local function alive(S)
  return M.state == S and not ngx.worker.exiting()
end

local function header_object(list)
  local out = {}
  for _, h in ipairs(list) do out[h[1]] = h[2] end
  return out
end

-- One attempt of a queued request: sends it and logs it. Returns success,
-- or nil when a reset replaced the state meanwhile.
local function attempt(S, item)
  item.attempt = item.attempt + 1
  local r = item.request
  local started = now()
  local status, kind, desc = outbound.request({
    method = r.method, url = r.url, headers = r.headers, body = r.body, timeout = S.config.timeout,
    agent = "planapi-sandbox-planfix-scenarios/1.0",
  })
  if not alive(S) then return nil end
  local success = status ~= nil and status >= 200 and status <= 299
  local W, ev = M.world, item.event
  W.deliveries[#W.deliveries + 1] = {
    id = W.next_delivery, scenario_id = item.scenario.id, account = item.scenario.account,
    event_id = ev.id, event = ev.event, task_id = ev.task_id, attempt = item.attempt,
    method = r.method, url = r.url, headers = header_object(r.headers), body = r.body,
    status = status or kind, success = success,
    error = success and null or (status and ("HTTP " .. status) or desc),
    due = item.due, time = started, duration_ms = math.floor((now() - started) * 1000 + 0.5),
  }
  W.next_delivery = W.next_delivery + 1
  S.attempts = S.attempts + 1
  return success
end

-- The account's next request: the earliest due, in arrival order.
local function next_item(acc)
  local best, index
  for i, it in ipairs(acc.items) do
    if not best or it.due < best.due or (it.due == best.due and it.seq < best.seq) then best, index = it, i end
  end
  return best, index
end

local function drop(S, acc, index)
  table.remove(acc.items, index)
  S.pending = S.pending - 1
end

-- After an attempt: done, given up, or due again after the next delay with
-- the whole account paused.
local function settle(S, acc, item, index, ok)
  local c = S.config
  if ok or item.attempt > #c.delays then return drop(S, acc, index) end
  local t = now()
  item.due = t + c.delays[item.attempt] * c.factor
  acc.paused_until = t + c.pause * c.factor
end

-- The account's worker: one request at a time, until its queue is empty.
local function run_account(premature, S, acc)
  if premature then return end
  local function still() return alive(S) end
  while alive(S) do
    local item, index = next_item(acc)
    if not item then
      acc.busy = false
      return
    end
    local at, t = math.max(item.due, acc.paused_until), now()
    if item.scenario.removed then
      drop(S, acc, index)
    elseif at > t then
      -- Short slices: a request queued meanwhile may be due before this one.
      if not outbound.wait(still, math.min(at - t, 0.05)) then return end
    else
      local okc, ok = pcall(attempt, S, item)
      if not okc then ngx.log(ngx.WARN, "planfix scenario request failed: ", tostring(ok)) end
      if okc and ok == nil then return end
      settle(S, acc, item, index, okc and ok)
    end
  end
end

local function enqueue(sc, ev, request)
  local S = M.state
  local acc = S.accounts[sc.account]
  if not acc then
    acc = { items = {}, busy = false, paused_until = 0 }
    S.accounts[sc.account] = acc
  end
  S.seq = S.seq + 1
  acc.items[#acc.items + 1] = { scenario = sc, event = ev, request = request, attempt = 0, due = now(), seq = S.seq }
  S.pending = S.pending + 1
  outbound.start_worker(acc, "planfix scenarios", run_account, S, acc)
end

function M.pending()
  return M.state.pending
end

---------------------------------------------------------------- events

local function task_values(task, comment, time)
  local st = type(task.status) == "table" and task.status or {}
  local v = {
    ["task.id"] = task.id, ["task.name"] = task.name, ["task.description"] = task.description,
    ["task.status.id"] = st.id, ["task.status.name"] = st.name, ["task.priority"] = task.priority,
    change_ts = math.floor(time), change_time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(time)),
  }
  for fid, val in pairs(task._cf or {}) do v["field." .. fid] = val end
  if comment then
    v["comment.id"], v["comment.text"] = comment.id, comment.description
  end
  return v
end

local function wants(sc, trigger)
  for _, t in ipairs(sc.triggers) do
    if t == trigger then return true end
  end
  return false
end

-- Records one event and queues a request of every scenario with its trigger,
-- filled with the task's values as they are now.
local function emit(trigger, task, comment, time)
  local W = M.world
  local values = task_values(task, comment, time)
  local ev = {
    id = tostring(W.next_event), event = trigger, task_id = task.id,
    comment_id = comment and comment.id or null, time = time,
  }
  W.next_event = W.next_event + 1
  W.events[#W.events + 1] = ev
  values.event, values.event_id = trigger, ev.id
  for _, sc in ipairs(W.scenarios) do
    if wants(sc, trigger) then
      values.account = sc.account
      enqueue(sc, ev, render(sc, values))
    end
  end
end

-- The triggers, called by the REST and XML handlers after a successful write.
function M.task_created(task, time)
  emit("task_created", task, nil, time)
end

-- changed: the names of the fields the write changed ("status" among them
-- fires status_changed too). A write that changed nothing fires nothing.
function M.task_changed(task, changed, time)
  if #changed == 0 then return end
  emit("task_changed", task, nil, time)
  for _, f in ipairs(changed) do
    if f == "status" then emit("status_changed", task, nil, time) end
  end
end

function M.comment_added(task, comment, time)
  emit("comment_added", task, comment, time)
end

---------------------------------------------------------------- control (/_sandbox/planfix/...)

-- /_sandbox/planfix/test-receiver[/<name>]: records every request with the
-- fields of its body (JSON, or a form) and the event they name.
M.receiver = outbound.receiver(function(entry, h, j)
  local fields = j
  local ctype = outbound.one(h["content-type"]) or ""
  if fields == nil and ctype:lower():find("application/x-www-form-urlencoded", 1, true) then
    fields = ngx.decode_args(entry.body, 0)
  end
  entry.fields = fields or null
  entry.event = type(fields) == "table" and type(fields.event) == "string" and fields.event or null
end)

local filtered = outbound.filtered

local function scenarios_endpoint(req)
  if req.method == "POST" then
    local sc, err = M.register(outbound.body_object(req))
    if not sc then return outbound.bad(err) end
    return outbound.reply(200, { result = "success", scenario = M.scenario_view(sc) })
  elseif req.method == "GET" then
    return outbound.reply(200, { result = "success", scenarios = filtered(M.world.scenarios, req, M.scenario_view, {}) })
  end
end

local function requests_endpoint(req)
  if req.method == "GET" then
    local list = filtered(M.world.deliveries, req, nil, { "scenario_id", "event_id", "event", "task_id", "account" })
    return outbound.reply(200, { result = "success", pending = M.pending(), requests = list })
  elseif req.method == "DELETE" then
    M.world.deliveries = {}
    return outbound.reply(200, { result = "success" })
  end
end

-- Dispatch of /_sandbox/planfix/... (path without the /_sandbox prefix and
-- without trailing slashes). Returns true when it answered.
function M.control(req, path)
  if M.receiver:dispatch(req, path, "/planfix") then return true end
  local m = req.method
  if path == "/planfix/scenarios" and (m == "POST" or m == "GET") then
    return scenarios_endpoint(req) or true
  end
  local id = tonumber(path:match("^/planfix/scenarios/(%d+)$"))
  if id and m == "DELETE" then
    local sc = M.unregister(id)
    if not sc then return outbound.bad("scenario not found", 404) or true end
    sc.removed = true
    return outbound.reply(200, { result = "success" }) or true
  end
  if path == "/planfix/scenarios/flush" and m == "POST" then
    return outbound.flush_endpoint(req, M) or true
  end
  if path == "/planfix/requests" and (m == "GET" or m == "DELETE") then
    return requests_endpoint(req) or true
  end
  if path == "/planfix/events" and m == "GET" then
    return outbound.reply(200, { result = "success", events = filtered(M.world.events, req, nil, { "event", "task_id" }) })
      or true
  end
  return nil
end

return M
