-- event_receiver_worker.lua: one receiving process of spec/45's burst on
-- the file store, going through the whole receiver (serve, then pending):
-- each delivery of its list (an event id a line) is served as a signed JSON
-- request; the handler appends "<id> <attempts> <NAME>" to the log; then it
-- runs pending until the stop file appears, and prints its handled count.
--   lua5.4 spec/helpers/event_receiver_worker.lua NAME DIR DELIVERIES LOG STOP LEASE [CRASH_AT]
-- CRASH_AT: inside the handler of its CRASH_AT-th event, before the log
-- line, the process kills itself (SIGKILL): a receiver dying mid-handler.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local core = require "planapi.core"
local events = require "planapi.events"

local name, dir, deliveries, log_path, stop_path = arg[1], arg[2], arg[3], arg[4], arg[5]
local lease, crash_at = tonumber(arg[6]), tonumber(arg[7] or "")
local SECRET = "burst-secret-0123456789"

local r = events.receiver {
  secret = SECRET, secret_in = "header:X-Token", lease = lease, retry_delay = 1,
  parse = function(_, fields) return { id = fields.id } end,
  store = events.file { dir = dir },
}
local log = assert(io.open(log_path, "a"))
log:setvbuf "no" -- O_APPEND, one write per line: the processes' lines never mix

local runs = 0
local function handler(ev)
  runs = runs + 1
  if runs == crash_at then os.execute "kill -KILL $PPID" end
  log:write(("%s %d %s\n"):format(ev.id, ev.attempts, name))
  return true
end

for id in io.lines(deliveries) do
  local response = r:serve({ method = "POST", headers = { ["X-Token"] = SECRET },
    body = core.json_encode { id = id } }, handler)
  assert(response.status == 200, response.body)
end
while not io.open(stop_path) do
  if r:pending(handler) == 0 then core.sleep(0.05) end
end
print(runs)
