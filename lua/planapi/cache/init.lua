-- cache/init.lua: a small shared cache for what planapi looks up rather
-- than changes (Planfix field definitions, templates, directory entries).
-- It knows nothing of any API: callers give it keys, JSON-encodable values
-- and loaders.
--
--   local cache = require "planapi.cache"
--   local c = cache.new { scope = "memory", ttl = 3600, namespace = "acme.planfix.com" }
--   c:get(key) -> value | nil (a miss) | nil, err (the store failed)
--   c:set(key, value [, ttl]) -> true | nil, err
--   c:fetch(key, loader [, ttl]) -> value | nil, err      loader() -> value | nil, err
--   c:invalidate(key), c:invalidate_prefix(prefix) -> true | nil, err
--
-- Scopes (who shares the entries):
--   "memory" (default)     this process (every cache object of it naming the same namespace)
--   "file:/path/dir"       every process that names the folder (one file per key, flock)
--   "shm:NAME"             this host: inside nginx the lua_shared_dict NAME when nginx.conf
--                          declares one, else a folder of the user's runtime dir (a tmpfs)
--   "redis://host:port/db" every host using that Redis (the limiter's redis:// url)
--
-- Single flight: a miss calls its loader once; concurrent misses of one
-- key in one scope wait for that load (polling the store, at most `wait`
-- seconds, after which a waiter loads for itself) and get its value, or
-- its error: a failed load is never cached. Values go through JSON, so a
-- get returns a copy and numeric keys of a table that is no sequence come
-- back as strings (cache the wire lists, build indexes after).
--
-- No secrets: keys and values are the caller's, and must hold none. A
-- cache given `secrets` (the client's token...) refuses, with a config
-- error, to write a key or value holding one, whole or in part.
local core = require("planapi.core")
local config_error = require("planapi.config_error")
local options = require("planapi.options")
local Ngx = require("planapi.transport.ngx")
local Haproxy = require("planapi.transport.haproxy")

local M = {}

local DEFAULT_TTL = 3600
local DEFAULT_WAIT = 30
local MAX_KEY = 512
local FIRST_STEP, LAST_STEP = 0.01, 0.2 -- a waiter's polls: quick at first, then every LAST_STEP

local Cache = {}
Cache.__index = Cache

-- Secrets live here, not in the object, so that printing it shows none.
local secrets_of = setmetatable({}, { __mode = "k" })

local OPTIONS = { scope = "string", ttl = "number", namespace = "string", clock = "function",
  sleep = "function", wait = "number", secrets = "table", connect = "function" }

local function check_options(opts)
  if type(opts) ~= "table" then config_error("cache.new needs a table of options", 4) end
  options.check("cache", opts, 4, OPTIONS)
  for _, k in ipairs { "ttl", "wait" } do
    local v = opts[k]
    if v ~= nil and not (v > 0 and v < math.huge) then
      config_error(("cache option '%s' must be a number of seconds above 0"):format(k), 4)
    end
  end
  for _, s in ipairs(opts.secrets or {}) do
    if type(s) ~= "string" then config_error("cache option 'secrets' must be a list of strings", 4) end
  end
end

-- The store of a scope: an object with read(k), write(k, text, ttl),
-- delete(k), delete_prefix(p) and try_lock(k, hold) -> release | false.
local function open_store(scope, opts)
  if scope == "memory" then return require("planapi.cache.memory").new() end
  local dir = scope:match "^file:(.+)$"
  if dir then return require("planapi.cache.file").new(dir) end
  local name = scope:match "^shm:([%w_%-%.]+)$"
  if name then
    return require("planapi.cache.shared_dict").find(name, opts.wait or DEFAULT_WAIT)
      or require("planapi.cache.file").host(name)
  end
  if scope:match "^redis://" then
    return require("planapi.cache.redis").new(scope, { connect = opts.connect, hold = opts.wait or DEFAULT_WAIT })
  end
  config_error("cache option 'scope' must be \"memory\", \"file:/dir\", \"shm:NAME\" (letters, digits, _ - .) "
    .. "or \"redis://host:port/db\"", 4)
end

--- cache.new{ scope =, ttl = 3600, namespace = "", clock = os.time, sleep =, wait = 30, secrets = {} }
-- clock: the TTL's wall clock (shared stores compare it across processes);
-- sleep: a waiter's pause (default: ngx.sleep inside nginx, else a
-- blocking one); wait: how long a miss waits for another's load.
function M.new(opts)
  opts = opts or {}
  check_options(opts)
  local scope = opts.scope or "memory"
  local store = open_store(scope, opts)
  local self = setmetatable({
    scope = scope:match "^redis://" and "redis" or scope, store = store,
    ttl = opts.ttl or DEFAULT_TTL, namespace = opts.namespace or "", clock = opts.clock or os.time,
    wait = opts.wait or DEFAULT_WAIT, injected_sleep = opts.sleep,
  }, Cache)
  secrets_of[self] = opts.secrets
  return self
end

function Cache:__tostring() return ("planapi.cache(%s)"):format(self.scope) end

-- ---------------------------------------------------------------- checks

local function check_key(key, what, level)
  if type(key) ~= "string" or key == "" or #key > MAX_KEY then
    config_error(("cache %s must be a string of 1 to %d bytes"):format(what, MAX_KEY), level + 1)
  end
end

local function check_ttl(ttl, level)
  if ttl ~= nil and not (type(ttl) == "number" and ttl > 0 and ttl < math.huge) then
    config_error("cache ttl must be a number of seconds above 0", level + 1)
  end
end

-- A text about to be written must hold no secret the cache was told of.
function Cache:refuse_secrets(text, what, level)
  local secrets = secrets_of[self]
  if secrets and secrets[1] and core.redact(text, secrets) ~= text then
    config_error(("the cache refuses a %s that holds a secret"):format(what), level + 1)
  end
end

-- The store's keys: the namespace, then what the entry is.
function Cache:value_key(key) return self.namespace .. "|v|" .. key end
function Cache:failure_key(key) return self.namespace .. "|f|" .. key end
function Cache:lock_key(key) return self.namespace .. "|l|" .. key end

-- ---------------------------------------------------------------- get / set

-- A record: { k = store key, e = expiry on self.clock, v = value }.
function Cache:read_record(skey)
  local text, err = self.store:read(skey)
  if text == nil then return nil, err end
  local ok, record = pcall(core.json_decode, text)
  if not ok or type(record) ~= "table" or type(record.e) ~= "number" then return nil end -- torn or foreign: a miss
  if record.e <= self.clock() then return nil end
  return record
end

function Cache:get(key)
  check_key(key, "key", 2)
  local record, err = self:read_record(self:value_key(key))
  if record == nil then return nil, err end
  return record.v
end

function Cache:write_record(skey, fields, ttl, level)
  fields.k, fields.e = skey, self.clock() + ttl
  local ok, text = pcall(core.json_encode, fields)
  if not ok then config_error("a cache value must be JSON-encodable: " .. tostring(text.message or text), level + 1) end
  self:refuse_secrets(skey, "key", level + 1)
  self:refuse_secrets(text, "value", level + 1)
  return self.store:write(skey, text, ttl)
end

function Cache:set(key, value, ttl)
  check_key(key, "key", 2)
  check_ttl(ttl, 2)
  if value == nil then config_error("cache:set needs a value (invalidate forgets one)", 2) end
  return self:write_record(self:value_key(key), { v = value }, ttl or self.ttl, 2)
end

function Cache:invalidate(key)
  check_key(key, "key", 2)
  return self.store:delete(self:value_key(key))
end

function Cache:invalidate_prefix(prefix)
  if type(prefix) ~= "string" then config_error("cache prefix must be a string", 2) end
  return self.store:delete_prefix(self:value_key(prefix))
end

-- ---------------------------------------------------------------- fetch

-- A waiter can pause for another's load only if that load can go on
-- meanwhile: another process always can, a coroutine of this one only when
-- the pause yields (ngx.sleep, HAProxy's core.msleep, or a sleep the
-- program injected).
function Cache:sleeper()
  if self.injected_sleep then return self.injected_sleep end
  if Ngx.cosockets() then return Ngx.sleep end
  if Haproxy.yieldable() then return Haproxy.sleep end
  if self.store.in_process then return nil end
  return Ngx.ngx() and Ngx.sleep or core.sleep
end

local function failure_token()
  return core.md5_hex(tostring({}) .. tostring(core.monotime()) .. tostring(math.random()))
end

-- A failed load, recorded briefly for the waiters (never as the value).
function Cache:record_failure(key, failure)
  local kind = type(failure) == "table" and failure.kind or "internal"
  local message = type(failure) == "table" and failure.message or tostring(failure)
  pcall(self.write_record, self, self:failure_key(key), { t = failure_token(), kind = kind, m = message },
    self.wait, 3)
end

-- The loader's result, stored; a loader that fails, raises or returns
-- what cannot be stored (a config error, raised) fails its waiters too,
-- and the key is freed whatever happens.
function Cache:load(key, loader, ttl, release)
  local ok, value, err = pcall(loader)
  local serr
  if ok and value ~= nil then
    local stored
    stored, serr = pcall(self.write_record, self, self:value_key(key), { v = value }, ttl, 3)
    if stored then
      if release then release() end
      return value
    end
  elseif ok and err == nil then
    err = core.error { kind = "internal", message = "the cache's loader for " .. key .. " returned no value" }
  end
  local raised = not ok and value or serr
  self:record_failure(key, raised or err)
  if release then release() end
  if raised then error(raised, 0) end
  return nil, err
end

-- A waiter's view of the key: the value, another's failure since `seen`, or nothing yet.
function Cache:settled(key, seen)
  local record = self:read_record(self:value_key(key))
  if record then return true, record.v end
  local failure = self:read_record(self:failure_key(key))
  if failure and failure.t ~= seen then
    return true, nil, core.error { kind = failure.kind or "internal", message = failure.m or "the load failed" }
  end
  return false
end

function Cache:fetch(key, loader, ttl)
  check_key(key, "key", 2)
  if type(loader) ~= "function" then config_error("cache:fetch needs a loader function", 2) end
  check_ttl(ttl, 2)
  ttl = ttl or self.ttl
  local record, rerr = self:read_record(self:value_key(key))
  if record then return record.v end
  if rerr then return self:load(key, loader, ttl) end -- the store is down: the loader still answers
  local seen = (self:read_record(self:failure_key(key)) or {}).t
  local sleep, waited, step = self:sleeper(), 0, FIRST_STEP
  while true do
    local release = self.store:try_lock(self:lock_key(key), self.wait)
    if release then
      local done, value, err = self:settled(key, seen)
      if done then
        release()
        return value, err
      end
      return self:load(key, loader, ttl, release)
    end
    if release == nil or not sleep or waited >= self.wait then return self:load(key, loader, ttl) end
    sleep(step)
    waited, step = waited + step, math.min(step * 2, LAST_STEP)
    local done, value, err = self:settled(key, seen)
    if done then return value, err end
  end
end

return M
