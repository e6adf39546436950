-- planapi inside HAProxy (Debian 12's haproxy 2.6, its Lua 5.3):
--   1. the haproxy transport and its automatic choice on a fake HAProxy
--      `core` (plain Lua): HAProxy's own error pages as typed errors,
--      max_body, the methods HAProxy 2.6's httpclient lacks, core.msleep;
--   2. examples/haproxy run by a real haproxy in front of the sandbox: the
--      task service and the Planado action, the transport's contract over
--      real TLS (a CA and a host name HAProxy refuses, max_body, timeout, a
--      new connection per request, redirects returned), a slow Planfix that
--      does not stall the other requests of the same thread, and two
--      threads pacing one account through the shm: limiter. The control:
--      with libcurl forced the same measurement shows the thread stalled.
-- The spec process is Lua 5.4 or LuaJIT; haproxy always loads
-- build/lua5.3/planapi/core.so (make LUA=lua5.3).
local planapi = require "planapi"
local sandbox = require "sandbox"
local portable = require "portable"
local gateway = require "gateway"
local Haproxy = require "planapi.transport.haproxy"

local read_file, write_file, execute = portable.read_file, portable.write_file, portable.execute

-- ------------------------------------------------------------------ a fake HAProxy core

-- A fake HAProxy `core`: core.tcp() sockets that answer the raw bytes of
-- fake.answers in order (receive as HAProxy's Socket: "*l" a line without
-- its CRLF, a count of bytes, what came before a close); fake.sockets
-- records each socket's address and the bytes sent; fake.slept, msleep's.
local function fake_haproxy(answers)
  local fake = { sockets = {}, slept = {}, answers = answers or {} }
  function fake.msleep(ms) fake.slept[#fake.slept + 1] = ms end
  function fake.register_service() end
  function fake.tcp()
    local raw, pos = table.remove(fake.answers, 1) or "", 1
    local s = { sent = {} }
    fake.sockets[#fake.sockets + 1] = s
    function s.settimeout(_, t) s.timeout = t end
    function s.connect(_, host, port) s.host, s.port = host, port; return 1 end
    function s.send(_, data) s.sent[#s.sent + 1] = data; return #data end
    function s.receive(_, pattern)
      if pos > #raw then return nil, "connection closed." end
      if pattern == "*l" then
        local i = raw:find("\n", pos, true) or #raw
        local line = raw:sub(pos, i):gsub("\r?\n$", "")
        pos = i + 1
        return line
      end
      local data = raw:sub(pos, pos + pattern - 1)
      pos = pos + #data
      return data
    end
    function s.close() s.closed = true end
    return s
  end
  return fake
end

-- Run f inside HAProxy: the fake as the global `core`, f on a coroutine
-- (HAProxy runs actions, services and tasks on one).
local function inside(fake, f)
  local saved = rawget(_G, "core")
  rawset(_G, "core", fake)
  local co = coroutine.create(f)
  local ok, a, b = coroutine.resume(co)
  rawset(_G, "core", saved)
  assert(ok, a)
  return a, b
end

local function http(status, headers, body)
  local lines = { "HTTP/1.1 " .. status .. " X" }
  for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
  if body and not headers["Transfer-Encoding"] then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

local HAPROXY_503 = "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this "
  .. "request.\n</body></html>\n"
local HAPROXY_504 = "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n"
  .. "</body></html>\n"
local DATE = "Sun, 06 Dec 2026 21:00:00 GMT"

Haproxy.route("https://planfix.example", "127.0.0.1:9443")

local function rest_with(fake, opts)
  local o = { base_url = "https://planfix.example/rest/", token = "tok-0123456789", rate = false,
    retry = { attempts = 1 } }
  for k, v in pairs(opts or {}) do o[k] = v end
  return inside(fake, function() return planapi.planfix_rest(o) end)
end

describe("the haproxy transport on a fake HAProxy", function()
  it("is chosen by itself inside HAProxy, goes through the origin's TLS section and sleeps with core.msleep", function()
    local fake = fake_haproxy { http(200, { ["Content-Type"] = "application/json", Date = DATE },
      '{"result":"success","task":{"id":7}}') }
    local rest = rest_with(fake)
    assert.equal("auto", rest.transport_kind)
    local task, meta = inside(fake, function() return rest.tasks:get(7) end)
    assert.equal(7, task and task.id, tostring(meta))
    local sock = fake.sockets[1]
    assert.same({ "127.0.0.1", 9443 }, { sock.host, sock.port }) -- the route, not the origin
    local sent = table.concat(sock.sent)
    assert.matches("^GET /rest/task/7", sent)
    assert.matches("\r\nHost: planfix.example\r\n", sent, 1, true)
    assert.matches("\r\nAuthorization: Bearer tok-0123456789\r\n", sent, 1, true)
    assert.is_true(sock.closed) -- never kept: the next request gets a new connection
    inside(fake, function() rest.sleep(0.25) end)
    assert.same({ 250 }, fake.slept)
  end)

  it("turns the TLS section's own 503 and 504 pages into typed errors, and passes a server's 503 on", function()
    local fake = fake_haproxy { http(503, { ["Content-Type"] = "text/html" }, HAPROXY_503),
      http(504, { ["Content-Type"] = "text/html" }, HAPROXY_504),
      http(503, { ["Content-Type"] = "text/html", Date = DATE }, HAPROXY_503) }
    local rest = rest_with(fake)
    local _, err = inside(fake, function() return rest.tasks:get(1) end)
    assert.equal("transport", err.kind)
    assert.is_false(err.request_sent)
    assert.matches("planfix.example:443", tostring(err), 1, true)
    _, err = inside(fake, function() return rest.tasks:get(1) end)
    assert.equal("timeout", err.kind)
    -- With a Date header the 503 came from the origin: an answer, not a transport failure.
    _, err = inside(fake, function() return rest.tasks:get(1) end)
    assert.equal(503, err.status)
    assert.is_not.equal("transport", err.kind)
  end)

  it("reads a chunked body through HAProxy's line reads, and refuses one over max_body", function()
    local chunked = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: " .. DATE
      .. "\r\nTransfer-Encoding: chunked\r\n\r\n" .. "14\r\n" .. '{"result":"success",' .. "\r\n"
      .. "10\r\n" .. '"task":{"id":9}}' .. "\r\n0\r\n\r\n"
    local fake = fake_haproxy { chunked, http(200, { Date = DATE }, ("x"):rep(2000)) }
    local rest = rest_with(fake, { max_body = 1000 })
    local task, err = inside(fake, function() return rest.tasks:get(9) end)
    assert.equal(9, task and task.id, tostring(err))
    local _, berr = inside(fake, function() return rest.tasks:get(1) end)
    assert.equal("transport", berr.kind)
    assert.matches("max_body", tostring(berr), 1, true)
  end)

  it("lets a cache miss wait for another stream's load with core.msleep, never a blocking sleep", function()
    local cache = require("planapi.cache").new { scope = "memory", namespace = "spec65-" .. tostring({}) }
    local fake = fake_haproxy {}
    -- Outside HAProxy a waiter in this process cannot let the load go on: no pause.
    assert.is_nil(cache:sleeper())
    local sleep = inside(fake, function() return cache:sleeper() end)
    assert.equal(Haproxy.sleep, sleep)
    inside(fake, function() sleep(0.05) end)
    assert.same({ 50 }, fake.slept)
  end)

  it("refuses an https origin without a route; takes libcurl while HAProxy loads the Lua files", function()
    local fake = fake_haproxy {}
    local rest = rest_with(fake, { base_url = "https://unrouted.example/rest/", transport = "haproxy" })
    local called, err = pcall(inside, fake, function() return rest.tasks:get(1) end)
    assert.is_false(called)
    assert.matches("no route to https://unrouted.example", tostring(err), 1, true)
    assert.equal(0, #fake.sockets)
    rawset(_G, "core", fake)
    local yieldable = Haproxy.yieldable() -- the main coroutine, as HAProxy's body and init contexts
    rawset(_G, "core", nil)
    assert.is_false(yieldable)
    assert.is_false(Haproxy.yieldable()) -- outside HAProxy altogether
    local bad = pcall(planapi.planfix_rest,
      { base_url = "https://x.example/rest/", token = "t", transport = "haproxy" })
    assert.is_false(bad) -- outside HAProxy "haproxy" is refused at once
  end)
end)

-- ------------------------------------------------------------------ a real HAProxy

local HAPROXY = execute "command -v haproxy > /dev/null 2>&1"

-- A TLS section of the probe's configuration: HAProxy's verified TLS to
-- localhost:<port> with the sandbox's CA, bound on loopback at <bind>.
local function tls_section(name, bind, port, ca_file)
  return table.concat({
    "listen " .. name,
    ("  bind 127.0.0.1:%d"):format(bind),
    "  http-reuse never",
    "  retries 0",
    ("  server s localhost:%d ssl verify required ca-file %s sni str(localhost) verifyhost localhost")
      :format(port, ca_file),
  }, "\n")
end

-- examples/haproxy/run with the sandbox behind it; opts: threads,
-- transport ("curl" forces libcurl), rate (Planfix requests a second).
-- A second configuration adds the probe service on its own port, and TLS
-- sections to the sandbox's untrusted and wrong-host ports.
local function start(opts)
  local env = sandbox.env()
  local free = gateway.free_port
  local hp = { dir = portable.tmpdir(), port = free(), probe_port = free(), untrusted = free(), wrong = free(),
    planfix_port = free() }
  local extra = hp.dir .. "/probe.cfg"
  write_file(extra, table.concat({
    "global",
    "  lua-load-per-thread \"${PLANAPI_REPO}/spec/helpers/haproxy_probe.lua\"",
    "frontend probe",
    ("  bind 127.0.0.1:%d"):format(hp.probe_port),
    "  http-request use-service lua.planapi_probe",
    tls_section("untrusted_tls", hp.untrusted, env.untrusted_port, env.ca_file),
    tls_section("wrong_tls", hp.wrong, env.wrong_host_port, env.ca_file),
    "" }, "\n"))
  local vars = {
    PLANAPI_HAPROXY_DIR = hp.dir, PLANAPI_HAPROXY_PORT = hp.port, PLANAPI_HAPROXY_THREADS = opts.threads or 1,
    PLANAPI_HAPROXY_PLANFIX_PORT = hp.planfix_port, PLANAPI_HAPROXY_PLANADO_PORT = free(),
    PLANAPI_HAPROXY_CA_FILE = env.ca_file, PLANAPI_HAPROXY_EXTRA_CFG = extra,
    PLANFIX_BASE_URL = ("https://localhost:%d/rest/"):format(env.https_port), PLANFIX_TOKEN = sandbox.TOKEN,
    PLANADO_URL = ("https://localhost:%d/planado/v2/"):format(env.https_port), PLANADO_API_KEY = sandbox.PLANADO_KEY,
    PLANAPI_TRANSPORT = opts.transport or "", PLANFIX_RATE = opts.rate or "",
  }
  local words = {}
  for k, v in pairs(vars) do words[#words + 1] = ("%s='%s'"):format(k, tostring(v)) end
  hp.env = "env " .. table.concat(words, " ")
  hp.started = execute(hp.env .. " examples/haproxy/run start > " .. hp.dir .. "/run.log 2>&1")
  assert(hp.started, "haproxy did not start: " .. tostring(read_file(hp.dir .. "/run.log"))
    .. tostring(read_file(hp.dir .. "/haproxy.log")))
  return hp
end

local function stop(hp)
  if not hp then return end
  execute(hp.env .. " examples/haproxy/run stop > /dev/null 2>&1")
  for _, name in ipairs { "haproxy.log", "run.log", "check.log" } do
    require("journal").output(read_file(hp.dir .. "/" .. name))
  end
  portable.rmtree(hp.dir)
end

local function probe_path(t)
  local parts = {}
  for k, v in pairs(t) do
    parts[#parts + 1] = k .. "=" .. tostring(v):gsub("[^%w%-._~/:]", function(c) return ("%%%02X"):format(c:byte()) end)
  end
  return "/probe?" .. table.concat(parts, "&")
end

-- A slow Planfix answer (1.5 s) and, 0.3 s later, another request on the
-- same single thread. Returns the slow and the fast results.
local SLOW = 1.5
local function slow_and_fast(hp)
  sandbox.fault { mode = "slow", delay = SLOW, path = "/task/1" }
  local r = gateway.http_many(hp.port, { { path = "/tasks/1" }, { path = "/tasks/2", at = 0.3 } })
  return r[1], r[2]
end

-- The property: the fast request was answered while the slow one waited.
local function not_stalled(slow, fast)
  return fast.status == 200 and fast.finish < slow.finish - 0.6
end

local describe_real = (HAPROXY and gateway.available) and describe or pending
describe_real("examples/haproxy in a real HAProxy 2.6 against the sandbox", function()
  setup(function()
    assert(execute "make --no-print-directory -s LUA=lua5.3 > /dev/null", "make LUA=lua5.3 failed")
  end)
  before_each(function() sandbox.reset() end)
  teardown(function() sandbox.reset() end) -- no rate enforcement or fault left for the next spec

  describe("one thread, the haproxy transport", function()
    local hp
    setup(function() hp = start { threads = 1, rate = 10 } end)
    teardown(function() stop(hp) end)

    it("answers GET /tasks/<id> from Planfix and tags a request with its Planado job's status", function()
      local r = gateway.http_many(hp.port, {
        { path = "/tasks/1" },
        { path = "/jobs", headers = { ["X-Planado-Job"] = "00000001-0000-4000-8000-000000000002" } },
        { path = "/tasks/999999" },
      })
      assert.equal(200, r[1].status, r[1].body)
      assert.equal(1, r[1].json.task.id)
      assert.equal("Prepare quarterly report", r[1].json.task.name)
      assert.equal("planado status: scheduled\n", r[2].body)
      assert.equal(404, r[3].status, r[3].body)
      local seen = gateway.log_of("rest", "/task/1%f[^%d]")[1]
      assert.is_table(seen, "the sandbox saw GET /rest/task/1")
      assert.equal("Bearer " .. sandbox.TOKEN, gateway.header_of(seen, "authorization"))
    end)

    it("keeps the contract over real TLS: an untrusted CA or another host's certificate, max_body, timeout", function()
      local env = sandbox.env()
      sandbox.fault { mode = "oversize", size = 100000, path = "/task/3" }
      sandbox.fault { mode = "slow", delay = 2, path = "/task/4" }
      local function url(port, path) return ("https://localhost:%d/rest/%s"):format(port, path) end
      local function route(port) return "127.0.0.1:" .. port end
      local planfix = env.https_port
      local r = gateway.http_many(hp.probe_port, {
        { path = probe_path { url = url(env.untrusted_port, "task/1"), route = route(hp.untrusted) } },
        { path = probe_path { url = url(env.wrong_host_port, "task/1"), route = route(hp.wrong) } },
        { path = probe_path { url = url(planfix, "task/3"), route = route(hp.planfix_port), max_body = 50000 } },
        { path = probe_path { url = url(planfix, "task/4"), route = route(hp.planfix_port), timeout = 0.4 } },
      })
      for i = 1, 2 do
        assert.equal("transport", r[i].json.kind, r[i].body)
        assert.is_false(r[i].json.request_sent)
        assert.matches("certificate", r[i].json.message, 1, true)
      end
      assert.equal("transport", r[3].json.kind, r[3].body)
      assert.matches("max_body", r[3].json.message, 1, true)
      assert.equal("timeout", r[4].json.kind, r[4].body)
      assert.is_true(r[4].elapsed < 1.5, "the timed out call took " .. r[4].elapsed)
      -- Neither refused server got a request, and the timed out one was not
      -- sent again (the slow one is logged only once its answer is ready).
      assert.equal(0, #gateway.log_of("rest", "/task/1%f[^%d]"))
      assert.equal(0, #gateway.log_of("rest", "/task/4%f[^%d]"))
    end)

    it("opens a new connection per request and returns a redirect without following it", function()
      local env = sandbox.env()
      sandbox.config { latency = { connect = 0.01 } }
      local before = sandbox.stats().latency_delayed_connections
      sandbox.fault { mode = "redirect", location = "https://planfix.invalid/elsewhere", path = "/task/2" }
      local base = ("https://localhost:%d/rest/"):format(env.https_port)
      local route = "127.0.0.1:" .. hp.planfix_port
      local function one(path, auth)
        return gateway.http_many(hp.probe_port, { { path = probe_path { url = base .. path, route = route,
          auth = auth } } })[1]
      end
      local r = { one "task/1", one "task/1", one("task/2", 1) }
      assert.equal(3, sandbox.stats().latency_delayed_connections - before)
      assert.equal(302, r[3].json.status, r[3].body)
      assert.equal("https://planfix.invalid/elsewhere", r[3].json.location)
      assert.equal(3, #sandbox.log_of "rest") -- nothing followed the redirect
    end)

    it("serves another request of the same thread while Planfix is slow #realtime", function()
      local slow, fast = slow_and_fast(hp)
      assert.equal(200, slow.status, slow.body)
      assert.is_true(slow.elapsed >= SLOW - 0.05, "the slow request took " .. slow.elapsed)
      assert.is_true(not_stalled(slow, fast),
        ("the fast request finished at %.2f s, the slow one at %.2f s"):format(fast.finish, slow.finish))
    end)
  end)

  it("the control: with libcurl forced the same thread stalls behind the slow call #realtime", function()
    local hp = start { threads = 1, rate = 10, transport = "curl" }
    local ok, slow, fast = pcall(slow_and_fast, hp)
    stop(hp)
    assert(ok, slow)
    assert.equal(200, slow.status, slow.body)
    assert.equal(200, fast.status, fast.body)
    assert.is_false(not_stalled(slow, fast),
      ("libcurl did not block: the fast request finished at %.2f s, the slow one at %.2f s")
        :format(fast.finish, slow.finish))
  end)

  it("paces one account across two threads through the shm: limiter: no rate violation #realtime", function()
    local hp = start { threads = 2, rate = 4 }
    sandbox.config { rate = { enabled = true, interval = 0.2 } }
    local list = {}
    for i = 1, 8 do list[i] = { path = ("/tasks/%d"):format((i - 1) % 7 + 1) } end
    local ok, r = pcall(gateway.http_many, hp.port, list)
    stop(hp)
    assert(ok, r)
    local threads, last = {}, 0
    for i, it in ipairs(r) do
      assert.equal(200, it.status, ("request %d: %s"):format(i, tostring(it.body)))
      threads[it.headers["x-planapi-thread"]] = true
      last = math.max(last, it.finish)
    end
    assert.is_true(threads["1"] and threads["2"], "both threads served requests")
    assert.equal(0, sandbox.stats().rate_violations)
    assert.is_true(last >= 7 * 0.2, ("8 requests at 4 a second took only %.2f s"):format(last))
  end)
end)
