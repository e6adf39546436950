-- memory_idle.lua: one process of bench/memory.lua. The memory of an idle
-- planapi client: RSS and Lua heap deltas of making N REST clients (kept
-- alive), then of each making one call (so each holds an open TLS
-- connection and libcurl's caches), divided by N.
--   lua5.4 bench/memory_idle.lua N
-- Prints one JSON line (KiB per client).
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local planapi = require "planapi"
local util = require "bench_util"

local n = tonumber(arg[1])
local env = dofile((os.getenv "PLANAPI_SANDBOX_DIR" or "sandbox/.run") .. "/env.lua")
local function make()
  return planapi.planfix_rest { base_url = env.rest_url, token = "sandbox-token", ca_file = env.ca_file, rate = false }
end
-- One client first, so what every process pays once (libcurl and OpenSSL
-- initialised, the CA file read, the operation table loaded) is in the baseline.
local first = make()
assert(first:call "ping")
collectgarbage()
collectgarbage()
local rss0, heap0 = util.rss(), collectgarbage "count"
local clients = {}
for i = 1, n do clients[i] = make() end
collectgarbage()
collectgarbage()
local rss1, heap1 = util.rss(), collectgarbage "count"
for i = 1, n do assert(clients[i]:call "ping") end
collectgarbage()
collectgarbage()
local rss2, heap2 = util.rss(), collectgarbage "count"
print(("{\"clients\":%d,\"new_rss_kib\":%.1f,\"new_heap_kib\":%.1f,\"connected_rss_kib\":%.1f,\"connected_heap_kib\":%.1f}")
  :format(n, (rss1 - rss0) * 1024 / n, (heap1 - heap0) / n, (rss2 - rss0) * 1024 / n, (heap2 - heap0) / n))
