-- Several processes on one account, against the sandbox enforcing the
-- rate: through a shm: file and through redis://, four processes making
-- requests as fast as their limiter allows see zero violations and use at
-- least 95% of the limit, and killing one mid-run stalls nobody.
local core = require "planapi.core"
local sandbox = require "sandbox"

local INTERVAL = 0.2  -- the sandbox's enforced spacing: 5 requests a second
local WINDOW = 10     -- seconds of the run: one slot lost to a killed process costs 2%
local MARGIN = 0.004  -- slack per interval (2%): arrival jitter between processes

-- Start n workers sharing `scope`; returns their handles (pid, pipe).
local function start_workers(n, scope)
  local start_at = core.monotime() + 1.0 -- every worker has connected by then
  local end_at = start_at + WINDOW
  local workers = {}
  for i = 1, n do
    local cmd = ("exec sh -c 'echo $$; exec lua5.4 bench/limiter_worker.lua %s %.6f %.6f 1 %s %s'")
      :format(scope, start_at, end_at, INTERVAL, MARGIN)
    local pipe = assert(io.popen(cmd))
    workers[i] = { pid = assert(tonumber(pipe:read "l")), pipe = pipe }
  end
  return workers, start_at, end_at
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

-- The rate the sandbox accepted pings at, from its own log.
local function accepted_rate()
  local times = {}
  for _, e in ipairs(sandbox.log_of "rest") do
    if e.path == "/ping" and e.status == 200 then times[#times + 1] = e.time end
  end
  table.sort(times)
  return (#times - 1) / (times[#times] - times[1]), #times
end

local function run(scope, kill_one)
  sandbox.reset()
  sandbox.config { rate = { enabled = true, interval = INTERVAL } }
  local workers, start_at = start_workers(4, scope)
  if kill_one then
    core.sleep(start_at + WINDOW / 2 - core.monotime())
    os.execute("kill -9 " .. workers[4].pid)
  end
  local totals = finish(workers)
  local rate, n = accepted_rate()
  return totals, rate, n
end

describe("a rate shared by several processes", function()
  local function check(scope, kill_one)
    local totals, rate, n = run(scope, kill_one)
    local stats = sandbox.stats()
    assert.equal(0, stats.rate_violations, "violations through " .. scope)
    assert.equal(0, totals.limited)
    assert.equal(0, totals.failed)
    local utilization = rate * INTERVAL
    assert.is_true(utilization >= 0.95, ("%s used %.1f%% of the limit (%d requests)"):format(scope, utilization * 100, n))
    assert.is_true(n >= WINDOW / INTERVAL * 0.9)
  end

  it("through shm: 4 processes, zero violations, at least 95% of the limit", function()
    local file = os.tmpname()
    check("shm:" .. file)
    os.remove(file)
  end)

  it("through shm: a process killed mid-run stalls nobody", function()
    local file = os.tmpname()
    check("shm:" .. file, true)
    os.remove(file)
  end)

  it("through redis: 4 processes, zero violations, at least 95% of the limit, one killed mid-run", function()
    local redis = require("redis_server").start()
    local ok, err = pcall(check, redis.url, true)
    redis.stop()
    assert(ok, err)
  end)

  it("each process on its own (local) breaks the limit: the check above can fail", function()
    local totals = run "local"
    assert.is_true(sandbox.stats().rate_violations > 0)
    assert.is_true(totals.limited > 0)
  end)
end)
