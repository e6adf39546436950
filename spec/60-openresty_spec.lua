-- planapi inside nginx (OpenResty, or Debian's nginx with its lua module):
--   1. the cosocket transport's HTTP framing and errors, on a fake `ngx` (plain Lua);
--   2. the automatic choice of transport, clock and sleep by phase;
--   3. examples/openresty run by a second nginx in front of the sandbox: the
--      transport over real cosockets and TLS, the gateway's endpoints, a slow
--      Planfix that does not block the single worker, and several workers
--      sharing one account's rate through the shm limiter.
-- The spec process is Lua 5.4 or LuaJIT; the gateway nginx always runs LuaJIT
-- with build/luajit/planapi/core.so.
local planapi = require "planapi"
local core = planapi.core
local sandbox = require "sandbox"
local Ngx = require "planapi.transport.ngx"

local TOKEN = sandbox.TOKEN
local SECRET = "whsec-gateway-0123456789"
require("journal").secret(SECRET) -- given to the gateway's nginx: the secret scan looks for it

-- ------------------------------------------------------------------ helpers

local portable = require "portable"
local read_file, write_file = portable.read_file, portable.write_file
local tmpdir, rmtree = portable.tmpdir, portable.rmtree

local function contains(haystack, needle)
  return type(haystack) == "string" and haystack:find(needle, 1, true) ~= nil
end

-- ------------------------------------------------------------------ a fake ngx

-- A scripted cosocket: conn = { response = raw bytes, reused = n, connect_err =,
-- tls_err =, tls_raise =, send_err =, eof = "closed" | "timeout", tick = seconds
-- the clock advances per read }.
local function fake_socket(n, conn)
  conn = conn or { connect_err = "connection refused" }
  local buf, pos = conn.response or "", 1
  local s = { conn = conn }
  n.sockets[#n.sockets + 1] = s
  local function tick() n.t = n.t + (conn.tick or 0) end
  function s.settimeouts(_, c, w, r) s.timeouts = { c, w, r } end
  function s.connect(_, host, port, opts)
    s.host, s.port, s.opts = host, port, opts
    if conn.connect_err then return nil, conn.connect_err end
    return 1
  end
  function s.getreusedtimes() return conn.reused or 0 end
  function s.sslhandshake(_, reuse, name, verify)
    s.tls = { reuse = reuse, name = name, verify = verify }
    if conn.tls_raise then error "assertion failed!" end
    if conn.tls_err then return nil, conn.tls_err end
    return true
  end
  function s.send(_, data)
    if conn.send_err then return nil, conn.send_err end
    s.sent = type(data) == "table" and table.concat(data) or data
    return #s.sent
  end
  function s.receiveuntil(_, pattern)
    local found = false
    return function(size)
      tick()
      if found then
        found = false
        pos = pos + #pattern
        return nil
      end
      local i = buf:find(pattern, pos, true)
      if i then
        local avail = i - pos
        if avail == 0 then
          pos = pos + #pattern
          return nil
        end
        local take = size and math.min(size, avail) or avail
        local data = buf:sub(pos, pos + take - 1)
        pos = pos + take
        if pos == i then found = true end
        return data
      end
      local rest = buf:sub(pos)
      if size and #rest > size + #pattern then
        pos = pos + size
        return rest:sub(1, size)
      end
      pos = #buf + 1
      return nil, conn.eof or "closed", rest
    end
  end
  function s.receiveany(_, max)
    tick()
    if pos > #buf then return nil, conn.eof or "closed" end
    local data = buf:sub(pos, pos + math.min(max, conn.chunk or max) - 1)
    pos = pos + #data
    return data
  end
  function s.setkeepalive(_, ms)
    s.kept = ms
    return 1
  end
  function s.close() s.closed = true return 1 end
  return s
end

local function fake_ngx(conns)
  local n = { phase = "content", t = 1000, sockets = {}, slept = {} }
  n.get_phase = function() return n.phase end
  n.update_time = function() end
  n.now = function() return n.t end
  n.sleep = function(sec) n.slept[#n.slept + 1] = sec n.t = n.t + sec end
  n.config = { ngx_lua_version = 10023 }
  n.socket = { tcp = function() return fake_socket(n, table.remove(conns, 1)) end }
  return n
end

local function fake_client(opts)
  local o = { base_url = "https://api.example.test/rest/", headers = { Authorization = "Bearer " .. TOKEN },
    secrets = { TOKEN } }
  for k, v in pairs(opts or {}) do o[k] = v end
  return core.client(o)
end

-- A transport over scripted connections: transport, fake ngx.
local function scripted(conns, copts, topts)
  local n = fake_ngx(conns)
  topts = topts or {}
  topts.ngx = n
  return Ngx.new(fake_client(copts), topts), n
end

local function get(path, extra)
  local c = fake_client()
  local req = c:prepare { method = "GET", path = path or "task/1", query = { fields = "id,name" } }
  for k, v in pairs(extra or {}) do req[k] = v end
  return req
end

local OK = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"id\":1}\n"

describe("ngx transport on a fake ngx", function()
  it("confirms the send with the limiter after connect and handshake, right before writing", function()
    local t, n
    t, n = scripted { { response = OK } }
    local order = {}
    local req = get("task/1", { confirm = function()
      local s = n.sockets[1]
      order[#order + 1] = ("confirm: connected=%s tls=%s sent=%s"):format(tostring(s.host ~= nil),
        tostring(s.tls ~= nil), tostring(s.sent ~= nil))
      return true
    end })
    assert(t(req))
    assert.same({ "confirm: connected=true tls=true sent=false" }, order)
    assert.truthy(n.sockets[1].sent)
  end)

  it("a confirm that fails (the shared limiter out of reach) sends nothing and keeps the connection", function()
    local t, n = scripted { { response = OK } }
    local req = get("task/1", { confirm = function()
      return nil, core.error { kind = "transport", message = "rate limiter unavailable: x", request_sent = false }
    end })
    local r, err = t(req)
    assert.is_nil(r)
    assert.equal(false, err.request_sent)
    assert.is_nil(n.sockets[1].sent)
    assert.truthy(n.sockets[1].kept)
  end)

  it("writes an HTTP/1.1 request and reads a response with Content-Length, then pools the connection", function()
    local t, n = scripted { { response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      .. "Set-Cookie: a=1\r\nSET-COOKIE: b=2\r\nContent-Length: 9\r\n\r\n{\"id\":1}\n" } }
    local res = assert(t(get()))
    assert.equal(200, res.status)
    assert.equal("application/json", res.headers["content-type"])
    assert.equal("a=1, b=2", res.headers["set-cookie"])
    assert.equal('{"id":1}\n', res.body)
    local s = n.sockets[1]
    assert.equal("api.example.test", s.host)
    assert.equal(443, s.port)
    assert.equal("planapi:https:api.example.test:443", s.opts.pool)
    assert.same({ reuse = nil, name = "api.example.test", verify = true }, s.tls)
    assert.truthy(s.kept) -- back to the pool
    local head = s.sent
    assert.truthy(head:find("^GET /rest/task/1%?fields=id%%2Cname HTTP/1%.1\r\n"))
    assert.truthy(contains(head, "\r\nHost: api.example.test\r\n"))
    assert.truthy(contains(head, "\r\nAuthorization: Bearer " .. TOKEN .. "\r\n"))
    assert.truthy(head:find("\r\nUser%-Agent: planapi/[^\r]* lua%-nginx%-module/0%.10%.23\r\n"))
    assert.falsy(contains(head, "Content-Length")) -- a GET without a body
    assert.truthy(head:find("\r\n\r\n$"))
  end)

  it("sends a body with its length, a port in Host, and Content-Length: 0 for an empty POST", function()
    local t, n = scripted({ { response = OK }, { response = OK } }, { base_url = "https://api.example.test:8443/rest/" })
    local c = fake_client { base_url = "https://api.example.test:8443/rest/" }
    assert(t(c:prepare { method = "POST", path = "task/", body = { name = "x" } }))
    local head = n.sockets[1].sent
    assert.truthy(contains(head, "\r\nHost: api.example.test:8443\r\n"))
    assert.truthy(contains(head, "\r\nContent-Length: 12\r\n"))
    assert.truthy(head:find('\r\n\r\n{"name":"x"}$'))
    assert(t { method = "POST", url = "https://api.example.test:8443/rest/x" })
    assert.truthy(contains(n.sockets[2].sent, "\r\nContent-Length: 0\r\n"))
  end)

  it("decodes a chunked body with extensions and trailers", function()
    local t = scripted { { response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "5;ext=1\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n" } }
    local res = assert(t(get()))
    assert.equal("hello, world", res.body)
  end)

  it("reads a body without a length until the server closes, and does not pool that connection", function()
    local t, n = scripted { { response = "HTTP/1.0 200 OK\r\n\r\nuntil the end", chunk = 4 } }
    local res = assert(t(get()))
    assert.equal("until the end", res.body)
    assert.is_nil(n.sockets[1].kept)
    assert.is_true(n.sockets[1].closed)
  end)

  it("closes a connection the server said to close", function()
    local t, n = scripted { { response = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok" } }
    assert.equal("ok", assert(t(get())).body)
    assert.is_nil(n.sockets[1].kept)
  end)

  it("skips interim answers and returns a redirect without following it", function()
    local t, n = scripted { { response = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\n"
      .. "Location: https://files.example.test/x\r\nContent-Length: 0\r\n\r\n" } }
    local res = assert(t(get()))
    assert.equal(302, res.status)
    assert.equal("https://files.example.test/x", res.headers.location)
    assert.equal(1, #n.sockets)
  end)

  it("reads no body for HEAD and 204", function()
    local t = scripted { { response = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" },
      { response = "HTTP/1.1 204 No Content\r\n\r\n" } }
    local res = assert(t(get(nil, { method = "HEAD" })))
    assert.equal("", res.body)
    assert.equal(204, assert(t(get())).status)
  end)

  it("refuses a body over max_body with an error, never a truncated result", function()
    local t = scripted({ { response = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" .. ("x"):rep(5000) },
      { response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n900\r\n" .. ("y"):rep(2304)
        .. "\r\n900\r\n" .. ("y"):rep(2304) .. "\r\n0\r\n\r\n" },
      { response = "HTTP/1.1 200 OK\r\n\r\n" .. ("z"):rep(5000) } }, { max_body = 4096 })
    for _ = 1, 3 do
      local res, err = t(get())
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.truthy(contains(err.message, "larger than max_body (4096 bytes)"))
      assert.is_false(err.retryable)
      assert.is_true(err.request_sent)
    end
  end)

  it("reports a body cut short as a retryable transport error", function()
    local t = scripted { { response = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this" } }
    local res, err = t(get())
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.truthy(contains(err.message, "transfer closed with 91 bytes remaining"))
    assert.is_true(err.retryable)
    assert.is_true(err.request_sent)
  end)

  it("replaces a pooled connection the server dropped, but not a fresh one", function()
    local t, n = scripted { { reused = 3, response = "" }, { response = OK } }
    local res = assert(t(get()))
    assert.equal(200, res.status)
    assert.equal(2, #n.sockets)
    assert.is_nil(n.sockets[1].tls) -- a pooled connection is already past its handshake
    assert.truthy(n.sockets[2].tls)
    local t2 = scripted { { response = "" } }
    local res2, err = t2(get())
    assert.is_nil(res2)
    assert.equal("transport", err.kind)
    assert.truthy(contains(err.message, "without answering"))
    assert.is_true(err.request_sent)
  end)

  it("sends a write on a new connection, never on a pooled one, and never twice", function()
    -- Two idle pooled connections, then a new one: the POST skips (closes) both.
    local t, n = scripted { { reused = 2, response = OK }, { reused = 1, response = OK }, { response = OK } }
    local c = fake_client()
    local post = c:prepare { method = "POST", path = "task/", body = { name = "once" } }
    post.idempotent = false
    assert.equal(200, assert(t(post)).status)
    assert.equal(3, #n.sockets)
    assert.is_true(n.sockets[1].closed)
    assert.is_true(n.sockets[2].closed)
    assert.is_nil(n.sockets[1].sent)
    assert.is_nil(n.sockets[2].sent)
    assert.truthy(n.sockets[3].sent)
    -- Dropped without an answer on that new connection: an error, not a second send.
    local t2, n2 = scripted { { response = "" }, { response = OK } }
    local res, err = t2(post)
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.is_true(err.request_sent)
    assert.equal(1, #n2.sockets)
    -- An idempotent POST (a list query) may still use the pool.
    local t3, n3 = scripted { { reused = 2, response = OK } }
    local query = c:prepare { method = "POST", path = "task/list", body = {} }
    query.idempotent = true
    assert.equal(200, assert(t3(query)).status)
    assert.equal(1, #n3.sockets)
    c:close()
  end)

  it("a connection lost during the TLS handshake is a retryable transport error, nothing sent", function()
    for _, herr in ipairs { "closed", "connection reset by peer", "broken pipe" } do
      local t = scripted { { tls_err = herr } }
      local res, err = t(get())
      assert.is_nil(res)
      assert.equal("transport", err.kind, herr)
      assert.is_true(err.retryable)
      assert.is_false(err.request_sent)
    end
  end)

  it("classifies connect, TLS and read failures like the C transport", function()
    local cases = {
      { conn = { connect_err = "connection refused" }, kind = "transport", sent = false, retryable = true },
      { conn = { connect_err = "timeout" }, kind = "timeout", sent = false, retryable = true },
      { conn = { tls_err = "certificate host mismatch" }, kind = "tls", sent = false, retryable = false },
      { conn = { tls_err = "20: unable to get local issuer certificate" }, kind = "tls", sent = false },
      { conn = { tls_raise = true }, kind = "tls", sent = false, text = "certificate verification failed" },
      { conn = { tls_err = "timeout" }, kind = "timeout", sent = false },
      { conn = { send_err = "broken pipe" }, kind = "transport", sent = true },
      { conn = { response = "HTTP/1.1 200 OK\r\n", eof = "timeout" }, kind = "timeout", sent = true },
      { conn = { response = "SSH-2.0-OpenSSH\r\n\r\n" }, kind = "transport", sent = true, text = "HTTP/1.x" },
    }
    for i, case in ipairs(cases) do
      local t = scripted { case.conn }
      local res, err = t(get())
      assert.is_nil(res, "case " .. i)
      assert.is_true(planapi.is_error(err), "case " .. i)
      assert.equal(case.kind, err.kind, "case " .. i)
      assert.equal(case.sent, err.request_sent, "case " .. i)
      if case.retryable ~= nil then assert.equal(case.retryable, err.retryable, "case " .. i) end
      if case.text then assert.truthy(contains(err.message, case.text), "case " .. i .. ": " .. err.message) end
      assert.falsy(contains(tostring(err), TOKEN), "case " .. i)
    end
  end)

  it("keeps the whole exchange within the timeout, not each read", function()
    local body = ("b"):rep(100)
    local t = scripted({ { response = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" .. body, tick = 0.3, chunk = 10 } },
      { timeout = 1 })
    local res, err = t(get())
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.is_true(err.request_sent)
    local t2 = scripted { { response = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" .. body, tick = 0.3, chunk = 10 } }
    assert.equal(body, assert(t2(get(nil, { timeout = 10 }))).body)
  end)

  it("refuses response headers over 256 KiB", function()
    local t = scripted { { response = "HTTP/1.1 200 OK\r\nX-Big: " .. ("h"):rep(300 * 1024) .. "\r\n\r\n" } }
    local res, err = t(get())
    assert.is_nil(res)
    assert.truthy(contains(err.message, "headers are larger"))
  end)

  it("holds the URL policy and refuses header injection, before connecting", function()
    local t, n = scripted({}, { allow_http = false })
    local ok, err = pcall(t, { method = "GET", url = "http://127.0.0.1:9/x" })
    assert.is_false(ok)
    assert.equal("config", err.kind)
    ok, err = pcall(t, { method = "GET", url = "http://api.example.test/x" })
    assert.is_false(ok)
    assert.truthy(contains(err.message, "refused"))
    ok, err = pcall(t, { method = "GET", url = "https://api.example.test/x", headers = { ["X-A"] = "1\r\nX-B: 2" } })
    assert.is_false(ok)
    assert.truthy(contains(err.message, "CR, LF or NUL"))
    assert.equal(0, #n.sockets)
    local th, nh = scripted({ { response = OK } }, { allow_http = true })
    assert(th { method = "GET", url = "http://localhost:8080/x?y=1#frag" })
    assert.equal("127.0.0.1", nh.sockets[1].host) -- localhost needs no resolver
    assert.is_nil(nh.sockets[1].tls)
    assert.truthy(nh.sockets[1].sent:find "^GET /x%?y=1 HTTP/1%.1\r\nHost: localhost:8080\r\n")
  end)

  it("streams a 200 body to req.sink and leaves nothing behind on failure", function()
    local dir = tmpdir()
    local path = dir .. "/file.bin"
    local t = scripted { { response = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nbinary" },
      { response = "HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\nmissing" },
      { response = "HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\npartial" } }
    local res = assert(t(get(nil, { sink = path })))
    assert.equal(path, res.file)
    assert.equal(6, res.size)
    assert.equal("binary", read_file(path))
    os.remove(path)
    res = assert(t(get(nil, { sink = path })))
    assert.equal("missing", res.body)
    assert.is_nil(res.file)
    assert.is_nil(read_file(path))
    assert.is_nil(t(get(nil, { sink = path })))
    assert.is_nil(read_file(path))
    assert.is_nil(read_file(path .. ".part"))
    rmtree(dir)
  end)

  it("refuses phases without cosockets and a proxy", function()
    local t, n = scripted {}
    n.phase = "init_worker"
    local ok, err = pcall(t, get())
    assert.is_false(ok)
    assert.equal("config", err.kind)
    assert.truthy(contains(err.message, "init_worker"))
    local tp = scripted({}, nil, { proxy = "http://proxy.example.test:3128" })
    ok, err = pcall(tp, get())
    assert.is_false(ok)
    assert.truthy(contains(err.message, "proxy"))
  end)
end)

describe("automatic transport, clock and sleep", function()
  local saved
  before_each(function() saved = rawget(_G, "ngx") end)
  after_each(function() rawset(_G, "ngx", saved) end)

  it("outside nginx: libcurl and the core clock, and transport = \"ngx\" is refused", function()
    local rest = planapi.planfix_rest { base_url = "https://api.example.test/rest/", token = TOKEN }
    assert.equal("curl", rest.transport_kind)
    assert.equal(core.monotime, rest.clock)
    assert.equal(core.sleep, rest.sleep)
    local ok, err = pcall(planapi.planfix_rest, { base_url = "https://api.example.test/rest/", token = TOKEN,
      transport = "ngx" })
    assert.is_false(ok)
    assert.equal("config", err.kind)
    ok, err = pcall(planapi.planado, { api_key = "k", transport = "cosocket" })
    assert.is_false(ok)
    assert.truthy(contains(err.message, "\"curl\" or \"ngx\""))
    ok = pcall(planapi.planado, { api_key = "k", transport = 42 })
    assert.is_false(ok)
  end)

  it("inside nginx: cosockets, ngx.sleep and nginx's clock where the phase has them, libcurl elsewhere", function()
    local body = '{"result":"success"}'
    local n = fake_ngx { { response = "HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body } }
    rawset(_G, "ngx", n)
    n.phase = "init_worker" -- made in init_worker, used later
    local rest = planapi.planfix_rest { base_url = "https://localhost:1/rest/", token = TOKEN,
      rate = false, retry = { attempts = 1 } }
    assert.equal("auto", rest.transport_kind)
    n.t = 4242
    assert.equal(4242, rest.clock())
    n.phase = "content"
    local result = assert(rest:call "ping")
    assert.equal(1, #n.sockets) -- the cosocket served it
    assert.equal("success", result.result)
    rest.sleep(0.25)
    assert.same({ 0.25 }, n.slept)
    n.phase = "log" -- no cosockets: libcurl (nothing listens on port 1)
    local r2, err = rest:call "ping"
    assert.is_nil(r2)
    assert.is_number(err.curl_code)
    assert.equal(1, #n.sockets)
    local before = core.monotime()
    rest.sleep(0.01) -- a blocking sleep there
    assert.equal(1, #n.slept)
    assert.is_true(core.monotime() - before >= 0.009)

    -- The shm scope compares times across processes: CLOCK_MONOTONIC there.
    local dir = tmpdir()
    local shared = planapi.planfix_rest { base_url = "https://localhost:1/rest/", token = TOKEN,
      limiter = "shm:" .. dir .. "/limits" }
    assert.equal(core.monotime, shared.clock)
    shared:close()
    rmtree(dir)

    local curl = planapi.planado { api_key = "k", transport = "curl" }
    assert.equal("curl", curl.transport_kind)
    local forced = planapi.planado { api_key = "k", transport = "ngx", url = "https://localhost:1/v2/" }
    assert.equal("ngx", forced.transport_kind)
    local ok, ferr = pcall(forced.call, forced, "GET", "jobs")
    assert.is_false(ok)
    assert.truthy(contains(ferr.message, "log phase"))
  end)
end)

describe("the default scope inside nginx and out", function()
  -- With no limiter option, a client made in an nginx worker and a plain Lua
  -- script (cron, the CLI) of the same user share one file: both must read
  -- the clock it is kept on (CLOCK_MONOTONIC), as with an explicit shm:. On
  -- nginx's wall clock the script would see the worker's slots decades
  -- ahead (or the worker the script's long gone) and the two never pace.
  it("paces a worker's requests and a script's on one clock: the sandbox sees no violation #realtime", function()
    sandbox.reset()
    sandbox.config { rate = { enabled = true } }
    local Limiter = require "planapi.limiter"
    local saved_dir, saved_ngx = Limiter.runtime_dir, rawget(_G, "ngx")
    local dir = tmpdir()
    Limiter.runtime_dir = dir .. "/runtime"
    local n = fake_ngx {}
    n.phase = "log" -- no cosockets there: libcurl carries the worker's requests to the sandbox
    local epoch = os.time() - core.monotime()
    n.now = function() return epoch + core.monotime() end -- nginx's clock is the wall clock
    local function sleep(s)
      assert(s < 5, ("a wait of %.0f s for a 1 request/s budget"):format(s))
      core.sleep(s)
    end
    local function client()
      return planapi.planfix_rest { base_url = sandbox.https_url "rest/", token = TOKEN,
        ca_file = sandbox.env().ca_file, sleep = sleep }
    end
    rawset(_G, "ngx", n)
    local worker = client()
    rawset(_G, "ngx", saved_ngx)
    local script = client()
    local ok, err = pcall(function()
      for _ = 1, 3 do
        rawset(_G, "ngx", n)
        assert(worker:call("get-task-by-id", { id = 1, fields = "id" }))
        rawset(_G, "ngx", saved_ngx)
        assert(script:call("get-task-by-id", { id = 1, fields = "id" }))
      end
    end)
    rawset(_G, "ngx", saved_ngx)
    Limiter.runtime_dir = saved_dir
    worker:close()
    script:close()
    rmtree(dir)
    assert(ok, tostring(err))
    local stats = sandbox.stats()
    assert.equal(6, stats.requests)
    assert.equal(0, stats.rate_violations)
  end)
end)

-- ------------------------------------------------------------------ the gateway

local gateway = require "gateway"
local socket_ok, socket = gateway.available, (gateway.available and require "socket")
local free_port, http_many, http = gateway.free_port, gateway.http_many, gateway.http
local start, stop_gateway, log_of, header_of, rush = gateway.start, gateway.stop, gateway.log_of,
  gateway.header_of, gateway.rush

-- The code the test server runs inside the gateway nginx (content phase),
-- one case per location /t/<case>, answering JSON.
local GWTEST = [==[
local planapi = require "planapi"
local Ngx = require "planapi.transport.ngx"
local E = ...
local json = planapi.json

local function rest(opts)
  local o = { base_url = "https://localhost:" .. E.https_port .. "/rest/", token = E.token,
    rate = false, retry = { attempts = 1 }, timeout = 10, ca_file = E.ca_file }
  for k, v in pairs(opts or {}) do o[k] = v end
  return planapi.planfix_rest(o)
end

local function summary(res, err)
  local out = {}
  if res then out.status, out.body = res.status, res.body end
  if err then
    out.kind, out.message, out.request_sent, out.retryable = err.kind, tostring(err), err.request_sent, err.retryable
  end
  return out
end

local function fetch(client, req)
  local ok, res, err = pcall(client.transport, req)
  if not ok then return { raised = tostring(res), kind = type(res) == "table" and res.kind or nil } end
  return summary(res, err)
end

local cases = {}

function cases.basic()
  local c = rest()
  local res, err = c.transport(c.core:prepare { method = "GET", path = "task/1", query = { fields = "id,name" } })
  local upper = false
  for k in pairs(res and res.headers or {}) do if k:find "%u" then upper = true end end
  return { kind = c.transport_kind, phase = ngx.get_phase(), cosockets = Ngx.cosockets(),
    clock_is_ngx = c.clock == Ngx.now, status = res and res.status, error = err and tostring(err),
    content_type = res and res.headers["content-type"], upper = upper, body = res and res.body }
end

function cases.keepalive()
  local c = rest()
  local a = assert(c:call("get-task-by-id", { id = 1, fields = "id" }))
  local b = assert(c:call("get-task-by-id", { id = 2, fields = "id" }))
  return { a = a.task.id, b = b.task.id }
end

function cases.chunked()
  local c = planapi.core.client { base_url = "http://127.0.0.1:" .. E.test_port .. "/", allow_http = true }
  local t = Ngx.new(c)
  local res, err = t(c:prepare { method = "GET", path = "t/chunk-source" })
  return { status = res and res.status, body = res and res.body, te = res and res.headers["transfer-encoding"],
    error = err and tostring(err) }
end

function cases.tls_wrong_host()
  local c = rest { base_url = "https://localhost:" .. E.wrong_host_port .. "/rest/" }
  return fetch(c, c.core:prepare { method = "GET", path = "task/1" })
end

function cases.tls_untrusted()
  local c = rest { base_url = "https://localhost:" .. E.untrusted_port .. "/rest/" }
  return fetch(c, c.core:prepare { method = "GET", path = "task/1" })
end

function cases.tls_ip()
  local c = rest { base_url = "https://127.0.0.1:" .. E.https_port .. "/rest/" }
  return fetch(c, c.core:prepare { method = "GET", path = "task/1" })
end

function cases.refused()
  local c = rest { base_url = "https://localhost:" .. E.closed_port .. "/rest/" }
  return fetch(c, c.core:prepare { method = "GET", path = "task/1" })
end

local function timed(f)
  ngx.update_time()
  local t0 = ngx.now()
  local out = f()
  ngx.update_time()
  out.elapsed = ngx.now() - t0
  return out
end

function cases.timeout()
  local c = rest { timeout = 0.5 }
  return timed(function() return fetch(c, c.core:prepare { method = "GET", path = "task/1" }) end)
end

function cases.reset()
  local c = rest()
  return fetch(c, c.core:prepare { method = "GET", path = "task/1" })
end

function cases.oversize()
  local c = rest { max_body = 50000 }
  return fetch(c, c.core:prepare { method = "GET", path = "task/1" })
end

function cases.truncate()
  local c = rest()
  return fetch(c, c.core:prepare { method = "GET", path = "task/1" })
end

function cases.http_policy()
  local c = rest()
  local plain = fetch(c, { method = "GET", url = "http://127.0.0.1:" .. E.http_port .. "/rest/ping" })
  local allowed = rest { allow_http = true, base_url = "http://127.0.0.1:" .. E.http_port .. "/rest/" }
  local loop = fetch(allowed, allowed.core:prepare { method = "GET", path = "ping" })
  local remote = fetch(allowed, { method = "GET", url = "http://example.com/" })
  return { plain = plain, loopback = loop, remote = remote }
end

function cases.redirect()
  local c = rest()
  local r, err = c:call("get-file-id-download", { id = 1 })
  local bytes, derr = c:download(1)
  return { location = r and r.location, error = err and tostring(err), size = bytes and #bytes,
    derror = derr and tostring(derr) }
end

function cases.forced_curl()
  local c = rest { transport = "curl" }
  local r, err = c:call("get-task-by-id", { id = 3, fields = "id" })
  return { kind = c.transport_kind, id = r and r.task.id, error = err and tostring(err) }
end

local function wait_for(key)
  for _ = 1, 100 do
    local v = ngx.shared.gwtest:get(key)
    if v then return json.decode(v) end
    ngx.sleep(0.05)
  end
  return { missing = key }
end

function cases.timer()
  ngx.shared.gwtest:delete "timer"
  assert(ngx.timer.at(0, function()
    local c = rest()
    local r, err = c:call("get-task-by-id", { id = 4, fields = "id" })
    ngx.shared.gwtest:set("timer", json.encode { phase = ngx.get_phase(), cosockets = Ngx.cosockets(),
      id = r and r.task.id, error = err and tostring(err) })
  end))
  return wait_for "timer"
end

function cases.log_result()
  return wait_for "log"
end

local name = ngx.var.uri:match "^/t/([%w_]+)$"
local case = name and cases[name]
if not case then ngx.status = 404 ngx.say("{}") return end
local out = case()
ngx.header["Content-Type"] = "application/json"
ngx.say(json.encode(out))
]==]

-- log_by_lua: no cosockets there, so the automatic transport takes libcurl
-- (which blocks, but works), and a forced "ngx" is refused.
local GWTEST_LOG = [==[
local planapi = require "planapi"
local E = ...
local o = { base_url = "https://localhost:" .. E.https_port .. "/rest/", token = E.token,
  rate = false, retry = { attempts = 1 }, timeout = 10, ca_file = E.ca_file }
local c = planapi.planfix_rest(o)
local r, err = c:call("get-task-by-id", { id = 5, fields = "id" })
o.transport = "ngx"
local forced = planapi.planfix_rest(o)
local ok, ferr = pcall(forced.call, forced, "get-task-by-id", { id = 5 })
ngx.shared.gwtest:set("log", planapi.json.encode { phase = ngx.get_phase(), kind = c.transport_kind,
  id = r and r.task.id, error = err and tostring(err), forced_ok = ok, forced_error = tostring(ferr) })
]==]

local function lua_literal(t)
  local parts = {}
  for k, v in pairs(t) do
    parts[#parts + 1] = ("%s = %s"):format(k, type(v) == "string" and ("%q"):format(v) or tostring(v))
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

-- The gateway (spec/helpers/gateway.lua) with this spec's test server
-- (GWTEST on gw.test_port) included; start(gw) runs it.
local function new_gateway(opts)
  opts.webhook_secret = SECRET
  opts.include = function(gw)
    local env = sandbox.env()
    gw.test_port = free_port()
    local values = {
      https_port = env.https_port, http_port = env.http_port, wrong_host_port = env.wrong_host_port,
      untrusted_port = env.untrusted_port, closed_port = free_port(), test_port = gw.test_port,
      token = TOKEN, ca_file = env.ca_file,
    }
    local prelude = "local E = " .. lua_literal(values) .. "\n"
    write_file(gw.dir .. "/gwtest.lua", (GWTEST:gsub("local E = %.%.%.\n", function() return prelude end)))
    write_file(gw.dir .. "/gwtest_log.lua", (GWTEST_LOG:gsub("local E = %.%.%.\n", function() return prelude end)))
    write_file(gw.dir .. "/test.conf", ([[
lua_shared_dict gwtest 1m;
server {
    listen 127.0.0.1:%d;
    location = /t/chunk-source {
        content_by_lua_block {
            for _, part in ipairs { "alpha-", "beta-", "gamma" } do ngx.print(part) ngx.flush(true) end
        }
    }
    location = /t/log-phase {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_file %s/gwtest_log.lua;
    }
    location /t/ { content_by_lua_file %s/gwtest.lua; }
}
    ]]):format(gw.test_port, gw.dir, gw.dir))
    return gw.dir .. "/test.conf"
  end
  return gateway.new(opts)
end

local function delivery(event, secret)
  return { method = "POST", path = "/planado/webhook", body = planapi.json.encode(event),
    headers = { ["Content-Type"] = "application/json", ["X-Planado-Secret"] = secret or SECRET } }
end

local describe_gateway = socket_ok and describe or pending

describe_gateway("OpenResty gateway with one worker", function()
  local gw

  setup(function()
    gw = new_gateway { workers = 1 }
    start(gw)
  end)

  teardown(function()
    stop_gateway(gw)
  end)

  before_each(function()
    sandbox.reset()
  end)

  it("runs the transport on cosockets in the content phase, TLS verified, kept alive", function()
    local r = http(gw.test_port, "GET", "/t/basic")
    assert.equal(200, r.status, r.body)
    local out = r.json
    assert.equal("auto", out.kind)
    assert.equal("content", out.phase)
    assert.is_true(out.cosockets)
    assert.is_true(out.clock_is_ngx)
    assert.equal(200, out.status, out.error)
    assert.equal("application/json; charset=utf-8", out.content_type)
    assert.is_false(out.upper)
    assert.equal(1, planapi.json.decode(out.body).task.id)
    local entry = log_of("rest")[1]
    assert.equal("/rest/task/1?fields=id%2Cname", entry.uri)
    assert.equal("Bearer " .. TOKEN, header_of(entry, "authorization"))
    assert.truthy(header_of(entry, "user-agent"):find "lua%-nginx%-module")

    sandbox.clear_log()
    r = http(gw.test_port, "GET", "/t/keepalive")
    assert.same({ a = 1, b = 2 }, r.json)
    local two = log_of "rest"
    assert.equal(2, #two)
    assert.equal(two[1].connection, two[2].connection) -- one pooled connection
  end)

  it("decodes a chunked answer from nginx itself", function()
    local out = http(gw.test_port, "GET", "/t/chunked").json
    assert.equal(200, out.status, out.error)
    assert.equal("alpha-beta-gamma", out.body)
    assert.equal("chunked", out.te)
  end)

  it("refuses an untrusted certificate, a wrong host name and an IP literal as tls errors", function()
    for _, case in ipairs { "tls_wrong_host", "tls_untrusted", "tls_ip" } do
      local out = http(gw.test_port, "GET", "/t/" .. case).json
      assert.equal("tls", out.kind, case .. ": " .. tostring(out.message))
      assert.is_false(out.request_sent, case)
      assert.is_false(out.retryable, case)
      assert.falsy(contains(out.message, TOKEN), case)
    end
    assert.truthy(contains(http(gw.test_port, "GET", "/t/tls_ip").json.message, "use a host name"))
    assert.equal(0, #log_of "rest") -- nothing reached the API
  end)

  it("reports refused, timed out, reset, oversized and truncated exchanges with the C transport's kinds", function()
    local out = http(gw.test_port, "GET", "/t/refused").json
    assert.equal("transport", out.kind)
    assert.is_false(out.request_sent)
    assert.is_true(out.retryable)

    sandbox.fault { mode = "slow", delay = 2, path = "/task/1" }
    out = http(gw.test_port, "GET", "/t/timeout").json
    assert.equal("timeout", out.kind, out.message)
    assert.is_true(out.request_sent)
    assert.is_true(out.elapsed < 1.5, "timed out after " .. out.elapsed .. " s")

    sandbox.fault { mode = "reset", path = "/task/1" }
    out = http(gw.test_port, "GET", "/t/reset").json
    assert.equal("transport", out.kind, out.message)
    assert.is_true(out.retryable)

    sandbox.fault { mode = "oversize", size = 100000, path = "/task/1" }
    out = http(gw.test_port, "GET", "/t/oversize").json
    assert.equal("transport", out.kind)
    assert.truthy(contains(out.message, "larger than max_body (50000 bytes)"), out.message)
    assert.is_nil(out.body)

    sandbox.fault { mode = "truncate", path = "/task/1" }
    out = http(gw.test_port, "GET", "/t/truncate").json
    assert.equal("transport", out.kind)
    assert.truthy(contains(out.message, "bytes remaining"), out.message)
    for _, e in ipairs(log_of "rest") do assert.equal("Bearer " .. TOKEN, header_of(e, "authorization")) end
  end)

  it("holds the URL policy and returns a redirect for the client to decide", function()
    local out = http(gw.test_port, "GET", "/t/http_policy").json
    assert.equal("config", out.plain.kind)
    assert.truthy(contains(out.plain.raised, "allow_http"))
    assert.equal(200, out.loopback.status)
    assert.equal("config", out.remote.kind)
    sandbox.clear_log()
    out = http(gw.test_port, "GET", "/t/redirect").json
    assert.truthy(contains(out.location, "/files-download/"), out.error)
    assert.equal(32, out.size, out.derror)
    local fetches = log_of "rest"
    assert.equal(2, #fetches) -- call and download; the presigned URL itself is outside /rest
    for _, e in ipairs(fetches) do assert.equal("/file/1/download", e.path) end
  end)

  it("takes libcurl where nginx has no cosockets, cosockets in timers, and libcurl when told", function()
    local r = http(gw.test_port, "GET", "/t/log-phase")
    assert.equal(200, r.status)
    local out = http(gw.test_port, "GET", "/t/log_result").json
    assert.equal("log", out.phase)
    assert.equal("auto", out.kind)
    assert.equal(5, out.id, out.error)
    assert.is_false(out.forced_ok)
    assert.truthy(contains(out.forced_error, "log phase"))

    out = http(gw.test_port, "GET", "/t/timer").json
    assert.equal("timer", out.phase)
    assert.is_true(out.cosockets)
    assert.equal(4, out.id, out.error)

    out = http(gw.test_port, "GET", "/t/forced_curl").json
    assert.equal("curl", out.kind)
    assert.equal(3, out.id, out.error)

    local agents = {}
    for _, e in ipairs(log_of "rest") do agents[e.path] = header_of(e, "user-agent") end
    assert.truthy(agents["/task/5"]:find "libcurl", agents["/task/5"])
    assert.truthy(agents["/task/4"]:find "lua%-nginx%-module", agents["/task/4"])
    assert.truthy(agents["/task/3"]:find "libcurl", agents["/task/3"])
  end)

  it("turns a Planfix task into one Planado job, and a repeat finds that job", function()
    local first = http(gw.port, "POST", "/tasks/1/to-planado")
    assert.equal(201, first.status, first.body)
    assert.is_true(first.json.created)
    assert.equal("planfix-1", first.json.external_id)
    local second = http(gw.port, "POST", "/tasks/1/to-planado")
    assert.equal(200, second.status, second.body)
    assert.is_false(second.json.created)
    assert.equal(first.json.job_uuid, second.json.job_uuid)
    local rest_log, planado_log = log_of "rest", log_of "planado"

    local pd = sandbox.planado()
    local job = assert(pd.jobs:get "planfix-1")
    assert.equal(first.json.job_uuid, job.uuid)
    assert.truthy(job.description:find("^Prepare quarterly report"))
    local jobs = assert(pd:all("jobs"))
    local same = 0
    for _, j in ipairs(jobs) do if j.external_id == "planfix-1" then same = same + 1 end end
    assert.equal(1, same)

    assert.equal(2, #rest_log)
    for _, e in ipairs(rest_log) do
      assert.equal("GET", e.method)
      assert.equal("/task/1", e.path)
      assert.equal("Bearer " .. TOKEN, header_of(e, "authorization"))
      assert.truthy(contains(e.query.fields, "name"))
    end
    local calls = {}
    for _, e in ipairs(planado_log) do
      calls[#calls + 1] = e.method .. " " .. e.path .. " " .. e.status
      assert.equal("Bearer " .. sandbox.PLANADO_KEY, header_of(e, "authorization"))
    end
    assert.same({ "POST /jobs 201", "POST /jobs 422", "GET /jobs/planfix-1 200" }, calls)

    local missing = http(gw.port, "POST", "/tasks/999/to-planado")
    assert.equal(404, missing.status)
    assert.equal("api", missing.json.kind)
    assert.falsy(contains(missing.body, TOKEN))
    assert.equal(405, http(gw.port, "GET", "/tasks/1/to-planado").status)
  end)

  it("answers webhook deliveries at once: fresh, duplicate, stale, and a wrong secret refused", function()
    local uuid = "00000001-0000-4000-8000-0000000000aa"
    local event = { event_uuid = "evt-1", event_type = "job_updated", job = { uuid = uuid, version = 3 } }
    local r = http_many(gw.port, { delivery(event) })[1]
    assert.equal(200, r.status, r.body)
    assert.equal("new", r.json.status)
    assert.equal("duplicate", http_many(gw.port, { delivery(event) })[1].json.status)
    local older = { event_uuid = "evt-0", event_type = "job_updated", job = { uuid = uuid, version = 2 } }
    assert.equal("stale", http_many(gw.port, { delivery(older) })[1].json.status)
    local wrong = http_many(gw.port, { delivery({ event_uuid = "evt-2", event_type = "job_updated",
      job = { uuid = uuid, version = 4 } }, "not-the-secret") })[1]
    assert.equal(401, wrong.status)
    assert.falsy(contains(wrong.body, SECRET))
    assert.equal(400, http_many(gw.port, { { method = "POST", path = "/planado/webhook", body = "{}",
      headers = { ["X-Planado-Secret"] = SECRET } } })[1].status)
  end)

  it("takes the sandbox's own deliveries, and a finished job leaves a comment on its Planfix task", function()
    local url = ("http://127.0.0.1:%d/planado/webhook"):format(gw.port)
    sandbox.config { planado = { webhook = { delays = { 0.2 }, timeout = 5, max_attempts = 2 } } }
    local good = sandbox.control("POST", "planado/webhooks", { url = url, secret = SECRET }).webhook
    local bad = sandbox.control("POST", "planado/webhooks", { url = url, secret = "not-the-secret",
      event_types = { "job_created" } }).webhook
    local made = http(gw.port, "POST", "/tasks/3/to-planado")
    assert.equal(201, made.status, made.body)
    sandbox.control("POST", "planado/jobs/" .. made.json.job_uuid .. "/finish",
      { resolution = { name = "Done", successful = true }, comment = "pump replaced" })
    assert.equal(0, sandbox.control("POST", "planado/webhooks/flush", { timeout = 20 }).pending)

    local deliveries = sandbox.control("GET", "planado/deliveries").deliveries
    local by_hook = {}
    for _, d in ipairs(deliveries) do
      by_hook[d.webhook_uuid] = by_hook[d.webhook_uuid] or {}
      table.insert(by_hook[d.webhook_uuid], d.event_type .. " " .. tostring(d.status))
    end
    assert.same({ "job_created 200", "job_finished 200" }, by_hook[good.uuid])
    assert.same({ "job_created 401", "job_created 401" }, by_hook[bad.uuid])

    -- The comment is written in a timer after the answer: wait for it.
    local comment
    for _ = 1, 100 do
      comment = log_of("rest", "^/rest/task/3/comments")[1]
      if comment then break end
      socket.sleep(0.05)
    end
    assert.truthy(comment, "no comment was posted on task 3")
    assert.equal("POST", comment.method)
    assert.equal("Planado job finished: Done (pump replaced)", comment.json.description)
    assert.equal("Bearer " .. TOKEN, header_of(comment, "authorization"))
  end)

  it("keeps serving while Planfix holds one request open for 3 s", function()
    socket.sleep(1.1) -- let the Planfix pacing of earlier calls run out: the slow call leaves at once
    sandbox.fault { mode = "slow", delay = 3, path = "/task/7" }
    local event = { event_uuid = "evt-slow", event_type = "job_updated",
      job = { uuid = "00000001-0000-4000-8000-0000000000bb", version = 1 } }
    local webhook = delivery(event)
    webhook.at = 0.3
    local r = http_many(gw.port, {
      { method = "POST", path = "/tasks/7/to-planado" },
      { method = "GET", path = "/health", at = 0.3 },
      webhook,
      { method = "POST", path = "/tasks/2/to-planado", at = 0.3 },
      { method = "GET", path = "/health", at = 1.0 },
    })
    local slow = r[1]
    assert.equal(201, slow.status, slow.body)
    assert.is_true(slow.elapsed >= 2.8, "the slow request took " .. slow.elapsed .. " s")
    local worker = slow.headers["x-gateway-worker"]
    for i = 2, #r do
      assert.equal(worker, r[i].headers["x-gateway-worker"]) -- one worker served them all
      assert.is_true(r[i].status == 200 or r[i].status == 201, r[i].body)
      assert.is_true(r[i].finish < slow.finish - 1,
        ("request %d finished at %.2f s, the slow one at %.2f s"):format(i, r[i].finish, slow.finish))
    end
    assert.is_true(r[2].elapsed < 0.5, "health took " .. r[2].elapsed)
    assert.is_true(r[3].elapsed < 0.5, "the webhook took " .. r[3].elapsed)
    assert.is_true(r[4].elapsed < 2, "another task took " .. r[4].elapsed) -- paced 1/s behind the slow one
    assert.is_true(r[5].elapsed < 0.5, "health took " .. r[5].elapsed)
  end)
end)

describe_gateway("OpenResty gateway with four workers on one account", function()
  local gw

  after_each(function()
    stop_gateway(gw)
    gw = nil
  end)

  before_each(function()
    sandbox.reset()
    sandbox.config { rate = { enabled = true, interval = 1.0 },
      planado = { rate = { enabled = true, per_minute = 60, burst = 5 } } }
  end)

  it("shares the account's rate through the shm limiter: zero rate violations #realtime", function()
    gw = new_gateway { workers = 4 }
    start(gw)
    local r, workers = rush(gw)
    assert.is_true(workers >= 2, "the requests reached " .. workers .. " worker(s)")
    for i, it in ipairs(r) do
      assert.is_true(it.status == 201 or it.status == 200, ("request %d: %s %s"):format(i, it.status, it.body))
    end
    local stats = sandbox.stats()
    assert.equal(0, stats.rate_violations)
    assert.equal(0, stats.planado_rate_violations)
    local times = {}
    for _, e in ipairs(log_of "rest") do times[#times + 1] = e.time end
    assert.equal(8, #times)
    table.sort(times)
    for i = 2, #times do
      assert.is_true(times[i] - times[i - 1] >= 0.9, ("Planfix requests %.3f s apart"):format(times[i] - times[i - 1]))
    end
  end)

  -- Issue 13 §1: every new connection held 150 ms (the sandbox's latency
  -- mode), 20 requests at once on 4 workers: the workers open connections
  -- for some requests and reuse kept-alive ones for others, and the server
  -- still sees every request at least an interval after the one before.
  -- The gateway's nginx runs the same LuaJIT whichever interpreter runs
  -- busted, so this 25 s run is made once, under Lua 5.4 (make test).
  local it_once = portable.luajit and pending or it
  it_once("keeps the spacing when a connection takes 150 ms to open: no violation, 95% of the limit #realtime", function()
    sandbox.config { latency = { connect = 0.15 } }
    gw = new_gateway { workers = 4 }
    start(gw)
    local list = {}
    for i = 1, 20 do list[i] = { method = "POST", path = ("/tasks/%d/to-planado"):format((i - 1) % 7 + 1) } end
    local r = http_many(gw.port, list)
    for i, it in ipairs(r) do
      assert.is_true(it.status == 201 or it.status == 200, ("request %d: %s %s"):format(i, it.status, it.body))
    end
    local stats = sandbox.stats()
    assert.is_true(stats.latency_delayed_connections >= 4, stats.latency_delayed_connections .. " connections held")
    assert.equal(0, stats.rate_violations, ("smallest gap %.3f s"):format(stats.rate_min_gap or 0))
    local times = {}
    for _, e in ipairs(log_of "rest") do times[#times + 1] = e.time end
    assert.equal(20, #times)
    table.sort(times)
    local util = (#times - 1) / (times[#times] - times[1])
    assert.is_true(util >= 0.95, ("%.1f%% of the limit"):format(util * 100))
  end)

  it("(control) with a limiter per worker the same rush breaks the rate", function()
    gw = new_gateway { workers = 4, limiter = "local" }
    start(gw)
    local _, workers = rush(gw)
    if workers < 2 then return end -- all on one worker: nothing to compare
    assert.is_true(sandbox.stats().rate_violations > 0)
  end)
end)
