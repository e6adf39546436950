-- The Redis event store (lua/planapi/events/store_redis.lua) against real
-- redis-server processes this spec starts on free loopback ports: the store
-- contract (claim new / duplicate / stale, finish, retry, take, release),
-- expiry after the ttl on Redis's own clock, failures and the socket it
-- picks inside nginx; then two receiving processes (an events.receiver each,
-- spec/helpers/event_worker.lua) sharing one Redis through
-- a burst of 1,000 events delivered twice each in random order (every event
-- handled exactly once: the oracle is the log the handlers append to), and
-- the same burst with one receiver killed mid-handler and started again.
-- Inside a real nginx the store waits for Redis without holding the worker
-- (a paused Redis: the same worker answers other requests meanwhile).
local core = require "planapi.core"
local resp = require "planapi.limiter.redis_protocol"
local store_redis = require "planapi.events.store_redis"
local portable = require "portable"
local redis_server = require "redis_server"
local fake_cosockets = require "fake_cosockets"

local PASSWORD = "ev-store-pass-31"
require("journal").secret(PASSWORD)

-- The interpreter of this run, with the core it built (the workers run on it).
local LUA, CPATH = portable.lua, portable.cpath

local REPO = assert(io.popen "pwd"):read "*l" -- nginx's workers need absolute paths

local prefix_seq = 0
local function new_prefix()
  prefix_seq = prefix_seq + 1
  return ("planapi:spec47:%d:%d:"):format(os.time(), prefix_seq)
end

local redis = redis_server.command -- one command on a new connection

-- Poll until fn() is truthy, for at most `limit` seconds: fn's value, or nil.
local function eventually(fn, limit)
  local deadline = core.monotime() + limit
  repeat
    local v = fn()
    if v then return v end
    core.sleep(0.02)
  until core.monotime() > deadline
  return nil
end

local function ids_of(events)
  local out = {}
  for i, e in ipairs(events) do out[i] = e.id end
  table.sort(out)
  return out
end

describe("the Redis event store", function()
  -- A plain server, and one with requirepass.
  local servers, server, secured = {}, nil, nil
  setup(function()
    servers = { redis_server.start(), redis_server.start { password = PASSWORD } }
    server, secured = servers[1], servers[2]
  end)
  teardown(function()
    for _, s in ipairs(servers) do s.stop() end
  end)

  local function new_store(opts)
    local o = { url = server.url, key_prefix = new_prefix() }
    for k, v in pairs(opts or {}) do o[k] = v end
    return store_redis.new(o)
  end

  local function record(payload, lease, ttl)
    return { payload = payload, lease = lease or 60, ttl = ttl or 60 }
  end

  describe("the contract", function()
    it("claims an id once: new, then duplicate wherever it is claimed again", function()
      local a = new_store()
      local b = store_redis.new { url = server.url, key_prefix = a.key_prefix } -- another host, the same Redis
      assert.equal("new", a:claim("ev-1", nil, nil, record "one"))
      assert.equal("duplicate", a:claim("ev-1", nil, nil, record "one"))
      assert.equal("duplicate", b:claim("ev-1", nil, nil, record "one"))
      assert.equal("new", b:claim("ev-2", nil, nil, record "two"))
      a:close()
      b:close()
    end)

    it("orders a key's versions: an older or equal one is stale, remembered as done; the previous version", function()
      local s = new_store()
      assert.same({ "new" }, { s:claim("ev-a", "task:1", 5, record "a") })
      assert.same({ "new", 5 }, { s:claim("ev-b", "task:1", 7, record "b") })
      assert.same({ "stale", 7 }, { s:claim("ev-c", "task:1", 6, record "c") })
      assert.same({ "stale", 7 }, { s:claim("ev-d", "task:1", 7, record "d") })
      assert.same({ "duplicate", 7 }, { s:claim("ev-c", "task:1", 6, record "c") }) -- stale ids are remembered
      assert.same({ "new" }, { s:claim("ev-e", "task:2", 1, record "e") }) -- keys are independent
      assert.same({}, s:take(10, 1)) -- nothing stale is ever handed out
      s:close()
    end)

    it("keeps versions exactly, beyond LuaJIT's 14 printed digits", function()
      local s = new_store()
      local v = 1700000000123456
      assert.equal("new", s:claim("ev-1", "job:x", v, record "a"))
      assert.same({ "new", v }, { s:claim("ev-2", "job:x", v + 1, record "b") })
      assert.same({ "stale", v + 1 }, { s:claim("ev-3", "job:x", v + 1, record "c") })
      s:close()
    end)

    it("holds a claim's lease: take hands it out only after the lease, with its payload, attempts + 1", function()
      local s = new_store()
      assert.equal("new", s:claim("ev-1", nil, nil, record("raw body \0\r\n bytes", 0.3)))
      assert.same({}, s:take(10, 5)) -- leased to the claimer
      local taken = eventually(function()
        local t = assert(s:take(10, 5))
        return #t > 0 and t
      end, 3)
      assert.same({ { id = "ev-1", payload = "raw body \0\r\n bytes", attempts = 2 } }, taken)
      assert.same({}, s:take(10, 5)) -- leased again, to the taker
      s:close()
    end)

    it("never gives one expired event to two takers", function()
      local s = new_store()
      local others = {}
      for i = 1, 4 do others[i] = store_redis.new { url = server.url, key_prefix = s.key_prefix } end
      for i = 1, 50 do assert.equal("new", s:claim("ev-" .. i, nil, nil, record("p" .. i, 0.05))) end
      core.sleep(0.1)
      local seen, total = {}, 0
      for round = 1, 20 do
        for _, o in ipairs(others) do
          for _, e in ipairs(assert(o:take(3, 30))) do
            assert.is_nil(seen[e.id], e.id .. " taken twice (round " .. round .. ")")
            seen[e.id] = true
            total = total + 1
          end
        end
      end
      assert.equal(50, total)
      for _, o in ipairs(others) do o:close() end
      s:close()
    end)

    it("finish: done or failed, never taken again, the payload dropped, the id still known", function()
      local s = new_store()
      assert.equal("new", s:claim("ev-ok", nil, nil, record("body-ok", 0.05)))
      assert.equal("new", s:claim("ev-bad", nil, nil, record("body-bad", 0.05)))
      assert.is_true(s:finish("ev-ok", "done"))
      assert.is_true(s:finish("ev-bad", "failed"))
      core.sleep(0.1)
      assert.same({}, s:take(10, 1))
      assert.equal("duplicate", s:claim("ev-ok", nil, nil, record "body-ok"))
      assert.equal("duplicate", s:claim("ev-bad", nil, nil, record "body-bad"))
      assert.equal("done", redis(server.port, { "HGET", s.key_prefix .. "e:ev-ok", "state" }))
      assert.equal("failed", redis(server.port, { "HGET", s.key_prefix .. "e:ev-bad", "state" }))
      assert.equal(core.null, redis(server.port, { "HGET", s.key_prefix .. "e:ev-ok", "payload" }))
      assert.equal(0, redis(server.port, { "ZCARD", s.key_prefix .. "pending" }))
      s:close()
    end)

    it("retry: the event is taken again after the delay, not before", function()
      local s = new_store()
      assert.equal("new", s:claim("ev-1", nil, nil, record("body", 60)))
      assert.is_true(s:retry("ev-1", 0.3))
      assert.same({}, s:take(10, 5))
      local taken = eventually(function()
        local t = assert(s:take(10, 5))
        return #t > 0 and t
      end, 3)
      assert.same({ "ev-1" }, ids_of(taken))
      assert.is_true(s:finish("ev-1", "done"))
      assert.is_true(s:retry("ev-1", 0.01)) -- a finished event is not revived
      core.sleep(0.05)
      assert.same({}, s:take(10, 5))
      s:close()
    end)

    it("release forgets the claim and puts the key's version back, unless a newer event's is there", function()
      local s = new_store()
      assert.equal("new", s:claim("ev-1", "job:1", 3, record "a"))
      local status, previous = s:claim("ev-2", "job:1", 4, record "b")
      assert.same({ "new", 3 }, { status, previous })
      assert.is_true(s:release("ev-2", "job:1", previous))
      assert.same({ "new", 3 }, { s:claim("ev-2", "job:1", 4, record "b") }) -- handled again
      assert.same({}, s:take(10, 1)) -- released events are not pending either
      assert.equal("new", s:claim("ev-3", "job:1", 5, record "c"))
      assert.is_true(s:release("ev-2", "job:1", previous)) -- ev-3's version 5 stays
      assert.same({ "stale", 5 }, { s:claim("ev-4", "job:1", 4, record "d") })
      assert.is_true(s:release("ev-9", "job:9", nil)) -- an unknown id: nothing to undo
      s:close()
    end)

    it("keeps today's two-value claim(id, key, version): no record, nothing to take", function()
      local s = new_store()
      assert.same({ "new" }, { s:claim("ev-1", "job:1", 1) })
      assert.same({ "duplicate", 1 }, { s:claim("ev-1", "job:1", 1) })
      assert.same({ "stale", 1 }, { s:claim("ev-2", "job:1", 1) })
      assert.same({}, s:take(10, 1))
      assert.is_true(s:release("ev-1", "job:1", nil))
      assert.same({ "new" }, { s:claim("ev-1", "job:1", 1) })
      s:close()
    end)

    it("runs its script again with EVAL when the server forgot it (NOSCRIPT)", function()
      local s = new_store()
      assert.equal("new", s:claim("ev-1", nil, nil, record "a"))
      assert.equal("OK", redis(server.port, { "SCRIPT", "FLUSH" }))
      assert.equal("duplicate", s:claim("ev-1", nil, nil, record "a"))
      s:close()
    end)
  end)

  describe("expiry", function()
    it("forgets finished and stale ids and versions after the ttl; keeps a leased event until it is finished", function()
      local s = new_store()
      local function keys_left()
        local keys = redis(server.port, { "KEYS", s.key_prefix .. "*" })
        table.sort(keys)
        return keys
      end
      assert.equal("new", s:claim("ev-1", "job:1", 1, record("a", 60, 0.4)))
      assert.equal("new", s:claim("ev-2", "job:1", 2, record("b", 60, 0.4)))
      assert.equal("stale", s:claim("ev-3", "job:1", 1, record("c", 60, 0.4)))
      assert.is_true(s:finish("ev-1", "done"))
      for _, k in ipairs { "e:ev-1", "e:ev-3", "v:job:1" } do
        local ttl = redis(server.port, { "PTTL", s.key_prefix .. k })
        assert.is_true(ttl > 0 and ttl <= 400, k .. " expires in " .. ttl .. " ms")
      end
      local leased = { s.key_prefix .. "e:ev-2", s.key_prefix .. "pending" }
      assert.truthy(eventually(function() return #keys_left() == 2 end, 3), "keys left after the ttl")
      assert.same(leased, keys_left()) -- the unfinished event: its receiver may be down, not gone
      assert.equal("duplicate", s:claim("ev-2", "job:1", 2, record "b"))
      assert.is_true(s:finish("ev-2", "done")) -- past its ttl: forgotten at once
      assert.same({}, keys_left())
      assert.same({ "new" }, { s:claim("ev-1", "job:1", 1, record "a") }) -- forgotten: handled again
      s:close()
    end)

    it("uses the store's ttl for a claim without one, and a later claim never shortens a key's life", function()
      local s = new_store { ttl = 120 }
      assert.equal("new", s:claim("ev-1", "job:1", 1))
      local ttl = redis(server.port, { "PTTL", s.key_prefix .. "e:ev-1" })
      assert.is_true(ttl > 110000 and ttl <= 120000, "ttl " .. ttl)
      assert.equal("new", s:claim("ev-2", "job:1", 2, record("b", 60, 1)))
      ttl = redis(server.port, { "PTTL", s.key_prefix .. "v:job:1" })
      assert.is_true(ttl > 110000, "the version's ttl was shortened to " .. ttl)
      s:close()
    end)
  end)

  describe("the time helper of the contract spec (redis_server.advance)", function()
    it("moves leases, retries, expiry times and ttls as the server's clock would", function()
      local s = new_store()
      for _, id in ipairs { "ev-1", "ev-2" } do assert.equal("new", s:claim(id, nil, nil, record(id, 10, 100))) end
      assert.is_true(s:retry("ev-2", 30))
      redis_server.advance(server.port, s.key_prefix, 11)
      assert.same({ "ev-1" }, ids_of(s:take(10, 10)))
      redis_server.advance(server.port, s.key_prefix, 20)
      assert.same({ "ev-1", "ev-2" }, ids_of(s:take(10, 10)))
      assert.is_true(s:finish("ev-1", "done"))
      assert.is_true(s:finish("ev-2", "done"))
      redis_server.advance(server.port, s.key_prefix, 68)
      assert.equal("duplicate", s:claim("ev-1", nil, nil, record "a")) -- 99 s after its claim
      redis_server.advance(server.port, s.key_prefix, 2)
      assert.same({}, redis(server.port, { "KEYS", s.key_prefix .. "*" }))
      assert.equal("new", s:claim("ev-1", nil, nil, record "a"))
      s:close()
    end)
  end)

  describe("failures and options", function()
    it("is a transport error when Redis cannot be reached, never a raise", function()
      local s = store_redis.new { url = ("redis://:%s@127.0.0.1:%d/0"):format(PASSWORD, redis_server.free_port()) }
      for _, call in ipairs {
        function() return s:claim("ev", nil, nil, record "x") end,
        function() return s:finish("ev", "done") end,
        function() return s:retry("ev", 1) end,
        function() return s:take(10, 1) end,
        function() return s:release("ev", "k", nil) end,
      } do
        local v, err = call()
        assert.is_nil(v)
        assert.equal("transport", err.kind)
        assert.matches("^event store unavailable", err.message)
        assert.is_nil(tostring(err):find(PASSWORD, 1, true))
      end
      assert.is_nil(tostring(s):find(PASSWORD, 1, true))
    end)

    it("sends AUTH with the url's password; a wrong one is an error that never shows it", function()
      local s = store_redis.new { url = ("redis://:%s@127.0.0.1:%d/2"):format(PASSWORD, secured.port),
        key_prefix = new_prefix() }
      assert.equal("new", s:claim("ev-1", nil, nil, record "a"))
      local sock = assert(core.tcp_connect("127.0.0.1", secured.port, 2))
      assert(resp.call(sock, { "AUTH", PASSWORD }))
      assert.equal(0, resp.call(sock, { "EXISTS", s.key_prefix .. "e:ev-1" }))
      assert(resp.call(sock, { "SELECT", 2 }))
      assert.equal(1, resp.call(sock, { "EXISTS", s.key_prefix .. "e:ev-1" })) -- in the url's database
      sock:close()
      s:close()
      local wrong = store_redis.new { url = ("redis://:%s-x@127.0.0.1:%d/0"):format(PASSWORD, secured.port) }
      local v, err = wrong:claim("ev-1", nil, nil, record "a")
      assert.is_nil(v)
      assert.matches("^event store unavailable", err.message)
      assert.is_nil(tostring(err):find(PASSWORD, 1, true))
    end)

    it("raises config errors for argument mistakes, without quoting the url", function()
      local function raises(fn, pattern)
        local ok, err = pcall(fn)
        assert.is_false(ok)
        assert.equal("config", err.kind)
        assert.matches(pattern, err.message)
        assert.is_nil(err.message:find("hidden-pw", 1, true))
      end
      raises(function() store_redis.new { url = "rediss://:hidden-pw@h:1/0" } end, "redis://")
      raises(function() store_redis.new { url = "redis://:hidden-pw@h:1/x" } end, "db")
      raises(function() store_redis.new { ttl = 0 } end, "ttl")
      raises(function() store_redis.new { prefix = "x" } end, "unknown")
      local s = new_store()
      raises(function() s:claim(nil) end, "id")
      raises(function() s:claim("ev", nil, nil, { lease = 1 }) end, "payload")
      raises(function() s:claim("ev", "k", "7") end, "version")
      raises(function() s:finish("ev", "ok") end, "outcome")
      raises(function() s:take(0, 1) end, "limit")
      raises(function() s:retry("ev", 0 / 0) end, "delay")
    end)
  end)

  describe("inside nginx", function()
    -- A stand-in for the nginx lua API (spec/helpers/fake_cosockets.lua).
    local fake_ngx, with_ngx = fake_cosockets.ngx, fake_cosockets.with

    it("talks over cosockets where nginx allows them, back to the pool after every operation", function()
      local n, made = fake_ngx "timer"
      local s = new_store { timeout = 2 }
      with_ngx(n, function()
        assert.equal("new", s:claim("ev-1", nil, nil, record "a"))
        assert.is_true(s:finish("ev-1", "done"))
        assert.is_nil(s.sock)
      end)
      fake_cosockets.assert_pooled(made, 2, server.port, 2000)
    end)

    it("uses a blocking socket only in phases without cosockets, and does not keep it", function()
      local n, made = fake_ngx "init_worker"
      local s = new_store()
      with_ngx(n, function()
        assert.equal("new", s:claim("ev-1", nil, nil, record "a"))
        assert.is_nil(s.sock)
      end)
      assert.equal(0, made.cosockets)
    end)
  end)

  describe("inside a real nginx (one worker, its lua module)", function()
    local ngx_dir, ngx_port, prefix

    -- One HTTP/1.0 request on a new connection: the socket, request sent.
    local function send(path)
      local sock = assert(core.tcp_connect("127.0.0.1", ngx_port, 10))
      assert(sock:send(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n"):format(path)))
      return sock
    end

    -- The body of the answer on sock (HTTP/1.0: up to the close).
    local function body_of(sock)
      local parts = {}
      while true do
        local line = sock:receive "*l"
        if line == nil then break end
        parts[#parts + 1] = line
      end
      sock:close()
      local text = table.concat(parts, "\n")
      return text:match "\n\n(.*)$" or text
    end

    local function conf()
      return ([[
user root;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
daemon on;
pid DIR/nginx.pid;
error_log DIR/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path DIR/body;
  proxy_temp_path DIR/proxy;
  fastcgi_temp_path DIR/fastcgi;
  uwsgi_temp_path DIR/uwsgi;
  scgi_temp_path DIR/scgi;
  lua_package_path "REPO/lua/?.lua;REPO/lua/?/init.lua;;";
  lua_package_cpath "REPO/build/luajit/?.so;;";
  lua_shared_dict spec47 1m;
  init_worker_by_lua_block {
    local store = require("planapi.events.store_redis").new { url = "URL", key_prefix = "PREFIX" }
    local status, err = store:claim("from-init-worker", nil, nil, { payload = "p" })
    ngx.shared.spec47:set("init_worker", status or tostring(err))
  }
  server {
    listen 127.0.0.1:PORT;
    location = /ping { content_by_lua_block { ngx.say("pong") } }
    location = /init { content_by_lua_block { ngx.say(ngx.shared.spec47:get("init_worker")) } }
    location = /claim {
      content_by_lua_block {
        local store = require("planapi.events.store_redis").new { url = "URL", key_prefix = "PREFIX", timeout = 5 }
        local status, err = store:claim(ngx.var.arg_id, nil, nil, { payload = "p" })
        ngx.say(status or tostring(err))
      }
    }
  }
}
]]):gsub("%u+", { DIR = ngx_dir, REPO = REPO, URL = server.url, PREFIX = prefix,
        PORT = tostring(ngx_port) })
    end

    setup(function()
      assert(portable.execute "test -f /usr/lib/nginx/modules/ngx_http_lua_module.so",
        "nginx's lua module is missing (Debian: libnginx-mod-http-lua; tools/ensure-deps installs it)")
      assert(portable.execute "test -f build/luajit/planapi/core.so", "run make LUA=luajit first")
      ngx_dir, ngx_port, prefix = portable.tmpdir(), redis_server.free_port(), new_prefix()
      portable.write_file(ngx_dir .. "/nginx.conf", (conf()))
      local out, code = portable.run(("nginx -p %s -c %s/nginx.conf"):format(ngx_dir, ngx_dir))
      assert(code == 0, "nginx did not start: " .. out)
      assert(eventually(function()
        local sock = core.tcp_connect("127.0.0.1", ngx_port, 0.2)
        if sock then sock:close() end
        return sock
      end, 5), "nginx does not listen")
    end)

    teardown(function()
      portable.run(("nginx -p %s -c %s/nginx.conf -s stop"):format(ngx_dir, ngx_dir))
      eventually(function() return not io.open(ngx_dir .. "/nginx.pid") end, 5)
      portable.rmtree(ngx_dir)
    end)

    it("claims over a cosocket: while Redis is paused, the same worker goes on answering", function()
      assert.equal("new", body_of(send "/claim?id=warm-up")) -- the script is loaded, the module warm
      assert.equal("OK", redis(server.port, { "CLIENT", "PAUSE", 1500 }))
      local started = core.monotime()
      local claim = send "/claim?id=ev-1"
      core.sleep(0.1) -- the claim is waiting for Redis by now
      local ping = send "/ping"
      assert.equal("pong", body_of(ping))
      local ping_at = core.monotime() - started
      assert.equal("new", body_of(claim))
      local claim_at = core.monotime() - started
      -- A blocking socket would hold the worker until Redis answers: the
      -- ping would come after the claim, not about 1.4 s before it.
      assert.is_true(claim_at > 1.2, ("the claim did not wait for the paused Redis (%.2f s)"):format(claim_at))
      assert.is_true(ping_at < claim_at - 0.7,
        ("the ping waited for the claim: %.2f s, the claim %.2f s"):format(ping_at, claim_at))
      assert.equal("duplicate", body_of(send "/claim?id=ev-1"))
    end)

    it("works in init_worker, where nginx has no cosockets (a blocking socket there)", function()
      assert.equal("new", body_of(send "/init"))
    end)
  end)

  -- ---------------------------------------------------------- two receivers

  describe("two receiving processes on one Redis", function()
    local N = 1000
    local LEASE = 3 -- seconds before a dead receiver's event is taken again (a live handler takes ms)

    -- 2N deliveries (each event twice) in random order, each to one of two
    -- entry points at random: the two lists.
    local function deliveries(seed)
      math.randomseed(seed)
      local all = {}
      for i = 1, N do
        all[#all + 1] = "ev-" .. i
        all[#all + 1] = "ev-" .. i
      end
      for i = #all, 2, -1 do
        local j = math.random(i)
        all[i], all[j] = all[j], all[i]
      end
      local lists = { {}, {} }
      for _, id in ipairs(all) do
        local l = lists[math.random(2)]
        l[#l + 1] = id
      end
      return lists
    end

    local function start_worker(run, name, list_path, crash_at)
      local cmd = ("exec %s spec/helpers/event_worker.lua %s %s %s %s %s %s %s %.6f %s %s 2>>%s"):format(
        LUA, CPATH, name, server.url, run.prefix, list_path, run.log, run.stop, run.start_at, LEASE,
        crash_at or "", run.dir .. "/stderr")
      return assert(io.popen(cmd))
    end

    local function new_run(seed)
      local dir = portable.tmpdir()
      local run = { dir = dir, prefix = new_prefix(), log = dir .. "/log", stop = dir .. "/stop",
        start_at = core.monotime() + 0.5, lists = {} }
      for i, list in ipairs(deliveries(seed)) do
        run.lists[i] = ("%s/list-%d"):format(dir, i)
        portable.write_file(run.lists[i], table.concat(list, "\n") .. "\n")
      end
      return run
    end

    -- The log's lines: { [id] = { { attempts =, by = } ... } } and the number of ids.
    local function read_log(path)
      local handled, distinct = {}, 0
      local f = io.open(path)
      if not f then return handled, 0 end
      for line in f:lines() do
        local id, attempts, by = line:match "^(%S+) (%d+) (%S+)$"
        assert(id, "a torn log line: " .. line)
        if not handled[id] then
          handled[id] = {}
          distinct = distinct + 1
        end
        table.insert(handled[id], { attempts = tonumber(attempts), by = by })
      end
      f:close()
      return handled, distinct
    end

    -- Wait until every event was handled (or 60 s), stop the workers, and
    -- return the log and the workers' counts (nil for one that died).
    local function finish_run(run, pipes)
      eventually(function()
        local _, distinct = read_log(run.log)
        return distinct >= N
      end, 60)
      portable.write_file(run.stop, "")
      local counts = {}
      for i, p in ipairs(pipes) do
        local line = p:read "l"
        p:close()
        counts[i] = line and core.json_decode(line) or false
      end
      local handled = read_log(run.log)
      local errors = portable.read_file(run.dir .. "/stderr")
      portable.rmtree(run.dir)
      return handled, counts, errors
    end

    local function assert_each_once(handled)
      local missing, twice = {}, {}
      for i = 1, N do
        local h = handled["ev-" .. i]
        if not h then missing[#missing + 1] = "ev-" .. i end
        if h and #h > 1 then twice[#twice + 1] = "ev-" .. i end
      end
      assert.same({}, missing)
      assert.same({}, twice)
    end

    it("handle a burst of 1,000 events delivered twice each in random order: each exactly once", function()
      local run = new_run(os.time())
      local pipes = { start_worker(run, "a", run.lists[1]), start_worker(run, "b", run.lists[2]) }
      local handled, counts, errors = finish_run(run, pipes)
      assert.equal("", errors)
      assert_each_once(handled)
      local total = { new = 0, duplicate = 0, taken = 0, failed = 0 }
      for _, c in ipairs(counts) do
        assert.is_table(c)
        assert.is_true(c.new > 0, "a receiver that handled nothing: no race was run")
        for k in pairs(total) do total[k] = total[k] + c[k] end
      end
      assert.same({ new = N, duplicate = N, taken = 0, failed = 0 }, total)
    end)

    it("lose nothing and handle nothing twice when a receiver dies mid-handler and is started again", function()
      local run = new_run(os.time() + 1)
      local victim = start_worker(run, "a", run.lists[1], 300) -- dies inside its 300th handler
      local other = start_worker(run, "b", run.lists[2])
      assert.is_nil(victim:read "l") -- killed: no counts
      victim:close()
      local _, before = read_log(run.log)
      assert.is_true(before < N, "the burst was over before the crash")
      -- The restarted receiver gets its deliveries again (the sender's retry):
      -- the event in the dead handler is a duplicate to it, leased, and comes
      -- back through take once the lease is over.
      run.start_at = core.monotime()
      local restarted = start_worker(run, "a2", run.lists[1])
      local handled, counts, errors = finish_run(run, { other, restarted })
      assert.equal("", errors)
      assert_each_once(handled)
      local retaken = {}
      for id, h in pairs(handled) do
        if h[1].attempts > 1 then retaken[#retaken + 1] = id end
      end
      assert.equal(1, #retaken, "the event of the dead handler, taken again after its lease")
      assert.equal(1, counts[1].taken + counts[2].taken)
    end)
  end)
end)
