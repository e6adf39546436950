-- The Redis limiter and quota inside nginx (issue 17): over cosockets where
-- the phase has them, so a worker waiting for Redis serves its other
-- requests; a blocking socket only where nginx has no cosockets.
--   1. a fake ngx (spec/helpers/fake_cosockets.lua) in front of a real
--      redis-server: which socket each phase gets, what is kept, the pacer;
--   2. a real nginx with one worker (the OpenResty gateway of
--      examples/openresty, spec/helpers/gateway.lua): Redis paused while a
--      request waits on the limiter, a second request answered at once; the
--      same with a blocking socket forced, which must hold it (the control);
--   3. the gateway with four workers pacing one account through Redis
--      against the sandbox's rate enforcement: zero violations.
-- The gateway's nginx always runs LuaJIT with build/luajit/planapi/core.so.
local core = require("planapi.core")
local limiter_redis = require("planapi.limiter.redis")
local sandbox = require("sandbox")
local gateway = require("gateway")
local redis_server = require("redis_server")
local fake_cosockets = require("fake_cosockets")
local portable = require("portable")

local redis = redis_server.command -- one command on a new connection
local DAY = 20261206

local key_seq = 0
local function new_key()
  key_seq = key_seq + 1
  return ("planapi:spec55:%d:%d"):format(os.time(), key_seq)
end

-- A test server beside the gateway (same worker or workers): /t/ping
-- answers at once; /t/paced is one Planfix call of a client kept per
-- worker, paced and counted (quota) through Redis; /t/blocking reserves a
-- slot over a blocking socket (connect = core.tcp_connect forced).
local TEST_SERVER = [==[
local planapi = require "planapi"
local case = ngx.var.uri:match "^/t/(.*)$"
if case == "ping" then return ngx.say "pong" end
local spec55 = package.loaded.spec55 or {}
package.loaded.spec55 = spec55
if case == "paced" then
  spec55.rest = spec55.rest or planapi.planfix_rest {
    base_url = "@BASE_URL@", token = "@TOKEN@", ca_file = "@CA_FILE@", timeout = 10,
    limiter = "@REDIS_URL@", limiter_key = "@KEY@", quota = { limit = 1000 },
  }
  local r, err = spec55.rest:call("get-task-by-id", { id = 1, fields = "id" })
  return ngx.say(r and "ok" or tostring(err))
end
if case == "blocking" then
  local lim = require("planapi.limiter.redis").new {
    url = "@REDIS_URL@", key = "@KEY@:blocking", connect = planapi.core.tcp_connect, timeout = 5,
  }
  local wait, err = lim:reserve()
  lim:close()
  return ngx.say(wait and "ok" or tostring(err))
end
ngx.status = 404
]==]

local function test_server(redis_url, key)
  return function(gw)
    local env = sandbox.env()
    gw.test_port = gateway.free_port()
    local values = {
      BASE_URL = ("https://localhost:%d/rest/"):format(env.https_port), TOKEN = sandbox.TOKEN,
      CA_FILE = env.ca_file, REDIS_URL = redis_url, KEY = key,
    }
    portable.write_file(gw.dir .. "/t55.lua", (TEST_SERVER:gsub("@(%u+_?%u*)@", values)))
    portable.write_file(gw.dir .. "/t55.conf", ([[
server {
    listen 127.0.0.1:%d;
    location /t/ { content_by_lua_file %s/t55.lua; }
}
]]):format(gw.test_port, gw.dir))
    return gw.dir .. "/t55.conf"
  end
end

describe("the Redis limiter by phase (a fake ngx, a real Redis)", function()
  local server
  setup(function() server = redis_server.start() end)
  teardown(function() server.stop() end)

  local function new_limiter()
    return limiter_redis.new { url = server.url, key = new_key(), rate = 1000, per = 1, timeout = 2 }
  end

  it("paces, confirms and counts over cosockets where nginx has them, each back to the pool", function()
    local n, made = fake_cosockets.ngx "content"
    local lim = new_limiter()
    fake_cosockets.with(n, function()
      assert.equal(0, lim:reserve())
      assert.equal(0, lim:confirm())
      assert.is_true(lim:settle())
      assert.equal(1, lim:count(DAY))
      assert.equal(1, lim:used(DAY))
      -- The object keeps no cosocket: a worker's requests share it.
      assert.is_nil(lim.sock)
      -- The libcurl pacer would need planapi's C socket: none here, nothing opened for it.
      local before = made.cosockets
      assert.is_nil(lim:pacer())
      assert.equal(before, made.cosockets)
    end)
    fake_cosockets.assert_pooled(made, 5, server.port, 2000)
  end)

  it("takes a blocking socket only where nginx has no cosockets, and keeps it for no later request", function()
    local n, made = fake_cosockets.ngx "init_worker"
    local lim = new_limiter()
    fake_cosockets.with(n, function()
      assert.equal(0, lim:reserve())
      assert.equal(1, lim:count(DAY))
      assert.is_nil(lim.sock)
      -- The libcurl transport's pacer there: planapi's C socket, until a phase with cosockets comes.
      local pacer = lim:pacer()
      assert.is_true(core.is_tcp(pacer.tcp))
      made.phase = "content"
      assert.equal(2, lim:count(DAY))
      assert.is_nil(lim.sock)
    end)
    assert.equal(1, made.cosockets)
  end)

  it("a quota whose Redis counter cannot be read stops the call before sending (fail closed)", function()
    sandbox.reset()
    local env = sandbox.env()
    local rest = require("planapi").planfix_rest {
      base_url = ("https://localhost:%d/rest/"):format(env.https_port), token = sandbox.TOKEN,
      ca_file = env.ca_file, limiter = ("redis://127.0.0.1:%d/0"):format(redis_server.free_port()),
      quota = { limit = 1000 },
    }
    local r, err = rest:call("get-task-by-id", { id = 1, fields = "id" })
    assert.is_nil(r)
    assert.equal("transport", err.kind)
    assert.is_false(err.request_sent)
    assert.truthy(tostring(err):find "rate limiter unavailable", tostring(err))
    assert.equal(0, #sandbox.log())
  end)

  it("keeps planapi's own socket outside nginx (the libcurl pacer speaks on it)", function()
    local lim = new_limiter()
    assert.equal(0, lim:reserve())
    local sock = lim.sock
    assert.is_true(core.is_tcp(sock))
    assert.equal(sock, lim:pacer().tcp)
    lim:close()
  end)
end)

local describe_gateway = gateway.available and describe or pending

describe_gateway("the Redis limiter in nginx with one worker", function()
  local server, gw, key

  -- Pause Redis for 0.9 s (under the limiter's 1 s timeout), then send path
  -- twice (the worker's requests share its client) and, 0.1 s later,
  -- /t/ping: the three answers.
  local function during_pause(path)
    assert.equal("OK", redis(server.port, { "CLIENT", "PAUSE", 900 }))
    local r = gateway.http_many(gw.test_port,
      { { path = path }, { path = path, at = 0.02 }, { path = "/t/ping", at = 0.1 } })
    return r[1], r[2], r[3]
  end

  setup(function()
    server, key = redis_server.start(), new_key()
    gw = gateway.new { workers = 1, limiter = server.url, include = test_server(server.url, key) }
    gateway.start(gw)
  end)

  teardown(function()
    gateway.stop(gw)
    server.stop()
  end)

  it("a request waiting on a paused Redis holds up no other request of the worker", function()
    sandbox.reset()
    local warm = gateway.http(gw.test_port, "GET", "/t/paced") -- the client made, the script loaded
    assert.equal("ok\n", warm.body, portable.read_file(gw.dir .. "/error.log"))
    local paced, beside, ping = during_pause "/t/paced"
    assert.equal("ok\n", paced.body, portable.read_file(gw.dir .. "/error.log"))
    assert.equal("ok\n", beside.body, portable.read_file(gw.dir .. "/error.log"))
    assert.equal("pong\n", ping.body)
    -- The pause started just before the first request: it waited for it.
    assert.is_true(paced.finish > 0.75, ("the call did not wait for the paused Redis (%.2f s)"):format(paced.finish))
    -- A blocking socket would hold the worker until Redis answers.
    assert.is_true(ping.elapsed < 0.3 and ping.finish < paced.finish - 0.4,
      ("the ping waited for the call: done at %.2f s, the call at %.2f s"):format(ping.finish, paced.finish))
    -- The quota counted the three calls in Redis, the day counter shared by every worker.
    local days = redis(server.port, { "KEYS", "planapi:" .. key .. ":day:*" })
    assert.equal(1, #days)
    assert.equal("3", redis(server.port, { "GET", days[1] }))
    assert.equal(3, #gateway.log_of "rest")
  end)

  it("(control) with a blocking socket forced the same pause holds up the worker", function()
    assert.equal("ok\n", gateway.http(gw.test_port, "GET", "/t/blocking").body)
    local blocking, _, ping = during_pause "/t/blocking"
    assert.equal("ok\n", blocking.body)
    assert.equal("pong\n", ping.body)
    assert.is_true(ping.finish > 0.75, ("the ping was answered at %.2f s"):format(ping.finish))
  end)
end)

describe_gateway("the Redis limiter in nginx with four workers on one account", function()
  local server, gw

  setup(function() server = redis_server.start() end)

  teardown(function()
    gateway.stop(gw)
    server.stop()
  end)

  it("paces the account through Redis: zero rate violations #realtime", function()
    sandbox.reset()
    sandbox.config { rate = { enabled = true, interval = 1.0 },
      planado = { rate = { enabled = true, per_minute = 60, burst = 5 } } }
    gw = gateway.new { workers = 4, limiter = server.url }
    gateway.start(gw)
    local r, workers = gateway.rush(gw)
    assert.is_true(workers >= 2, "the requests reached " .. workers .. " worker(s)")
    for i, it in ipairs(r) do
      assert.is_true(it.status == 201 or it.status == 200, ("request %d: %s %s"):format(i, it.status, it.body))
    end
    local stats = sandbox.stats()
    assert.equal(0, stats.rate_violations, ("smallest gap %.3f s"):format(stats.rate_min_gap or 0))
    assert.equal(0, stats.planado_rate_violations)
    local times = {}
    for _, e in ipairs(gateway.log_of "rest") do times[#times + 1] = e.time end
    assert.equal(8, #times)
    table.sort(times)
    for i = 2, #times do
      assert.is_true(times[i] - times[i - 1] >= 0.9, ("Planfix requests %.3f s apart"):format(times[i] - times[i - 1]))
    end
    -- The pacing went through Redis: a reserve, a confirm and a settle a call at least.
    local stats_text = redis(server.port, { "INFO", "commandstats" })
    local scripts = tonumber(stats_text:match "cmdstat_evalsha:calls=(%d+)")
    assert.is_true(scripts and scripts >= 3 * 8, "scripts run in Redis: " .. tostring(scripts))
  end)
end)
