-- client_base.lua: what every planapi API client shares: its options, the
-- C client it drives, and the call loop that composes the pure halves with
-- pacing and retries:
--
--   prepare (C, pure) -> limiter reserve and wait -> transport (libcurl, or
--   any function with the lua-resty-http contract), which confirms the
--   spacing with the limiter once the connection is up, right before the
--   request is written -> parse (pure) -> retry policy
--
-- The loop lives in Lua on purpose: a cosocket transport yields, and a yield
-- across a C call fails, so C is only ever called for pure work or libcurl.
local core = require("planapi.core")
local Policy = require("planapi.policy")
local Limiter = require("planapi.limiter")
local Quota = require("planapi.quota")
local Ngx = require("planapi.transport.ngx")
local Haproxy = require("planapi.transport.haproxy")
local config_error = require("planapi.config_error")
local options = require("planapi.options")
local Guard = require("planapi.guard")
local Hooks = require("planapi.hooks")

local M = {}

local monotime = core.monotime

-- Options handed to the C client as they are.
local TRANSPORT_OPTIONS = {
  allow_http = "boolean", ca_file = "string", proxy = "string|false",
  connect_timeout = "number", timeout = "number", max_body = "number", user_agent = "string",
}
-- Options of the call loop.
local LOOP_OPTIONS = {
  rate = "table|false", retry = "table", clock = "function", sleep = "function",
  transport = "function|string|table", on_request = "function", hooks = "table",
  limiter = "string|table", limiter_key = "string", limiter_fallback = "string",
  quota = "table|false", quota_reserve = "number", wall_clock = "function",
  dry_run = "boolean|string", writes = "boolean|table",
}
-- Options of the answer's shape: nulls = "absent" (default) leaves a JSON
-- null member of an object out of the result, "keep" keeps planapi.null.
local RESULT_OPTIONS = { nulls = "string" }

M.config_error = config_error
-- The shared options by type, read at each check: a capability for all
-- three clients adds its option here (and reads it in init).
M.TRANSPORT_OPTIONS, M.LOOP_OPTIONS, M.RESULT_OPTIONS = TRANSPORT_OPTIONS, LOOP_OPTIONS, RESULT_OPTIONS

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end
M.sorted_keys = sorted_keys

--- Check opts against the API's own options plus the shared ones: a typo
-- such as `timout` is an error, not a silently ignored setting.
function M.check_options(api_name, opts, api_options)
  if type(opts) ~= "table" then config_error(api_name .. " options must be a table", 3) end
  options.check(api_name, opts, 3, api_options, TRANSPORT_OPTIONS, LOOP_OPTIONS, RESULT_OPTIONS)
end

-- ------------------------------------------------------------------ init
-- Each step reads its options and sets its part of self; a bad option is a
-- config error raised at the caller of the client's constructor (level 4:
-- the step, init, the API's new, its caller).

-- self.core, the C client, and the answer's shape.
local function core_setup(self, opts, base)
  local copts = { base_url = base.base_url, headers = base.headers, secrets = base.secrets }
  for k in pairs(TRANSPORT_OPTIONS) do
    if opts[k] ~= nil then copts[k] = opts[k] end
  end
  self.core = core.client(copts)
  if opts.nulls ~= nil and opts.nulls ~= "absent" and opts.nulls ~= "keep" then
    config_error(("option 'nulls' must be \"absent\" (the default) or \"keep\" (got %q)"):format(opts.nulls), 4)
  end
  -- passed to core:decode; the default spelt out, so reading it is no __index per call
  self.nulls = opts.nulls or "absent"
end

-- Inside nginx (OpenResty): cosockets, ngx.sleep and nginx's clock where the
-- phase allows them, decided per call, since a client made in init_worker
-- is used in content or a timer (lua/planapi/transport/ngx.lua).
-- Returns whether this runs inside nginx.
local function clock_setup(self, opts, base)
  local topt = opts.transport
  if type(topt) == "string" and topt ~= "curl" and topt ~= "ngx" and topt ~= "haproxy" then
    config_error(("option 'transport' must be a function, \"haproxy\", \"curl\" or \"ngx\" (got %q)")
      :format(topt), 4)
  end
  local in_nginx = Ngx.ngx() ~= nil
  if topt == "ngx" and not in_nginx then
    config_error("transport = \"ngx\" needs nginx's lua module (ngx.socket.tcp): use it inside nginx", 4)
  end
  local in_haproxy = Haproxy.haproxy() ~= nil
  if topt == "haproxy" and not in_haproxy then
    config_error("transport = \"haproxy\" needs HAProxy's Lua (core.tcp): use it inside HAProxy", 4)
  end
  self.clock = opts.clock or core.monotime
  -- HAProxy: core.msleep where a yield is allowed, decided per call (the
  -- clock stays CLOCK_MONOTONIC, which the shm scope compares).
  self.sleep = opts.sleep or (in_nginx and Ngx.sleep) or (in_haproxy and Haproxy.sleep) or core.sleep
  -- The shm scope compares times across processes, which only
  -- CLOCK_MONOTONIC allows; the other scopes take nginx's clock there. No
  -- limiter option, when paced, is the default scope: an shm file too,
  -- shared with the user's scripts.
  local paced = opts.rate ~= false and (opts.rate ~= nil or base.rate ~= nil)
  local shm = (opts.limiter == nil and paced) or (type(opts.limiter) == "string" and opts.limiter:match "^shm:")
  if opts.clock == nil and in_nginx and not shm then self.clock = Ngx.now end
  return in_nginx
end

-- The rate: the API's defaults under the options given, so { burst = 2 }
-- keeps the rate.
local function merged_rate(rate, default)
  for k in pairs(rate) do
    if k ~= "rate" and k ~= "per" and k ~= "burst" and k ~= "margin" then
      config_error(("unknown rate option '%s' (valid: rate, per, burst, margin)"):format(tostring(k)), 5)
    end
  end
  local merged = {}
  for k, v in pairs(default or {}) do merged[k] = v end
  for k, v in pairs(rate) do merged[k] = v end
  return merged
end

-- self.limiter (pacing) and self.pacer, unless rate = false. False, not
-- nil, when there are none: the call loop reads them on every call, and a
-- nil field is read through the class's __index function.
local function limiter_setup(self, opts, base)
  self.limiter, self.pacer = false, false
  local rate = opts.rate
  if rate == nil then rate = base.rate end
  if not rate then
    if opts.limiter ~= nil then config_error("option 'limiter' needs pacing: it cannot go with rate = false", 4) end
    return
  end
  local merged = merged_rate(rate, base.rate)
  if opts.limiter_fallback ~= nil and opts.limiter_fallback ~= "local" then
    config_error("option 'limiter_fallback' can only be \"local\"", 4)
  end
  -- By default every process of this user on this host shares one pace
  -- per account and endpoint; with an injected clock the times are not
  -- CLOCK_MONOTONIC, which the shared file compares, so it stays local.
  self.limiter = Limiter.new(opts.limiter, { key = opts.limiter_key or base.key, rate = merged,
    fallback = opts.limiter_fallback, endpoint = base.base_url, shared_default = opts.clock == nil })
  -- The C transport confirms the send itself, inside libcurl, once the
  -- connection is up, for a limiter whose confirm is pure C (local or
  -- shm) on the clock C reads (CLOCK_MONOTONIC).
  if self.clock == core.monotime then
    self.pacer = self.limiter.gcra or (type(self.limiter) == "userdata" and self.limiter) or false
  end
end

-- After Ctrl-C (core.catch_interrupt) sleeps return at once: the error
-- that stops a confirm from asking again, when that happened.
local function interrupted_error()
  if not (core.interrupted and core.interrupted()) then return nil end
  local err = core.error { kind = "transport", message = "interrupted (Ctrl-C)", request_sent = false }
  err.interrupted = true
  return err
end

-- self.confirm: the request is about to be written: wait until it keeps
-- the spacing from the last request any sharer wrote, and record it.
-- true | nil, err (a shared limiter out of reach: nothing was sent).
-- False when the limiter has no confirm, like limiter_setup's fields.
local function confirm_setup(self)
  local limiter, clock = self.limiter, self.clock
  self.confirm = false
  if not (limiter and limiter.confirm) then return end
  self.confirm = function()
    while true do
      local wait, err = limiter:confirm(clock())
      if wait == nil then
        err.request_sent = false
        return nil, err
      end
      if wait <= 0 then return true end
      self.sleep(wait)
      local ierr = interrupted_error()
      if ierr then return nil, ierr end
    end
  end
end

-- quota_reserve = N: the same as quota = { reserve = N }.
local function quota_options(opts)
  local quota = opts.quota
  if opts.quota_reserve == nil then return quota end
  if quota == false then config_error("quota_reserve cannot go with quota = false", 5) end
  quota = quota or {}
  if quota.reserve ~= nil then config_error("give the reserve once: quota_reserve or quota.reserve", 5) end
  local q = { reserve = opts.quota_reserve }
  for k, v in pairs(quota) do q[k] = v end
  return q
end

-- self.quota (the day's budget) and self.policy (retries).
local function quota_setup(self, opts)
  local quota = quota_options(opts)
  if quota then
    -- With pacing off the day's requests are still counted, by this client.
    local counter = self.limiter or Limiter.new("local", { rate = { rate = 1e9, per = 1 } })
    self.quota = Quota.new(quota, counter, opts.wall_clock)
  end
  if opts.retry ~= nil and Policy.is_policy(opts.retry) then
    self.policy = opts.retry
  else
    self.policy = Policy.new(opts.retry)
  end
end

-- A host's own transport (nginx's cosockets, HAProxy's sockets): that one
-- when named; chosen by itself, that one where the host allows it at the
-- moment of the call (usable()), libcurl elsewhere.
local function host_transport(self, kind, own, usable, curl, named)
  if named then
    self.transport_kind, self.transport = kind, own
    return
  end
  self.transport_kind = "auto"
  self.transport = function(req)
    if usable() then return own(req) end
    return curl(req)
  end
end

-- transport_kind: "function" (the user's), "curl", "ngx", "haproxy", or "auto"
-- (inside nginx: cosockets where the phase has them; inside HAProxy: its
-- sockets where a yield is allowed, in actions, services and tasks;
-- libcurl elsewhere).
-- Each transport confirms the send with the limiter (req.confirm, set
-- by run) as late as it can: libcurl inside the transfer (req.pacer) or
-- just before it, the cosocket transport after connect and handshake, a
-- user's function just before it is called.
local function transport_setup(self, opts, in_nginx)
  local topt = opts.transport
  self.curl = false
  if type(topt) == "function" or type(topt) == "table" then
    self.transport_kind = "function"
    self.transport = function(req)
      local ok, cerr = M.confirm_send(req)
      if not ok then return nil, cerr end
      return M.normalise_response(self, topt(req))
    end
    return
  end
  local c = self.core
  local curl = function(req)
    if req.pacer == nil then
      local ok, cerr = M.confirm_send(req)
      if not ok then return nil, cerr end
    end
    return c:perform(req)
  end
  self.transport_kind, self.transport, self.curl = "curl", curl, curl
  local host_opts = { user_agent = opts.user_agent, proxy = opts.proxy }
  if topt == "haproxy" or (topt == nil and Haproxy.haproxy()) then
    return host_transport(self, "haproxy", Haproxy.new(c, host_opts), Haproxy.yieldable, curl, topt == "haproxy")
  end
  if topt ~= "ngx" and not (topt == nil and in_nginx) then return end
  host_transport(self, "ngx", Ngx.new(c, host_opts), Ngx.cosockets, curl, topt == "ngx")
end

-- A transport may be a callable table (planapi.testing's fake) that keeps
-- its own time: its clock, sleep and wall_clock stand in for the options
-- left out, so paced and retried calls through it wait in its time, not
-- the machine's. Returns opts, or a copy with those filled in.
local function transport_time(opts)
  local topt = opts.transport
  if type(topt) ~= "table" then return opts end
  local mt = getmetatable(topt)
  if type(mt) ~= "table" or mt.__call == nil then
    config_error("option 'transport' as a table must be callable (planapi.testing.fake{...})", 5)
  end
  local out = {}
  for k, v in pairs(opts) do out[k] = v end
  for _, k in ipairs { "clock", "sleep", "wall_clock" } do
    if out[k] == nil and type(topt[k]) == "function" then out[k] = topt[k] end
  end
  return out
end

--- Set up self.core, self.limiter, self.policy, self.clock, self.sleep and
-- self.transport from the options.
-- base: { base_url =, headers =, secrets =, rate = default rate table,
--        key = the limiter key: the API and the account, e.g. "planfix_rest:acme" }
function M.init(self, opts, base)
  opts = transport_time(opts)
  core_setup(self, opts, base)
  local in_nginx = clock_setup(self, opts, base)
  limiter_setup(self, opts, base)
  confirm_setup(self)
  quota_setup(self, opts)
  transport_setup(self, opts, in_nginx)
  -- false, not nil: the call loop reads it on every call without __index
  self.guard = Guard.new(opts, base.key:match "^[^:]+", getmetatable(self).task_project ~= nil)
  -- A transport that records calls in API terms (planapi.testing's fake)
  -- gets each request's parameters as given (req.params); false, like guard.
  self.keep_params = type(opts.transport) == "table" and opts.transport.keep_params == true
  -- Call events (hooks.lua); the API and account they name: the limiter key's.
  self.on_request = opts.on_request
  local api, account = base.key:match "^([^:]+):(.*)$"
  -- false, not nil, like guard: read on every call without __index
  self.hooks = Hooks.new(opts.hooks, opts.on_request, { api = api or base.key, account = account }, 3) or false
end

--- Confirm the send of req with its limiter, when the call loop asked for
-- it (req.confirm): true | nil, err.
function M.confirm_send(req)
  local confirm = req.confirm
  if confirm == nil then return true end
  return confirm()
end

--- Bring what a user transport returned to the C transport's shape:
-- lower-case header names, a typed error instead of a string.
function M.normalise_response(self, res, err)
  if res == nil then
    if core.is_error(err) then return nil, err end
    return nil, self.core:error { kind = "transport", message = tostring(err or "transport failed"),
      retryable = true }
  end
  local headers = {}
  for k, v in pairs(res.headers or {}) do
    if type(v) == "table" then v = table.concat(v, ", ") end
    headers[tostring(k):lower()] = tostring(v)
  end
  return { status = tonumber(res.status) or 0, headers = headers, body = res.body or "" }
end

-- ------------------------------------------------------------------ run
-- One attempt: pace, send, settle, parse; then retry or not. The steps
-- read the loop's parts from self on every call (a spec may swap
-- self.transport or self.on_request between calls).

-- The call's error with what the loop knows about it: nil, err.
local function failed(err, call, attempt, waited)
  err.operation = err.operation or call.operation
  err.attempts = attempt
  if waited > 0 then err.waited = waited end
  return nil, err
end

-- Before sending: a spent budget stops here; then the slot this request
-- queues for (the spacing itself is confirmed at the moment of sending,
-- self.confirm, in the transport). Returns an error when nothing may be
-- sent, else nil and the seconds it waited.
local function pace(self, quota)
  if quota then
    local qerr = quota:check()
    if qerr then
      qerr.request_sent = false
      return qerr
    end
  end
  local limiter = self.limiter
  if limiter then
    local clock = self.clock
    local wait, lerr
    if clock == monotime and limiter == self.pacer then
      wait, lerr = limiter:reserve() -- the shm scope reads that clock itself
    else
      wait, lerr = limiter:reserve(clock())
    end
    if wait == nil then -- a shared limiter out of reach: fail closed
      lerr.request_sent = false
      return lerr
    end
    if wait > 0 then self.sleep(wait) end
    return nil, wait
  end
  return nil
end

-- The request through the transport, which confirms the spacing at the
-- moment of sending (req.confirm, or req.pacer inside libcurl): res | nil, err.
local function transmit(self, req, transport, pacer)
  local confirm = self.confirm
  if confirm and not pacer and self.limiter.pacer then pacer = self.limiter:pacer() end
  -- nil, not false, for the transports, which ask req.pacer == nil
  req.confirm, req.pacer = confirm or nil, pacer or nil
  local res, err = transport(req)
  req.confirm, req.pacer = nil, nil
  -- The Redis pacer failed inside libcurl: its connection is out of step.
  if res == nil and err.pacer_failed and self.limiter.drop then self.limiter:drop() end
  return res, err
end

-- The attempt sent, then the limiter learns whether the server saw it:
-- res | nil, err.
local function send(self, req)
  local pacer, transport = self.pacer, self.transport
  local res, err
  if pacer and transport == self.curl then
    -- the libcurl closure's own work, but for its check of req.pacer and
    -- the req.confirm it would not read (a C pacer confirms inside libcurl)
    req.pacer = pacer
    res, err = self.core:perform(req)
    req.pacer = nil
  else
    res, err = transmit(self, req, transport, pacer)
  end
  local limiter = self.limiter
  if not limiter then return res, err end
  local clock = self.clock
  if res == nil and err.request_sent == false then
    limiter:release(clock()) -- the server never saw it
  elseif clock == monotime and limiter == pacer then
    limiter:settle() -- as below; the shm scope reads that clock itself
  else
    -- Also pace from the answer: the next slot is an interval after it.
    -- A server that reads its clock when it starts working on a request
    -- (not when the request arrives) may hold one behind the other; a
    -- sharer that waits for its answer never has two queued there.
    limiter:settle(clock())
  end
  return res, err
end

local function remaining_of(res)
  local remaining = res.headers["x-ratelimit-remaining"]
  return remaining and tonumber(remaining:match "^%s*(%d+)")
end

-- The answer checked and decoded, and counted against the day's budget:
-- result, meta | nil, err.
local function parse(self, quota, call, req, res, err, attempt, waited)
  local result
  if res then
    local own = call ~= req and call.parse -- a prepared request itself has none
    if own then
      result, err = own(req, res)
    else
      result, err = self:parse(req, res)
    end
  end
  if quota and (res or err.request_sent ~= false) then quota:record(res, err) end
  if result ~= nil then
    local meta = { status = res.status, headers = res.headers, attempts = attempt, waited = waited }
    local remaining = res.headers["x-ratelimit-remaining"] -- remaining_of, inline
    if remaining then
      remaining = tonumber(remaining:match "^%s*(%d+)")
      if remaining then self.remaining, meta.remaining = remaining, remaining end
    end
    return result, meta
  end
  if res and err.remaining == nil then err.remaining = remaining_of(res) end
  return nil, err
end

--- Run one logical call of a prepared request: result, meta | nil, err.
-- call: the prepared request itself, its operation and idempotent fields
--   set (the answer goes through self:parse; no table made per call), or
--   { req = a prepared request, parse = function(req, res) -> result | nil, err,
--     operation = name, idempotent = bool }
-- meta = { status =, headers =, attempts =, remaining = }
function M.run(self, call)
  local req = call.req or call
  -- dry run and write guards (guard.lua): skipped unless asked for
  if self.guard or req.dry_run ~= nil then
    local result, meta = Guard.check(self, req)
    if result ~= nil or meta ~= nil then
      if result ~= nil and self.hooks then Hooks.dry_run(self, self.hooks, call) end
      return result, meta
    end
  end
  -- The transports send a request that is not idempotent on a new
  -- connection, never on a kept-alive one that may die with it in flight.
  req.idempotent = call.idempotent and true or false
  local attempt, waited = 0, 0
  -- Read once, and raw: a client without a quota leaves the field nil, and
  -- a nil field read as self.quota goes through the class's __index function.
  local quota = rawget(self, "quota")
  local hooks, started = self.hooks, nil
  if hooks then started = self.clock() end
  while true do
    attempt = attempt + 1
    local perr, paced = pace(self, quota)
    if perr then
      if hooks then Hooks.error(self, hooks, call, perr, attempt, started) end
      return failed(perr, call, attempt, waited)
    end
    if hooks then Hooks.request(self, hooks, call, attempt, started, paced) end
    local res, err = send(self, req)
    local result, meta = parse(self, quota, call, req, res, err, attempt, waited)
    if hooks then Hooks.response(self, hooks, call, res, attempt, started) end
    if result ~= nil then return result, meta end
    err = meta
    local wait = self.policy:delay(err, attempt, call.idempotent)
    if not wait then
      if hooks then Hooks.error(self, hooks, call, err, attempt, started) end
      return failed(err, call, attempt, waited)
    end
    if hooks then Hooks.retry(self, hooks, call, err, attempt, started, wait) end
    err.operation = err.operation or call.operation
    if wait > 0 then
      self.sleep(wait)
      waited = waited + wait
    end
  end
end

--- Resource sugar's answer: the value the call's answer was to carry, or
-- nil and a decode error. Never nil and the call's meta, which would read as
-- `nil, err` with an err that is no error. wrote: the call was a write the
-- server carried out, which the message says.
function M.expect(value, meta, what, operation, wrote)
  -- a dry run's answer is the request it did not send (guard.lua)
  if meta and meta.dry_run then return meta.result, meta end
  if value ~= nil then return value, meta end
  return nil, core.error { kind = "decode", status = meta and meta.status, operation = operation,
    message = ("the answer has no %s%s"):format(what, wrote and " (the request was carried out)" or "") }
end

--- The host a Location points to, without any user:password@ part, for
-- error messages (the rest of the URL may carry a presigned token).
local function location_host(location)
  local authority = type(location) == "string" and location:match "^%a[%w+.-]*://([^/?#]*)"
  if not authority then return "a relative location" end
  return authority:gsub("^.*@", "")
end

--- A 3xx where the API documents no redirect: a typed error, never followed.
-- Following it would send the request (and its Authorization) wherever a
-- proxy or a forged answer points, and treating it as success would lose a
-- write. Pure: parse functions call it.
function M.redirect_error(self, operation, res)
  local headers = res.headers or {}
  local err = self.core:error { kind = "http", status = res.status, operation = operation, retryable = false,
    message = ("unexpected redirect (HTTP %d) to %s: not followed, the API documents none here")
      :format(res.status, location_host(headers.location)) }
  return nil, err
end

--- Check a Location before following it (a file download): https only
-- (loopback http only with allow_http), else nil, err. A server-given URL
-- is runtime data, so a bad one is an error value, never a raise.
function M.check_location(self, operation, location)
  if type(location) ~= "string" or location == "" then
    return nil, self.core:error { kind = "http", operation = operation, message = "redirect without a Location" }
  end
  local ok, err = core.check_url(location, self.core:config().allow_http)
  if ok then return true end
  return nil, self.core:error { kind = "http", status = 302, operation = operation, retryable = false,
    message = ("refused to follow the redirect to %s: %s"):format(location_host(location), err.message) }
end

--- Parse a Retry-After header: seconds, or an HTTP date (then 1 s, since
-- the clocks of client and server cannot be trusted to agree).
function M.retry_after(headers)
  local v = headers and headers["retry-after"]
  if not v then return nil end
  local n = tonumber(v)
  if n then return n >= 0 and n or nil end
  return 1
end

function M.close(self)
  self.core:close()
  if self.limiter and self.limiter.close then self.limiter:close() end
end

return M
