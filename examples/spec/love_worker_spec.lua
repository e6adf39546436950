-- The LÖVE job board's worker (examples/love/worker.lua) tested as a script
-- with testing.run: what it asks Planado for the day, what it sends back
-- through its channel, its retries and errors, against a fake. LÖVE itself
-- is stood in for by its two channels and a clock (the fake's). What only
-- LÖVE can show, the frame loop drawing while the worker waits, is spec/66's,
-- which runs the real game under Xvfb against the sandbox.
--
--   busted --lua=lua5.4 examples/spec   (from a checkout, after `make`; see README, "Testing your scripts")
local testing = require "planapi.testing"
local cjson = require "cjson"

local WORKER = "examples/love/worker.lua"
local KEY = "example-planado-key"
local DAY = "2026-03-02"

-- A stand-in for the love global: the results channel collects what the
-- worker pushes; the commands channel hands out `commands` one a demand
-- (nil: the wait ran out), then "quit".
local function fake_love(commands, fake)
  local pushed = {}
  local channels = {
    ["jobboard.results"] = { push = function(_, message) pushed[#pushed + 1] = cjson.decode(message) end },
    ["jobboard.commands"] = { demand = function()
      local n = (commands.n or 0) + 1
      commands.n = n
      if n > #commands then return "quit" end
      return commands[n] or nil
    end },
  }
  local love = {
    thread = { getChannel = function(name) return assert(channels[name], name) end },
    timer = { getTime = function() return fake:now() end },
  }
  return love, pushed
end

-- Run the worker once through: the messages it pushed and the run's result.
local function run_worker(fake, commands)
  local love, pushed = fake_love(commands, fake)
  _G.love = love
  package.preload["love.timer"] = function() return love.timer end
  local run = testing.run(WORKER, { args = { package.path, package.cpath, DAY, 60 },
    env = { PLANADO_API_KEY = KEY }, transport = fake })
  _G.love, package.preload["love.timer"], package.loaded["love.timer"] = nil, nil, nil
  return pushed, run
end

local function job(uuid, at, status)
  return { uuid = uuid, external_id = "ext-" .. uuid, status = status, scheduled_at = at }
end

describe("the LÖVE job board's worker", function()
  it("asks for the day's jobs when told, and sends them back sorted by time", function()
    local fake = testing.fake { handlers = { ["GET jobs"] = {
      testing.planado.list("jobs", {
        job("b", DAY .. "T13:00:00Z", "finished"), job("a", DAY .. "T09:30:00Z", "started") }),
      testing.planado.list("jobs", {}),
    } } }
    local pushed, run = run_worker(fake, { "refresh" })
    assert.equal(0, run.code, tostring(run.error))
    assert.same({ "started", "done" }, { pushed[1].kind, pushed[2].kind })
    assert.same({ "a", "b" }, { pushed[2].jobs[1].uuid, pushed[2].jobs[2].uuid })
    assert.same({ "started", "finished" }, { pushed[2].jobs[1].status, pushed[2].jobs[2].status })
    assert.equal("ext-a", pushed[2].jobs[1].external_id)
    assert.equal(1, pushed[2].refresh)
    assert.equal(0, pushed[2].retries)
    -- the day's window, both ends included, and the page after the page's last job
    assert.same({ after = DAY .. "T00:00:00Z", before = DAY .. "T23:59:59Z" }, fake.requests[1].params.scheduled_at)
    assert.equal("a", fake.requests[2].params.after)
    assert.equal("Bearer " .. KEY, fake.requests[1].headers.Authorization or fake.requests[1].headers.authorization)
    fake:assert_done()
  end)

  it("refreshes again when its wait runs out, and stops at quit without another call", function()
    local fake = testing.fake { handlers = { ["GET jobs"] = testing.planado.list("jobs", {}) } }
    local pushed, run = run_worker(fake, { "refresh", false, "refresh" })
    assert.equal(0, run.code, tostring(run.error))
    local done = {}
    for _, m in ipairs(pushed) do if m.kind == "done" then done[#done + 1] = m.refresh end end
    assert.same({ 1, 2, 3 }, done)
    assert.equal(3, #fake.requests)
    assert.same({}, pushed[2].jobs)
  end)

  it("waits out a 503 with planapi's retry policy and counts the retry", function()
    local fake = testing.fake { handlers = { ["GET jobs"] = {
      testing.planado.error(503, "Service Unavailable"),
      testing.planado.list("jobs", { job("a", DAY .. "T08:00:00Z", "posted") }),
      testing.planado.list("jobs", {}),
    } } }
    local pushed, run = run_worker(fake, { "refresh" })
    assert.equal(0, run.code, tostring(run.error))
    assert.equal(1, pushed[2].retries)
    assert.equal(1, #pushed[2].jobs)
    assert.is_true(fake.slept > 0)
    assert.is_true(pushed[2].seconds >= fake.slept - 1e-9) -- the refresh's time includes the wait
  end)

  it("sends a refused key as a one-line auth error without the key, and goes on", function()
    local fake = testing.fake { handlers = { ["GET jobs"] = testing.planado.error(401, "Invalid API key") } }
    local pushed, run = run_worker(fake, { "refresh", "refresh" })
    assert.equal(0, run.code, tostring(run.error))
    assert.equal(4, #pushed)
    for _, m in ipairs { pushed[2], pushed[4] } do
      assert.equal("auth", m.error_kind)
      assert.is_nil(m.jobs)
      assert.equal(0, m.retries)
      assert.matches("Invalid API key", m.error, 1, true)
      assert.is_nil(m.error:find "\n")
      assert.is_nil(m.error:find(KEY, 1, true))
    end
    assert.equal(2, #fake.requests) -- an auth error is not retried
  end)
end)
