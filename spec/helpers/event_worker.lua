-- event_worker.lua: one receiving process of a burst (spec/45 on the file
-- store, spec/47 on Redis): an events.receiver fed the deliveries of its
-- list (an event id a line, in the order the spec shuffled them) as HTTP
-- requests. Fresh events are handled by appending "<id> <attempts> <NAME>"
-- to the log; then, until the stop file appears, r:pending takes expired
-- leases, as a receiver's timer does. Its counts go to stdout as JSON.
--   LUA spec/helpers/event_worker.lua CPATH NAME STORE PREFIX DELIVERIES LOG STOP START LEASE [CRASH_AT]
-- STORE: file:DIR (PREFIX unused) or a redis:// URL (PREFIX its key prefix).
-- START: CLOCK_MONOTONIC seconds at which to begin (every worker together).
-- CRASH_AT: inside the handler of its CRASH_AT-th event, before the log
-- line, the process kills itself with SIGKILL: a receiver that dies
-- mid-handler, leaving a claimed, unfinished event.
local cpath = arg[1]
package.path = "lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;" .. package.path
package.cpath = cpath .. ";" .. package.cpath
local core = require "planapi.core"
local events = require "planapi.events"

local name, store, prefix, deliveries, log_path, stop_path = arg[2], arg[3], arg[4], arg[5], arg[6], arg[7]
local start_at, lease = tonumber(arg[8]), tonumber(arg[9])
local crash_at = tonumber(arg[10] or "")
local SECRET = "burst-token-0123456789"

local dir = store:match "^file:(.+)$"
local receiver = events.receiver {
  secret = SECRET, secret_in = "header:X-Token", lease = lease, ttl = 600,
  store = dir and events.file { dir = dir } or events.redis { url = store, key_prefix = prefix, timeout = 5 },
  parse = function(_, fields) return { id = fields.id, type = "burst" } end,
}
local counts = { new = 0, duplicate = 0, stale = 0, taken = 0, failed = 0 }
local handled = 0

local log = assert(io.open(log_path, "a"))
log:setvbuf "no" -- O_APPEND and one write per line: lines from several processes never mix

local function handler(event)
  handled = handled + 1
  if handled == crash_at then os.execute "kill -KILL $PPID" end
  log:write(("%s %d %s\n"):format(event.id, event.attempts, name))
  return true
end

local function failed(what)
  counts.failed = counts.failed + 1
  io.stderr:write(tostring(what), "\n")
end

local function deliver(id)
  local response, event, detail = receiver:receive {
    method = "POST", path = "/hooks/burst",
    headers = { ["Content-Type"] = "application/json", ["X-Token"] = SECRET },
    body = core.json_encode { id = id, event = "task.changed" },
  }
  if response.status ~= 200 then return failed(response.body) end
  local status = event and "new" or detail.claim
  counts[status] = counts[status] + 1
  if event then
    local ok, err = receiver:handle(event, handler)
    if not ok then failed(err) end
  end
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

core.sleep(math.max(0, start_at - core.monotime()))
for id in io.lines(deliveries) do deliver(id) end
while not exists(stop_path) do
  local n = assert(receiver:pending(handler, { limit = 100 }))
  counts.taken = counts.taken + n
  if n == 0 then core.sleep(0.05) end
end
io.write(core.json_encode(counts), "\n")
