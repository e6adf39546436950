-- rate_timeline.lua (bench): requests per second over time when several
-- processes share one enforced rate through a shared limiter scope, for
-- the picture in BENCHMARKS.md. Each process runs bench/limiter_worker.lua
-- flat out (REST ping) from a common start for WINDOW seconds; the sandbox
-- enforces one request per INTERVAL and logs every request with its
-- connection, which tells the processes apart.
--   lua5.4 bench/rate_timeline.lua OUTDIR PROCESSES INTERVAL WINDOW MARGIN SCOPE
-- SCOPE: shm (a fresh file) or redis (a private redis-server).
-- Writes OUTDIR/rate-timeline.dat ("second p1 p2 ... total refused" per 1 s
-- bin: requests the sandbox accepted from each process, and refused with 429), OUTDIR/rate-timeline.md and .targets.
package.path = "lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;bench/?.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local core = require "planapi.core"
local sandbox = require "sandbox"
local util = require "bench_util"

local OUT = arg[1] or "build/bench"
local N, INTERVAL, WINDOW = tonumber(arg[2]) or 4, tonumber(arg[3]) or 0.1, tonumber(arg[4]) or 10
local MARGIN, SCOPE = tonumber(arg[5]) or 0.003, arg[6] or "shm"

sandbox.env()
local redis, scope, file
if SCOPE == "redis" then
  redis = require("redis_server").start()
  scope = redis.url
else
  file = os.tmpname()
  scope = "shm:" .. file
end
local start_at = util.run_limiter_workers(sandbox, scope, N, WINDOW, INTERVAL, MARGIN)
if redis then redis.stop() end
if file then os.remove(file) end

local entries, refused = {}, {}
for _, e in ipairs(sandbox.log_of "rest") do
  if e.path == "/ping" and e.status == 200 then entries[#entries + 1] = e end
  if e.path == "/ping" and e.status == 429 then refused[#refused + 1] = e end
end
table.sort(entries, function(a, b) return a.time < b.time end)
local stats = sandbox.stats()
sandbox.reset()

-- Processes in the order of their first request; 1 s bins from the first.
local proc, order = {}, 0
local t0 = entries[1].time
local bins, nbins = {}, 0
for _, e in ipairs(entries) do
  if not proc[e.connection] then
    order = order + 1
    proc[e.connection] = order
  end
  local b = math.floor(e.time - t0) + 1
  if b <= WINDOW then -- the last partial second is left out
    bins[b] = bins[b] or {}
    bins[b][proc[e.connection]] = (bins[b][proc[e.connection]] or 0) + 1
    nbins = math.max(nbins, b)
  end
end
local refused_in = {}
for _, e in ipairs(refused) do
  local b = math.floor(e.time - t0) + 1
  refused_in[b] = (refused_in[b] or 0) + 1
end
local f = assert(io.open(OUT .. "/rate-timeline.dat", "w"))
f:write("# second", (" p%d"):rep(order):format(table.unpack((function()
  local t = {}
  for i = 1, order do t[i] = i end
  return t
end)())), " total refused\n")
for b = 1, nbins do
  local row, total = { tostring(b - 1) }, 0
  for p = 1, order do
    local c = bins[b] and bins[b][p] or 0
    row[#row + 1] = tostring(c)
    total = total + c
  end
  row[#row + 1] = tostring(total)
  row[#row + 1] = tostring(refused_in[b] or 0)
  f:write(table.concat(row, " "), "\n")
end
f:close()

local rate = (#entries - 1) / (entries[#entries].time - t0)
local util_pct = rate * INTERVAL * 100
local md = {
  ("%d processes share one limit of %g requests/s through the `%s` scope (margin %g ms per interval), each "
    .. "calling REST `ping` as fast as its limiter allows for %g s; the sandbox enforces the limit. Accepted: %d "
    .. "requests, **%.1f%%** of the limit; violations: **%d**.")
    :format(N, 1 / INTERVAL, SCOPE, MARGIN * 1000, WINDOW, #entries, util_pct, stats.rate_violations),
  "",
  "![Requests per second of 4 processes sharing one limit](bench/rate-timeline.png)",
  "",
}
util.write_section(OUT, "rate-timeline", md, {
  { stats.rate_violations == 0, ("%d processes sharing %g requests/s (%s): zero violations"):format(N, 1 / INTERVAL, SCOPE),
    ("%d violations, %.1f%% of the limit used"):format(stats.rate_violations, util_pct) } })
