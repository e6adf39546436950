-- Planado webhooks (Planado's API documentation): events, the webhook registry, the sender
-- and its delivery log, and a test receiver.
--
-- Every change of a job, client or site made through the API (and the control
-- calls that start or finish a job) becomes an event (emit). The event goes
-- to every registered webhook whose event_types contain its type. Deliveries
-- of one webhook for one entity are sent one after the other, in event order,
-- by a worker running in an ngx.timer: a failed attempt (non-2xx, timeout,
-- connection error) is retried after a growing delay until max_attempts
-- attempts were made, and only then does the next event of that entity go.
-- A replay (POST /_sandbox/planado/webhooks/replay) bypasses that order.
--
-- The sender is sandbox.outbound's minimal HTTP/1.1 client over
-- ngx.socket.tcp, for plain-http loopback URLs only. Workers hold the state table they started with and stop
-- as soon as a reset replaces it (or nginx is exiting), so nothing leaks from
-- one test into the next.
local json = require("sandbox.json")
local util = require("sandbox.util")
local store = require("sandbox.store")
local data = require("sandbox.planado_data")
local outbound = require("sandbox.outbound")

local M = {}
local null = json.null

M.EVENT_TYPES = {
  "job_created", "job_updated", "job_deleted", "job_started", "job_finished",
  "client_created", "client_updated", "site_created", "site_updated",
}
local KNOWN_TYPE = {}
for _, t in ipairs(M.EVENT_TYPES) do KNOWN_TYPE[t] = true end

-- The API user the events name in context.user_uuid / user_email.
M.ACTOR_USER = 1

---------------------------------------------------------------- config

-- Default retry delays: 5 s doubling, 17 of them (5, 10, … 327680 s: the
-- last attempt ~7.6 days after the first, as "about a week" in the docs).
local function default_delays()
  local d = json.array()
  for i = 1, 17 do d[i] = 5 * 2 ^ (i - 1) end
  return d
end

local function default_config()
  return { delays = default_delays(), timeout = 10, max_attempts = 18, duplicate = false }
end

local function new_state()
  return {
    config = default_config(),
    queues = {},        -- "webhook|entity" -> { items = {...}, busy = bool }
    pending = 0,        -- deliveries queued, in flight or waiting for a retry
    last_attempt = {},  -- "webhook|event" -> last attempt number sent
    attempts = 0,       -- attempts made (all webhooks)
  }
end

M.state = new_state()

function M.reset()
  M.state = new_state()
  M.receiver:reset()
end

function M.configure(w)
  if type(w) ~= "table" then return nil, "planado.webhook must be an object" end
  local c = M.state.config
  local known = { delays = true, timeout = true, max_attempts = true, duplicate = true }
  for k in pairs(w) do
    if not known[k] then return nil, "unknown planado.webhook key '" .. tostring(k) .. "'" end
  end
  if w.delays ~= nil then
    if type(w.delays) ~= "table" or #w.delays == 0 then return nil, "planado.webhook.delays must be a non-empty array of seconds" end
    local d = json.array()
    for i, v in ipairs(w.delays) do
      if type(v) ~= "number" or v < 0 or v > 30 * 86400 then return nil, "planado.webhook.delays must be numbers 0..2592000" end
      d[i] = v
    end
    c.delays = d
  end
  if w.timeout ~= nil then
    if type(w.timeout) ~= "number" or w.timeout <= 0 or w.timeout > 300 then return nil, "planado.webhook.timeout must be 0..300 seconds" end
    c.timeout = w.timeout
  end
  if w.max_attempts ~= nil then
    local n = util.to_int(w.max_attempts)
    if not n or n < 1 or n > 1000 then return nil, "planado.webhook.max_attempts must be 1..1000" end
    c.max_attempts = n
  end
  if w.duplicate ~= nil then
    if type(w.duplicate) ~= "boolean" then return nil, "planado.webhook.duplicate must be a boolean" end
    c.duplicate = w.duplicate
  end
  return true
end

function M.describe()
  local c = M.state.config
  return { delays = c.delays, timeout = c.timeout, max_attempts = c.max_attempts, duplicate = c.duplicate }
end

---------------------------------------------------------------- registry

-- POST /_sandbox/planado/webhooks {"url","secret","event_types"}.
function M.register(spec)
  if type(spec) ~= "table" then return nil, "body must be a JSON object" end
  if not outbound.parse_url(spec.url) then
    return nil, "url must be a plain http loopback URL (http://127.0.0.1:PORT/path)"
  end
  local secret = spec.secret
  if secret == nil then secret = null end
  if secret ~= null and type(secret) ~= "string" then return nil, "secret must be a string or null" end
  local types = json.array()
  if spec.event_types == nil or spec.event_types == null then
    for i, t in ipairs(M.EVENT_TYPES) do types[i] = t end
  else
    if type(spec.event_types) ~= "table" then return nil, "event_types must be an array" end
    for _, t in ipairs(spec.event_types) do
      if not KNOWN_TYPE[t] then
        return nil, "unknown event type '" .. tostring(t) .. "' (known: " .. table.concat(M.EVENT_TYPES, ", ") .. ")"
      end
      types[#types + 1] = t
    end
  end
  local db = store.db
  local wh = { uuid = data.next_uuid(db, "webhook"), url = spec.url, secret = secret, event_types = types }
  data.insert(db, "webhooks", wh)
  return wh
end

function M.unregister(uuid)
  local db = store.db
  local wh = db.planado_webhooks[uuid]
  if not wh then return nil end
  data.remove(db, "webhooks", wh)
  return wh
end

function M.webhook_view(wh)
  return { uuid = wh.uuid, url = wh.url, event_types = wh.event_types, secret = wh.secret }
end

---------------------------------------------------------------- events

local function context(source, now)
  local db = store.db
  local u = db.planado_users[data.uuid("user", M.ACTOR_USER)]
  return {
    source = source, happened_at = data.iso(now), created_at = data.iso(now),
    user_uuid = u and u.uuid or null, user_email = u and u.email or null, device_uuid = null,
  }
end

local enqueue

-- Records an event of entity_type ("job", "client", "site") about rec (its
-- version is the new one) and queues its deliveries. snapshot/previous are
-- the full shapes after/before (previous nil for creations); payload goes to
-- the job history. source is "api" or "web". Returns the event.
function M.emit(entity_type, event_type, rec, snapshot, previous, payload, source)
  local db = store.db
  ngx.update_time()
  local now = ngx.now()
  local uuid = data.next_uuid(db, "event")
  local ctx = context(source or "api", now)
  local body = { event_uuid = uuid, event_type = event_type, context = ctx }
  body[entity_type] = snapshot
  if previous then body["previous_" .. entity_type] = previous end
  local ev = {
    uuid = uuid, event_type = event_type, entity_type = entity_type, entity_uuid = rec.uuid,
    version = rec.version, time = now, context = ctx, payload = payload or {},
    body = json.encode(body),
  }
  db.planado_events[uuid] = ev
  db.planado_event_log[#db.planado_event_log + 1] = ev
  if rec._events then rec._events[#rec._events + 1] = ev end
  for _, wh in ipairs(db.planado_order.webhooks) do
    for _, t in ipairs(wh.event_types) do
      if t == event_type then
        enqueue(wh, ev, { })
        break
      end
    end
  end
  return ev
end

---------------------------------------------------------------- sender

local function alive(S)
  return M.state == S and not ngx.worker.exiting()
end

-- Sleeps `seconds` in short slices; false when the world was reset meanwhile.
local function wait(S, seconds)
  return outbound.wait(function() return alive(S) end, seconds)
end

-- One attempt: sends, logs it in db.planado_deliveries, returns success.
local function attempt(S, item, n, send_at)
  local wh, ev = item.webhook, item.event
  local headers = { { "Content-Type", "application/json" } }
  if type(wh.secret) == "string" then headers[#headers + 1] = { "X-Planado-Secret", wh.secret } end
  headers[#headers + 1] = { "X-Planado-Delivery-Attempt", tostring(n) }
  ngx.update_time()
  local started = ngx.now()
  local status, kind, desc = outbound.request({
    url = wh.url, headers = headers, body = ev.body, timeout = S.config.timeout,
    agent = "planapi-sandbox-planado-webhooks/1.0",
  })
  if not alive(S) then return nil end
  ngx.update_time()
  local finished = ngx.now()
  local success = status ~= nil and status >= 200 and status <= 299
  local db = store.db
  local rec = {
    uuid = data.next_uuid(db, "delivery"), webhook_uuid = wh.uuid, url = wh.url,
    event_uuid = ev.uuid, event_type = ev.event_type, entity_type = ev.entity_type,
    entity_uuid = ev.entity_uuid, version = ev.version, attempt = n,
    status = status or kind, success = success,
    http_response_code = status or null,
    error_type = success and null or (status and "http_status" or kind),
    error_description = success and null or (status and ("HTTP " .. status) or desc),
    send_at = send_at, time = started, duration_ms = math.floor((finished - started) * 1000 + 0.5),
    replay = item.replay or false, duplicate = item.duplicate_of ~= nil and n == item.duplicate_of + 1 or false,
    _body = ev.body,
  }
  db.planado_deliveries[#db.planado_deliveries + 1] = rec
  S.attempts = S.attempts + 1
  S.last_attempt[wh.uuid .. "|" .. ev.uuid] = n
  return success
end

-- Delivers one item: attempts until success or max_attempts tries of this
-- round; with `duplicate`, a successful first round is followed by one more
-- attempt of the same event. Returns false when the world was reset.
local function deliver(S, item)
  local key = item.webhook.uuid .. "|" .. item.event.uuid
  local n = (S.last_attempt[key] or 0) + 1
  local tries = 0
  ngx.update_time()
  local send_at = ngx.now()
  while true do
    -- An unregistered webhook gets nothing more.
    if not store.db.planado_webhooks[item.webhook.uuid] then return true end
    local ok = attempt(S, item, n, send_at)
    if ok == nil then return false end
    tries = tries + 1
    if ok then
      if S.config.duplicate and not item.replay and not item.duplicate_of then
        item.duplicate_of = n
        n = n + 1
        ngx.update_time()
        send_at = ngx.now()
      else
        return true
      end
    else
      if tries >= S.config.max_attempts then return true end
      local delays = S.config.delays
      local delay = delays[math.min(tries, #delays)] or 0
      ngx.update_time()
      send_at = ngx.now() + delay
      if not wait(S, delay) then return false end
      n = n + 1
    end
  end
end

local function run_queue(premature, S, key)
  if premature then return end
  local q = S.queues[key]
  while q and alive(S) do
    local item = table.remove(q.items, 1)
    if not item then
      q.busy = false
      return
    end
    local okc, res = pcall(deliver, S, item)
    if not okc then ngx.log(ngx.WARN, "planado webhook delivery failed: ", tostring(res)) end
    if M.state ~= S then return end
    S.pending = S.pending - 1
  end
end

local function start_worker(S, key)
  outbound.start_worker(S.queues[key], "planado webhooks", run_queue, S, key)
end

-- Queues a delivery of ev to wh behind the earlier events of the same entity.
enqueue = function(wh, ev, opts)
  local S = M.state
  local key = wh.uuid .. "|" .. ev.entity_uuid
  local q = S.queues[key]
  if not q then
    q = { items = {}, busy = false }
    S.queues[key] = q
  end
  q.items[#q.items + 1] = { webhook = wh, event = ev }
  S.pending = S.pending + 1
  start_worker(S, key)
end

local function run_replay(premature, S, item, delay)
  if premature then return end
  if delay and delay > 0 and not wait(S, delay) then return end
  if alive(S) then
    local okc, res = pcall(deliver, S, item)
    if not okc then ngx.log(ngx.WARN, "planado webhook replay failed: ", tostring(res)) end
  end
  if M.state == S then S.pending = S.pending - 1 end
end

-- Re-sends an old event now (or after `delay`), outside the per-entity order,
-- to the given webhook or to every webhook subscribed to its type. Returns
-- the number of deliveries started, or nil, err.
function M.replay(event_uuid, webhook_uuid, delay)
  local db = store.db
  local ev = db.planado_events[event_uuid]
  if not ev then return nil, "unknown event_uuid" end
  if not ev.body then return nil, "a seeded or generated record's creation event has no webhook body" end
  local S = M.state
  local n = 0
  for _, wh in ipairs(db.planado_order.webhooks) do
    local wanted = webhook_uuid == nil or wh.uuid == webhook_uuid
    local subscribed = false
    for _, t in ipairs(wh.event_types) do if t == ev.event_type then subscribed = true end end
    if wanted and (subscribed or webhook_uuid ~= nil) then
      S.pending = S.pending + 1
      local ok, err = ngx.timer.at(0, run_replay, S, { webhook = wh, event = ev, replay = true }, delay)
      if not ok then
        S.pending = S.pending - 1
        return nil, "cannot start a timer: " .. tostring(err)
      end
      n = n + 1
    end
  end
  if webhook_uuid ~= nil and n == 0 then return nil, "unknown webhook_uuid" end
  return n
end

function M.pending()
  return M.state.pending
end

---------------------------------------------------------------- views

-- GET /_sandbox/planado/deliveries item.
function M.delivery_view(d)
  return {
    uuid = d.uuid, webhook_uuid = d.webhook_uuid, url = d.url, event_uuid = d.event_uuid,
    event_type = d.event_type, entity_type = d.entity_type, entity_uuid = d.entity_uuid,
    version = d.version, attempt = d.attempt, status = d.status, success = d.success,
    error_description = d.error_description, send_at = d.send_at, time = d.time,
    duration_ms = d.duration_ms, replay = d.replay, duplicate = d.duplicate,
  }
end

-- GET /webhooks/{uuid}/requests item: the documented fields (+ uuid, event_uuid).
function M.request_view(d)
  return {
    uuid = d.uuid, event_uuid = d.event_uuid, event_type = d.event_type,
    entity_type = d.entity_type, entity_uuid = d.entity_uuid, entity_version = d.version,
    attempt_no = d.attempt, status = d.success and "success" or "failure",
    http_request_body = d._body, http_response_code = d.http_response_code,
    send_at = data.iso(d.send_at), sent_at = data.iso(d.time), request_time_ms = d.duration_ms,
    error_type = d.error_type, error_description = d.error_description,
  }
end

function M.event_view(ev)
  return {
    event_uuid = ev.uuid, event_type = ev.event_type, entity_type = ev.entity_type,
    entity_uuid = ev.entity_uuid, version = ev.version, time = ev.time,
    body = ev.body and json.raw(ev.body) or null,
  }
end

---------------------------------------------------------------- test receiver

-- /_sandbox/planado/test-receiver[/<name>]: records every request (with the
-- delivery attempt, the secret and the event it carries) and answers the next
-- scripted answer, else the configured default.
M.receiver = outbound.receiver(function(entry, h, j)
  entry.attempt = tonumber(outbound.one(h["x-planado-delivery-attempt"]) or "") or null
  entry.secret = outbound.one(h["x-planado-secret"]) or null
  entry.event_uuid = type(j) == "table" and j.event_uuid or null
  entry.event_type = type(j) == "table" and j.event_type or null
end)

return M
