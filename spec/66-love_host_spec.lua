-- The LÖVE host (examples/love): the job board runs headless under Xvfb, in
-- LÖVE 11's own LuaJIT with build/luajit/planapi/core.so, against the
-- sandbox. Every API call runs in its love.thread worker; the frame loop must
-- keep drawing (99% of frames under 50 ms, none near the wait) while the
-- worker waits on a slow answer.
-- The jobs it shows are judged against the sandbox's store, not against
-- planapi. The screenshot stays under build/love/ (docs/love-jobboard.png is
-- one of them).
local cjson = require "cjson"
local portable = require "portable"
local sandbox = require "sandbox"

local ARTIFACTS = "build/love"
local SLOW = 1.5 -- seconds the sandbox holds the jobs call

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Run the board until it has made `refreshes` refreshes (at most 20 s):
-- its report (decoded), the output of love and Xvfb, the exit code.
local function run_board(opts)
  local runtime = portable.tmpdir() -- a pacing scope of its own: no budget spent by earlier runs
  local report = os.tmpname()
  local env = {
    PLANADO_URL = sandbox.https_url "planado/v2/", PLANADO_API_KEY = opts.key or sandbox.PLANADO_KEY,
    PLANAPI_CA_FILE = sandbox.env().ca_file, PLANAPI_RUNTIME_DIR = runtime,
    PLANAPI_ROOT = (portable.run "pwd"):gsub("\n$", ""),
    JOBBOARD_DAY = opts.day, JOBBOARD_EVERY = "0.2", JOBBOARD_REFRESHES = tostring(opts.refreshes),
    JOBBOARD_SECONDS = "20", JOBBOARD_REPORT = report, JOBBOARD_SCREENSHOT = opts.screenshot,
  }
  local vars = {}
  for k, v in pairs(env) do vars[#vars + 1] = k .. "=" .. shell_quote(v) end
  -- xvfb-run -a takes the first free display from -n on: started at the same number, two runs at
  -- once (make test's Lua 5.4 and LuaJIT runs) could both take it. Each run's sandbox port differs.
  local display = sandbox.env().https_port % 20000 + 100
  local out, code = portable.run(("env %s timeout 40 xvfb-run -a -n %d love examples/love")
    :format(table.concat(vars, " "), display))
  local text = portable.read_file(report)
  os.remove(report)
  portable.rmtree(runtime)
  local ok, decoded = pcall(cjson.decode, text or "")
  return ok and decoded or nil, out, code
end

-- The jobs of `day` as the sandbox stores them: uuid -> status.
local function stored_jobs_of(day)
  local out = {}
  local all = sandbox.control("GET", "store/planado_jobs").planado_jobs
  for _, job in pairs(all) do
    if type(job) == "table" and type(job.scheduled_at) == "string" and job.scheduled_at:sub(1, 10) == day then
      out[job.uuid] = job.status
    end
  end
  return out
end

local function shown(refresh)
  local out = {}
  for _, job in ipairs(refresh.jobs or {}) do out[job.uuid] = job.status end
  return out
end

-- Jobs on the day (its first and last second included), around it and without a time;
-- one started and one finished through the sandbox's web-side transitions.
local function seed_jobs(day, next_day)
  local pd = sandbox.planado()
  local times = { day .. "T00:00:00Z", day .. "T09:30:00Z", day .. "T13:00:00Z", day .. "T23:59:59Z",
    next_day .. "T00:00:00Z" }
  local uuids = {}
  for i, at in ipairs(times) do
    uuids[i] = assert(pd.jobs:create { external_id = "love-" .. i, description = "Job " .. i, scheduled_at = at })
  end
  assert(pd.jobs:create { external_id = "love-unscheduled", description = "No time yet" })
  sandbox.control("POST", "planado/jobs/" .. uuids[2] .. "/start")
  sandbox.control("POST", "planado/jobs/" .. uuids[3] .. "/start")
  sandbox.control("POST", "planado/jobs/" .. uuids[3] .. "/finish")
  pd:close()
  return { uuids[1], uuids[2], uuids[3], uuids[4] } -- the day's
end

describe("the LÖVE job board (examples/love)", function()
  setup(function()
    local out, code = portable.run "make --no-print-directory LUA=luajit"
    assert.equal(0, code, out)
    assert.equal(0, select(2, portable.run "command -v love && command -v xvfb-run"),
      "LÖVE and Xvfb are needed: tools/ensure-deps installs love and xvfb")
    assert(portable.execute("mkdir -p " .. ARTIFACTS))
  end)

  before_each(function() sandbox.reset() end)

  -- The frame times are wall time: the test runs with the #realtime ones,
  -- alone, once (under Lua 5.4; LÖVE runs its own LuaJIT either way).
  it("shows the day's jobs from its worker while the frame loop keeps drawing through a slow call #realtime",
    function()
      local now = os.time()
      local day, next_day = os.date("!%Y-%m-%d", now), os.date("!%Y-%m-%d", now + 86400)
      local of_the_day = seed_jobs(day, next_day)
      -- The first jobs call answers 503 (retried by planapi's policy), the retry waits SLOW seconds.
      sandbox.fault { { mode = "status", status = 503, path = "/jobs", method = "GET" },
        { mode = "slow", delay = SLOW, path = "/jobs", method = "GET" } }
      local screenshot = ARTIFACTS .. "/jobboard.png"
      os.remove(screenshot)
      local started = os.time()
      local report, out, code = run_board { day = day, refreshes = 2, screenshot = screenshot }
      assert.equal(0, code, out)
      assert.is_table(report, out)
      assert.is_nil(report.fatal)
      assert.is_nil(report.error)
      assert.equal(2, #report.refreshes)

      -- What the worker sent is the sandbox's store for the day, statuses included.
      local expected = stored_jobs_of(day)
      local stored = {}
      for uuid in pairs(expected) do stored[#stored + 1] = uuid end
      table.sort(stored)
      table.sort(of_the_day)
      assert.same(of_the_day, stored)
      for i, refresh in ipairs(report.refreshes) do
        assert.equal(i, refresh.refresh)
        assert.same(expected, shown(refresh))
      end
      local statuses = {}
      for _, status in pairs(expected) do statuses[status] = true end
      assert.same({ posted = true, started = true, finished = true }, statuses)

      -- The first refresh met the 503 (one retry) and the slow answer.
      assert.equal(1, report.refreshes[1].retries)
      assert.is_true(report.refreshes[1].seconds >= SLOW, tostring(report.refreshes[1].seconds))
      local faults = {}
      for _, e in ipairs(sandbox.log_of "planado") do faults[#faults + 1] = e.fault end
      assert.same({ "status", "slow" }, faults)

      -- The loop drew all along: at least one frame per 50 ms of the slow wait, 99% of them under
      -- 50 ms of their own and none near the wait itself (a loop that waited on the call shows a frame of
      -- about SLOW seconds). A frame's own time leaves out the time the OS kept the thread ready but off
      -- a CPU (the run delay of Linux's schedstat); on a loaded machine a rare frame still stalls
      -- about 100 ms outside the loop's code, hence the percentile rather than the maximum.
      local f = report.frames
      assert.is_true(#f.busy_ms >= SLOW / 0.05, ("only %d frames while a call waited"):format(#f.busy_ms))
      local longest = 0
      for _, ms in ipairs(f.busy_ms) do longest = math.max(longest, ms) end
      assert.is_true(longest < SLOW * 1000 / 4, ("a frame took %.1f ms while a call waited"):format(longest))
      local own = f.busy_own_ms
      table.sort(own)
      local p99 = own[math.ceil(#own * 0.99)]
      assert.is_true(p99 < 50, ("99%% of the frames while a call waited took up to %.1f ms"):format(p99))

      -- The screenshot is a PNG of the window (640x400), written by this run.
      local png = assert(portable.read_file(screenshot), "no screenshot")
      assert.equal("\137PNG\r\n\26\n", png:sub(1, 8))
      local w = png:byte(17) * 16777216 + png:byte(18) * 65536 + png:byte(19) * 256 + png:byte(20)
      local h = png:byte(21) * 16777216 + png:byte(22) * 65536 + png:byte(23) * 256 + png:byte(24)
      assert.same({ 640, 400 }, { w, h })
      assert.is_true(os.time() - started < 15, "the run took too long")
    end)

  it("shows a refused key as the worker's one-line error, without the key, and keeps running", function()
    local key = "love-wrong-key-7d1c0e"
    require("journal").secret(key) -- given to the board: the secret scan looks for it in everything else
    local report, out, code = run_board { day = "2024-01-02", refreshes = 2, key = key }
    assert.equal(0, code, out)
    assert.is_table(report, out)
    assert.is_nil(report.fatal)
    assert.equal(2, #report.refreshes) -- the worker lived on after the refusal
    for _, refresh in ipairs(report.refreshes) do
      assert.is_nil(refresh.jobs)
      assert.equal(0, refresh.retries) -- an auth error is never retried
      assert.equal("auth", refresh.error_kind)
      assert.matches("Invalid API key", refresh.error, 1, true)
      assert.is_nil(refresh.error:find "\n")
      assert.is_nil(refresh.error:find("7d1c0e", 1, true))
    end
    assert.equal(report.refreshes[2].error, report.error)
    assert.is_nil(out:find("7d1c0e", 1, true))
    assert.equal(2, #sandbox.log_of "planado")
  end)
end)
