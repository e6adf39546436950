-- The shared limiter's arithmetic, the daily quota and every retry class,
-- all on injected clocks: nothing here sleeps.
local core = require "planapi.core"
local planapi = require "planapi"
local Limiter = require "planapi.limiter"
local Quota = require "planapi.quota"
local sandbox = require "sandbox"

local raises_config = require("expect").raises_config

describe("shm limiter", function()
  local file
  before_each(function() file = os.tmpname() end)
  after_each(function() os.remove(file) end)

  local function shm(key, rate) return assert(core.shm_limiter { path = file, key = key or "planfix_rest:acme",
    rate = rate and rate.rate or 1, per = 1, burst = rate and rate.burst or 1, margin = rate and rate.margin or 0 }) end

  it("shares one schedule between every handle on the same file and key", function()
    local a, b = shm(), shm()
    assert.equal(0, a:reserve(100))
    assert.equal(1, b:reserve(100))
    assert.equal(2, a:reserve(100))
    assert.equal(0, shm("planfix_rest:other"):reserve(100)) -- another account: its own budget
  end)

  it("lets a burst through, settles after an answer, gives back an unused slot", function()
    local a = shm(nil, { rate = 1, burst = 3 })
    assert.equal(0, a:reserve(0))
    assert.equal(0, a:reserve(0))
    assert.equal(0, a:reserve(0))
    assert.equal(1, a:reserve(0))
    local b = shm("k2")
    assert.equal(0, b:reserve(10))
    b:settle(10.5)
    assert.near(1.0, b:reserve(10.5), 1e-6)
    b:release(10.5)
    assert.near(1.0, b:reserve(10.5), 1e-6)
  end)

  it("counts requests per day across handles, from zero each new day", function()
    local a, b = shm(), shm()
    assert.equal(1, a:count(20261122))
    assert.equal(2, b:count(20261122))
    assert.equal(2, a:used(20261122))
    assert.equal(0, a:used(20261123))
    assert.equal(1, b:count(20261123))
  end)

  -- reserve() and settle() without a time read CLOCK_MONOTONIC, which
  -- core.monotime reads too: the call loop leaves the reading to C. The
  -- schedule lands between two readings of core.monotime around the call.
  it("reads CLOCK_MONOTONIC itself when reserve and settle are given no time", function()
    local a = shm(nil, { rate = 1, burst = 1 }) -- an interval of 1 s
    local t0 = core.monotime()
    assert.equal(0, a:reserve())
    local t1 = core.monotime()
    local tat = a:info().tat
    assert.truthy(tat >= t0 + 1 - 1e-6 and tat <= t1 + 1 + 1e-6, ("%f not in [%f, %f]"):format(tat, t0 + 1, t1 + 1))
    assert.truthy(a:reserve() > 0.5) -- the next slot is about a second away
    local b = shm("k3", { rate = 1, burst = 1 })
    b:settle(t1 + 100) -- a schedule ahead of the clock is never pulled back by settle
    b:settle()
    assert.near(t1 + 101, b:info().tat, 1e-6)
    local c = shm("k4", { rate = 1, burst = 1 })
    local s0 = core.monotime()
    c:settle()
    local s1 = core.monotime()
    tat = c:info().tat
    assert.truthy(tat >= s0 + 1 - 1e-6 and tat <= s1 + 1 + 1e-6)
    -- the same answers for the same times given: reserve(t) on a fresh key
    local d, e = shm("k5", { rate = 2, burst = 2 }), shm("k6", { rate = 2, burst = 2 })
    local now = core.monotime()
    d:reserve(now)
    e:reserve()
    assert.near(d:info().tat, e:info().tat, 0.05)
  end)

  it("raises on reserve and settle of anything but an open shm limiter, as its other methods do", function()
    local a = shm()
    local local_limiter = core.limiter { rate = 1, per = 1 }
    for _, m in ipairs { "reserve", "settle", "release", "confirm" } do
      for _, bad in ipairs { {}, "x", local_limiter, io.stdout } do
        local ok, err = pcall(a[m], bad, 1)
        assert.is_false(ok, m)
        assert.matches("planapi.shm_limiter expected", tostring(err), 1, true)
      end
      assert.has_error(function() a[m](a, "soon") end)
    end
    a:close()
    for _, m in ipairs { "reserve", "settle", "release", "confirm" } do
      local ok, err = pcall(a[m], a, 1)
      assert.is_false(ok, m)
      assert.matches("the shared limiter is closed", tostring(err), 1, true)
    end
  end)

  it("refuses a file that is not its own, and keys that do not fit", function()
    local f = assert(io.open(file, "wb"))
    f:write(("x"):rep(20000))
    f:close()
    local lim, err = core.shm_limiter { path = file, key = "k" }
    assert.is_nil(lim)
    assert.equal("config", err.kind)
    os.remove(file)
    raises_config(function() core.shm_limiter { path = file, key = ("k"):rep(200) } end, "key")
    raises_config(function() core.shm_limiter { path = file } end, "key")
  end)
end)

describe("limiter option", function()
  it("chooses the scope from one string and refuses anything else", function()
    assert.equal("local", Limiter.new(nil, { rate = { rate = 1, per = 1 } }).kind)
    local file = os.tmpname()
    assert.equal("shm", Limiter.new("shm:" .. file, { key = "k", rate = { rate = 1, per = 1 } }).kind)
    os.remove(file)
    raises_config(function() Limiter.new("memcached://x", { rate = {} }) end, "limiter")
    raises_config(function() Limiter.new({ reserve = function() end }, { rate = {} }) end, "settle")
    raises_config(function() planapi.planfix_rest { account = "a", token = "tttt", rate = false, limiter = "local" } end)
    raises_config(function() planapi.planfix_rest { account = "a", token = "tttt", limiter_fallback = "none" } end)
  end)
end)

describe("daily quota", function()
  local function counter()
    local c = { days = {} }
    function c.count(_, d) c.days[d] = (c.days[d] or 0) + 1 return c.days[d] end
    function c.used(_, d) return c.days[d] or 0 end
    return c
  end
  -- 2026-11-22 23:00:00 UTC
  local T0 = 1795388400

  it("stops at the limit minus the reserve, before sending", function()
    local now = T0
    local q = Quota.new({ limit = 10, reserve = 2 }, counter(), function() return now end)
    for _ = 1, 8 do
      assert.is_nil(q:check())
      q:record({ headers = {} })
    end
    local err = q:check()
    assert.equal("quota", err.kind)
    assert.equal(2, err.remaining)
    assert.equal(3600, err.retry_after) -- an hour to midnight UTC
    now = T0 + 3600                      -- a new day
    assert.is_nil(q:check())
  end)

  it("counts its day in the configured time zone", function()
    local q = Quota.new({ limit = 1, utc_offset = 3 }, counter(), function() return T0 end)
    assert.equal(20261123, q:day()) -- 02:00 in UTC+3
    q:record({ headers = {} })
    assert.equal(79200, q:check().retry_after) -- 22 hours to midnight in UTC+3
  end)

  it("follows X-RateLimit-Remaining, which lags, by counting since it changed", function()
    local q = Quota.new({ reserve = 3 }, counter(), function() return T0 end)
    local function answer(n) q:record({ headers = { ["x-ratelimit-remaining"] = tostring(n) } }) end
    answer(8)
    assert.equal(8, q:remaining())
    answer(8) -- the header has not moved, but this request was spent
    answer(8)
    assert.equal(6, q:remaining())
    answer(4) -- it moved (other clients spend too)
    assert.equal(4, q:remaining())
    answer(4)
    assert.equal("quota", q:check().kind)
  end)

  it("believes the API when it says the quota is spent, until the day resets", function()
    local now = T0
    local q = Quota.new({ limit = 20000 }, counter(), function() return now end)
    local err = core.error { kind = "quota", message = "spent", code = 22 }
    q:record({ headers = {} }, err)
    assert.equal(3600, err.retry_after)
    assert.equal("quota", q:check().kind)
    now = T0 + 7200
    assert.is_nil(q:check())
  end)

  it("checks its options", function()
    raises_config(function() Quota.new({ limt = 1 }, counter()) end, "limt")
    raises_config(function() Quota.new({ limit = "many" }, counter()) end, "number")
  end)

  describe("in a client against the sandbox", function()
    before_each(function() sandbox.reset() end)

    it("returns a quota error before sending once the budget is spent", function()
      local rest = sandbox.rest { quota = { limit = 3, reserve = 1 } }
      assert(rest:call "ping")
      assert(rest:call "ping")
      local v, err = rest:call "ping"
      assert.is_nil(v)
      assert.equal("quota", err.kind)
      assert.equal("ping", err.operation)
      assert.is_true(err.retry_after > 0)
      assert.equal(2, #sandbox.log_of "rest")
    end)

    it("stops on the API's own remaining count, keeping the reserve", function()
      sandbox.config { quota = { limit = 20000, remaining = 6 } }
      local rest = sandbox.rest { quota = { reserve = 3 } }
      assert(rest:call "ping") -- remaining 5
      assert(rest:call "ping") -- remaining 4
      assert(rest:call "ping") -- remaining 3
      local v, err = rest:call "ping"
      assert.is_nil(v)
      assert.equal("quota", err.kind)
      assert.equal(3, #sandbox.log_of "rest")
    end)

    it("takes quota_reserve as the reserve", function()
      sandbox.config { quota = { limit = 20000, remaining = 3 } }
      local rest = sandbox.rest { quota_reserve = 2 }
      assert(rest:call "ping") -- remaining 2
      local v, err = rest:call "ping"
      assert.is_nil(v)
      assert.equal("quota", err.kind)
      raises_config(function() sandbox.rest { quota_reserve = 2, quota = { reserve = 1 } } end, "once")
    end)

    it("fails closed when Redis is unreachable, or paces locally when asked", function()
      local closed = ("redis://127.0.0.1:%d/0"):format(require("redis_server").free_port())
      local rest = sandbox.rest { limiter = closed, rate = { rate = 1000, per = 1 } }
      local v, err = rest:call "ping"
      assert.is_nil(v)
      assert.equal("transport", err.kind)
      assert.matches("rate limiter unavailable", err.message)
      assert.equal(0, #sandbox.log_of "rest") -- nothing was sent
      local fallback = sandbox.rest { limiter = closed, limiter_fallback = "local", rate = { rate = 1000, per = 1 } }
      assert(fallback:call "ping")
      assert.is_true(fallback.limiter.degraded)
    end)

    it("shares the day's count between clients on one shm file", function()
      local file = os.tmpname()
      local a = sandbox.rest { rate = { rate = 1000, per = 1 }, limiter = "shm:" .. file, quota = { limit = 3 } }
      local b = sandbox.rest { rate = { rate = 1000, per = 1 }, limiter = "shm:" .. file, quota = { limit = 3 } }
      assert(a:call "ping")
      assert(b:call "ping")
      assert(a:call "ping")
      local v, err = b:call "ping"
      assert.is_nil(v)
      assert.equal("quota", err.kind)
      os.remove(file)
    end)
  end)
end)

describe("retry classes, on an injected clock", function()
  local function fake(responses)
    local n = 0
    return function()
      n = n + 1
      local r = responses[math.min(n, #responses)]
      return { status = r[1], headers = { ["content-type"] = r[3] or "application/json" }, body = r[2] }
    end, function() return n end
  end
  local OK_REST = { 200, '{"result":"success"}' }

  local cases = {
    { "REST code 3, object busy: retried", "rest", { { 200, '{"result":"fail","code":3,"error":"busy"}' }, OK_REST }, 2, true },
    { "REST HTTP 503: retried", "rest", { { 503, '{"result":"fail","code":0,"error":"x"}' }, OK_REST }, 2, true },
    { "REST 429: waited out", "rest", { { 429, "" }, OK_REST }, 2, true },
    { "REST code 1, bad token: never", "rest", { { 401, '{"result":"fail","code":1,"error":"x"}' }, OK_REST }, 1, false },
    { "REST code 22, quota: never", "rest", { { 200, '{"result":"fail","code":22,"error":"x"}' }, OK_REST }, 1, false },
    { "REST code 41, caller error: never", "rest", { { 400, '{"result":"fail","code":41,"error":"x"}' }, OK_REST }, 1, false },
    { "XML 0011, update in progress: retried", "xml",
      { { 200, '<response status="error"><code>0011</code></response>', "application/xml" },
        { 200, '<response status="ok"><task><id>1</id></task></response>', "application/xml" } }, 2, true },
    { "XML 3014, task busy: retried", "xml",
      { { 200, '<response status="error"><code>3014</code></response>', "application/xml" },
        { 200, '<response status="ok"><task><id>1</id></task></response>', "application/xml" } }, 2, true },
    { "XML 0007, quota: never", "xml",
      { { 200, '<response status="error"><code>0007</code></response>', "application/xml" } }, 1, false },
    { "XML 3001, caller error: never", "xml",
      { { 200, '<response status="error"><code>3001</code></response>', "application/xml" } }, 1, false },
    { "Planado text quirk: waited out", "planado", { { 200, "Rate Limit Exceeded", "text/plain" }, { 200, '{"job":{}}' } }, 2, true },
    { "Planado 502: retried", "planado", { { 502, "<html>", "text/html" }, { 200, '{"job":{}}' } }, 2, true },
    { "Planado 401: never", "planado", { { 401, '{"errors":[]}' }, { 200, '{"job":{}}' } }, 1, false },
  }

  for _, c in ipairs(cases) do
    it(c[1], function()
      local t = sandbox.fake_time()
      local transport, calls = fake(c[3])
      local opts = { transport = transport, clock = t.clock, sleep = t.sleep,
        retry = { attempts = 3, random = function() return 1 end } }
      local client = sandbox[c[2]](opts)
      local result, err
      if c[2] == "rest" then
        result, err = client:call "ping"
      elseif c[2] == "xml" then
        result, err = client:call("task.get", { task = { id = 1 } })
      else
        result, err = client:call("GET", "jobs/x")
      end
      assert.equal(c[4], calls())
      if c[5] then
        assert.is_table(result)
        assert.equal(c[4] - 1, #t.sleeps)
        assert.is_true(err.waited > 0) -- meta.waited: how long the retries waited
      else
        assert.is_nil(result)
        assert.equal(0, #t.sleeps)
      end
    end)
  end

  it("puts the total wait in the error when the retries give up", function()
    local t = sandbox.fake_time()
    local rest = sandbox.rest { transport = fake { { 503, '{"result":"fail","code":0}' } }, clock = t.clock,
      sleep = t.sleep, retry = { attempts = 3, random = function() return 1 end } }
    local v, err = rest:call "ping"
    assert.is_nil(v)
    assert.equal(3, err.attempts)
    assert.equal(1.5, err.waited) -- 0.5 + 1
  end)
end)
