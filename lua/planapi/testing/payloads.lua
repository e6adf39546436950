-- testing/payloads.lua: the requests event senders make, for tests of a
-- receiver's handler: a Planado webhook delivery and a Planfix scenario's
-- HTTP request, as the receivers (planapi.planado_webhook,
-- planapi.planfix_events) take them: { method, path, query, headers, body }.
--
--   local d = testing.planado_delivery { secret = "s", event_type = "job_finished", job = { uuid = "u1" } }
--   hook:serve(d, handler)            or    hook:handle(d.headers, d.body)
--   local r = testing.planfix_request { secret = "s", secret_in = "field:secret",
--     fields = { event = "task_changed", task_id = 42 } }
local core = require "planapi.core"
local config_error = require "planapi.config_error"
local options = require "planapi.options"

local M = {}

local KINDS = { "job", "client", "site" }
-- Deliveries made in this process: each gets its own event_uuid.
local made = 0

-- A UUID's shape from an MD5 (reproducible: the n-th delivery of a run).
local function uuid_from(text)
  local h = core.md5_hex(text)
  return ("%s-%s-4%s-8%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(14, 16), h:sub(18, 20), h:sub(21, 32))
end
M.uuid = uuid_from

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- The resource of a delivery (job, client or site): its kind and a copy
-- with a uuid and a version (1 when not given: a new resource).
local function resource_of(d)
  for _, kind in ipairs(KINDS) do
    if d[kind] ~= nil then
      local r = copy(d[kind])
      r.uuid = r.uuid or uuid_from(kind .. ":" .. made)
      r.version = r.version or 1
      return kind, r
    end
  end
  return nil
end

-- A builder's table checked by the one options check: each key one it
-- knows, of its type.
local function check_fields(t, what, types)
  if type(t) ~= "table" then config_error(("testing.%s needs a table"):format(what), 4) end
  options.check(what, t, 4, types)
end

local DELIVERY = { secret = "string", event_type = "string", event_uuid = "string", attempt = "number",
  context = "table", job = "table", client = "table", site = "table", previous = "table", path = "string",
  body = "string|table" }

local function check_delivery(d)
  check_fields(d, "planado_delivery", DELIVERY)
end

-- The context Planado's webhooks documentation lists: who made the change, from where, when.
local function default_context()
  local at = "2026-01-01T00:00:00.000Z"
  return { source = "api", happened_at = at, created_at = at, user_uuid = core.null, user_email = core.null,
    device_uuid = core.null }
end

--- planado_delivery{ secret =, event_type = "job_updated", job | client | site = {...},
--   event_uuid =, attempt = 1, context =, previous = (the previous version's snapshot),
--   path = "/", body = (a whole body instead) } -> request
-- The body as Planado's API documentation (webhooks) shows it: event_uuid, event_type, context and
-- the resource's snapshot; the secret verbatim in X-Planado-Secret.
function M.planado_delivery(d)
  check_delivery(d)
  made = made + 1
  local body = d.body
  if body == nil then
    local kind, resource = resource_of(d)
    body = { event_uuid = d.event_uuid or uuid_from("event:" .. made),
      event_type = d.event_type or ((kind or "job") .. "_updated"),
      context = d.context or default_context() }
    if kind then
      body[kind] = resource
      if d.previous ~= nil then body["previous_" .. kind] = d.previous end
    end
  end
  local headers = { ["Content-Type"] = "application/json", ["X-Planado-Delivery-Attempt"] = tostring(d.attempt or 1) }
  if d.secret ~= nil then headers["X-Planado-Secret"] = d.secret end
  return { method = "POST", path = d.path or "/", query = {}, headers = headers,
    body = type(body) == "string" and body or core.json_encode(body) }
end

-- application/x-www-form-urlencoded, names sorted (a stable body).
local function form(fields)
  local names = {}
  for k in pairs(fields) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = core.url_escape(k) .. "=" .. core.url_escape(tostring(fields[k])) end
  return table.concat(parts, "&")
end

local REQUEST = { fields = "table", secret = "string", secret_in = "string", format = "string", path = "string",
  method = "string", headers = "table", query = "table" }

local function check_request(r)
  check_fields(r, "planfix_request", REQUEST)
  if r.format ~= nil and r.format ~= "json" and r.format ~= "form" then
    config_error("testing.planfix_request's format is \"json\" (the default) or \"form\"", 3)
  end
end

-- Where the template puts the secret: "header:X-Token", "field:secret" or "query:token".
local function place_secret(r, req, fields)
  if r.secret == nil then return end
  local place, name = (r.secret_in or "field:secret"):match "^(%a+):(.+)$"
  if place == "header" then
    req.headers[name] = r.secret
  elseif place == "query" then
    req.query[name] = r.secret
  elseif place == "field" then
    fields[name] = r.secret
  else
    config_error("testing.planfix_request's secret_in is \"header:Name\", \"field:name\" or \"query:name\"", 3)
  end
end

--- planfix_request{ fields = { event =, task_id = ... }, secret =, secret_in = "field:secret",
--   format = "json" | "form", path = "/planfix", method = "POST", headers =, query = } -> request
-- What a Planfix scenario's "HTTP request" action sends (Planfix's documentation, scenarios): the
-- template's fields as JSON or a form, the secret where the template puts it.
function M.planfix_request(r)
  check_request(r)
  local req = { method = r.method or "POST", path = r.path or "/planfix", query = copy(r.query),
    headers = copy(r.headers) }
  local fields = copy(r.fields)
  place_secret(r, req, fields)
  if r.format == "form" then
    req.headers["Content-Type"] = req.headers["Content-Type"] or "application/x-www-form-urlencoded"
    req.body = form(fields)
  else
    req.headers["Content-Type"] = req.headers["Content-Type"] or "application/json"
    req.body = core.json_encode(fields)
  end
  return req
end

return M
