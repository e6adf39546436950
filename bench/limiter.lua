-- limiter.lua (bench): how much of an enforced rate several processes on
-- one account use, and how often they break it, for each limiter scope.
--   lua5.4 bench/limiter.lua [window_seconds] [process counts, e.g. 1,2,4] [outdir]
-- (make bench runs it through bench/run; with outdir it also writes
-- outdir/limiter.md and outdir/limiter.targets).
-- The sandbox enforces one request per INTERVAL; every process runs
-- bench/limiter_worker.lua flat out for the window. Utilization is the
-- rate the sandbox accepted divided by the limit; violations are requests
-- the sandbox refused because they came too soon. A second table does the
-- same under connection latency and reports the smallest gap the sandbox saw.
package.path = "lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;bench/?.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local bench_util = require "bench_util"
local sandbox = require "sandbox"

local WINDOW = tonumber(arg[1]) or 8
local COUNTS = {}
for n in (arg[2] or "1,2,4"):gmatch "%d+" do COUNTS[#COUNTS + 1] = tonumber(n) end
local OUTDIR = arg[3]
local INTERVAL, MARGIN = 0.5, 0.015

local function run(scope, n, window, interval, margin, opts)
  bench_util.run_limiter_workers(sandbox, scope, n, window or WINDOW, interval or INTERVAL, margin or MARGIN, opts)
  interval = interval or INTERVAL
  local times = {}
  for _, e in ipairs(sandbox.log_of "rest") do
    if e.path == "/ping" and e.status == 200 then times[#times + 1] = e.time end
  end
  table.sort(times)
  local rate = #times > 1 and (#times - 1) / (times[#times] - times[1]) or 0
  local stats = sandbox.stats()
  return rate * interval, stats.rate_violations, #times, stats
end

sandbox.env()
local redis = require("redis_server").start()
local scopes = {
  { "local", "local" },
  { "shm", "shm:" .. os.tmpname() },
  { "redis", redis.url },
}
local md = {}
local function out(s)
  md[#md + 1] = s
  if not OUTDIR then print(s) end
end
out(("Shared rate: the sandbox enforces one request per %.1f s; %g s runs; margin %.0f ms per interval.")
  :format(INTERVAL, WINDOW, MARGIN * 1000))
out ""
out "| scope | processes | utilization | violations | accepted |"
out "|---|---|---|---|---|"
local status = 0
for _, s in ipairs(scopes) do
  for _, n in ipairs(COUNTS) do
    local util, violations, accepted = run(s[2], n)
    out(("| %s | %d | %.1f%% | %d | %d |"):format(s[1], n, util * 100, violations, accepted))
    if s[1] ~= "local" and (violations > 0 or util < 0.95) then status = 1 end
  end
end
out ""
out "`local` is each process pacing alone, so n processes make n times the limit: the violations show why a shared scope is needed."
out ""

-- Under connection latency (issue 13 §1): the case where spacing the
-- slots is not enough. The documented Planfix rate and margin.
local LAT_INTERVAL, LAT_MARGIN, LATENCY, FRESH = 1.0, 0.02, 0.15, 3
local LAT_WINDOW = math.max(3, WINDOW * 2)
local lat_status = 0
out(("Under latency: the sandbox enforces one request per %.1f s and holds every new TLS connection %d ms; "
  .. "4 processes, each sending every %s request on a new connection (the others on a kept-alive one); "
  .. "margin %d ms (the Planfix default); %g s runs. `slots only` paces as before the send was confirmed "
  .. "(reserve, then settle on the answer).")
  :format(LAT_INTERVAL, LATENCY * 1000, FRESH == 3 and "third" or FRESH .. "th", LAT_MARGIN * 1000, LAT_WINDOW))
out ""
out "| scope | utilization | violations | smallest accepted gap | connections held | accepted |"
out "|---|---|---|---|---|---|"
local lat_scopes = {
  { "shm", "shm:" .. os.tmpname() },
  { "redis", redis.url },
  { "slots only (shm)", "noconfirm:" .. os.tmpname() },
}
for _, s in ipairs(lat_scopes) do
  local util, violations, accepted, stats = run(s[2], 4, LAT_WINDOW, LAT_INTERVAL, LAT_MARGIN,
    { latency = LATENCY, fresh_every = FRESH })
  local gap = tonumber(stats.rate_min_gap)
  out(("| %s | %.1f%% | %d | %s | %d | %d |"):format(s[1], util * 100, violations,
    gap and ("%.3f s"):format(gap) or "-", stats.latency_delayed_connections, accepted))
  if not s[1]:match "^slots" and (violations > 0 or util < 0.95 or not gap or gap < LAT_INTERVAL) then
    lat_status = 1
  end
end
redis.stop()
os.remove(scopes[2][2]:sub(5))
os.remove(lat_scopes[1][2]:sub(5))
os.remove(lat_scopes[3][2]:sub(11))
out ""
local target = "shared scopes (shm, redis) use at least 95% of the limit with zero violations"
local lat_target = "under 150 ms connection latency, shared scopes use at least 95% of the limit with zero violations"
if OUTDIR then
  bench_util.write_section(OUTDIR, "limiter", md, { { status == 0, target, "see the table" },
    { lat_status == 0, lat_target, "see the latency table" } })
else
  print(status == 0 and "target met: " .. target or "target missed: " .. target)
  print(lat_status == 0 and "target met: " .. lat_target or "target missed: " .. lat_target)
end
os.exit(OUTDIR and 0 or math.max(status, lat_status)) -- with outdir the verdict is in limiter.targets
