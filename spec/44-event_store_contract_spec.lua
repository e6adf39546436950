-- The event store contract (events/store.lua's header), the same specs for
-- every store: one entry per store in STORES. An entry:
--   name       the store's name in the test titles
--   open(env)  a store on env's backend (env.clock is the injected clock; a
--              second open of the same env is a second process's view, or
--              after a restart)
--   setup(), teardown(env)   a fresh backend for each test
--   advance(env, seconds)    move the store's clock
--   child(env) (optional)    Lua source of an expression making the store in a
--              child process: the races run in real processes then
--   versions_expire          a key's version is forgotten ttl after the last
--              claim that wrote it (the Redis store: nothing there lives forever)
-- The oracle for the random sequences is a plain model of the contract
-- written here, not the stores' code.
local store = require "planapi.events.store"
local portable = require "portable"
local store_redis = require "planapi.events.store_redis"
local redis_server = require "redis_server"

-- The Redis store's server: started by the first test that needs it, for
-- the whole file; each test has a key prefix of its own.
local redis, redis_prefixes = nil, 0
teardown(function()
  if redis then redis.stop() end
end)

local STORES = {
  {
    name = "memory",
    setup = function()
      local env = { now = 1700000000 }
      env.clock = function() return env.now end
      env.shared = store.memory { max = 100000, clock = env.clock }
      return env
    end,
    open = function(env) return env.shared end, -- one process: every view is the same store
    advance = function(env, s) env.now = env.now + s end,
    teardown = function() end,
  },
  {
    name = "file",
    setup = function()
      local env = { now = 1700000000, dir = portable.tmpdir() }
      env.clock = function() return env.now end
      return env
    end,
    open = function(env) return store.file { dir = env.dir, clock = env.clock } end,
    advance = function(env, s) env.now = env.now + s end,
    teardown = function(env) portable.rmtree(env.dir) end,
    child = function(env) return ("require('planapi.events.store').file { dir = %q }"):format(env.dir) end,
    restarts = true,
  },
  {
    -- Redis's clock cannot be injected: advance moves what the store keeps
    -- (leases, expiry times, ttls) back by the time instead.
    name = "redis",
    setup = function()
      redis = redis or redis_server.start()
      redis_prefixes = redis_prefixes + 1
      return { now = 0, prefix = ("planapi:spec44:%d:%d:"):format(os.time(), redis_prefixes) }
    end,
    open = function(env) return store_redis.new { url = redis.url, key_prefix = env.prefix } end,
    advance = function(env, s) redis_server.advance(redis.port, env.prefix, s) end,
    teardown = function(env)
      for _, k in ipairs(redis_server.command(redis.port, { "KEYS", env.prefix .. "*" })) do
        redis_server.command(redis.port, { "DEL", k })
      end
    end,
    child = function(env)
      return ("require('planapi.events.store_redis').new { url = %q, key_prefix = %q }"):format(redis.url, env.prefix)
    end,
    restarts = true,
    versions_expire = true,
  },
}

local function record(payload, lease, ttl)
  return { payload = payload or "body", lease = lease or 10, ttl = ttl or 100 }
end

local function ids_of(items)
  local out = {}
  for _, it in ipairs(items) do out[#out + 1] = it.id end
  table.sort(out)
  return out
end

-- Run `code` (Lua source using `s`, the store) in n child processes at once;
-- each prints one line; returns the lines.
local function in_children(expr, code, n)
  local script = os.tmpname()
  portable.write_file(script, ([[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local s = %s
%s
]]):format(expr, code))
  local procs, lines = {}, {}
  for i = 1, n do procs[i] = assert(io.popen("lua5.4 " .. script .. " " .. i)) end
  for i = 1, n do
    lines[i] = procs[i]:read "a"
    procs[i]:close()
  end
  os.remove(script)
  return lines
end

-- How many words the children's lines hold, each asserted to appear once.
local function count_once(lines, what)
  local seen, total = {}, 0
  for _, line in ipairs(lines) do
    for word in line:gmatch "%S+" do
      assert.is_nil(seen[word], word .. " " .. what .. " twice")
      seen[word], total = true, total + 1
    end
  end
  return total
end

for _, S in ipairs(STORES) do
  describe(S.name .. " event store", function()
    local env, s
    before_each(function()
      env = S.setup()
      s = S.open(env)
    end)
    after_each(function() S.teardown(env) end)

    it("claims an id once: new, then duplicate, whoever asks", function()
      assert.equal("new", s:claim("e1", "job:1", nil, record()))
      assert.equal("duplicate", s:claim("e1", "job:1", nil, record()))
      assert.equal("duplicate", S.open(env):claim("e1", "job:1", nil, record()))
      assert.equal("new", s:claim("e2", "job:1", nil, record()))
    end)

    it("orders versions per key: an older or equal version is stale and its id remembered as done", function()
      assert.equal("new", s:claim("e1", "job:1", 5, record()))
      local outcome, previous = s:claim("e2", "job:1", 4, record())
      assert.equal("stale", outcome)
      assert.equal(5, previous)
      assert.equal("stale", (s:claim("e3", "job:1", 5, record())))
      assert.equal("duplicate", (s:claim("e2", "job:1", 9, record())))
      assert.same({}, s:take(10, 10)) -- a stale event is never handed out
      S.advance(env, 11)
      assert.same({ "e1" }, ids_of(s:take(10, 10)))
      outcome, previous = s:claim("e4", "job:1", 6, record())
      assert.equal("new", outcome)
      assert.equal(5, previous)
      assert.equal("new", (s:claim("e5", "job:2", 1, record()))) -- per key
    end)

    it("keeps the old two-value claim and release", function()
      assert.equal("new", s:claim("e1", "job:1", 1))
      assert.equal("duplicate", s:claim("e1", "job:1", 1))
      local outcome, previous = s:claim("e2", "job:1", 2)
      assert.equal("new", outcome)
      s:release("e2", "job:1", previous)
      assert.equal("new", s:claim("e2", "job:1", 2))
      assert.same({}, s:take(10, 10)) -- claimed without a record: nothing to hand out
    end)

    it("hands a leased event out only after its lease, once per lease", function()
      assert.equal("new", s:claim("e1", "k1", nil, record("p1", 10)))
      assert.same({}, s:take(10, 30))
      S.advance(env, 9)
      assert.same({}, s:take(10, 30))
      S.advance(env, 1)
      local a = s:take(10, 30)
      local b = S.open(env):take(10, 30)
      assert.equal(1, #a)
      assert.same({ id = "e1", payload = "p1", attempts = 2 }, a[1])
      assert.same({}, b) -- the second taker while the new lease holds
      S.advance(env, 30)
      local c = s:take(10, 30)
      assert.equal(3, c[1].attempts)
    end)

    it("never hands out a finished event, and remembers it until its ttl", function()
      assert.equal("new", s:claim("done", "k1", nil, record("p", 10, 100)))
      assert.equal("new", s:claim("failed", "k2", nil, record("p", 10, 100)))
      assert.truthy(s:finish("done", "done"))
      assert.truthy(S.open(env):finish("failed", "failed"))
      S.advance(env, 50)
      assert.same({}, s:take(10, 10))
      assert.equal("duplicate", s:claim("done", "k1", nil, record()))
      assert.equal("duplicate", s:claim("failed", "k2", nil, record()))
      S.advance(env, 51)
      assert.equal("new", s:claim("done", "k1", nil, record()))
      assert.equal("new", s:claim("failed", "k2", nil, record()))
    end)

    it("retries after the delay asked for", function()
      assert.equal("new", s:claim("e1", "k1", nil, record("p", 10)))
      assert.truthy(s:retry("e1", 100))
      S.advance(env, 99)
      assert.same({}, s:take(10, 10))
      S.advance(env, 1)
      assert.same({ "e1" }, ids_of(s:take(10, 10)))
    end)

    it("takes at most limit events, the longest waiting first", function()
      for i = 1, 5 do
        assert.equal("new", s:claim("e" .. i, "k" .. i, nil, record("p" .. i, 10 + i)))
      end
      S.advance(env, 100)
      assert.same({ "e1", "e2" }, ids_of(s:take(2, 50)))
      assert.same({ "e3", "e4", "e5" }, ids_of(s:take(10, 50)))
      assert.same({}, s:take(10, 50))
    end)

    it("forgets a released claim", function()
      assert.equal("new", s:claim("e1", "job:1", 3, record()))
      s:release("e1", "job:1", nil)
      S.advance(env, 20)
      assert.same({}, s:take(10, 10))
      assert.equal("new", s:claim("e1", "job:1", 1, record()))
    end)

    it("keeps any payload's bytes", function()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local payload = table.concat(bytes) .. "\n{\"x\":1}\n"
      assert.equal("new", s:claim("bin", "k", nil, record(payload, 0)))
      assert.equal(payload, s:take(1, 10)[1].payload)
    end)

    -- An id is whatever the sender's field holds: a Planfix template's
    -- Cyrillic text, a long value, any byte. Ids sharing a long prefix
    -- must stay apart (a store that shortens names must not merge them).
    it("keeps ids and keys of any bytes and any length apart (random ids)", function()
      math.randomseed(os.time())
      local prefix = string.rep("\208\150", 150) -- 300 bytes of "Ж"
      local ids, seen = {}, {}
      while #ids < 60 do
        local bytes = {}
        for i = 1, math.random(1, 400) do bytes[i] = string.char(math.random(0, 255)) end
        local id = (#ids % 3 == 0 and prefix or "") .. table.concat(bytes)
        if not seen[id] then ids[#ids + 1], seen[id] = id, true end
      end
      for i, id in ipairs(ids) do
        assert.equal("new", s:claim(id, "key:" .. id, i, record("p" .. i, 10)), "claim " .. i)
      end
      for i, id in ipairs(ids) do
        assert.equal("duplicate", S.open(env):claim(id, "key:" .. id, i + 1, record()), "again " .. i)
        assert.equal("stale", (s:claim("other" .. i, "key:" .. id, i, record())), "stale " .. i)
      end
      S.advance(env, 10)
      local taken = s:take(100, 10)
      assert.equal(#ids, #taken)
      for _, item in ipairs(taken) do
        assert.truthy(seen[item.id], "taken an id that was never claimed")
        assert.truthy(s:finish(item.id, "done"))
      end
      S.advance(env, 20)
      assert.same({}, s:take(100, 10))
      for i, id in ipairs(ids) do assert.equal("duplicate", s:claim(id, "key:" .. id, i + 5, record()), "done " .. i) end
    end)

    if S.name == "file" then
      -- finish writes the outcome durably, then removes the pending file: a
      -- process killed between the two (or a power cut that brings back the
      -- unlink, which is not synced) leaves both on disk.
      it("never hands out again an event whose success was recorded, though a crash left its pending file", function()
        assert.equal("new", s:claim("e1", "k1", nil, record("p1", 10)))
        local pending = env.dir .. "/pending/e1"
        local left = assert(portable.read_file(pending))
        assert.truthy(s:finish("e1", "done"))
        portable.write_file(pending, left) -- the state the crash leaves
        S.advance(env, 11)
        assert.same({}, S.open(env):take(10, 10))
        assert.equal("duplicate", s:claim("e1", "k1", nil, record()))
      end)
    end

    if S.restarts then
      it("loses nothing when reopened: leased, finished and version state all survive", function()
        assert.equal("new", s:claim("leased", "job:1", 7, record("p1", 10)))
        assert.equal("new", s:claim("finished", "k2", nil, record("p2", 10)))
        assert.truthy(s:finish("finished", "done"))
        local again = S.open(env)
        assert.equal("duplicate", again:claim("leased", "job:1", 7, record()))
        assert.equal("duplicate", again:claim("finished", "k2", nil, record()))
        assert.equal("stale", again:claim("older", "job:1", 6, record()))
        S.advance(env, 10)
        assert.same({ { id = "leased", payload = "p1", attempts = 2 } }, again:take(10, 10))
      end)
    end

    if S.child then
      it("gives exactly one of several processes each id (real processes racing)", function()
        local lines = in_children(S.child(env), [[
local won = {}
for i = 1, 80 do
  if s:claim("ev-" .. i, "job:" .. i, 1, { payload = "p" .. i, lease = 0, ttl = 3600 }) == "new" then
    won[#won + 1] = i
  end
end
print(table.concat(won, " "))
]], 4)
        assert.equal(80, count_once(lines, "claimed"))
      end)

      it("never gives one event to two taking processes while its lease holds", function()
        local real = S.open(env)
        for i = 1, 60 do
          -- a lease long past on the real clock: every one is due for the children at once
          assert.equal("new", real:claim("ev-" .. i, "k" .. i, nil, { payload = "p" .. i, lease = -1e9, ttl = 3600 }))
        end
        local lines = in_children(S.child(env), [[
local got = {}
for _ = 1, 30 do
  for _, item in ipairs(s:take(3, 3600)) do got[#got + 1] = item.id end
end
print(table.concat(got, " "))
]], 4)
        assert.equal(60, count_once(lines, "taken"))
      end)
    end

    -- The model: what the contract says, for ids with records.
    local function model_claim(m, id, key, version, rec)
      local e = m.ids[id]
      if e and (e.state == "leased" or e.expires > m.now) then return "duplicate" end
      local previous = m.versions[key]
      if S.versions_expire and previous and m.version_expires[key] <= m.now then previous = nil end
      if version and previous and version <= previous then
        m.ids[id] = { state = "stale", expires = m.now + rec.ttl }
        return "stale", previous
      end
      m.ids[id] = { state = "leased", lease_until = m.now + rec.lease, attempts = 1, expires = m.now + rec.ttl,
        payload = rec.payload }
      if version then
        m.versions[key] = version
        m.version_expires[key] = math.max(previous and m.version_expires[key] or 0, m.now + rec.ttl)
      end
      return "new", previous
    end

    local function model_take(m, lease)
      local out = {}
      for id, e in pairs(m.ids) do
        if e.state == "leased" and e.lease_until <= m.now then
          e.lease_until, e.attempts = m.now + lease, e.attempts + 1
          out[#out + 1] = id
        end
      end
      table.sort(out)
      return out
    end

    it("agrees with a model of the contract over random operation sequences", function()
      local seed = os.time()
      math.randomseed(seed)
      for round = 1, 6 do
        S.teardown(env)
        env = S.setup()
        s = S.open(env)
        local m = { now = env.now, ids = {}, versions = {}, version_expires = {} }
        for step = 1, 120 do
          local what = ("seed %d round %d step %d"):format(seed, round, step)
          local op = math.random(6)
          if op <= 2 then
            local id, key = "e" .. math.random(15), "k" .. math.random(4)
            local version = math.random(3) > 1 and math.random(8) or nil
            local rec = record("p-" .. id, math.random(0, 20), math.random(10, 60))
            local want, want_prev = model_claim(m, id, key, version, rec)
            local got, got_prev = s:claim(id, key, version, rec)
            assert.equal(want, got, what .. " claim " .. id)
            if want ~= "duplicate" then assert.equal(want_prev, got_prev, what .. " previous") end
          elseif op == 3 or op == 4 then
            local leased = {}
            for id, e in pairs(m.ids) do if e.state == "leased" then leased[#leased + 1] = id end end
            table.sort(leased)
            if #leased > 0 then
              local id = leased[math.random(#leased)]
              if op == 3 then
                local outcome = math.random(2) == 1 and "done" or "failed"
                m.ids[id].state = outcome
                assert.truthy(s:finish(id, outcome), what)
              else
                local delay = math.random(0, 30)
                m.ids[id].lease_until = m.now + delay
                assert.truthy(s:retry(id, delay), what)
              end
            end
          elseif op == 5 then
            local lease = math.random(0, 20)
            assert.same(model_take(m, lease), ids_of(s:take(1000, lease)), what .. " take")
          else
            local dt = math.random(0, 15)
            m.now = m.now + dt
            S.advance(env, dt)
          end
        end
      end
    end)
  end)
end
