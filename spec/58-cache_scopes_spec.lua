-- The definitions cache (lua/planapi/cache) in each scope, on an injected
-- clock: TTL, invalidation, a miss that loads once, a failed load that is
-- not cached, and never a secret written. The same contract runs on every
-- scope; what each store wrote is read back raw (the files, Redis's keys)
-- to look for the secret.
local core = require "planapi.core"
local cache = require "planapi.cache"
local limiter = require "planapi.limiter"
local portable = require "portable"
local redis_server = require "redis_server"
local raises_config = require("expect").raises_config

local SECRET = "tok-58-" .. core.md5_hex(tostring(os.time()) .. tostring({}))

-- A clock the spec moves.
local function fake_clock(start)
  local now = start or 1000
  return function() return now end, function(dt) now = now + dt end
end

-- The scopes, each: its scope string and how to read everything its store holds.
local scopes = {}
local seq = 0

local function namespace()
  seq = seq + 1
  return ("spec58-%d-%s"):format(seq, core.md5_hex(tostring({})):sub(1, 8))
end

scopes[#scopes + 1] = {
  name = "memory", scope = function() return "memory" end,
  raw = function(c, keys)
    local out = {}
    for _, k in ipairs(keys) do out[#out + 1] = c.store:read(c:value_key(k)) or "" end
    return table.concat(out, "\n")
  end,
}

-- Everything under dir, as one text.
local function read_tree(dir)
  local out = {}
  local p = assert(io.popen("find " .. dir .. " -type f"))
  for path in p:lines() do out[#out + 1] = path .. "\n" .. (portable.read_file(path) or "") end
  p:close()
  return table.concat(out, "\n")
end

local file_dir
scopes[#scopes + 1] = {
  name = "file",
  setup = function() file_dir = portable.tmpdir() end,
  teardown = function() portable.rmtree(file_dir) end,
  scope = function() return "file:" .. file_dir .. "/defs" end,
  raw = function() return read_tree(file_dir) end,
}

local runtime_dir, saved_runtime_dir
scopes[#scopes + 1] = {
  name = "shm (outside nginx: the user's runtime dir)",
  setup = function()
    runtime_dir, saved_runtime_dir = portable.tmpdir(), limiter.runtime_dir
    limiter.runtime_dir = runtime_dir .. "/rt"
  end,
  teardown = function()
    limiter.runtime_dir = saved_runtime_dir
    portable.rmtree(runtime_dir)
  end,
  scope = function() return "shm:spec58" end,
  raw = function() return read_tree(runtime_dir) end,
}

local redis
scopes[#scopes + 1] = {
  name = "redis",
  setup = function() redis = redis_server.start() end,
  teardown = function() redis.stop() end,
  scope = function() return redis.url end,
  raw = function()
    local out = {}
    for _, k in ipairs(assert(redis_server.command(redis.port, { "KEYS", "*" }))) do
      local v = redis_server.command(redis.port, { "GET", k })
      out[#out + 1] = k .. "\n" .. tostring(v)
    end
    return table.concat(out, "\n")
  end,
}

local function contract(s)
  describe("scope " .. s.name, function()
    if s.setup then setup(s.setup) end
    if s.teardown then teardown(s.teardown) end
    local function new(opts)
      opts = opts or {}
      opts.scope = opts.scope or s.scope()
      opts.namespace = opts.namespace or namespace()
      return cache.new(opts)
    end

    it("keeps a value for its TTL on the injected clock, then forgets it", function()
      local clock, advance = fake_clock()
      local c = new { clock = clock, ttl = 60 }
      assert.is_nil(c:get "fields:task")
      assert.is_true(c:set("fields:task", { { id = 101, name = "Order number" } }))
      assert.same({ { id = 101, name = "Order number" } }, c:get "fields:task")
      advance(59)
      assert.same({ { id = 101, name = "Order number" } }, c:get "fields:task")
      advance(1)
      assert.is_nil(c:get "fields:task")
      assert.is_true(c:set("short", "x", 5)) -- a TTL of its own
      advance(4)
      assert.equal("x", c:get "short")
      advance(1)
      assert.is_nil(c:get "short")
    end)

    it("hands out copies: changing what get returned changes nothing stored", function()
      local c = new()
      c:set("k", { list = { "North", "South" } })
      local v = c:get "k"
      v.list[1] = "changed"
      assert.same({ list = { "North", "South" } }, c:get "k")
    end)

    it("forgets a key, or every key under a prefix, and nothing else", function()
      local c = new()
      for _, k in ipairs { "fields:task", "fields:contact", "templates:task", "fieldsX" } do c:set(k, k) end
      assert.is_true(c:invalidate "templates:task")
      assert.is_nil(c:get "templates:task")
      assert.is_true(c:invalidate_prefix "fields:")
      assert.is_nil(c:get "fields:task")
      assert.is_nil(c:get "fields:contact")
      assert.equal("fieldsX", c:get "fieldsX")
      assert.is_true(c:invalidate "never-set")
    end)

    it("keeps namespaces apart, and shares one between cache objects of the scope", function()
      local ns = namespace()
      local a, b, other = new { namespace = ns }, new { namespace = ns }, new()
      a:set("k", "from a")
      assert.equal("from a", b:get "k")
      assert.is_nil(other:get "k")
      other:invalidate_prefix ""
      assert.equal("from a", b:get "k")
    end)

    it("fetch: a miss calls the loader once, a hit none, an expired entry once more", function()
      local clock, advance = fake_clock()
      local c, calls = new { clock = clock, ttl = 10 }, 0
      local function loader()
        calls = calls + 1
        return { n = calls }
      end
      assert.same({ n = 1 }, c:fetch("defs", loader))
      assert.same({ n = 1 }, c:fetch("defs", loader))
      assert.equal(1, calls)
      advance(10)
      assert.same({ n = 2 }, c:fetch("defs", loader))
      assert.equal(2, calls)
      c:invalidate "defs"
      assert.same({ n = 3 }, c:fetch("defs", loader, 100))
    end)

    it("fetch: a failed load is returned and not cached; a raising loader frees the key", function()
      local c, calls = new(), 0
      local v, err = c:fetch("defs", function()
        calls = calls + 1
        return nil, core.error { kind = "transport", message = "connection refused" }
      end)
      assert.is_nil(v)
      assert.equal("transport", err.kind)
      assert.matches("connection refused", err.message)
      assert.has_error(function() c:fetch("defs", function() error "loader bug" end) end, "loader bug")
      assert.equal("ok", c:fetch("defs", function()
        calls = calls + 1
        return "ok"
      end))
      assert.equal(2, calls)
    end)

    it("a value it refuses to store fails the load for the waiters too, and frees the key", function()
      local ns = namespace()
      local c, waiter = new { namespace = ns, secrets = { SECRET } }, new { namespace = ns }
      local seen = (waiter:read_record(waiter:failure_key "k") or {}).t
      raises_config(function() c:fetch("k", function() return { echo = SECRET } end) end, "holds a secret")
      local done, value, err = waiter:settled("k", seen)
      assert.is_true(done)
      assert.is_nil(value)
      assert.equal("config", err.kind)
      assert.equal("fine", c:fetch("k", function() return "fine" end))
    end)

    it("never writes a secret it was told of: such a key or value is a config error", function()
      local c = new { secrets = { SECRET } }
      raises_config(function() c:set("k", { header = "Bearer " .. SECRET }) end, "holds a secret")
      raises_config(function() c:set("k", { part = SECRET:sub(1, 12) }) end, "holds a secret")
      raises_config(function() c:set("token:" .. SECRET, 1) end, "holds a secret")
      raises_config(function() c:fetch("k", function() return { echo = SECRET } end) end, "holds a secret")
      c:set("fields:task", { { id = 1, name = "Region" } })
      local raw = s.raw(c, { "k", "fields:task", "token:" .. SECRET })
      assert.is_nil(raw:find(SECRET, 1, true))
      assert.is_nil(raw:find(SECRET:sub(1, 12), 1, true))
      assert.matches("Region", raw)
      assert.is_nil(tostring(c):find(SECRET, 1, true))
    end)

    it("refuses what it cannot keep: a bad key, ttl, value or option is a config error", function()
      local c = new()
      raises_config(function() c:get "" end, "key")
      raises_config(function() c:get(42) end, "key")
      raises_config(function() c:set("k", { [3] = 1 }) end, "JSON")
      raises_config(function() c:set("k", nil) end, "value")
      raises_config(function() c:set("k", 1, 0) end, "ttl")
      raises_config(function() c:fetch("k", "not a function") end, "loader")
      raises_config(function() cache.new { scope = "disk:/tmp" } end, "scope")
      raises_config(function() cache.new { tll = 5 } end, "tll")
      raises_config(function() cache.new { ttl = -1 } end, "ttl")
    end)
  end)
end

describe("cache", function()
  for _, s in ipairs(scopes) do contract(s) end

  it("a waiter whose holder never finishes loads for itself after `wait` seconds of its sleep", function()
    local slept = 0
    local c = cache.new { namespace = namespace(), wait = 0.5, sleep = function(dt) slept = slept + dt end }
    local stuck = coroutine.create(function()
      c:fetch("defs", function() coroutine.yield() end) -- holds the key's lock for ever
    end)
    assert(coroutine.resume(stuck))
    local calls = 0
    assert.equal("mine", c:fetch("defs", function()
      calls = calls + 1
      return "mine"
    end))
    assert.equal(1, calls)
    assert.is_true(slept >= 0.5 and slept < 0.8, "slept " .. slept)
  end)

  it("a Redis that cannot be reached: get says so, fetch still answers through its loader", function()
    local c = cache.new { scope = ("redis://127.0.0.1:%d/0"):format(redis_server.free_port()), namespace = namespace() }
    local v, err = c:get "defs"
    assert.is_nil(v)
    assert.equal("transport", err.kind)
    assert.matches("definitions cache unavailable", err.message)
    assert.equal("loaded", c:fetch("defs", function() return "loaded" end))
    local ok, serr = c:set("defs", "x")
    assert.is_nil(ok)
    assert.equal("transport", serr.kind)
  end)

  it("the REST client's definitions in a file scope: the definitions written, no piece of its token", function()
    local sandbox = require "sandbox"
    local planapi = require "planapi"
    sandbox.reset()
    local token = "rest-58-" .. core.md5_hex(tostring({}) .. os.time())
    sandbox.config { tokens = { [token] = { scope = "all" } } }
    local dir, env = portable.tmpdir(), sandbox.env()
    local rest = planapi.planfix_rest { base_url = env.rest_url, token = token, ca_file = env.ca_file, rate = false,
      definitions = { cache = "file:" .. dir .. "/defs" } }
    assert(rest.fields:get("task", "Order number"))
    local raw = read_tree(dir)
    portable.rmtree(dir)
    sandbox.reset()
    assert.matches("Order number", raw)
    for i = 1, #token - 5 do
      assert.is_nil(raw:find(token:sub(i, i + 5), 1, true), "a piece of the token was written: " .. token:sub(i, i + 5))
    end
  end)

  it("core.try_lock_file: false while another open file holds the flock, the lock once it is freed", function()
    local dir = portable.tmpdir()
    local path = dir .. "/k.lock"
    local held = assert(core.try_lock_file(path))
    assert.is_false(core.try_lock_file(path))
    held:unlock()
    local again = assert(core.try_lock_file(path))
    again:unlock()
    local _, err = core.try_lock_file(dir .. "/missing/k.lock")
    assert.equal("io", err.kind)
    portable.rmtree(dir)
  end)

  it("memory: concurrent misses of coroutines that pause share one load and its failure", function()
    local clock = fake_clock()
    local paused = {}
    -- The injected sleep yields: the spec runs the coroutines in turn.
    local c = cache.new { namespace = namespace(), clock = clock, sleep = function() coroutine.yield() end }
    local calls = 0
    local function run(loader)
      calls, paused = 0, {}
      local results = {}
      for i = 1, 4 do
        paused[i] = coroutine.create(function() results[i] = { c:fetch("defs", loader) } end)
      end
      for _ = 1, 50 do
        for i = 1, 4 do
          if coroutine.status(paused[i]) == "suspended" then assert(coroutine.resume(paused[i])) end
        end
      end
      return results
    end
    local results = run(function()
      calls = calls + 1
      coroutine.yield() -- the request is on its way: the others miss meanwhile
      return { loaded = calls }
    end)
    assert.equal(1, calls)
    for i = 1, 4 do assert.same({ { loaded = 1 } }, results[i]) end
    c:invalidate "defs"
    results = run(function()
      calls = calls + 1
      coroutine.yield()
      return nil, core.error { kind = "api", message = "403 forbidden" }
    end)
    assert.equal(1, calls)
    for i = 1, 4 do
      assert.is_nil(results[i][1])
      assert.equal("api", results[i][2].kind)
    end
    assert.is_nil(c:get "defs")
  end)
end)
