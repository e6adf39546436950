-- events/receiver.lua: the receiver core every API's events go through
-- (Planfix scenario requests, Planado webhooks). One rule: claim the event
-- durably, answer 2xx at once, handle it after.
--
--   local r = events.receiver{ secret =, secret_in = "header:X-Token", parse = fn, store = }
--   local response, event = r:receive(request)   -- answer response now
--   if event then r:handle(event, handler) end   -- then handle (or r:serve for both)
--   r:pending(handler)                            -- on a timer: events whose lease expired
--
-- request  = { method, path, query = {}, headers = {}, body = "raw bytes" }
-- response = { status, headers = { ["Content-Type"] = "application/json" }, body }
-- parse(request, fields) -> ev | nil, message, where ev = { id =, key =, version =, ttl =, ... }
local core = require "planapi.core"
local config_error = require "planapi.config_error"
local stores = require "planapi.events.store"

local M = {}
local Receiver = {}
Receiver.__index = Receiver

-- max_attempts: 25 runs at 30 s doubling up to 1 h are about a day of
-- retries; then the event is recorded failed, so a poisonous event (one
-- whose handler always fails, or kills its process) ends instead of
-- staying pending in the store for ever.
local DEFAULTS = { max_body = 1024 * 1024, lease = 60, ttl = 8 * 86400, retry_delay = 30, max_retry_delay = 3600,
  max_attempts = 25, format = "auto" }
local OPTIONS = { "secret", "secret_in", "allow_unsigned", "parse", "store", "max_body", "lease", "ttl", "clock",
  "retry_delay", "max_retry_delay", "max_attempts", "format", "nulls", "name" }

local function lower_keys(t)
  local out = {}
  for k, v in pairs(t or {}) do
    if type(k) == "string" then
      if type(v) == "table" then v = v[1] end
      if out[k:lower()] == nil then out[k:lower()] = v end
    end
  end
  return out
end

--- The value of header name (any letter case; of a list, the first).
local function header(headers, name)
  return lower_keys(headers)[name:lower()]
end
M.header = header

-- secret_in "header:X-Token" | "field:secret" | "query:token" -> place, name.
local function where_secret(secret_in, name)
  if type(secret_in) ~= "string" then
    config_error(("%s option 'secret_in' must be \"header:Name\", \"field:name\" or \"query:name\""):format(name), 4)
  end
  local place, key = secret_in:match "^(%a+):(.+)$"
  if place ~= "header" and place ~= "field" and place ~= "query" then
    config_error(("%s option 'secret_in' must be \"header:Name\", \"field:name\" or \"query:name\" (got %q)")
      :format(name, secret_in), 4)
  end
  return place, key
end

local function check_number(opts, key, name, min)
  local v = opts[key]
  if v ~= nil and (type(v) ~= "number" or v < min) then
    config_error(("%s option '%s' must be a number >= %s"):format(name, key, tostring(min)), 4)
  end
end

local function check_options(opts, name)
  local valid = {}
  for _, k in ipairs(OPTIONS) do valid[k] = true end
  for k in pairs(opts) do
    if not valid[k] then
      config_error(("unknown %s option '%s' (valid: %s)"):format(name, tostring(k), table.concat(OPTIONS, ", ")), 3)
    end
  end
  for _, k in ipairs { "max_body", "retry_delay", "max_retry_delay" } do
    check_number(opts, k, name, 0)
  end
  -- ttl 0 would forget an id at once, lease 0 hand an event to pending while it runs.
  for _, k in ipairs { "lease", "ttl" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or not (v > 0) or v == math.huge) then
      config_error(("%s option '%s' must be a number of seconds > 0"):format(name, k), 3)
    end
  end
  local attempts = opts.max_attempts
  if attempts ~= nil and (type(attempts) ~= "number" or attempts < 1 or attempts % 1 ~= 0) then
    config_error(name .. " option 'max_attempts' must be a whole number >= 1", 3)
  end
  if type(opts.parse) ~= "function" then config_error(name .. " option 'parse' must be a function", 3) end
  if opts.format ~= nil and opts.format ~= "auto" and opts.format ~= "json" and opts.format ~= "form" then
    config_error(name .. " option 'format' must be \"auto\", \"json\" or \"form\"", 3)
  end
end

local function check_secret(opts, name)
  local secret = opts.secret
  if secret == nil and not opts.allow_unsigned then
    config_error(name .. " needs the shared secret (or allow_unsigned = true to accept anyone's posts)", 4)
  end
  if secret ~= nil and (type(secret) ~= "string" or secret == "") then
    config_error(name .. " option 'secret' must be a non-empty string", 4)
  end
  if secret == nil then return nil end
  return secret, where_secret(opts.secret_in, name)
end

local function check_store(store, name)
  if type(store) ~= "table" or type(store.claim) ~= "function" then
    config_error(("%s option 'store' must be a planapi.events store (claim, finish, retry, take)"):format(name), 4)
  end
end

-- A store of the webhook_store API of old has claim and release only: it
-- cannot hold an event for later, so handle and pending need more.
function Receiver:store_can(method)
  if type(self.store[method]) ~= "function" then
    config_error(("this store has no %s: handle and pending need a planapi.events store (memory, file, redis)")
      :format(method), 3)
  end
end

--- events.receiver{ secret =, secret_in =, parse =, store =, max_body =, lease =, ttl =, clock =,
--   retry_delay =, max_retry_delay =, max_attempts =, format = "auto" | "json" | "form", nulls =, allow_unsigned = }
function M.new(opts)
  if type(opts) ~= "table" then config_error("events.receiver needs an options table", 2) end
  local name = opts.name or "events.receiver"
  check_options(opts, name)
  local self = setmetatable({ name = name, parse = opts.parse, nulls = opts.nulls, format = opts.format or "auto" },
    Receiver)
  for k, v in pairs(DEFAULTS) do
    if self[k] == nil then self[k] = opts[k] == nil and v or opts[k] end
  end
  self.secret, self.secret_place, self.secret_key = check_secret(opts, name)
  self.store = opts.store or stores.memory { clock = opts.clock }
  if opts.store then check_store(opts.store, name) end
  -- Every error text goes through the one redaction routine, as the
  -- clients' do: no part of the secret, whatever a message comes to hold.
  local secrets = { self.secret }
  self.redact = function(text) return core.redact(tostring(text), secrets) end
  return self
end

Receiver.__tostring = function(self) return "planapi." .. self.name end

-- A refusal: the error (its message redacted) and the status to answer.
function Receiver:reject(kind, status, message)
  local err = core.error { kind = kind, message = self.redact(message), status = status }
  err.answer = status
  return nil, err
end

-- application/x-www-form-urlencoded -> fields (of a repeated name, the first).
local function decode_form(body)
  local fields = {}
  for pair in body:gmatch "[^&;]+" do
    local k, v = pair:match "^([^=]*)=?(.*)$"
    local function unescape(s)
      return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end
    k = unescape(k)
    if k ~= "" and fields[k] == nil then fields[k] = unescape(v) end
  end
  return fields
end
M.decode_form = decode_form

-- Which format the body is in: the format option, else the Content-Type,
-- else what the body looks like.
function Receiver:body_format(request, body)
  if self.format ~= "auto" then return self.format end
  local ctype = (header(request.headers, "content-type") or ""):lower()
  if ctype:find("json", 1, true) then return "json" end
  if ctype:find("x-www-form-urlencoded", 1, true) then return "form" end
  if body:match "^%s*[%[{]" then return "json" end
  if body:find("=", 1, true) and not body:find("[%c ]") then return "form" end
  return "text"
end

-- The body's fields: a JSON value, a form's fields, or {} for plain text.
function Receiver:fields(request, body)
  local format = self:body_format(request, body)
  if format == "form" then return decode_form(body) end
  if format == "text" then return {} end
  local doc, err = core.json_decode(body, self.nulls)
  if doc == nil then return self:reject("decode", 400, err.message) end
  return doc
end

function Receiver:authentic(request, fields)
  if self.secret == nil then return true end
  local given
  if self.secret_place == "header" then
    given = header(request.headers, self.secret_key)
  elseif self.secret_place == "query" then
    given = type(request.query) == "table" and request.query[self.secret_key] or nil
    if type(given) == "table" then given = given[1] end
  elseif type(fields) == "table" then
    given = fields[self.secret_key]
  end
  return type(given) == "string" and core.secure_equals(given, self.secret)
end

function Receiver:refuse_secret()
  local label = self.secret_place == "header" and self.secret_key
    or ("the %s '%s'"):format(self.secret_place == "query" and "query parameter" or "field", self.secret_key)
  return self:reject("auth", 401, label .. " is missing or wrong")
end

-- The event parse makes of it, checked: ev with id (a non-empty string).
function Receiver:parsed(request, fields)
  local ok, ev, message = pcall(self.parse, request, fields)
  if not ok then return self:reject("decode", 400, "the event could not be read: " .. tostring(ev)) end
  if type(ev) ~= "table" then return self:reject("decode", 400, message or "not an event") end
  if type(ev.id) ~= "string" or ev.id == "" then
    return self:reject("decode", 400, "not an event: it has no id")
  end
  if ev.key == nil then ev.key = "event:" .. ev.id end
  -- A version orders a key's events only as a finite number: 1e999 from a
  -- sender's field would fail a store that writes it (a 503, the sender
  -- retrying for days) or make every later event of the key stale.
  local version = tonumber(ev.version)
  if version ~= nil and (version ~= version or version == math.huge or version == -math.huge) then version = nil end
  ev.version = version
  return ev
end

--- r:check(request) -> ev, fields | nil, err: the size cap, the secret and
-- the parse, nothing stored. err.answer is the status to answer with
-- (401 wrong secret, 413 too large, 400 not an event). trusted: the
-- request was authenticated before (an event taken back from the store).
function Receiver:check(request, trusted)
  local body = request.body
  if body == nil then body = "" end
  if type(body) ~= "string" then return self:reject("decode", 400, "the request body must be a string") end
  if #body > self.max_body then
    return self:reject("decode", 413, ("the request body is larger than %d bytes"):format(self.max_body))
  end
  local early = self.secret_place ~= "field"
  if not trusted and early and not self:authentic(request) then return self:refuse_secret() end
  local fields, err = self:fields(request, body)
  if fields == nil then return nil, err end
  if not trusted and not early and not self:authentic(request, fields) then return self:refuse_secret() end
  -- Checked, the secret's field is of no use to the event: dropped, so a
  -- handler that logs ev.fields does not log the secret.
  if not early and type(fields) == "table" then fields[self.secret_key] = nil end
  local ev, perr = self:parsed(request, fields)
  if not ev then return nil, perr end
  return ev, fields
end

local function json_response(status, doc)
  return { status = status, headers = { ["Content-Type"] = "application/json" }, body = core.json_encode(doc) }
end

-- What the store keeps of a request: all of it but the secret (a secret in a
-- header or the query is dropped; one in a body field stays with the body
-- until the event is finished).
function Receiver:payload(request)
  local headers, query = {}, {}
  for k, v in pairs(lower_keys(request.headers)) do
    if not (self.secret_place == "header" and k == self.secret_key:lower()) and type(v) == "string" then
      headers[k] = v
    end
  end
  for k, v in pairs(type(request.query) == "table" and request.query or {}) do
    if type(v) == "table" then v = v[1] end
    if not (self.secret_place == "query" and k == self.secret_key) and type(k) == "string" and type(v) == "string" then
      query[k] = v
    end
  end
  local meta = { method = request.method, path = request.path, headers = headers, query = query }
  local ok, text = pcall(stores.pack, meta, request.body or "")
  if ok then return text end
  return stores.pack({ method = request.method }, request.body or "") -- a header that is not UTF-8
end

-- The claim, with the request as its payload: outcome, previous | nil, err.
function Receiver:claim(ev, request)
  local record = { payload = self:payload(request), lease = self.lease, ttl = ev.ttl or self.ttl }
  local ok, outcome, previous = pcall(self.store.claim, self.store, ev.id, ev.key, ev.version, record)
  if ok and outcome ~= nil then return outcome, previous end
  local err = ok and previous or outcome
  local message = "the event store failed: " .. self.redact(core.is_error(err) and err.message or tostring(err))
  local serr = core.error { kind = "io", message = message }
  serr.answer = 503
  return nil, serr
end

--- r:receive(request) -> response, event | nil, detail
-- Never raises on bad input. response is what to answer now: 200 for a
-- fresh, duplicate or stale event, 401, 413 or 400 for a refused request,
-- 503 when the store could not record the claim (the sender delivers
-- again). event only when fresh and claimed (its payload is in the store);
-- detail: for a duplicate or stale event the parsed ev (ev.claim says
-- which), for a refusal or a store failure the error.
function Receiver:receive(request)
  if type(request) ~= "table" then config_error("receive needs a request table", 2) end
  local ev, err = self:check(request)
  if not ev then return json_response(err.answer, { ok = false, error = err.message }), nil, err end
  local outcome, previous = self:claim(ev, request)
  if outcome == nil then return json_response(503, { ok = false, error = previous.message }), nil, previous end
  ev.claim, ev.previous_version = outcome, previous
  local response = json_response(200, { ok = true, status = outcome })
  if outcome ~= "new" then return response, nil, ev end
  ev.attempts = 1
  return response, ev
end

-- The handler's outcome: ok, permanent, err.
local function outcome_of(ok, result, e2, e3)
  if ok and result then return true end
  if not ok then return false, type(result) == "table" and result.permanent == true, result end
  if e2 == "permanent" then return false, true, e3 or "permanent failure" end
  return false, type(e2) == "table" and e2.permanent == true, e2 or "the handler returned no success"
end

-- The handler's error, redacted: a planapi error stays one, anything else
-- becomes one line of text.
function Receiver:handler_error(err)
  if core.is_error(err) then
    err.message = self.redact(err.message)
    return err
  end
  local text = type(err) == "table" and (err.message or err.error) or err
  return (self.redact(tostring(text)):gsub("[\r\n]+", " "))
end

-- The last failure of an event given up, saying so.
function Receiver:gave_up(err, attempts)
  local prefix = ("gave up after %d attempt%s: "):format(attempts, attempts == 1 and "" or "s")
  if core.is_error(err) then
    err.message = prefix .. tostring(err.message)
    return err
  end
  return prefix .. self:handler_error(err)
end

function Receiver:retry_delay_for(attempts)
  local delay = self.retry_delay * 2 ^ math.max(0, (attempts or 1) - 1)
  return math.min(delay, self.max_retry_delay)
end

--- r:handle(event, handler) -> true | nil, err
-- handler(event) -> truthy | nil, err, under pcall. Success: the id is
-- finished "done" and never handled again while it is remembered. An err
-- with err.permanent == true (or nil, "permanent", message): finished
-- "failed", not retried until the ttl. Any other failure: retried by
-- r:pending after retry_delay (doubling per attempt, at most max_retry_delay),
-- until max_attempts runs failed: then finished "failed" like a permanent one.
function Receiver:handle(event, handler)
  if type(event) ~= "table" or type(event.id) ~= "string" then config_error("handle needs an event", 2) end
  if type(handler) ~= "function" then config_error("handle needs a handler function", 2) end
  self:store_can "finish"
  self:store_can "retry"
  local done, permanent, err = outcome_of(pcall(handler, event))
  local store = self.store
  local ok, serr
  if done then
    ok, serr = store:finish(event.id, "done")
  elseif permanent then
    ok, serr = store:finish(event.id, "failed")
  elseif (event.attempts or 1) >= self.max_attempts then
    ok, serr = store:finish(event.id, "failed")
    err = self:gave_up(err, event.attempts or 1)
  else
    ok, serr = store:retry(event.id, self:retry_delay_for(event.attempts))
  end
  -- A store that cannot record the outcome leaves the lease to expire: the
  -- event is taken again by pending (a success then runs twice).
  if done and ok then return true end
  if done then return nil, self:handler_error(serr) end
  return nil, self:handler_error(err)
end

-- An event taken back from the store: its request rebuilt and parsed again.
function Receiver:rebuild(item)
  local meta, body = stores.unpack(item.payload)
  if not meta then return nil end
  local request = { method = meta.method, path = meta.path, headers = meta.headers or {}, query = meta.query or {},
    body = body }
  local ev = self:check(request, true)
  if not ev then return nil end
  ev.id, ev.attempts, ev.claim = item.id, item.attempts, "new"
  return ev
end

--- r:pending(handler, { limit = 100 }) -> handled_count | nil, err
-- Takes the events whose lease expired (a handler that failed, or a process
-- that died before finishing) and handles them. Call it on a timer.
function Receiver:pending(handler, opts)
  if type(handler) ~= "function" then config_error("pending needs a handler function", 2) end
  self:store_can "take"
  local limit = opts and opts.limit or 100
  local items, err = self.store:take(limit, self.lease)
  if items == nil then return nil, err end
  local count = 0
  for _, item in ipairs(items) do
    -- Past max_attempts the earlier takers died in the handler (a failure
    -- that returned was finished by handle): do not run it once more.
    local ev = (item.attempts or 1) <= self.max_attempts and self:rebuild(item)
    if ev then
      self:handle(ev, handler)
    else
      self.store:finish(item.id, "failed") -- over the limit, or cannot be read again
    end
    count = count + 1
  end
  return count
end

--- r:serve(request, handler) -> response: receive and handle in one, for a
-- host that cannot answer first (a failure is retried by pending, the
-- answer is 200 all the same).
function Receiver:serve(request, handler)
  if type(handler) ~= "function" then config_error("serve needs a handler function", 2) end
  local response, event = self:receive(request)
  if event then self:handle(event, handler) end
  return response
end

M.receiver = M.new
return M
