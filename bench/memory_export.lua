-- memory_export.lua: one process of bench/memory.lua. A streamed export of
-- every task through planapi's REST pager (page size 100), each item written
-- to /dev/null as JSON as it comes, this process's RSS sampled as it goes.
--   lua5.4 bench/memory_export.lua FIELDS SAMPLE_EVERY DATAFILE
-- The sandbox (PLANAPI_SANDBOX_DIR) must hold the tasks, rate enforcement off.
-- Prints one JSON line: baseline (RSS after loading planapi and making the
-- client, before exporting), first_page, at (RSS by item count), peak (VmHWM),
-- items, seconds; DATAFILE gets "items rss_mib lua_heap_mib" lines.
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local planapi = require "planapi"
local core = require "planapi.core"
local util = require "bench_util"

local fields, every, datafile = arg[1], tonumber(arg[2]), arg[3]
local env = dofile((os.getenv "PLANAPI_SANDBOX_DIR" or "sandbox/.run") .. "/env.lua")
local rest = planapi.planfix_rest { base_url = env.rest_url, token = "sandbox-token", ca_file = env.ca_file,
  rate = false }
collectgarbage()
local baseline = util.rss()

local out = assert(io.open("/dev/null", "w"))
local data = assert(io.open(datafile, "w"))
local encode = core.json_encode
local function sample(n)
  local rss = util.rss()
  data:write(("%d %.2f %.2f\n"):format(n, rss, collectgarbage "count" / 1024))
  return rss
end
sample(0)
local at, first_page = {}, nil
local n = 0
local t0 = core.monotime()
local pager = rest:pager("get-task-list", { fields = fields }, { page_size = 100 })
for task in pager:each() do
  n = n + 1
  out:write(encode(task), "\n")
  if n == 100 then first_page = util.rss() end
  if n % every == 0 then at[#at + 1] = { n, sample(n) } end
end
local seconds = core.monotime() - t0
if n % every ~= 0 then at[#at + 1] = { n, sample(n) } end
out:close()
data:close()
local _, peak = util.rss()
local parts = {}
for _, a in ipairs(at) do parts[#parts + 1] = ("[%d,%.2f]"):format(a[1], a[2]) end
print(("{\"baseline\":%.2f,\"first_page\":%.2f,\"peak\":%.2f,\"items\":%d,\"seconds\":%.3f,\"at\":[%s]}")
  :format(baseline, first_page or 0, peak, n, seconds, table.concat(parts, ",")))
