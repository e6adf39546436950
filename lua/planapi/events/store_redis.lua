-- events/store_redis.lua: the event store in Redis, shared by every process
-- on every host that names the same server and key prefix, and surviving a
-- receiver's restart.
--
--   local store = require("planapi.events.store_redis").new {
--     url = "redis://:secret@10.0.0.5:6379/2",   -- AUTH secret, SELECT 2
--     key_prefix = "planapi:events:",            -- the default
--     ttl = 8 * 86400, lease = 60,               -- defaults for a claim without a record
--     timeout = 1,                               -- seconds: connect and each reply
--     connect = function(host, port, timeout, pool) ... end,  -- optional
--   }
--   store:claim(id, key, version, { payload =, lease =, ttl = })
--       -> "new" | "duplicate" | "stale", previous_version | nil, err
--   store:finish(id, "done" | "failed") -> true | nil, err
--   store:retry(id, delay) -> true | nil, err
--   store:take(limit, lease) -> { { id =, payload =, attempts = }, ... } | nil, err
--   store:release(id, key, previous_version) -> true | nil, err
--
-- Every operation is one Lua script run by Redis (EVALSHA, EVAL when the
-- server lost its script cache), so it is atomic against every other client
-- of the server: of two claimers of one id anywhere exactly one gets "new",
-- and two takers never get the same event while its lease holds. Times are
-- Redis's own clock (TIME, in milliseconds): hosts with skewed clocks agree.
--
-- Keys under key_prefix: e:<id> a hash (state leased | done | failed, the
-- payload and lease_until while leased, attempts, key, version, previous);
-- pending, a sorted set of the leased ids scored by lease_until; v:<key> the
-- newest version claimed for a key, expiring ttl after its last claim. An
-- event claimed with its payload stays while it is leased, so one whose
-- receiver died is found by take however long it was down; once finished
-- (or stale, or claimed without a record) its id expires ttl after the
-- claim. Nothing grows without bound but the events nobody ever finishes.
-- The keys are built inside the scripts, so a Redis Cluster is not
-- supported (one server, or one primary with replicas).
--
-- Connections, AUTH, SELECT, the reconnect and errors are the limiter's
-- (limiter/redis_connection.lua): a Redis out of reach is nil, err with
-- err.kind = "transport" and a message starting "event store unavailable";
-- the password is never in an error nor a field of the store. Without a
-- connect option the socket is picked by phase (connect_by_phase there):
-- inside nginx, where cosockets work, an ngx.socket.tcp cosocket (back to
-- nginx's pool after every operation), never a blocking socket; elsewhere
-- core.tcp_connect.
local core = require "planapi.core"
local connection = require "planapi.limiter.redis_connection"
local config_error = require "planapi.config_error"

local M = {}

local Store = connection.class "event store"

local DEFAULT_TTL = 8 * 86400 -- Planado retries for about a week
local DEFAULT_LEASE = 60

local SCRIPT = [[
-- planapi event store (lua/planapi/events/store_redis.lua). Times are
-- integer milliseconds on this server's clock, so all clients agree.
-- KEYS[1]: the key prefix. ARGV[1]: the operation, then its arguments.
if redis.replicate_commands then redis.replicate_commands() end
local prefix, op = KEYS[1], ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pending = prefix .. 'pending'
local function event_key(id) return prefix .. 'e:' .. id end
local function version_key(key) return prefix .. 'v:' .. key end

-- key lives at least ms more from now (a longer life it has is kept).
local function keep(key, ms)
  local left = redis.call('PTTL', key)
  if left < ms then redis.call('PEXPIRE', key, ms) end
end

local function lease(id, ek, ms)
  redis.call('HSET', ek, 'lease_until', now + ms)
  redis.call('ZADD', pending, now + ms, id)
end

-- ARGV: id, has_key, key, version ('' none), has_payload, payload, lease_ms, ttl_ms.
-- An event with a payload is kept while it is leased (a receiver that was
-- down longer than the ttl still finds it); its ttl runs from the claim and
-- applies once it is finished. An id without one expires ttl after the claim.
local function claim()
  local id, has_key, key, version = ARGV[2], ARGV[3] == '1', ARGV[4], ARGV[5]
  local has_payload, payload = ARGV[6] == '1', ARGV[7]
  local lease_ms, ttl_ms = tonumber(ARGV[8]), tonumber(ARGV[9])
  local ek = event_key(id)
  local vk = has_key and version_key(key)
  local previous = vk and redis.call('GET', vk)
  if redis.call('EXISTS', ek) == 1 then return { 'duplicate', previous } end
  if version ~= '' and previous and tonumber(version) <= tonumber(previous) then
    redis.call('HSET', ek, 'state', 'done', 'attempts', 0)
    redis.call('PEXPIRE', ek, ttl_ms)
    return { 'stale', previous }
  end
  if vk and version ~= '' then
    redis.call('SET', vk, version, 'KEEPTTL')
    keep(vk, ttl_ms)
  end
  redis.call('HSET', ek, 'state', 'leased', 'attempts', 1, 'version', version,
    'key', has_key and key or '', 'has_key', has_key and 1 or 0, 'previous', previous or '')
  if has_payload then
    redis.call('HSET', ek, 'payload', payload, 'expires_at', now + ttl_ms)
    lease(id, ek, lease_ms)
  else
    redis.call('PEXPIRE', ek, ttl_ms)
  end
  return { 'new', previous }
end

-- ARGV: id, outcome. 1, or 0 when the id is not known (expired, released).
-- The id is remembered until its claim's ttl is over (at once if it is).
local function finish()
  local id, outcome = ARGV[2], ARGV[3]
  local ek = event_key(id)
  redis.call('ZREM', pending, id)
  if redis.call('EXISTS', ek) == 0 then return 0 end
  local expires_at = tonumber(redis.call('HGET', ek, 'expires_at'))
  redis.call('HSET', ek, 'state', outcome)
  redis.call('HDEL', ek, 'payload', 'lease_until', 'expires_at')
  if expires_at and expires_at <= now then
    redis.call('DEL', ek)
  elseif expires_at then
    redis.call('PEXPIRE', ek, expires_at - now)
  end
  return 1
end

-- ARGV: id, delay_ms. 1, or 0 when the event is not leased (finished, gone).
local function retry()
  local id, delay_ms = ARGV[2], tonumber(ARGV[3])
  local ek = event_key(id)
  local h = redis.call('HMGET', ek, 'state', 'payload')
  if h[1] ~= 'leased' or not h[2] then return 0 end
  lease(id, ek, delay_ms)
  return 1
end

-- ARGV: limit, lease_ms. The events longest due first.
local function take()
  local limit, lease_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
  local out = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', pending, '-inf', now, 'LIMIT', 0, limit)) do
    local ek = event_key(id)
    local h = redis.call('HMGET', ek, 'state', 'payload')
    if h[1] == 'leased' and h[2] then
      local attempts = redis.call('HINCRBY', ek, 'attempts', 1)
      lease(id, ek, lease_ms)
      out[#out + 1] = { id, h[2], attempts }
    else
      redis.call('ZREM', pending, id) -- finished or deleted: nothing to take
    end
  end
  return out
end

-- ARGV: id, has_key, key, previous ('' none), ttl_ms. The key's version
-- goes back to previous only while it is still this event's: a newer
-- event claimed since keeps its own.
local function release()
  local id, has_key, key, previous, ttl_ms = ARGV[2], ARGV[3] == '1', ARGV[4], ARGV[5], tonumber(ARGV[6])
  local ek = event_key(id)
  local mine = redis.call('HGET', ek, 'version')
  redis.call('DEL', ek)
  redis.call('ZREM', pending, id)
  if not has_key then return 1 end
  local vk = version_key(key)
  if mine and mine ~= '' and redis.call('GET', vk) ~= mine then return 1 end
  if previous == '' then
    redis.call('DEL', vk)
  else
    redis.call('SET', vk, previous, 'KEEPTTL')
    keep(vk, ttl_ms)
  end
  return 1
end

local ops = { claim = claim, finish = finish, retry = retry, take = take, release = release }
if not ops[op] then return redis.error_reply('planapi event store: unknown operation ' .. tostring(op)) end
return ops[op]()
]]

local OPTIONS = {
  url = "string", key_prefix = "string", connect = "function", timeout = "number",
  ttl = "number", lease = "number",
}

--- events.store.redis{ url =, key_prefix =, ttl =, lease =, timeout =, connect = }
-- Nothing is connected yet: Redis being down at start is the first call's error.
function M.new(opts)
  opts = opts or {}
  connection.check_options(opts, OPTIONS, "redis event store", { "timeout", "ttl", "lease" })
  local self = setmetatable({
    kind = "redis",
    key_prefix = opts.key_prefix or "planapi:events:",
    ttl = opts.ttl or DEFAULT_TTL,
    lease = opts.lease or DEFAULT_LEASE,
  }, Store)
  connection.init(self, opts.url,
    { label = "event store", connect = opts.connect, timeout = opts.timeout })
  return self
end

Store.__tostring = function(self)
  return ("planapi.events.store_redis (redis://%s, prefix %s)"):format(self.server, self.key_prefix)
end

-- Seconds as whole milliseconds.
local function ms(seconds)
  return math.ceil(seconds * 1000)
end

-- Run one operation: its reply | nil, err.
function Store:op(name, args)
  table.insert(args, 1, name)
  local value, err = self:run_script(SCRIPT, { self.key_prefix }, args)
  return value, err
end

local function check_id(id, level)
  local t = type(id)
  if (t ~= "string" and t ~= "number") or id == "" then
    config_error("an event id must be a non-empty string or a number", level + 1)
  end
  if t == "number" and id == math.floor(id) and math.abs(id) < 2 ^ 63 then return ("%.0f"):format(id) end
  return t == "number" and ("%.17g"):format(id) or id
end

-- A number of seconds: above 0, or any finite number for a lease or a
-- retry delay (0 or less: the event can be taken at once).
local function check_seconds(v, name, level, any)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge or not (any or v > 0) then
    config_error(("the %s must be a %s number of seconds"):format(name, any and "finite" or "positive"), level + 1)
  end
  return v
end

local function check_record(record)
  if record == nil then return nil end
  if type(record) ~= "table" then config_error("a claim's record must be a table { payload =, lease =, ttl = }", 4) end
  if type(record.payload) ~= "string" then config_error("a claim's record needs the payload as a string", 4) end
  if record.lease ~= nil then check_seconds(record.lease, "record's lease", 4, true) end
  if record.ttl ~= nil then check_seconds(record.ttl, "record's ttl", 4) end
  return record
end

-- A version as Redis keeps it: exact digits (the protocol's number form).
local function version_arg(version)
  if version == nil then return "" end
  if type(version) ~= "number" or version ~= version then
    config_error("an event version must be a number or nil", 4)
  end
  return version
end

--- Claim an event: "new" | "duplicate" | "stale", previous_version | nil, err.
-- record = { payload = the raw request, lease =, ttl = } (optional: without
-- it the id and the version are remembered, nothing to take later).
function Store:claim(id, key, version, record)
  id = check_id(id, 2)
  record = check_record(record)
  local has_key = key ~= nil
  local reply, err = self:op("claim", {
    id, has_key and "1" or "0", has_key and tostring(key) or "", version_arg(version),
    record and "1" or "0", record and record.payload or "",
    ms(record and record.lease or self.lease), ms(record and record.ttl or self.ttl),
  })
  if reply == nil then return nil, err end
  local previous = reply[2]
  return reply[1], previous ~= core.null and tonumber(previous) or nil
end

--- The handler is done with an event: outcome "done" or "failed". The payload
-- is dropped; the id stays remembered until its ttl: true | nil, err.
function Store:finish(id, outcome)
  id = check_id(id, 2)
  if outcome ~= "done" and outcome ~= "failed" then
    config_error("finish's outcome must be \"done\" or \"failed\"", 2)
  end
  local reply, err = self:op("finish", { id, outcome })
  if reply == nil then return nil, err end
  return true
end

--- The handler failed for now: the event may be taken again after delay seconds.
function Store:retry(id, delay)
  id = check_id(id, 2)
  local reply, err = self:op("retry", { id, ms(check_seconds(delay, "retry delay", 2, true)) })
  if reply == nil then return nil, err end
  return true
end

--- Up to limit events whose lease expired, unfinished, each leased again for
-- lease seconds (attempts + 1): { { id =, payload =, attempts = }, ... } | nil, err.
function Store:take(limit, lease)
  if type(limit) ~= "number" or limit < 1 or limit ~= math.floor(limit) then
    config_error("take's limit must be a whole number, 1 or more", 2)
  end
  local reply, err = self:op("take", { limit, ms(check_seconds(lease or self.lease, "lease", 2, true)) })
  if reply == nil then return nil, err end
  local out = {}
  for i, e in ipairs(reply) do out[i] = { id = e[1], payload = e[2], attempts = e[3] } end
  return out
end

--- Forget a claim entirely; the key's version goes back to previous_version
-- (unless a newer event of the key was claimed since): true | nil, err.
function Store:release(id, key, previous)
  id = check_id(id, 2)
  local has_key = key ~= nil
  local reply, err = self:op("release", {
    id, has_key and "1" or "0", has_key and tostring(key) or "", version_arg(previous), ms(self.ttl),
  })
  if reply == nil then return nil, err end
  return true
end

Store.__close = Store.close

return M
