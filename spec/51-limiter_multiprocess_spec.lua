-- Several processes on one account, against the sandbox enforcing the
-- rate: through a shm: file and through redis://, four processes making
-- requests as fast as their limiter allows see zero violations and use at
-- least 95% of the limit; one killed mid-run stalls nobody; and when
-- opening a connection takes 150 ms (the sandbox's latency mode) the
-- server still sees every request an interval after the one before.
local core = require "planapi.core"
local sandbox = require "sandbox"

local INTERVAL = 0.5  -- the sandbox's enforced spacing: 2 requests a second
local WINDOW = 14     -- seconds of each run; a process is killed half-way
local MARGIN = 0.02   -- the default margin (README, rate): slack for stalls of a few ms on a busy host

-- Start n workers sharing `scope`; returns them and the run's start time.
local function start_workers(n, scope, window, interval, margin, fresh_every)
  local start_at = core.monotime() + 1.5 -- every worker has connected by then
  local workers = {}
  for i = 1, n do
    local cmd = ("exec sh -c 'echo $$; exec lua5.4 bench/limiter_worker.lua %s %.6f %.6f 1 %s %s %s %d'")
      :format(scope, start_at, start_at + window, interval or INTERVAL, margin or MARGIN, fresh_every or "", i)
    local pipe = assert(io.popen(cmd))
    workers[i] = { pid = assert(tonumber(pipe:read "l")), pipe = pipe }
  end
  return workers, start_at
end

local function finish(workers)
  local totals = { ok = 0, limited = 0, failed = 0 }
  for _, w in ipairs(workers) do
    local line = w.pipe:read "l"
    w.pipe:close()
    if line then
      local r = core.json_decode(line)
      for k in pairs(totals) do totals[k] = totals[k] + r[k] end
    end
  end
  return totals
end

-- The times (sandbox clock) of the pings it accepted, sorted.
local function accepted()
  local times = {}
  for _, e in ipairs(sandbox.log_of "rest") do
    if e.path == "/ping" and e.status == 200 then times[#times + 1] = e.time end
  end
  table.sort(times)
  return times
end

-- The fraction of the limit used by the requests in times[a..b].
local function utilization(times, a, b, interval)
  return (b - a) / (times[b] - times[a]) * (interval or INTERVAL)
end

-- Run 4 workers on scope and kill one half-way; returns the accepted times
-- and the workers' own counts.
local function run_with_kill(scope)
  sandbox.reset()
  sandbox.config { rate = { enabled = true, interval = INTERVAL } }
  local workers, start_at = start_workers(4, scope, WINDOW)
  core.sleep(start_at + WINDOW / 2 - core.monotime())
  os.execute("kill -9 " .. workers[4].pid)
  local totals = finish(workers)
  return accepted(), totals
end

describe("a rate shared by several processes #realtime", function()
  local function check(scope)
    local times, totals = run_with_kill(scope)
    assert.equal(0, sandbox.stats().rate_violations, "violations through " .. scope)
    assert.equal(0, totals.limited)
    assert.equal(0, totals.failed)
    local n = #times
    assert.is_true(n >= WINDOW / INTERVAL * 0.9, scope .. ": only " .. n .. " requests")
    -- Four processes before the kill, three after it: both at the limit. The
    -- requests around the kill are left out: the killed process may have
    -- reserved a slot it never used, up to one slot per process ahead.
    local half = math.floor(n / 2)
    local before, after = utilization(times, 1, half - 1), utilization(times, half + 5, n)
    assert.is_true(before >= 0.95, ("%s used %.1f%% of the limit before the kill"):format(scope, before * 100))
    assert.is_true(after >= 0.95, ("%s used %.1f%% of the limit after the kill"):format(scope, after * 100))
  end

  it("through shm: zero violations, at least 95% of the limit, a killed process stalls nobody", function()
    local file = os.tmpname()
    check("shm:" .. file)
    os.remove(file)
  end)

  it("through redis: zero violations, at least 95% of the limit, a killed process stalls nobody", function()
    local redis = require("redis_server").start()
    local ok, err = pcall(check, redis.url)
    redis.stop()
    assert(ok, err)
  end)

  it("each process on its own (local) breaks the limit: the checks above can fail", function()
    sandbox.reset()
    sandbox.config { rate = { enabled = true, interval = INTERVAL } }
    local totals = finish((start_workers(4, "local", 3)))
    assert.is_true(sandbox.stats().rate_violations > 0)
    assert.is_true(totals.limited > 0)
  end)

  -- Issue 13 §1: the API at 1 request a second, every new connection held
  -- 150 ms (the sandbox's latency mode), every third request of each
  -- process on a new connection while the others go on warm ones. Spacing
  -- is confirmed where the server measures it: zero violations with the
  -- default margin (0.02 s), and still at least 95% of the limit.
  local function latency_run(scope, window)
    sandbox.reset()
    sandbox.config { rate = { enabled = true, interval = 1.0 }, latency = { connect = 0.15 } }
    local totals = finish((start_workers(4, scope, window, 1.0, 0.02, 3)))
    local stats = sandbox.stats()
    return accepted(), totals, stats
  end

  local function check_latency(scope)
    local times, totals, stats = latency_run(scope, 12)
    assert.is_true(stats.latency_delayed_connections >= 6,
      "only " .. stats.latency_delayed_connections .. " connections were held")
    assert.equal(0, stats.rate_violations, ("%d violations through %s, smallest gap %.3f s")
      :format(stats.rate_violations, scope, stats.rate_min_gap or 0))
    assert.equal(0, totals.limited + totals.failed)
    assert.is_true(stats.rate_min_gap >= 1.0)
    local util = utilization(times, 1, #times, 1.0)
    assert.is_true(util >= 0.95, ("%s used %.1f%% of the limit under latency"):format(scope, util * 100))
  end

  it("with 150 ms to open a connection, through shm: zero violations, at least 95% of the limit", function()
    local file = os.tmpname()
    check_latency("shm:" .. file)
    os.remove(file)
  end)

  it("with 150 ms to open a connection, through redis: zero violations, at least 95% of the limit", function()
    local redis = require("redis_server").start()
    local ok, err = pcall(check_latency, redis.url)
    redis.stop()
    assert(ok, err)
  end)

  it("(control) spacing only the slots, not the sends, breaks the limit under the same latency", function()
    local file = os.tmpname()
    local _, _, stats = latency_run("noconfirm:" .. file, 6)
    os.remove(file)
    assert.is_true(stats.rate_violations > 0)
  end)
end)

