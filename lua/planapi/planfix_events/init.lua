-- planfix_events: a receiver for Planfix scenario HTTP requests (Planfix's documentation, scenarios,
-- the "HTTP request" action), one user of the receiver core (planapi.events.receiver).
--
--   local pf = planapi.planfix_events{ secret = os.getenv "PLANFIX_HOOK_SECRET", secret_in = "field:secret",
--     id = { "event", "task_id", "changed_at" }, store = planapi.events.file{ dir = "/var/lib/myapp/planfix" } }
--   local response, event = pf:receive(request)   -- answer response now
--   if event then pf:handle(event, handler) end    -- handler(event): event.fields, event:fetch(rest)
--
-- Planfix signs nothing: what authenticates a request is the secret the
-- account's admin wrote into the scenario's template (a header, a body
-- field or the URL). It sends requests one at a time per account and a
-- failure pauses all of them for minutes, so the answer must come at once.
-- A template carries no event id unless it is given one; without one, an
-- event is known by a hash of its body, remembered for a window.
local core = require "planapi.core"
local receiver = require "planapi.events.receiver"
local config_error = require "planapi.config_error"

-- The events handed to handlers: the template's fields and event:fetch.
local Events = {}
Events.__index = Events
local M = {}

local DAY = 86400
-- Planfix retries a failed request for under 3 hours (5, 15, 30 and 60
-- minutes apart, with a pause of about 3 minutes after each failure): a
-- body seen again within 4 hours is that retry.
local DEFAULT_WINDOW = 4 * 3600
local OWN = { id = true, key = true, version = true, type = true, task_id = true, window = true }
local CORE = { "secret", "secret_in", "allow_unsigned", "store", "max_body", "lease", "ttl", "clock", "retry_delay",
  "max_retry_delay", "max_attempts", "format", "nulls" }

-- A field name, a list of names, or a function(fields, request): the option's reader.
local function reader(opt, what)
  if opt == nil or type(opt) == "function" then return opt end
  if type(opt) == "string" then opt = { opt } end
  if type(opt) ~= "table" or #opt == 0 then
    config_error(("planfix_events option '%s' must be a field name, a list of them or a function"):format(what), 4)
  end
  for _, name in ipairs(opt) do
    if type(name) ~= "string" then
      config_error(("planfix_events option '%s' must list field names (strings)"):format(what), 4)
    end
  end
  return function(fields)
    local parts = {}
    for i, name in ipairs(opt) do
      local v = type(fields) == "table" and fields[name] or nil
      if type(v) ~= "string" and type(v) ~= "number" then return nil end
      parts[i] = tostring(v)
    end
    return table.concat(parts, "|")
  end
end

local function check_options(opts)
  local valid = {}
  for _, k in ipairs(CORE) do valid[k] = true end
  for k in pairs(OWN) do valid[k] = true end
  for k in pairs(opts) do
    if not valid[k] then
      config_error(("unknown planfix_events option '%s' (valid: id, key, version, type, task_id, window, %s)")
        :format(tostring(k), table.concat(CORE, ", ")), 3)
    end
  end
  if opts.window ~= nil and (type(opts.window) ~= "number" or opts.window <= 0) then
    config_error("planfix_events option 'window' must be a number of seconds > 0", 3)
  end
end

-- What identifies a request without an id: its body, or for a body-less
-- request (a GET template) its query without the secret, sorted.
local function content_of(request, secret_key)
  if request.body ~= nil and request.body ~= "" then return request.body end
  local pairs_ = {}
  for k, v in pairs(type(request.query) == "table" and request.query or {}) do
    if type(v) == "table" then v = v[1] end
    if k ~= secret_key and type(k) == "string" then pairs_[#pairs_ + 1] = core.url_escape(k) .. "=" .. tostring(v) end
  end
  table.sort(pairs_)
  return table.concat(pairs_, "&")
end

-- The parse for the core: the event from the template's fields.
local function parse_with(o)
  return function(request, fields)
    if type(fields) ~= "table" then return nil, "not a Planfix scenario request: the body has no fields" end
    local ev = { fields = fields }
    local id = o.id and o.id(fields, request)
    if id == nil and o.id then return nil, "the event's id is missing from the request" end
    if id == nil then
      id, ev.ttl = "md5:" .. core.md5_hex(content_of(request, o.secret_key)), o.window
    end
    ev.id = tostring(id)
    ev.key = o.key and o.key(fields, request)
    if ev.key ~= nil then ev.key = tostring(ev.key) end
    ev.version = o.version and tonumber(o.version(fields, request))
    ev.type = o.type(fields, request)
    local task_id = o.task_id(fields, request)
    ev.task_id = tonumber(task_id) or task_id
    return setmetatable(ev, Events)
  end
end

--- planapi.planfix_events{ secret =, secret_in = "header:X-Token" | "field:secret" | "query:token",
--   id =, key =, version =, type = "event", task_id = "task_id", window = 14400, store =, ttl = 86400,
--   max_body =, lease =, clock =, retry_delay =, max_retry_delay =, max_attempts =, format =, nulls =,
--   allow_unsigned = }
-- id, key, version, type, task_id: a field name, a list of names (joined with "|") or a
-- function(fields, request). Without id an event is known by the MD5 of its body for window seconds.
-- version: a number (or a number's text) ordering the events of one key; an older one is stale.
function M.new(opts)
  if type(opts) ~= "table" then config_error("planfix_events needs an options table", 2) end
  check_options(opts)
  local o = { id = reader(opts.id, "id"), key = reader(opts.key, "key"), version = reader(opts.version, "version"),
    type = reader(opts.type or "event", "type"), task_id = reader(opts.task_id or "task_id", "task_id"),
    window = opts.window or DEFAULT_WINDOW }
  local core_opts = { name = "planfix_events", parse = parse_with(o), ttl = DAY }
  for _, k in ipairs(CORE) do
    if opts[k] ~= nil then core_opts[k] = opts[k] end
  end
  local r = receiver.new(core_opts)
  o.secret_key = r.secret_place == "query" and r.secret_key or nil
  return r
end

--- event:fetch(rest [, params]) -> task | nil, err: the task the event is
-- about, read again over REST (the template carries only what it was
-- given). rest is a planapi.planfix_rest client (any object with
-- tasks:get(id, params)); its limiter paces the read.
function Events:fetch(rest, params)
  if type(rest) ~= "table" or type(rest.tasks) ~= "table" or type(rest.tasks.get) ~= "function" then
    config_error("event:fetch needs a Planfix REST client (planapi.planfix_rest{...})", 2)
  end
  if self.task_id == nil then
    config_error("event:fetch: the event has no task id (the option task_id names its field)", 2)
  end
  return rest.tasks:get(self.task_id, params)
end

M.Event = Events
return M
