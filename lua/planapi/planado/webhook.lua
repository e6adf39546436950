-- planado/webhook.lua: a receiver for Planado webhooks (Planado's API documentation, webhooks).
--
--   local hook = planapi.planado_webhook{ secret = os.getenv "PLANADO_WEBHOOK_SECRET" }
--   local event, err = hook:handle(headers, body)
--   -- answer 2xx at once (Planado waits 10 s at most), then work:
--   if event and event.fresh then queue:push(event) end
--
-- X-Planado-Secret is a static shared secret sent verbatim (not an HMAC),
-- compared in constant time. Deliveries are retried for about a week and
-- may arrive twice or out of order, so each is claimed in a store: once by
-- event_uuid, and last-write-wins by the resource's version.
local core = require "planapi.core"
local stores = require "planapi.webhook_store"

local Hook = {}
Hook.__index = Hook

local KINDS = { "job", "client", "site" }
local DEFAULT_MAX_BODY = 1024 * 1024

local config_error = require "planapi.config_error"

--- planapi.planado_webhook{ secret =, store =, max_body =, allow_unsigned =, nulls = }
-- secret: the webhook's secret; required unless allow_unsigned = true.
-- store: webhook_store.memory (default) or webhook_store.file{ dir = } or
-- any table with claim and release.
-- nulls: "absent" (default) or "keep", as for the clients (README: JSON null).
function Hook.new(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "secret" and k ~= "store" and k ~= "max_body" and k ~= "allow_unsigned" and k ~= "previous_key"
        and k ~= "nulls" then
      config_error(("unknown planado_webhook option '%s' (valid: secret, store, max_body, allow_unsigned, "
        .. "previous_key, nulls)"):format(tostring(k)), 2)
    end
  end
  local secret = opts.secret
  if secret == nil and not opts.allow_unsigned then
    config_error("planado_webhook needs the webhook's secret (or allow_unsigned = true to accept anyone's posts)", 2)
  end
  if secret ~= nil and (type(secret) ~= "string" or secret == "") then
    config_error("planado_webhook option 'secret' must be a non-empty string", 2)
  end
  if opts.nulls ~= nil and opts.nulls ~= "absent" and opts.nulls ~= "keep" then
    config_error("planado_webhook option 'nulls' must be \"absent\" (the default) or \"keep\"", 2)
  end
  local store = opts.store or stores.memory()
  if type(store) ~= "table" or type(store.claim) ~= "function" or type(store.release) ~= "function" then
    config_error("planado_webhook option 'store' must have claim and release", 2)
  end
  local self = setmetatable({ store = store, max_body = opts.max_body or DEFAULT_MAX_BODY,
    previous_key = opts.previous_key, nulls = opts.nulls }, Hook)
  self.check_secret = function(given)
    if secret == nil then return true end
    return type(given) == "string" and core.secure_equals(given, secret)
  end
  -- Every error text goes through the one redaction routine, as the
  -- clients' do: no part of the secret, whatever a message comes to hold.
  local secrets = { secret }
  self.redact = function(text) return core.redact(text, secrets) end
  return self
end

Hook.__tostring = function() return "planapi.planado_webhook" end

local function header(headers, name)
  for k, v in pairs(headers or {}) do
    if type(k) == "string" and k:lower() == name then
      if type(v) == "table" then v = v[1] end
      return v
    end
  end
  return nil
end

local function reject(self, kind, status, message)
  local err = core.error { kind = kind, message = self.redact(message), status = status }
  err.answer = status -- the HTTP status to answer with
  return nil, err
end

--- hook:handle(headers, body) -> event | nil, err
-- event = { type, uuid, kind ("job"|"client"|"site"), resource, resource_uuid,
--   previous, version, attempt, context, body,
--   fresh (handle it), duplicate, stale (answer 2xx and drop it), answer = 200 }
-- err.answer is the HTTP status to reply with (401 wrong secret, 413 too
-- large, 400 not an event).
function Hook:handle(headers, body)
  if type(body) ~= "string" then return reject(self, "decode", 400, "the webhook body must be a string") end
  if #body > self.max_body then
    return reject(self, "decode", 413, ("the webhook body is larger than %d bytes"):format(self.max_body))
  end
  if not self.check_secret(header(headers, "x-planado-secret")) then
    return reject(self, "auth", 401, "X-Planado-Secret is missing or wrong")
  end
  local doc, err = core.json_decode(body, self.nulls)
  if doc == nil then return reject(self, "decode", 400, err.message) end
  if type(doc) ~= "table" or type(doc.event_uuid) ~= "string" or type(doc.event_type) ~= "string" then
    return reject(self, "decode", 400, "not a Planado event: event_uuid and event_type are required")
  end
  local kind, resource
  for _, k in ipairs(KINDS) do
    if type(doc[k]) == "table" then kind, resource = k, doc[k] break end
  end
  local previous
  if kind then
    -- The key of the previous version is undocumented: accept the likely ones.
    previous = doc[self.previous_key or ("previous_" .. kind)] or doc["old_" .. kind] or doc.previous
  end
  local version = resource and tonumber(resource.version)
  local resource_uuid = resource and resource.uuid
  local key = (kind or "event") .. ":" .. tostring(resource_uuid or doc.event_uuid)
  local claim, previous_version = self.store:claim(doc.event_uuid, key, version)
  if claim == nil then
    -- The store could not record it (a full disk): 503, so Planado delivers it again.
    local serr = core.is_error(previous_version) and previous_version
      or core.error { kind = "io", message = "the webhook store failed: " .. tostring(previous_version) }
    serr.answer = 503
    return nil, serr
  end
  return {
    type = doc.event_type, uuid = doc.event_uuid, kind = kind, resource = resource,
    resource_uuid = resource_uuid, previous = previous, version = version,
    attempt = tonumber(header(headers, "x-planado-delivery-attempt")), context = doc.context, body = doc,
    fresh = claim == "new", duplicate = claim == "duplicate", stale = claim == "stale",
    answer = 200, key = key, previous_version = previous_version,
  }
end

--- hook:release(event): handling a fresh event failed; forget the claim so
-- that Planado's next delivery of it is handled (answer non-2xx to get one).
function Hook:release(event)
  if event and event.fresh then
    self.store:release(event.uuid, event.key, event.previous_version)
  end
end

Hook.stores = stores
return Hook
