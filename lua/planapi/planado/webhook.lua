-- planado/webhook.lua: a receiver for Planado webhooks (Planado's API documentation, webhooks),
-- one user of the receiver core (planapi.events.receiver).
--
--   local hook = planapi.planado_webhook{ secret = os.getenv "PLANADO_WEBHOOK_SECRET", store = ... }
--   -- one rule: claim durably, answer 2xx at once, handle after
--   local response, event = hook:receive(request)      -- answer response now (Planado waits 10 s at most)
--   if event then hook:handle(event, handler) end      -- a failure is retried by hook:pending(handler)
--   -- or, as before: local event, err = hook:handle(headers, body); if event and event.fresh then ... end
--
-- X-Planado-Secret is a static shared secret sent verbatim (not an HMAC),
-- compared in constant time. Deliveries are retried for about a week and
-- may arrive twice or out of order, so each is claimed in a store: once by
-- event_uuid, and last-write-wins by the resource's version.
local core = require "planapi.core"
local stores = require "planapi.events.store"
local receiver = require "planapi.events.receiver"
local config_error = require "planapi.config_error"

local Hook = {}
Hook.__index = Hook

local KINDS = { "job", "client", "site" }
local RETRY_HORIZON = 8 * 86400 -- Planado retries a delivery for about a week
local OPTIONS = { "secret", "store", "max_body", "allow_unsigned", "previous_key", "nulls", "lease", "ttl", "clock",
  "retry_delay", "max_retry_delay", "max_attempts" }

local function check_options(opts)
  local valid = {}
  for _, k in ipairs(OPTIONS) do valid[k] = true end
  for k in pairs(opts) do
    if not valid[k] then
      config_error(("unknown planado_webhook option '%s' (valid: %s)"):format(tostring(k), table.concat(OPTIONS, ", ")),
        3)
    end
  end
  if opts.secret == nil and not opts.allow_unsigned then
    config_error("planado_webhook needs the webhook's secret (or allow_unsigned = true to accept anyone's posts)", 3)
  end
  if opts.secret ~= nil and (type(opts.secret) ~= "string" or opts.secret == "") then
    config_error("planado_webhook option 'secret' must be a non-empty string", 3)
  end
  if opts.nulls ~= nil and opts.nulls ~= "absent" and opts.nulls ~= "keep" then
    config_error("planado_webhook option 'nulls' must be \"absent\" (the default) or \"keep\"", 3)
  end
  if opts.store ~= nil and (type(opts.store) ~= "table" or type(opts.store.claim) ~= "function"
      or type(opts.store.release) ~= "function") then
    config_error("planado_webhook option 'store' must have claim and release", 3)
  end
end

-- The event in a delivery: Planado's fields, and id, key, version for the store.
local function parse_with(previous_key)
  return function(request, doc)
    if type(doc) ~= "table" or type(doc.event_uuid) ~= "string" or type(doc.event_type) ~= "string" then
      return nil, "not a Planado event: event_uuid and event_type are required"
    end
    local kind, resource
    for _, k in ipairs(KINDS) do
      if type(doc[k]) == "table" then kind, resource = k, doc[k] break end
    end
    local previous
    if kind then
      -- The key of the previous version is undocumented: accept the likely ones.
      previous = doc[previous_key or ("previous_" .. kind)] or doc["old_" .. kind] or doc.previous
    end
    local resource_uuid = resource and resource.uuid
    return {
      id = doc.event_uuid, key = (kind or "event") .. ":" .. tostring(resource_uuid or doc.event_uuid),
      version = resource and tonumber(resource.version),
      type = doc.event_type, uuid = doc.event_uuid, kind = kind, resource = resource, resource_uuid = resource_uuid,
      previous = previous, attempt = tonumber(receiver.header(request.headers, "x-planado-delivery-attempt")),
      context = doc.context, body = doc,
    }
  end
end

--- planapi.planado_webhook{ secret =, store =, max_body =, allow_unsigned =, previous_key =, nulls =,
--   lease =, ttl =, clock =, retry_delay =, max_retry_delay =, max_attempts = }
-- secret: the webhook's secret; required unless allow_unsigned = true.
-- store: planapi.events.memory (default), .file{ dir = }, .redis{ url = }, or
-- any table with claim and release (then only hook:handle(headers, body)).
-- nulls: "absent" (default) or "keep", as for the clients (README: JSON null).
function Hook.new(opts)
  opts = opts or {}
  check_options(opts)
  local store = opts.store or stores.memory { clock = opts.clock }
  local core_receiver = receiver.new {
    name = "planado_webhook", secret = opts.secret, secret_in = "header:X-Planado-Secret",
    allow_unsigned = opts.allow_unsigned, parse = parse_with(opts.previous_key), store = store, format = "json",
    nulls = opts.nulls, max_body = opts.max_body, lease = opts.lease, ttl = opts.ttl or RETRY_HORIZON,
    clock = opts.clock, retry_delay = opts.retry_delay, max_retry_delay = opts.max_retry_delay,
    max_attempts = opts.max_attempts,
  }
  return setmetatable({ store = store, receiver = core_receiver, max_body = core_receiver.max_body,
    redact = core_receiver.redact }, Hook)
end

Hook.__tostring = function() return "planapi.planado_webhook" end

--- hook:handle(headers, body) -> event | nil, err
-- event = { type, uuid, kind ("job"|"client"|"site"), resource, resource_uuid,
--   previous, version, attempt, context, body,
--   fresh (handle it), duplicate, stale (answer 2xx and drop it), answer = 200 }
-- err.answer is the HTTP status to reply with (401 wrong secret, 413 too
-- large, 400 not an event, 503 the store could not record it).
-- hook:handle(event, handler): the receiver core's handle, for an event of hook:receive.
function Hook:handle(headers, body)
  if type(body) == "function" then return self.receiver:handle(headers, body) end
  local event, err = self.receiver:check { method = "POST", headers = headers, body = body }
  if not event then return nil, err end
  local claim, previous_version = self.store:claim(event.id, event.key, event.version)
  if claim == nil then
    -- The store could not record it (a full disk): 503, so Planado delivers it again.
    local serr = core.is_error(previous_version) and previous_version
      or core.error { kind = "io", message = "the webhook store failed: " .. tostring(previous_version) }
    serr.answer = 503
    return nil, serr
  end
  event.fresh, event.duplicate, event.stale = claim == "new", claim == "duplicate", claim == "stale"
  event.answer, event.previous_version = 200, previous_version
  return event
end

--- hook:receive(request) -> response, event: claim durably (the delivery
-- kept in the store), answer response at once; event only when fresh.
function Hook:receive(request)
  local response, event, detail = self.receiver:receive(request)
  if event then event.fresh = true end
  return response, event, detail
end

--- hook:pending(handler, { limit = }) -> count: events whose handling failed or never finished.
function Hook:pending(handler, opts) return self.receiver:pending(handler, opts) end

--- hook:serve(request, handler) -> response: receive and handle in one.
function Hook:serve(request, handler) return self.receiver:serve(request, handler) end

--- hook:release(event): handling a fresh event of hook:handle(headers, body)
-- failed; forget the claim so that Planado's next delivery of it is handled
-- (answer non-2xx to get one).
function Hook:release(event)
  if event and event.fresh then
    self.store:release(event.uuid, event.key, event.previous_version)
  end
end

Hook.stores = stores
return Hook
