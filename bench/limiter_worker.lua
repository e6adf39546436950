-- limiter_worker.lua: one process of a shared-rate run. It makes Planfix
-- REST requests against the sandbox as fast as its limiter lets it, from a
-- common start time until a common end time (both on CLOCK_MONOTONIC,
-- which every process of a host shares), then prints its counts as JSON.
--   lua5.4 bench/limiter_worker.lua SCOPE START END RATE PER MARGIN [FRESH_EVERY]
-- SCOPE: local | shm:<file> | redis://host:port/db | noconfirm:<file>
-- FRESH_EVERY: every Nth request goes on a new connection (the call is
-- marked not idempotent, which the transport sends on a fresh one), so
-- with the sandbox's latency mode some requests spend the connection time
-- after their slot came while others go on a warm connection at once.
package.path = "lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local core = require "planapi.core"
local sandbox = require "sandbox"

local scope, start_at, end_at = arg[1], tonumber(arg[2]), tonumber(arg[3])
local rate, per, margin = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
local fresh_every = tonumber(arg[7] or "")
-- which of its requests go fresh differs between processes (arg 8: the
-- process's index), so a fresh one is often followed by a warm one
local fresh_offset = tonumber(arg[8] or "") or 0

local base = require "planapi.client_base"
-- noconfirm:<file>: the shm scope paced as before confirm existed (slots
-- only, settled on the answer), for the specs' control runs.
local limiter = scope
if scope:match "^noconfirm:" then
  local shm = assert(core.shm_limiter { path = scope:match "^noconfirm:(.*)$", key = "noconfirm",
    rate = rate, per = per, margin = margin })
  limiter = {}
  for _, m in ipairs { "reserve", "settle", "release", "count", "used", "info" } do
    limiter[m] = function(_, ...) return shm[m](shm, ...) end
  end
end
local rest = sandbox.rest {
  limiter = limiter, rate = { rate = rate, per = per, burst = 1, margin = margin },
  real_time = true, retry = { attempts = 1 },
}
-- Warm the connection first (TCP and TLS), on a path the sandbox does not
-- rate: a handshake inside the measured run would delay one request's
-- arrival and make the comparison unfair to the server's clock.
assert(rest.core:perform(rest.core:prepare { method = "GET", url = sandbox.https_url "_sandbox/health" }))
-- The limiter's own connection too (Redis: connect, load the script).
assert(rest.limiter:used(0))

local now = core.monotime()
if start_at > now then core.sleep(start_at - now) end
local ok, limited, failed = 0, 0, 0
local function ping(n)
  if not (fresh_every and (n + fresh_offset) % fresh_every == 0) then return rest:call "ping" end
  return base.run(rest, { req = rest:prepare "ping", operation = "ping", idempotent = false,
    parse = function(r, res) return rest:parse(r, res) end })
end
local n = 0
while core.monotime() < end_at do
  n = n + 1
  local r, err = ping(n)
  if r then
    ok = ok + 1
  elseif err.kind == "rate_limit" then
    limited = limited + 1
  else
    failed = failed + 1
  end
end
io.write(core.json_encode { ok = ok, limited = limited, failed = failed }, "\n")
