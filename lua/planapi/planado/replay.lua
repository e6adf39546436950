-- planado/replay.lua: missed Planado webhook deliveries, caught up from the
-- delivery log (Planado's API documentation, webhooks: GET
-- /webhooks/{uuid}/requests lists every attempt with the request body it
-- sent). A receiver that was down, or answered non-2xx until Planado gave
-- up, feeds the bodies of the failed deliveries through the same receiver
-- (hook:receive): its store dedupes by event_uuid and orders by version, so
-- replaying everything is safe: an event already handled is a duplicate.
--
--   local report = planapi.planado_replay(pd, hook, webhook_uuid, { handler = handle })
--   -- report.fresh events were handled now; report.duplicate had been already
local core = require "planapi.core"
local config_error = require "planapi.config_error"

local M = {}

local OPTIONS = { handler = true, all = true, params = true, path = true }

local function check_args(pd, hook, webhook_uuid, opts)
  if type(pd) ~= "table" or type(pd.webhooks) ~= "table" then
    config_error("planado_replay needs a Planado client (planapi.planado{...}) first", 3)
  end
  if type(hook) ~= "table" or type(hook.receive) ~= "function" or type(hook.receiver) ~= "table" then
    config_error("planado_replay needs the webhook receiver (planapi.planado_webhook{...}) second", 3)
  end
  if type(webhook_uuid) ~= "string" or webhook_uuid == "" then
    config_error("planado_replay needs the webhook's uuid third", 3)
  end
  if opts ~= nil and type(opts) ~= "table" then config_error("planado_replay options must be a table", 3) end
  for k in pairs(opts or {}) do
    if not OPTIONS[k] then
      config_error(("unknown planado_replay option '%s' (valid: all, handler, params, path)"):format(tostring(k)), 3)
    end
  end
  if opts and opts.handler ~= nil and type(opts.handler) ~= "function" then
    config_error("planado_replay option 'handler' must be a function", 3)
  end
end

-- The event a delivery carried: its event_uuid (the log's own field where
-- there is one, else the body's) and the body as sent.
local function delivery_event(r)
  local body = r.http_request_body
  if type(body) == "table" then body = core.json_encode(body) end
  if type(body) ~= "string" or body == "" then return nil end
  local id = r.event_uuid
  if type(id) ~= "string" then
    local doc = core.json_decode(body)
    id = type(doc) == "table" and doc.event_uuid or nil
  end
  return { id = type(id) == "string" and id or body, body = body }
end

-- The events of the log in the order first sent, each with its body, its
-- last attempt number and whether any attempt succeeded.
local function read_log(pd, webhook_uuid, params)
  local events, order, read = {}, {}, 0
  local ok, err = pcall(function()
    for r in pd.webhooks:requests(webhook_uuid, params) do
      read = read + 1
      local d = delivery_event(r)
      if d then
        local e = events[d.id]
        if not e then
          e = { body = d.body, attempt = 0, delivered = false }
          events[d.id] = e
          order[#order + 1] = e
        end
        e.attempt = math.max(e.attempt, tonumber(r.attempt_no) or 0)
        if r.status == "success" then e.delivered = true end
      end
    end
  end)
  if not ok then
    if core.is_error(err) then return nil, err end
    return nil, core.error { kind = "internal", message = "reading the delivery log failed: " .. tostring(err) }
  end
  return order, read
end

-- The request Planado made, as the receiver sees one (the secret is the
-- hook's own: the body comes from the API, authenticated by the API key).
local function request_for(hook, e, path)
  local headers = { ["Content-Type"] = "application/json", ["X-Planado-Delivery-Attempt"] = tostring(e.attempt) }
  if hook.receiver.secret then headers["X-Planado-Secret"] = hook.receiver.secret end
  return { method = "POST", path = path or "/", query = {}, headers = headers, body = e.body }
end

-- Feeds one event through the receiver and, with a handler, handles it.
local function feed(hook, e, opts, report)
  local response, event, detail = hook:receive(request_for(hook, e, opts.path))
  if event then
    report.fresh = report.fresh + 1
    if not opts.handler then
      report.events[#report.events + 1] = event
    elseif hook:handle(event, opts.handler) then
      report.handled = report.handled + 1
    else
      report.failed = report.failed + 1 -- retried by hook:pending, as a live one would be
    end
  elseif response.status == 200 then
    local outcome = detail and detail.claim or "duplicate"
    report[outcome] = (report[outcome] or 0) + 1
  else
    report.refused = report.refused + 1
    report.errors[#report.errors + 1] = detail
  end
end

--- planapi.planado_replay(pd, hook, webhook_uuid, { handler =, all =, params =, path = })
--   -> report | nil, err
-- Reads the webhook's delivery log and feeds each event that was never
-- delivered (no 2xx among its attempts; all = true: every event) through
-- hook:receive. handler(event): each fresh event is handled at once through
-- hook:handle (a failure is retried by hook:pending); without one the fresh
-- events are in report.events for the caller to hand to hook:handle.
-- report = { deliveries, events_in_log, replayed, fresh, handled, failed,
--   duplicate, stale, refused, errors = {...}, events = {...} }.
-- params go to the log's listing; path is the request path the receiver sees.
function M.replay(pd, hook, webhook_uuid, opts)
  check_args(pd, hook, webhook_uuid, opts)
  opts = opts or {}
  local log, read = read_log(pd, webhook_uuid, opts.params)
  if not log then return nil, read end
  local report = { deliveries = read, events_in_log = #log, replayed = 0, fresh = 0, handled = 0, failed = 0,
    duplicate = 0, stale = 0, refused = 0, errors = {}, events = {} }
  for _, e in ipairs(log) do
    if opts.all or not e.delivered then
      report.replayed = report.replayed + 1
      feed(hook, e, opts, report)
    end
  end
  return report
end

return M
