-- limiter/redis.lua: the GCRA limiter with its state in Redis, so that every
-- process on every host paces one account at exactly its rate.
--
--   local lim = require("planapi.limiter.redis").new {
--     url = "redis://:secret@10.0.0.5:6379/2",   -- AUTH secret, SELECT 2
--     key = "planapi:planfix_rest:acme",
--     rate = 1, per = 1, burst = 1, margin = 0.05,
--     timeout = 1,                                -- seconds: connect and each reply
--     connect = function(host, port, timeout, pool) ... end,  -- optional
--   }
--   lim:reserve() -> seconds to wait | nil, err     lim:settle() / lim:release() -> true | nil, err
--   lim:confirm() -> 0 (the send is recorded) | seconds to wait first | nil, err
--   lim:count(20261122) -> that day's requests, this one included | nil, err
--   lim:used(20261122) -> that day's requests | nil, err
--   lim:info() -> { kind, server, key, interval, burst, tat, now } | nil, err
--   lim:close()
--
-- The methods are those of the local C limiter (src/limiter.c), with the
-- same arithmetic, but it runs in one Lua script on the Redis server
-- (EVALSHA, EVAL when the server lost its script cache) that reads the
-- server's own clock (TIME): hosts with skewed clocks still agree, and the
-- `now` argument the call loop passes is ignored. Each call is one round
-- trip; the reserve-then-store is atomic because Redis runs one script at a
-- time.
--
-- Keys: <key>:tat holds the theoretical arrival time in microseconds and
-- expires once it is in the past (no key means "no backlog"); <key>:day:<day>
-- counts a day's requests and expires two days after its first request.
--
-- Failure: when Redis cannot be reached, refuses the password, or answers
-- with an error, every method returns nil, err with err.kind = "transport",
-- err.retryable = false, a message starting "rate limiter unavailable" and
-- the underlying error in err.cause. The caller decides whether to fail
-- closed or pace locally (lua/planapi/limiter/init.lua). The password never
-- appears in an error, in tostring(lim), nor in a field of lim.
--
-- Connections: one per limiter, opened on first use, with AUTH and SELECT.
-- A call on a connection that turns out to be dropped (Redis restarted, an
-- idle timeout, CLIENT KILL) reconnects and tries once more, unless the
-- reply timed out: the command may have run, and Redis is slow anyway. A
-- repeated command that had in fact run costs one extra interval or one
-- extra count, both on the safe side.
--
-- connect(host, port, timeout_seconds, pool) returns a connected socket
-- with the luasocket / ngx.socket.tcp methods (send, receive, close) and
-- its timeout already set. The default picks it by phase: inside nginx,
-- where cosockets work, an ngx.socket.tcp cosocket from nginx's pool (the
-- worker serves other requests while Redis answers: the reserve, the
-- confirm of the cosocket transport and the quota's day counters alike);
-- elsewhere, and in nginx's phases without cosockets, core.tcp_connect. A
-- socket with setkeepalive goes back to nginx's pool after every call,
-- since a cosocket cannot outlive its request, and one reused from the
-- pool (getreusedtimes() > 0) skips AUTH and SELECT, which it already did.
-- (The connection and its choice, AUTH, SELECT, the reconnect and the
-- EVALSHA/EVAL fallback are limiter/redis_connection.lua, shared with the
-- Redis event store.)
local core = require "planapi.core"
local resp = require "planapi.limiter.redis_protocol"
local connection = require "planapi.limiter.redis_connection"

local M = {}

local Limiter = connection.class "rate limiter"

-- A day's counter outlives its day by one more, so a process in any time
-- zone, or a job running across midnight, still finds the day it counts.
local DAY_TTL = 2 * 86400

local SCRIPT = [[
-- planapi GCRA limiter (lua/planapi/limiter/redis.lua). Times are integer
-- microseconds on this server's clock, so all clients agree.
-- KEYS[1]: the TAT key, or a day counter for 'count'; KEYS[2] for 'confirm':
-- the TAT of the moments requests are written.
-- ARGV: operation, interval, tolerance, day counter TTL in seconds.
local op = ARGV[1]
if op == 'count' then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
  return n
end
-- Before Redis 5 a script was replicated as its text, and TIME would give
-- replicas another answer: replicate its writes instead (a no-op since 7).
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[2]), tonumber(ARGV[3])
-- No key is the same state as a TAT in the past: the key expires once it
-- stops mattering, so idle accounts leave nothing behind.
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local function store_at(key, v)
  if v > now then
    redis.call('SET', key, string.format('%.0f', v),
      'PX', string.format('%.0f', math.ceil((v - now) / 1000) + 1000))
  else
    redis.call('DEL', key)
  end
end
local function store(v) store_at(KEYS[1], v) end
if op == 'confirm' then
  -- The request is about to be written (KEYS[2]: the TAT of the sends):
  -- 0 and the send recorded, or the microseconds to wait, nothing recorded.
  local send = tonumber(redis.call('GET', KEYS[2])) or now
  if send < now then send = now end
  if send - tolerance > now then return send - tolerance - now end
  store_at(KEYS[2], send + interval)
  -- The slots lag the sends by one interval at most (src/limiter.c).
  if tat < send then store(send) end
  return 0
elseif op == 'reserve' then
  store(tat + interval)
  local wait = tat - tolerance - now
  if wait < 0 then wait = 0 end
  return wait
elseif op == 'settle' then
  -- The answer has arrived: the next slot is at least one interval away.
  if tat < now + interval then store(now + interval) end
  return 1
elseif op == 'release' then
  -- A reserved slot that was not used.
  store(tat - interval)
  return 1
elseif op == 'info' then
  return { tat, now }
end
return redis.error_reply('planapi limiter: unknown operation ' .. tostring(op))
]]

local OPTIONS = {
  url = "string", key = "string", rate = "number", per = "number", burst = "number",
  margin = "number", connect = "function", timeout = "number",
}

local config_error = require "planapi.config_error"

local function check_options(opts)
  connection.check_options(opts, OPTIONS, "redis limiter", { "rate", "per", "burst", "timeout" })
  if opts.burst ~= nil and opts.burst < 1 then config_error("redis limiter option 'burst' must be at least 1", 4) end
  if opts.margin ~= nil and not (opts.margin >= 0) then
    config_error("redis limiter option 'margin' must be a number of seconds, 0 or more", 4)
  end
  if opts.key == nil or opts.key == "" then config_error("redis limiter option 'key' is required", 4) end
end

--- limiter_redis.new{ url =, key =, rate =, per =, burst =, margin =, connect =, timeout = }
-- Nothing is connected yet: Redis being down at start is the first call's error.
function M.new(opts)
  check_options(opts)
  local rate, per, burst = opts.rate or 1, opts.per or 1, opts.burst or 1
  -- Whole microseconds: Redis returns script numbers as integers, and the
  -- server's clock has that resolution anyway.
  local interval_us = math.max(1, math.floor((per / rate + (opts.margin or 0)) * 1e6 + 0.5))
  local self = setmetatable({
    kind = "redis",
    key = opts.key,
    interval_us = interval_us,
    tolerance_us = math.floor(interval_us * (burst - 1) + 0.5),
    burst = burst,
    tat_key = opts.key .. ":tat",
    send_key = opts.key .. ":send",
  }, Limiter)
  connection.init(self, opts.url,
    { label = "limiter", connect = opts.connect, timeout = opts.timeout })
  return self
end

Limiter.__tostring = function(self)
  return ("planapi.limiter.redis (redis://%s, key %s)"):format(self.server, self.key)
end

-- Run one operation of the script against key: its reply | nil, err.
function Limiter:script(op, key)
  local keys = op == "confirm" and { key, self.send_key } or { key }
  return self:run_script(SCRIPT, keys, { op, self.interval_us, self.tolerance_us, DAY_TTL })
end

--- Reserve the next slot: the seconds to wait before sending | nil, err.
function Limiter:reserve()
  local wait_us, err = self:script("reserve", self.tat_key)
  if wait_us == nil then return nil, err end
  return wait_us / 1e6
end

--- The request is about to be written: 0 and the send is recorded, or the
-- seconds to wait before asking again | nil, err.
function Limiter:confirm()
  local wait_us, err = self:script("confirm", self.tat_key)
  if wait_us == nil then return nil, err end
  return wait_us / 1e6
end

--- For the libcurl transport, which confirms inside the transfer where no
-- Lua may run: { tcp = the C socket, command = the confirm call as RESP
-- bytes (the same every time: Redis reads its own clock) }, or nil when
-- that cannot be done (a cosocket, no connection: confirm is then called
-- from Lua). After a failure reported by C (err.pacer_failed), call drop().
function Limiter:pacer()
  local script_sha = self:script_sha(SCRIPT)
  if not script_sha then return nil end
  local sock = self:c_socket()
  if not sock then return nil end
  if self.pacer_sha ~= script_sha then
    self.pacer_sha = script_sha
    self.pacer_table = { command = resp.encode { "EVALSHA", script_sha, 2, self.tat_key, self.send_key, "confirm",
      self.interval_us, self.tolerance_us, DAY_TTL } }
  end
  self.pacer_table.tcp = sock
  return self.pacer_table
end

--- The answer arrived: the next slot is at least one interval from now.
function Limiter:settle()
  local ok, err = self:script("settle", self.tat_key)
  if ok == nil then return nil, err end
  return true
end

--- A reserved slot was not used (the request was never sent).
function Limiter:release()
  local ok, err = self:script("release", self.tat_key)
  if ok == nil then return nil, err end
  return true
end

function Limiter:day_key(day)
  if type(day) ~= "number" or day ~= math.floor(day) or day < 0 then
    config_error("the day must be a whole number such as 20261122", 3)
  end
  return ("%s:day:%d"):format(self.key, day)
end

--- Count one request on day (YYYYMMDD): the day's total, this one included | nil, err.
function Limiter:count(day)
  return self:script("count", self:day_key(day))
end

--- The day's total without counting | nil, err.
function Limiter:used(day)
  local value, err = self:request { "GET", self:day_key(day) }
  if value == nil then return nil, self:failed(err) end
  if value == core.null then return 0 end
  local n = tonumber(value)
  if not n then
    return nil, self:unavailable(core.error { kind = "decode", message = "the day counter holds a non-number" })
  end
  return n
end

--- The shared state as the server sees it; times in seconds of the server's clock.
function Limiter:info()
  local r, err = self:script("info", self.tat_key)
  if r == nil then return nil, err end
  return {
    kind = "redis", server = self.server, key = self.key,
    interval = self.interval_us / 1e6, burst = self.burst,
    tat = r[1] / 1e6, now = r[2] / 1e6,
  }
end

Limiter.__close = Limiter.close

return M
