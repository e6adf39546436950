-- event_worker.lua: one receiving process of spec/47's bursts, on the Redis
-- event store. It claims each delivery of its list (an event id a line, in
-- the order the spec shuffled them), handles the fresh ones by appending
-- "<id> <attempts> <NAME>" to the log, then takes expired leases from the
-- store until the stop file appears; its counts go to stdout as JSON.
--   LUA spec/helpers/event_worker.lua CPATH NAME URL PREFIX DELIVERIES LOG STOP START LEASE [CRASH_AT]
-- START: CLOCK_MONOTONIC seconds at which to begin (every worker together).
-- CRASH_AT: inside the handler of its CRASH_AT-th fresh event, before the
-- log line, the process kills itself with SIGKILL: a receiver that dies
-- mid-handler, leaving a claimed, unfinished event.
local cpath = arg[1]
package.path = "lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;" .. package.path
package.cpath = cpath .. ";" .. package.cpath
local core = require "planapi.core"
local store_redis = require "planapi.events.store_redis"

local name, url, prefix, deliveries, log_path, stop_path = arg[2], arg[3], arg[4], arg[5], arg[6], arg[7]
local start_at, lease = tonumber(arg[8]), tonumber(arg[9])
local crash_at = tonumber(arg[10] or "")

local store = store_redis.new { url = url, key_prefix = prefix, timeout = 5 }
local counts = { new = 0, duplicate = 0, stale = 0, taken = 0, failed = 0 }
local handled = 0

local log = assert(io.open(log_path, "a"))
log:setvbuf "no" -- O_APPEND and one write per line: lines from several processes never mix

local function handle(id, attempts)
  handled = handled + 1
  if handled == crash_at then os.execute "kill -KILL $PPID" end
  log:write(("%s %d %s\n"):format(id, attempts, name))
  local ok, err = store:finish(id, "done")
  if not ok then
    counts.failed = counts.failed + 1
    io.stderr:write(tostring(err), "\n")
  end
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

core.sleep(math.max(0, start_at - core.monotime()))
for id in io.lines(deliveries) do
  local status, err = store:claim(id, nil, nil, { payload = "event " .. id, lease = lease, ttl = 60 })
  if status == nil then
    counts.failed = counts.failed + 1
    io.stderr:write(tostring(err), "\n")
  else
    counts[status] = counts[status] + 1
    if status == "new" then handle(id, 1) end
  end
end
-- What a receiver's timer does: expired leases are handled again, here.
while not exists(stop_path) do
  local events = assert(store:take(100, lease))
  for _, e in ipairs(events) do
    counts.taken = counts.taken + 1
    assert(e.payload == "event " .. e.id, "the payload came back as it was stored")
    handle(e.id, e.attempts)
  end
  if #events == 0 then core.sleep(0.05) end
end
io.write(core.json_encode(counts), "\n")
