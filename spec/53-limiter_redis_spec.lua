-- The Redis scope of the rate limiter: RESP2 on a fake socket, the C TCP
-- client, and the GCRA script against real redis-server processes that this
-- spec starts on free loopback ports (one plain, one with requirepass) and
-- stops at the end.
local core = require "planapi.core"
local resp = require "planapi.limiter.redis_protocol"
local limiter_redis = require "planapi.limiter.redis"
local portable = require "portable"

local INTERVAL = 1 -- rate 1 per second: waits of whole seconds, far above the test's own latency
local DAY = 20261122
local PASSWORD = "s3cret-pass-42"
require("journal").secret(PASSWORD) -- in redis:// URLs: the secret scan looks for it
require("journal").secret("user-pass-77")

-- ------------------------------------------------------------ helpers

local function fake_socket(bytes, failure)
  local pos = 1
  local sock = { sent = {} }
  function sock.send(_, data)
    if failure then return nil, failure end
    sock.sent[#sock.sent + 1] = data
    return #data
  end
  function sock.receive(_, pattern)
    if pattern == "*l" then
      local nl = bytes:find("\n", pos, true)
      if not nl then return nil, failure or "closed" end
      local line = bytes:sub(pos, nl - 1):gsub("\r$", "")
      pos = nl + 1
      return line
    end
    if pos + pattern - 1 > #bytes then return nil, failure or "closed" end
    local data = bytes:sub(pos, pos + pattern - 1)
    pos = pos + pattern
    return data
  end
  return sock
end

local function read(bytes)
  return resp.read(fake_socket(bytes))
end

local redis_server = require "redis_server"
local closed_port = redis_server.free_port

-- One command on a new connection: the reply | nil, err.
local redis = redis_server.command

local key_seq = 0
local function new_key()
  key_seq = key_seq + 1
  return ("planapi:spec53:%d:%d"):format(os.time(), key_seq)
end

local function assert_unavailable(value, err)
  assert.is_nil(value)
  assert.is_true(core.is_error(err), "expected a planapi error, got " .. tostring(err))
  assert.equal("transport", err.kind)
  assert.is_false(err.retryable)
  assert.matches("^rate limiter unavailable", err.message)
  return err
end

-- A wait of about `expected` seconds (a little less: time passed since the
-- slot was computed); a failed call shows its error.
local function near(expected, actual, err)
  assert(actual ~= nil, "the limiter failed: " .. tostring(err))
  assert.is_true(actual <= expected + 1e-6 and actual >= expected - 0.2,
    ("expected about %g, got %g"):format(expected, actual))
end

local function no_wait(actual, err)
  assert(actual ~= nil, "the limiter failed: " .. tostring(err))
  assert.equal(0, actual)
end

-- ------------------------------------------------------------ RESP2

describe("resp", function()
  it("encodes a command as an array of bulk strings, numbers without a fraction", function()
    assert.equal("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n42\r\n", resp.encode { "SET", "k", 42 })
    assert.equal("*4\r\n$1\r\na\r\n$1\r\n3\r\n$3\r\n1.5\r\n$0\r\n\r\n", resp.encode { "a", 3.0, 1.5, "" })
    assert.equal("*1\r\n$4\r\na\r\nb\r\n", resp.encode { "a\r\nb" }) -- binary-safe
    assert.equal("*2\r\n$8\r\n20261122\r\n$16\r\n1234567890123456\r\n", resp.encode { 20261122, 1234567890123456 })
    local ok, err = pcall(resp.encode, { "GET", {} })
    assert.is_false(ok)
    assert.equal("config", err.kind)
    ok, err = pcall(resp.encode, { "SET", 0 / 0 })
    assert.is_false(ok)
    assert.equal("config", err.kind)
  end)

  it("reads simple strings, integers and bulk strings", function()
    assert.equal("OK", read "+OK\r\n")
    assert.equal(42, read ":42\r\n")
    assert.equal(-7, read ":-7\r\n")
    assert.equal("integer", portable.number_type(read ":1\r\n"))
    assert.equal("hello", read "$5\r\nhello\r\n")
    assert.equal("", read "$0\r\n\r\n")
    assert.equal("a\r\nb", read "$4\r\na\r\nb\r\n")
  end)

  it("reads a null bulk and a null array as planapi.null", function()
    assert.equal(core.null, read "$-1\r\n")
    assert.equal(core.null, read "*-1\r\n")
  end)

  it("reads arrays, empty and nested, with nulls in place", function()
    assert.same({}, read "*0\r\n")
    assert.same({ "a", 1, core.null }, read "*3\r\n+a\r\n:1\r\n$-1\r\n")
    assert.same({ { 1, { "x", core.null } }, "y" }, read "*2\r\n*2\r\n:1\r\n*2\r\n$1\r\nx\r\n*-1\r\n$1\r\ny\r\n")
  end)

  it("returns an error reply as nil and an api error with the Redis message and code", function()
    local v, err = read "-NOSCRIPT No matching script. Please use EVAL.\r\n"
    assert.is_nil(v)
    assert.is_true(core.is_error(err))
    assert.equal("api", err.kind)
    assert.equal("NOSCRIPT", err.code)
    assert.equal("NOSCRIPT No matching script. Please use EVAL.", err.message)
  end)

  it("keeps an error inside an array in its place", function()
    local list = assert(read "*2\r\n+OK\r\n-WRONGTYPE Operation against a key\r\n")
    assert.equal("OK", list[1])
    assert.equal("api", list[2].kind)
    assert.equal("WRONGTYPE", list[2].code)
  end)

  it("refuses what is not RESP2 as a decode error", function()
    for _, bytes in ipairs { "?x\r\n", "$abc\r\n", "$-2\r\n", ":1.5\r\n", "*x\r\n", "$3\r\nabcde\r\n",
      "%1\r\n", string.rep("*1\r\n", 40) .. ":1\r\n" } do
      local v, err = read(bytes)
      assert.is_nil(v, bytes)
      assert.equal("decode", err.kind, bytes)
    end
  end)

  it("reports a connection that ends mid-reply, and a socket's string errors, as planapi errors", function()
    local v, err = read "$10\r\nabc"
    assert.is_nil(v)
    assert.equal("transport", err.kind)
    assert.matches("closed", err.message)
    v, err = read "*2\r\n:1\r\n"
    assert.is_nil(v)
    assert.equal("transport", err.kind)
    v, err = resp.read(fake_socket("", "timeout"))
    assert.is_nil(v)
    assert.equal("timeout", err.kind)
  end)

  it("call sends the encoded command and reads one reply", function()
    local sock = fake_socket ":3\r\n"
    assert.equal(3, resp.call(sock, { "INCR", "n" }))
    assert.same({ "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n" }, sock.sent)
    local v, err = resp.call(fake_socket("", "broken pipe"), { "PING" })
    assert.is_nil(v)
    assert.equal("transport", err.kind)
    assert.matches("broken pipe", err.message)
  end)
end)

-- ------------------------------------------------------------ against redis-server

describe("with redis-server", function()
  local server, secured

  setup(function()
    assert(portable.execute "command -v redis-server >/dev/null 2>&1", "redis-server is missing: run tools/ensure-deps as root")
    server = redis_server.start()
    secured = redis_server.start { password = PASSWORD }
  end)

  teardown(function()
    redis_server.stop(server)
    redis_server.stop(secured)
  end)

  local function new_limiter(opts)
    opts = opts or {}
    local o = { url = ("redis://127.0.0.1:%d/0"):format(server.port), key = new_key(), rate = 1, per = INTERVAL }
    for k, v in pairs(opts) do o[k] = v end
    return limiter_redis.new(o)
  end

  describe("core.tcp_connect", function()
    it("talks to redis: PING answers +PONG, receive(n) reads exact bytes", function()
      local sock = assert(core.tcp_connect("127.0.0.1", server.port, 1))
      assert.equal(6, sock:send "PING\r\n")
      assert.equal("+PONG", sock:receive "*l")
      assert.equal(24, sock:send "ECHO hello\r\nECHO world\r\n") -- two replies in one read
      assert.equal("$5", sock:receive "*l")
      assert.equal("hello\r\n", sock:receive(7))
      assert.equal("$5\r\nworld", sock:receive(9))
      assert.equal("", sock:receive "*l")
      assert.equal("", sock:receive(0))
      assert.equal(1, sock:close())
      assert.equal(1, sock:close()) -- idempotent
      local v, err = sock:receive "*l"
      assert.is_nil(v)
      assert.equal("transport", err.kind)
    end)

    it("reads a large reply through its buffer", function()
      local big = string.rep("0123456789abcdef", 40000) -- 640 KB
      local key = new_key()
      assert.equal("OK", redis(server.port, { "SET", key, big }))
      assert.equal(big, redis(server.port, { "GET", key }))
      redis(server.port, { "DEL", key })
    end)

    it("gives a transport error at once for a closed port", function()
      local t0 = core.monotime()
      local sock, err = core.tcp_connect("127.0.0.1", closed_port(), 2)
      assert.is_nil(sock)
      assert.equal("transport", err.kind)
      assert.matches("refused", err.message)
      assert.is_true(core.monotime() - t0 < 1)
      sock, err = core.tcp_connect("no-such-host.invalid", 6379, 2)
      assert.is_nil(sock)
      assert.equal("transport", err.kind)
    end)

    it("times a receive out with a timeout error, and the socket still works after", function()
      local sock = assert(core.tcp_connect("127.0.0.1", server.port, 1))
      assert.equal(1, sock:settimeout(0.1))
      local t0 = core.monotime()
      local v, err = sock:receive "*l"
      assert.is_nil(v)
      assert.equal("timeout", err.kind)
      assert.is_true(core.monotime() - t0 < 0.5)
      sock:settimeout(1)
      sock:send "PING\r\n"
      assert.equal("+PONG", sock:receive "*l")
      sock:close()
    end)

    it("reports a peer that closed the connection", function()
      local sock = assert(core.tcp_connect("127.0.0.1", server.port, 1))
      sock:send "QUIT\r\n"
      assert.equal("+OK", sock:receive "*l")
      local v, err = sock:receive "*l"
      assert.is_nil(v)
      assert.equal("transport", err.kind)
      assert.matches("closed", err.message)
      sock:close()
    end)

    it("raises on argument mistakes", function()
      assert.has_error(function() core.tcp_connect("127.0.0.1", 0, 1) end)
      local sock = assert(core.tcp_connect("127.0.0.1", server.port, 1))
      assert.has_error(function() sock:receive "*x" end)
      assert.has_error(function() sock:receive(-1) end)
      assert.has_error(function() sock:receive(1.5) end)
      sock:close()
    end)
  end)

  describe("limiter_redis", function()
    it("has the local limiter's methods and kind 'redis'", function()
      local lim = new_limiter()
      assert.equal("redis", lim.kind)
      for _, m in ipairs { "reserve", "settle", "release", "count", "used", "info", "close" } do
        assert.is_function(lim[m], m)
      end
      lim:close()
    end)

    it("lets a burst of 3 pass at once and makes the 4th wait one interval", function()
      local lim = new_limiter { burst = 3 }
      no_wait(lim:reserve(0))
      no_wait(lim:reserve(0))
      no_wait(lim:reserve(0))
      near(INTERVAL, lim:reserve(0))
      near(2 * INTERVAL, lim:reserve(0))
      lim:close()
    end)

    it("ignores the caller's clock: the server's TIME decides", function()
      local lim = new_limiter()
      no_wait(lim:reserve(1e12))
      near(INTERVAL, lim:reserve(-5))
      lim:close()
    end)

    it("shares one key's state between limiter objects (as between processes)", function()
      local key = new_key()
      local a, b = new_limiter { key = key }, new_limiter { key = key }
      no_wait(a:reserve())
      near(INTERVAL, b:reserve())
      near(2 * INTERVAL, a:reserve())
      a:close()
      b:close()
    end)

    it("keeps different keys independent", function()
      local a, b = new_limiter(), new_limiter()
      no_wait(a:reserve())
      no_wait(b:reserve())
      near(INTERVAL, a:reserve())
      a:close()
      b:close()
    end)

    it("settle puts the next slot one interval after the answer, never earlier", function()
      local lim = new_limiter()
      assert.is_true(lim:settle())
      near(INTERVAL, lim:reserve())
      -- tat is already 2 intervals ahead; settling does not lower it
      assert.is_true(lim:settle())
      local info = assert(lim:info())
      near(2 * INTERVAL, info.tat - info.now)
      lim:close()
    end)

    it("release gives an unused slot back, but not below now", function()
      local lim = new_limiter()
      no_wait(lim:reserve())
      near(INTERVAL, lim:reserve())
      assert.is_true(lim:release())
      near(INTERVAL, lim:reserve())
      assert.is_true(lim:release())
      assert.is_true(lim:release())
      assert.is_true(lim:release())
      no_wait(lim:reserve())
      lim:close()
    end)

    it("info describes the shared state; the TAT key expires once in the past", function()
      local key = new_key()
      local lim = new_limiter { key = key, burst = 2, margin = 0.5 }
      lim:reserve()
      local info = assert(lim:info())
      assert.equal("redis", info.kind)
      assert.equal(key, info.key)
      assert.equal(("127.0.0.1:%d/0"):format(server.port), info.server)
      assert.equal(1.5, info.interval)
      assert.equal(2, info.burst)
      near(1.5, info.tat - info.now)
      local pttl = redis(server.port, { "PTTL", key .. ":tat" })
      assert.is_true(pttl > 0 and pttl <= 2500, "PTTL " .. tostring(pttl))
      lim:close()
    end)

    it("counts requests per day in a key that expires after two days", function()
      local key = new_key()
      local lim, other = new_limiter { key = key }, new_limiter { key = key }
      assert.equal(0, lim:used(DAY))
      assert.equal(1, lim:count(DAY))
      assert.equal(2, other:count(DAY))
      assert.equal(3, lim:count(DAY))
      assert.equal(3, other:used(DAY))
      assert.equal(0, lim:used(DAY + 1))
      assert.equal(1, lim:count(DAY + 1))
      local ttl = redis(server.port, { "TTL", key .. ":day:" .. DAY })
      assert.is_true(ttl > 2 * 86400 - 10 and ttl <= 2 * 86400, "TTL " .. tostring(ttl))
      assert.has_error(function() lim:count "today" end)
      assert.has_error(function() lim:used(1.5) end)
      lim:close()
      other:close()
    end)

    it("selects the url's database", function()
      local key = new_key()
      local lim = new_limiter { url = ("redis://127.0.0.1:%d/5"):format(server.port), key = key }
      assert.equal(1, lim:count(DAY))
      assert.equal(core.null, redis(server.port, { "GET", key .. ":day:" .. DAY }))
      local sock = assert(core.tcp_connect("127.0.0.1", server.port, 1))
      assert.equal("OK", resp.call(sock, { "SELECT", 5 }))
      assert.equal("1", resp.call(sock, { "GET", key .. ":day:" .. DAY }))
      sock:close()
      lim:close()
    end)

    it("sends AUTH with the url's password", function()
      local lim = new_limiter { url = ("redis://:%s@127.0.0.1:%d/0"):format(PASSWORD, secured.port) }
      no_wait(lim:reserve())
      assert.equal(1, lim:count(DAY))
      lim:close()
    end)

    it("sends AUTH user password for an ACL user", function()
      assert.equal("OK", redis(secured.port, { "ACL", "SETUSER", "planapi", "on", ">user-pass-77", "~*", "+@all" }, PASSWORD))
      local lim = new_limiter { url = ("redis://planapi:user-pass-77@127.0.0.1:%d/0"):format(secured.port) }
      no_wait(lim:reserve())
      lim:close()
    end)

    it("a wrong or missing password is a transport error that never shows the password", function()
      local secret = "wrong-secret-99"
      local lim = new_limiter { url = ("redis://:%s@127.0.0.1:%d/0"):format(secret, secured.port) }
      local err = assert_unavailable(lim:reserve())
      assert.matches("AUTH failed", err.message)
      assert.is_nil(err.message:find(secret, 1, true))
      assert.is_nil(tostring(err):find(secret, 1, true))
      assert.is_nil(tostring(err.cause):find(secret, 1, true))
      assert.is_nil(tostring(lim):find(secret, 1, true))
      for k, v in pairs(lim) do
        assert.is_nil(tostring(v):find(secret, 1, true), "field " .. tostring(k))
      end
      lim = new_limiter { url = ("redis://127.0.0.1:%d/0"):format(secured.port) }
      err = assert_unavailable(lim:reserve())
      assert.matches("NOAUTH", err.message)
    end)

    it("reconnects once when the server closed the connection", function()
      local lim = new_limiter()
      no_wait(lim:reserve())
      local first = lim.sock
      local killed = redis(server.port, { "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes" })
      assert.is_true(killed >= 1)
      near(INTERVAL, lim:reserve())
      assert.is_truthy(lim.sock)
      assert.is_true(lim.sock ~= first)
      lim:close()
    end)

    it("runs the script again with EVAL when the server forgot it (NOSCRIPT)", function()
      local lim = new_limiter()
      no_wait(lim:reserve())
      assert.equal("OK", redis(server.port, { "SCRIPT", "FLUSH" }))
      near(INTERVAL, lim:reserve())
      near(2 * INTERVAL, lim:reserve()) -- EVALSHA works again: EVAL cached it
      lim:close()
    end)

    it("gives every method a quick transport error when Redis cannot be reached", function()
      local lim = new_limiter { url = ("redis://127.0.0.1:%d/0"):format(closed_port()) }
      local t0 = core.monotime()
      assert_unavailable(lim:reserve(0))
      assert_unavailable(lim:settle(0))
      assert_unavailable(lim:release(0))
      assert_unavailable(lim:count(DAY))
      assert_unavailable(lim:used(DAY))
      local err = assert_unavailable(lim:info())
      assert.equal("transport", err.cause.kind)
      assert.matches("refused", err.message)
      assert.is_true(core.monotime() - t0 < 1)
      assert.is_true(lim:close())
    end)

    it("does not repeat a command whose reply timed out", function()
      local lim = new_limiter { timeout = 0.2 }
      no_wait(lim:reserve())
      assert.equal("OK", redis(server.port, { "CLIENT", "PAUSE", "600", "ALL" }))
      local t0 = core.monotime()
      local err = assert_unavailable(lim:reserve())
      local took = core.monotime() - t0
      assert.equal("timeout", err.cause.kind)
      assert.is_true(took >= 0.15 and took < 0.4, "took " .. took)
      redis(server.port, { "CLIENT", "UNPAUSE" })
      assert.truthy(lim:reserve()) -- a new connection
      lim:close()
    end)

    it("with a cosocket-like factory: the pool name, keepalive after each call, AUTH once", function()
      local pool, sent, pools_asked = {}, {}, {}
      local function factory(host, port, timeout, pool_name)
        pools_asked[#pools_asked + 1] = pool_name
        local entry = table.remove(pool)
        local inner, reused
        if entry then
          inner, reused = entry.sock, entry.reused + 1
        else
          local err
          inner, err = core.tcp_connect(host, port, timeout)
          if not inner then return nil, err end
          reused = 0
        end
        local s = {}
        function s.send(_, data)
          sent[#sent + 1] = data
          return inner:send(data)
        end
        function s.receive(_, pattern) return inner:receive(pattern) end
        function s.close() return inner:close() end
        function s.getreusedtimes() return reused end
        function s.setkeepalive()
          pool[#pool + 1] = { sock = inner, reused = reused }
          return 1
        end
        return s
      end
      local lim = new_limiter { url = ("redis://:%s@127.0.0.1:%d/3"):format(PASSWORD, secured.port), connect = factory }
      no_wait(lim:reserve())
      assert.is_nil(lim.sock) -- back in the pool
      assert.equal(1, lim:count(DAY))
      assert.equal(1, lim:used(DAY))
      local auths, selects = 0, 0
      for _, data in ipairs(sent) do
        if data:find("AUTH", 1, true) then auths = auths + 1 end
        if data:find("SELECT", 1, true) then selects = selects + 1 end
      end
      assert.equal(1, auths)
      assert.equal(1, selects)
      assert.equal(("planapi-redis:127.0.0.1:%d:3:"):format(secured.port), pools_asked[1])
      for _, entry in ipairs(pool) do entry.sock:close() end
    end)

    it("raises config errors for bad options, without quoting the url", function()
      local function config_error(opts, pattern)
        local ok, err = pcall(limiter_redis.new, opts)
        assert.is_false(ok)
        assert.equal("config", err.kind)
        if pattern then assert.matches(pattern, err.message) end
        assert.is_nil(err.message:find("hidden-pw", 1, true))
      end
      config_error({ url = "rediss://:hidden-pw@h:1/0", key = "k" }, "redis://")
      config_error({ url = "redis://:hidden-pw@h:99999/0", key = "k" }, "port")
      config_error({ url = "redis://:hidden-pw@h:1/x", key = "k" }, "db")
      config_error({ url = "redis://hidden-pw@h:1/0", key = "k" }, "password")
      config_error({ key = "k", rate = 0 }, "rate")
      config_error({ key = "k", burst = 0.5 }, "burst")
      config_error({ key = "k", margin = -1 }, "margin")
      config_error({ key = "k", timout = 1 }, "unknown")
      config_error({ rate = 1 }, "key")
      local lim = limiter_redis.new { url = "redis://[::1]:6390", key = "k" }
      assert.equal("[::1]:6390/0", lim.server)
      lim = limiter_redis.new { url = "redis://", key = "k" }
      assert.equal("127.0.0.1:6379/0", lim.server)
      lim = limiter_redis.new { url = "redis://:p%40ss%3Aword@host/2", key = "k" }
      assert.equal("host:6379/2", lim.server)
    end)
  end)
end)
