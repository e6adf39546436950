-- Pacing at the moment of sending (issue 13 §1, §5, §6).
--
-- The limiter reserves a slot when a request starts waiting, and confirms
-- the spacing once the connection is up, right before the request is
-- written: a request that spent 150 ms opening a connection cannot arrive
-- less than an interval before the next one on a warm connection.
--
-- Oracles: the confirm arithmetic on injected clocks against the GCRA rule
-- itself (random interleavings, every recorded send checked); Redis's own
-- clock; and the sandbox, an nginx that holds every new TLS connection
-- (latency mode) and counts the requests that arrive too soon.
local core = require "planapi.core"
local planapi = require "planapi"
local Limiter = require "planapi.limiter"
local sandbox = require "sandbox"
local portable = require "portable"

local RATE = { rate = 1, per = 1, burst = 1, margin = 0.02 }

-- A seeded generator of our own: the same interleavings under Lua 5.4 and LuaJIT.
local function rng(seed)
  local s = seed
  return function()
    s = (s * 1103515245 + 12345) % 2147483648
    return s / 2147483648
  end
end

-- n clients share `scope` on an injected clock; each reserves, waits, then
-- spends a random connection time (none on a warm connection) before it
-- confirms. Returns the moments the sends were recorded, in order.
local function simulate(scope, seed, n, rounds)
  local random = rng(seed)
  local now = 1000
  local events = {} -- { at = time, client = i, step = "reserve" | "confirm" }
  for i = 1, n do events[#events + 1] = { at = now + random() * 0.1, client = i, step = "reserve" } end
  local sends, done = {}, 0
  while done < n * rounds do
    table.sort(events, function(a, b) return a.at < b.at end)
    local e = table.remove(events, 1)
    now = e.at
    if e.step == "reserve" then
      local wait = assert(scope:reserve(now))
      -- a warm connection half of the time, else 50 to 300 ms to open one
      local connect = random() < 0.5 and 0 or 0.05 + random() * 0.25
      events[#events + 1] = { at = now + wait + connect, client = e.client, step = "confirm" }
    else
      local wait = assert(scope:confirm(now))
      if wait > 0 then
        events[#events + 1] = { at = now + wait, client = e.client, step = "confirm" }
      else
        sends[#sends + 1] = now
        done = done + 1
        -- the answer comes back 10 to 60 ms later; the next request then starts
        events[#events + 1] = { at = now + 0.01 + random() * 0.05, client = e.client, step = "reserve" }
      end
    end
  end
  return sends
end

local function smallest_gap(times)
  local gap = math.huge
  for i = 2, #times do gap = math.min(gap, times[i] - times[i - 1]) end
  return gap
end

describe("confirm at the moment of sending", function()
  local file
  before_each(function() file = os.tmpname() end)
  after_each(function() os.remove(file) end)

  local function shm(key) return assert(core.shm_limiter { path = file, key = key or "k", rate = 1, per = 1,
    burst = 1, margin = 0.02 }) end

  it("local: records a conformant send, answers the wait otherwise and records nothing", function()
    local g = core.limiter(RATE)
    assert.equal(0, g:confirm(10))
    assert.near(1.02, g:confirm(10), 1e-9)
    assert.near(0.52, g:confirm(10.5), 1e-9) -- asking again records nothing
    assert.equal(0, g:confirm(11.02))
    assert.near(12.04, g:info().send_tat, 1e-9)
    -- the slots lag the sends by one interval at most: the next slot is now,
    -- and its send waits for the interval
    assert.equal(0, g:reserve(11.02))
    assert.near(1.02, g:confirm(11.02), 1e-9)
    assert.near(1.02, g:reserve(11.02), 1e-9)
  end)

  it("shm: the same arithmetic, shared by every handle on the file", function()
    local a, b = shm(), shm()
    assert.equal(0, a:confirm(10))
    assert.near(1.02, b:confirm(10), 1e-6)
    assert.near(0.52, b:confirm(10.5), 1e-6)
    assert.equal(0, b:confirm(11.02))
    assert.near(1.02, a:confirm(11.02), 1e-6)
    assert.equal(0, shm("other"):confirm(11.02)) -- another account: its own sends
  end)

  for _, kind in ipairs { "local", "shm" } do
    it(kind .. ": no two recorded sends closer than the interval, whatever the connection times", function()
      for seed = 1, 40 do
        local scope = kind == "local" and core.limiter(RATE) or shm("k" .. seed)
        local sends = simulate(scope, seed, 4, 25)
        assert.is_true(smallest_gap(sends) >= 1.02 - 1e-6,
          ("seed %d: sends %.4f s apart"):format(seed, smallest_gap(sends)))
        -- and no slower than the limit: 100 sends in little more than 99 intervals
        local span = sends[#sends] - sends[1]
        assert.is_true(span <= 99 * 1.02 + 4, ("seed %d: %.1f s for 100 sends"):format(seed, span))
      end
    end)
  end

  it("(control) reserving alone lets a slow connection bring two sends too close", function()
    local scope = core.limiter(RATE)
    local sends = simulate({ reserve = function(_, now) return scope:reserve(now) end,
      confirm = function() return 0 end }, 7, 4, 25)
    assert.is_true(smallest_gap(sends) < 0.95)
  end)

  it("redis: the same rule on Redis's own clock, shared by every connection", function()
    local redis = require("redis_server").start()
    local ok, err = pcall(function()
      local function lim() return require("planapi.limiter.redis").new { url = redis.url, key = "planapi:t",
        rate = 1, per = 1, margin = 0.02 } end
      local a, b = lim(), lim()
      assert.equal(0, a:confirm())
      local wait = b:confirm()
      assert.is_true(wait > 0.9 and wait <= 1.02, "waits " .. wait)
      assert.is_true(b:confirm() > 0.9) -- asking again recorded nothing
      -- the slots lag the sends by one interval at most
      assert.is_true(a:reserve() < 0.1)
      local r = a:reserve()
      assert.is_true(r > 0.9 and r <= 1.02, "reserve waits " .. r)
      a:close()
      b:close()
    end)
    redis.stop()
    assert(ok, err)
  end)
end)

describe("the call loop confirms right before the transport", function()
  it("holds a request until an interval after the last send, and sends it then", function()
    local t = sandbox.fake_time()
    local sent, other = {}, nil
    local rest
    rest = planapi.planfix_rest { account = "acme", token = "tttt", clock = t.clock, sleep = t.sleep,
      limiter = "local", rate = RATE,
      -- after its slot came, while it "connects", another sharer writes a request
      on_request = function() if #sent == 1 then other = t.now; assert.equal(0, rest.limiter:confirm(t.now)) end end,
      transport = function()
        sent[#sent + 1] = t.now
        return { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"result":"success"}' }
      end }
    assert(rest:call "ping")
    t.now = t.now + 5
    assert(rest:call "ping")
    assert.near(other + 1.02, sent[2], 1e-9)
  end)
end)

describe("libcurl confirms once the connection is up", function()
  for _, kind in ipairs { "local", "shm" } do
    it(kind .. ": the send is recorded after the 150 ms connection, not when the slot came", function()
      sandbox.reset()
      sandbox.config { latency = { connect = 0.15 } }
      local file = os.tmpname()
      local c = sandbox.rest { limiter = kind == "local" and "local" or "shm:" .. file, real_time = true,
        rate = { rate = 10, per = 1, burst = 1, margin = 0.01 } }
      local before = core.monotime()
      assert(c:call "ping")
      local sent = c.limiter:info().send_tat - 0.11
      assert.is_true(sent - before >= 0.14, ("recorded %.3f s after the call began"):format(sent - before))
      assert.is_true(sent <= core.monotime())
      c:close()
      os.remove(file)
    end)
  end
end)

describe("errors decided before anything was sent carry request_sent = false", function()
  local function ok_transport()
    return { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"result":"success"}' }
  end

  it("the quota reserve", function()
    local t = sandbox.fake_time()
    local rest = planapi.planfix_rest { account = "acme", token = "tttt", clock = t.clock, sleep = t.sleep,
      transport = ok_transport, quota = { limit = 10, reserve = 10 } }
    local r, err = rest:call "ping"
    assert.is_nil(r)
    assert.equal(false, err.request_sent)
  end)

  it("an unreachable Redis limiter, at the reserve", function()
    local rest = planapi.planfix_rest { account = "acme", token = "tttt", transport = ok_transport,
      limiter = ("redis://127.0.0.1:%d/0"):format(require("redis_server").free_port()) }
    local r, err = rest:call "ping"
    assert.is_nil(r)
    assert.matches("rate limiter unavailable", err.message, 1, true)
    assert.equal(false, err.request_sent)
  end)

  it("a limiter that fails at the confirm: the transport is never called", function()
    local called = false
    local lim = Limiter.new("local", { rate = RATE })
    lim.confirm = function() return nil, core.error { kind = "transport", message = "rate limiter unavailable: x" } end
    local t = sandbox.fake_time()
    local rest = planapi.planfix_rest { account = "acme", token = "tttt", clock = t.clock, sleep = t.sleep,
      limiter = lim, transport = function() called = true return ok_transport() end }
    local r, err = rest:call "ping"
    assert.is_nil(r)
    assert.is_false(called)
    assert.equal(false, err.request_sent)
  end)
end)

describe("the default scope", function()
  local dir
  before_each(function()
    dir = portable.tmpdir() .. "/rt"
    Limiter.runtime_dir = dir
  end)
  after_each(function()
    Limiter.runtime_dir = (os.getenv "PLANAPI_SANDBOX_DIR" or "sandbox/.run") .. "/runtime"
    portable.rmtree(dir:match "^(.*)/rt$")
  end)

  local function rest(opts)
    local o = { account = "acme", token = "tttt" }
    for k, v in pairs(opts or {}) do o[k] = v end
    return planapi.planfix_rest(o)
  end

  it("is shared by every client of the user on the host for one account and endpoint", function()
    local a, b = rest(), rest()
    assert.equal("shm", a.limiter.kind)
    local now = core.monotime()
    assert.equal(0, a.limiter:confirm(now))
    assert.is_true(b.limiter:confirm(now) > 1) -- the same budget
    -- another endpoint (another server, another sandbox) or account: another budget
    assert.equal(0, rest({ base_url = "https://127.0.0.1:1/rest/" }).limiter:confirm(now))
    assert.equal(0, rest({ account = "other" }).limiter:confirm(now))
    -- its folder and file are the user's alone
    assert.equal("drwx------", portable.run("stat -c %A " .. dir):match "%S+")
    local files = portable.run("ls " .. dir)
    assert.matches("^planfix_rest%-%x+%.limits\n", files)
    assert.equal("-rw-------", portable.run("stat -c %A " .. dir .. "/" .. files:match "%S+"):match "%S+")
  end)

  it("is local with limiter = \"local\", and with an injected clock", function()
    assert.equal("local", rest({ limiter = "local" }).limiter.kind)
    local t = sandbox.fake_time()
    assert.equal("local", rest({ clock = t.clock, sleep = t.sleep }).limiter.kind)
  end)

  it("refuses a folder or file that is not the user's alone, or a symlink", function()
    local base = dir:match "^(.*)/rt$"
    assert(portable.execute(("mkdir -m 0755 %s"):format(dir)))
    local ok, err = pcall(rest)
    assert.is_false(ok)
    assert.equal("config", err.kind)
    assert.matches("open to other users", err.message, 1, true)
    assert(portable.execute(("rmdir %s && mkdir -m 0700 %s/real && ln -s %s/real %s"):format(dir, base, base, dir)))
    ok, err = pcall(rest)
    assert.is_false(ok)
    assert.matches("symbolic link", err.message, 1, true)
    -- the file: planted as a symlink, or open to others
    assert(portable.execute(("rm %s && mkdir -m 0700 %s"):format(dir, dir)))
    local file = portable.run("ls " .. dir):match "%S+"
    assert.is_nil(file)
    assert(pcall(rest)) -- makes the file, to learn its name
    file = dir .. "/" .. portable.run("ls " .. dir):match "%S+"
    assert(portable.execute(("rm %s && ln -s %s/elsewhere %s"):format(file, base, file)))
    ok, err = pcall(rest)
    assert.is_false(ok)
    assert.matches("cannot open the shared limiter file", err.message, 1, true)
    assert(portable.execute(("rm %s && touch %s && chmod 0644 %s"):format(file, file, file)))
    ok, err = pcall(rest)
    assert.is_false(ok)
    assert.matches("open to other users", err.message, 1, true)
    assert(portable.execute(("mkdir -m 0700 %s/owned"):format(base)))
    if core.getuid() == 0 then -- only root can give a folder away
      Limiter.runtime_dir = base .. "/owned"
      assert(portable.execute(("chown 65534 %s/owned"):format(base)))
      ok, err = pcall(rest)
      assert.is_false(ok)
      assert.matches("owned by another user", err.message, 1, true)
    end
  end)
end)

describe("the Redis scope confirms inside libcurl", function()
  local redis
  setup(function() redis = require("redis_server").start() end)
  teardown(function() redis.stop() end)

  local key
  before_each(function() key = "pacer-" .. tostring(core.monotime()) end)

  local function client(opts) -- every client of a test shares one budget
    local o = { limiter = redis.url, limiter_key = key,
      rate = { rate = 10, per = 1, burst = 1, margin = 0.01 }, real_time = true, retry = { attempts = 1 } }
    for k, v in pairs(opts or {}) do o[k] = v end
    return sandbox.rest(o)
  end

  -- Redis's own clock and the send TAT the script keeps: when was the send recorded?
  local function redis_call(args)
    local sock = assert(core.tcp_connect("127.0.0.1", redis.port, 1))
    local v = assert(require("planapi.limiter.redis_protocol").call(sock, args))
    sock:close()
    return v
  end
  local function redis_now()
    local t = redis_call { "TIME" }
    return tonumber(t[1]) + tonumber(t[2]) / 1e6
  end
  local function recorded_send() -- the last send's moment: its TAT minus the interval (0.11 s)
    return tonumber(redis_call { "GET", "planapi:" .. key .. ":send" }) / 1e6 - 0.11
  end

  it("records the send once the connection is up (150 ms later), not when the slot came", function()
    sandbox.reset()
    sandbox.config { latency = { connect = 0.15 } }
    local c = client()
    local base = require "planapi.client_base"
    local before = redis_now()
    assert(base.run(c, { req = c:prepare "ping", operation = "ping", idempotent = false,
      parse = function(r, res) return c:parse(r, res) end }))
    local after = redis_now()
    local sent = recorded_send()
    assert.is_true(sent - before >= 0.14, ("recorded %.3f s after the call began"):format(sent - before))
    assert.is_true(sent <= after)
    assert.equal(1, sandbox.stats().latency_delayed_connections)
    c:close()
  end)

  it("a failure there (the script gone from Redis) sends nothing: request_sent = false", function()
    sandbox.reset()
    local c
    c = client { on_request = function()
      local sock = assert(core.tcp_connect("127.0.0.1", redis.port, 1))
      assert(sock:send "SCRIPT FLUSH\r\n")
      assert.equal("+OK", sock:receive "*l")
      sock:close()
    end }
    local before = sandbox.stats().requests
    local r, err = c:call "ping"
    assert.is_nil(r)
    assert.matches("rate limiter unavailable: redis: NOSCRIPT", err.message, 1, true)
    assert.equal(false, err.request_sent)
    assert.equal(before, sandbox.stats().requests)
    -- the next call loads the script again and goes through
    c.on_request = nil
    assert(c:call "ping")
    c:close()
  end)
end)

describe("Ctrl-C while a send waits for its confirm", function()
  after_each(function() core.catch_interrupt(false) end)

  local function own_pid()
    local f = assert(io.open "/proc/self/stat")
    local pid = tonumber(f:read("*a"):match "^(%d+)")
    f:close()
    return pid
  end

  -- Another sharer of the shm file has just written a request, so this
  -- client's slot is now but its send must wait 5 s at confirm.
  local function held(transport)
    local file = os.tmpname()
    local opts = { limiter = "shm:" .. file, real_time = true, rate = { rate = 1, per = 5 }, transport = transport }
    local c = sandbox.rest(opts)
    assert.equal(0, c.limiter:confirm(core.monotime()))
    return c, file
  end

  for _, kind in ipairs { "libcurl", "function" } do
    it(kind .. " transport: stops at once, nothing sent", function()
      sandbox.reset()
      local called = false
      local c, file = held(kind == "function" and function() called = true return nil, "unreachable" end or nil)
      core.catch_interrupt()
      os.execute(("(sleep 0.3; kill -s INT %d) >/dev/null 2>&1 &"):format(own_pid()))
      local t0 = core.monotime()
      local r, err = c:call "ping"
      local took = core.monotime() - t0
      assert.is_nil(r)
      assert.is_true(err.interrupted)
      assert.equal(false, err.request_sent)
      assert.is_true(took < 2, ("took %.2f s: the confirm waited 5 s"):format(took))
      assert.is_false(called)
      core.catch_interrupt(false) -- the control API's requests too are refused until then
      assert.equal(0, #sandbox.log_of "rest")
      c:close()
      os.remove(file)
    end)
  end
end)
