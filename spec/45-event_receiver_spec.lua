-- The receiver core (events/receiver.lua), without a network: the secret in
-- each place, JSON and form bodies, the size cap, duplicates and stale
-- versions, and the handling rule: a handler's failure is retried by
-- pending (the store's lease, on an injected clock), a success is never run
-- again, a permanent failure is recorded, and a process that dies before
-- finishing has its event handled again; last, two real receiving processes
-- on one file store through a shuffled burst, one of them killed.
local planapi = require "planapi"
local events = require "planapi.events"
local core = require "planapi.core"
local portable = require "portable"

local SECRET = "evsec-0123456789abcdef"
require("journal").secret(SECRET)

-- The test's parse: id, key and version from the fields.
local function parse(_, fields)
  if type(fields) ~= "table" or fields.id == nil then return nil, "no id in the event" end
  return { id = tostring(fields.id), key = fields.key, version = tonumber(fields.version), fields = fields }
end

local function clock_at(t)
  local c = { now = t or 1700000000 }
  c.fn = function() return c.now end
  return c
end

local function receiver(opts)
  opts = opts or {}
  local c = opts.clock_state or clock_at()
  local o = { secret = SECRET, secret_in = "header:X-Token", parse = parse, clock = c.fn, lease = 30,
    retry_delay = 10 }
  for k, v in pairs(opts) do if k ~= "clock_state" then o[k] = v end end
  return events.receiver(o), c
end

local function post(body, headers, query)
  return { method = "POST", path = "/hooks", headers = headers or { ["Content-Type"] = "application/json" },
    query = query, body = body }
end

local function json_event(id, extra)
  local doc = { id = id }
  for k, v in pairs(extra or {}) do doc[k] = v end
  return planapi.json.encode(doc)
end

local function signed(id, extra)
  return post(json_event(id, extra), { ["Content-Type"] = "application/json", ["X-Token"] = SECRET })
end

local function no_secret_in(...)
  for _, v in ipairs { ... } do
    local text = type(v) == "table" and (v.body or v.message or tostring(v)) or tostring(v)
    assert.is_nil(text:find(SECRET, 1, true), "the secret leaked: " .. text)
    assert.is_nil(text:find(SECRET:sub(1, 12), 1, true), "part of the secret leaked: " .. text)
  end
end

describe("event receiver core", function()
  describe("authenticates by the shared secret", function()
    local places = {
      { "header:X-Token",
        function(v) return post(json_event("e1"), { ["x-token"] = v, ["Content-Type"] = "application/json" }) end },
      { "field:secret", function(v) return post(json_event("e1", { secret = v })) end },
      { "query:token", function(v) return post(json_event("e1"), nil, { token = v }) end },
    }
    for _, case in ipairs(places) do
      it("in " .. case[1] .. ": right, wrong, missing", function()
        local r = receiver { secret_in = case[1] }
        for _, bad in ipairs { false, "wrong", SECRET .. "x", SECRET:sub(1, -2), "" } do
          local response, event, err = r:receive(case[2](bad or nil))
          assert.equal(401, response.status)
          assert.is_nil(event)
          assert.equal("auth", err.kind)
          no_secret_in(response, err)
        end
        local response, event = r:receive(case[2](SECRET))
        assert.equal(200, response.status)
        assert.equal("e1", event.id)
      end)
    end

    it("compares with the constant-time function, once per request", function()
      local calls, real = 0, core.secure_equals
      core.secure_equals = function(a, b)
        calls = calls + 1
        return real(a, b)
      end
      local r = receiver()
      r:receive(signed("ct"))
      r:receive(post(json_event("ct2"), { ["X-Token"] = "nope" }))
      core.secure_equals = real
      assert.equal(2, calls)
    end)

    it("keeps the secret of a header or query out of the stored payload", function()
      for _, place in ipairs { "query:token", "header:X-Token" } do
        local r, c = receiver { secret_in = place }
        local request = place == "query:token"
          and post(json_event("q1"), { ["Content-Type"] = "application/json" }, { token = SECRET, other = "kept" })
          or signed("q1")
        assert.truthy(select(2, r:receive(request)))
        c.now = c.now + 30
        local items = r.store:take(10, 30)
        assert.equal(1, #items)
        assert.truthy(items[1].payload:find('{"id":"q1"}', 1, true))
        no_secret_in(items[1].payload)
      end
    end)

    it("refuses to start without a secret unless told to accept anyone's posts", function()
      assert.has_error(function() events.receiver { parse = parse } end)
      assert.has_error(function() events.receiver { parse = parse, secret = "" , secret_in = "header:X" } end)
      assert.has_error(function() events.receiver { parse = parse, secret = SECRET } end)
      assert.has_error(function() events.receiver { parse = parse, secret = SECRET, secret_in = "cookie:x" } end)
      assert.has_error(function()
        events.receiver { parse = parse, secret = SECRET, secret_in = "header:X", sekret = 1 }
      end)
      local open = events.receiver { parse = parse, allow_unsigned = true }
      assert.equal(200, open:receive(post(json_event("o1"))).status)
    end)
  end)

  describe("reads", function()
    it("JSON and form bodies, by Content-Type or by their look", function()
      local r = receiver { secret_in = "field:secret" }
      local form = "id=f%201&secret=" .. SECRET .. "&name=A+B%26C&id=ignored"
      local cases = {
        { post(form, { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" }), "f 1" },
        { post(form:gsub("f%%201", "f2"), {}), "f2" },
        { post(json_event("j1", { secret = SECRET, name = "A B&C" }), {}), "j1" },
        { post(json_event("j2", { secret = SECRET, name = "A B&C" }), { ["content-type"] = "application/json" }),
          "j2" },
      }
      for _, case in ipairs(cases) do
        local response, event = r:receive(case[1])
        assert.equal(200, response.status, response.body)
        assert.truthy(event, response.body)
        assert.equal(case[2], event.id)
        assert.equal("A B&C", event.fields.name)
      end
    end)

    it("refuses a body over max_body (413), malformed JSON and non-events (400), never raising", function()
      local r = receiver { max_body = 100 }
      local h = { ["X-Token"] = SECRET, ["Content-Type"] = "application/json" }
      local exact = json_event("x", { pad = ("p"):rep(100 - #json_event("x", { pad = "" })) })
      assert.equal(100, #exact)
      assert.equal(200, r:receive(post(exact, h)).status)
      for _, case in ipairs {
        { exact .. " ", 413 }, { "{not json", 400 }, { "[1,2]", 400 }, { '{"nope":1}', 400 }, { "", 400 },
        { ('{"a":'):rep(20), 400 }, { 42, 400 },
      } do
        local response, event, err = r:receive(post(case[1], h))
        assert.equal(case[2], response.status)
        assert.is_nil(event)
        assert.equal(case[2], err.answer)
        assert.equal(false, planapi.json.decode(response.body).ok)
      end
    end)

    it("answers 503 when the store cannot record the claim, so the sender delivers again", function()
      -- The store's error text (a string) holds the secret: the answer and the error must not.
      local broken = { claim = function() return nil, "disk full " .. SECRET end,
        finish = function() end, retry = function() end, take = function() return {} end }
      local r = receiver { store = broken }
      local response, event, err = r:receive(signed("s1"))
      assert.equal(503, response.status)
      assert.is_nil(event)
      no_secret_in(response, err)
    end)
  end)

  describe("claims", function()
    it("a duplicate once: answered 200, not handed over", function()
      local r = receiver()
      local _, first = r:receive(signed("d1"))
      local response, again, detail = r:receive(signed("d1"))
      assert.truthy(first)
      assert.equal(200, response.status)
      assert.is_nil(again)
      assert.equal("duplicate", detail.claim)
    end)

    it("an older version of a key as stale", function()
      local r = receiver()
      assert.truthy(select(2, r:receive(signed("v3", { key = "task:1", version = 3 }))))
      local response, event, detail = r:receive(signed("v2", { key = "task:1", version = 2 }))
      assert.equal(200, response.status)
      assert.is_nil(event)
      assert.equal("stale", detail.claim)
      assert.truthy(select(2, r:receive(signed("v4", { key = "task:1", version = 4 }))))
    end)

    -- A sender's field read as a version may be 1e999: that must neither
    -- fail the store (a 503 makes the sender retry for days; Planfix then
    -- pauses the account) nor make every later event of the key stale.
    for _, kind in ipairs { "memory", "file" } do
      it("a version that is no finite number as none (" .. kind .. " store): claimed by its id", function()
        local dir = portable.tmpdir()
        local store = kind == "file" and events.file { dir = dir } or events.memory()
        local r = receiver { store = store }
        local form = { ["Content-Type"] = "application/x-www-form-urlencoded", ["X-Token"] = SECRET }
        for i, v in ipairs { "1e999", "-1e999", "nan" } do
          local response, event = r:receive(post(("id=odd%d&key=task:1&version=%s"):format(i, v), form))
          assert.equal(200, response.status, response.body)
          assert.truthy(event, v .. " handed over")
          assert.is_nil(event.version)
        end
        local _, later = r:receive(post("id=later&key=task:1&version=2", form))
        assert.truthy(later, "a later event of the key taken as stale")
        portable.rmtree(dir)
      end)
    end
  end)

  describe("handles", function()
    it("a failure later through pending, after the retry delay, then never again", function()
      local r, c = receiver()
      local runs, fail = {}, true
      local function handler(ev)
        runs[#runs + 1] = ev.id .. "#" .. ev.attempts
        if fail then return nil, "the database is down" end
        return true
      end
      local _, event = r:receive(signed("h1", { payload = "x" }))
      local ok, err = r:handle(event, handler)
      assert.is_nil(ok)
      assert.equal("the database is down", err)
      assert.equal(0, r:pending(handler))
      c.now = c.now + 9
      assert.equal(0, r:pending(handler))
      fail = false
      c.now = c.now + 1
      assert.equal(1, r:pending(handler))
      c.now = c.now + 1000
      assert.equal(0, r:pending(handler))
      assert.is_nil(select(2, r:receive(signed("h1"))))
      assert.same({ "h1#1", "h1#2" }, runs)
    end)

    it("a raised error like a returned one, and doubles the delay per attempt", function()
      local r, c = receiver()
      local runs = 0
      local function handler()
        runs = runs + 1
        error("boom " .. SECRET)
      end
      local _, event = r:receive(signed("r1"))
      local _, err = r:handle(event, handler)
      no_secret_in(err)
      c.now = c.now + 10
      assert.equal(1, r:pending(handler)) -- attempt 2 failed: next after 20 s
      c.now = c.now + 19
      assert.equal(0, r:pending(handler))
      c.now = c.now + 1
      assert.equal(1, r:pending(handler))
      assert.equal(3, runs)
    end)

    it("a failure that never clears: given up after max_attempts, recorded failed, nothing left pending", function()
      local r, c = receiver { max_attempts = 3 }
      local runs = 0
      local function handler() runs = runs + 1 return nil, "the database is down" end
      local _, event = r:receive(signed("g1"))
      assert.is_nil(r:handle(event, handler))
      local errs = {}
      local function recording(ev)
        local ok, err = handler(ev)
        errs[#errs + 1] = err
        return ok, err
      end
      for _ = 1, 10 do
        c.now = c.now + 10000
        r:pending(recording)
      end
      assert.equal(3, runs)
      assert.same({ "the database is down", "the database is down" }, errs)
      -- handle's own answer on the last run says it gave up
      local r2 = receiver { max_attempts = 1 }
      local _, ev2 = r2:receive(signed("g2"))
      local _, last = r2:handle(ev2, handler)
      assert.equal("gave up after 1 attempt: the database is down", last)
      assert.same({}, r.store:take(100, 30))
      assert.is_nil(select(2, r:receive(signed("g1"))), "a redelivery of a given-up event is a duplicate")
    end)

    it("an event whose handler kills its process every time: not run again past max_attempts", function()
      local r, c = receiver { max_attempts = 2 }
      local runs = 0
      local function handler() runs = runs + 1 return true end
      r:receive(signed("k1")) -- claimed, never handled: its process "died"
      c.now = c.now + 31
      assert.same(1, #r.store:take(100, 30)) -- attempt 2 taken, and that process died too
      c.now = c.now + 31
      assert.equal(1, r:pending(handler)) -- attempt 3 is over the limit: recorded failed, not run
      assert.equal(0, runs)
      c.now = c.now + 31
      assert.equal(0, r:pending(handler))
    end)

    it("max_attempts must be a whole number of at least 1", function()
      for _, bad in ipairs { 0, 1.5, "3", -1 } do
        local ok, err = pcall(receiver, { max_attempts = bad })
        assert.is_false(ok)
        assert.equal("config", err.kind)
      end
    end)

    -- ttl 0 forgets an id at once (a redelivery handled again) and the Redis
    -- store refuses it on every claim (503 for ever); lease 0 hands an event
    -- to pending while its handler runs. Mistakes, said at construction.
    it("ttl and lease must be above 0, for the receiver and both Planfix's and Planado's", function()
      for _, opt in ipairs { "ttl", "lease" } do
        for _, make in ipairs {
          function(o) return receiver(o) end,
          function(o) o.secret, o.secret_in = SECRET, "field:secret" return planapi.planfix_events(o) end,
          function(o) o.secret = SECRET return planapi.planado_webhook(o) end,
        } do
          local ok, err = pcall(make, { [opt] = 0 })
          assert.is_false(ok, opt .. " = 0 accepted")
          assert.equal("config", err.kind)
          assert.truthy(make { [opt] = 0.5 })
        end
      end
    end)

    it("a permanent failure: recorded, not retried, a redelivery is a duplicate", function()
      local r, c = receiver()
      local runs
      for _, fail in ipairs {
        function() return nil, "permanent", "no such task" end,
        function() return nil, core.error { kind = "api", message = "gone", permanent = true } end,
        function() error({ permanent = true, message = "bad input" }) end,
      } do
        runs = 0
        local id = "p" .. tostring(fail):gsub("%W", "")
        local _, event = r:receive(signed(id))
        local handler = function() runs = runs + 1 return fail() end
        assert.is_nil(r:handle(event, handler))
        c.now = c.now + 86400
        assert.equal(0, r:pending(handler))
        assert.is_nil(select(2, r:receive(signed(id))))
        assert.equal(1, runs)
      end
    end)

    it("an event whose process died before finishing: taken again after the lease, from a restarted store", function()
      local dir = portable.tmpdir()
      local c = clock_at()
      local store = events.file { dir = dir, clock = c.fn }
      local r = receiver { store = store, clock_state = c }
      local response, event = r:receive(signed("crash", { key = "task:9", version = 2, note = "ü" }))
      assert.equal(200, response.status)
      assert.truthy(event) -- ...and the process dies here, the handler never run
      local restarted = receiver { store = events.file { dir = dir, clock = c.fn }, clock_state = c }
      local seen = {}
      local function handler(ev)
        seen[#seen + 1] = ev
        return true
      end
      c.now = c.now + 29
      assert.equal(0, restarted:pending(handler))
      c.now = c.now + 1
      assert.equal(1, restarted:pending(handler))
      assert.equal("crash", seen[1].id)
      assert.equal(2, seen[1].attempts)
      assert.equal("ü", seen[1].fields.note)
      assert.equal(2, seen[1].version)
      c.now = c.now + 1000
      assert.equal(0, restarted:pending(handler))
      assert.is_nil(select(2, restarted:receive(signed("crash"))))
      portable.rmtree(dir)
    end)

    it("serve: receive and handle in one, answering 200 even when the handler fails", function()
      local r = receiver()
      local runs = 0
      local response = r:serve(signed("s1"), function() runs = runs + 1 return nil, "later" end)
      assert.equal(200, response.status)
      assert.equal(1, runs)
      r:serve(signed("s1"), function() runs = runs + 1 return true end)
      assert.equal(1, runs)
    end)
  end)

  describe("the Planado receiver on the core", function()
    it("receives, handles, retries through pending and never runs a success twice", function()
      local c = clock_at()
      local hook = planapi.planado_webhook { secret = SECRET, clock = c.fn, retry_delay = 5 }
      local function delivery(uuid, version)
        return post(planapi.json.encode { event_uuid = uuid, event_type = "job_updated",
          job = { uuid = "job-1", version = version } },
          { ["X-Planado-Secret"] = SECRET, ["X-Planado-Delivery-Attempt"] = "1" })
      end
      local runs, fail = {}, true
      local function handler(ev)
        runs[#runs + 1] = ev.uuid .. "@" .. ev.version .. "#" .. ev.attempts
        if fail then return nil, "busy" end
        return true
      end
      local response, event = hook:receive(delivery("u1", 2))
      assert.equal(200, response.status)
      assert.is_true(event.fresh)
      assert.equal("job", event.kind)
      assert.is_nil(hook:handle(event, handler))
      local _, again, detail = hook:receive(delivery("u1", 2))
      assert.is_nil(again)
      assert.equal("duplicate", detail.claim)
      assert.equal("stale", select(3, hook:receive(delivery("u0", 1))).claim)
      fail = false
      c.now = c.now + 5
      assert.equal(1, hook:pending(handler))
      c.now = c.now + 3600
      assert.equal(0, hook:pending(handler))
      assert.same({ "u1@2#1", "u1@2#2" }, runs)
      assert.equal(401, hook:receive(post("{}", { ["X-Planado-Secret"] = "nope" })).status)
    end)

    it("Planado's and Planfix's receivers take max_attempts to their core", function()
      local failing = function() return nil, "busy" end
      local hook = planapi.planado_webhook { secret = SECRET, max_attempts = 1 }
      local _, event = hook:receive(post(planapi.json.encode { event_uuid = "m1", event_type = "job_updated" },
        { ["X-Planado-Secret"] = SECRET }))
      assert.equal("gave up after 1 attempt: busy", select(2, hook:handle(event, failing)))
      local pf = planapi.planfix_events { secret = SECRET, secret_in = "header:X-Token", id = "id", max_attempts = 1 }
      local _, ev = pf:receive(signed("m2"))
      assert.equal("gave up after 1 attempt: busy", select(2, pf:handle(ev, failing)))
    end)
  end)

  -- Two receiving processes on one file store, the deliveries split between
  -- them as two entry points; the log the handlers write is the oracle.
  describe("two receiving processes on one file store", function()
    local N, LEASE = 400, 2

    local function wait_for(fn, seconds)
      local deadline = core.monotime() + seconds
      while not fn() and core.monotime() < deadline do core.sleep(0.1) end
    end

    -- { [id] = number of log lines }, how many distinct ids, and the ids
    -- handled on a second attempt or later.
    local function tally(path)
      local counts, distinct, retaken = {}, 0, {}
      for line in (portable.read_file(path) or ""):gmatch "[^\n]+" do
        local id, attempts = line:match "^(ev%-%d+) (%d+) %S+$"
        assert(id, "a torn line: " .. line)
        if not counts[id] then distinct = distinct + 1 end
        counts[id] = (counts[id] or 0) + 1
        if tonumber(attempts) > 1 then retaken[#retaken + 1] = id end
      end
      return counts, distinct, retaken
    end

    it("handles 400 events delivered twice each, shuffled, exactly once; one process killed mid-handler", function()
      -- tmpfs when there is one: the atomicity is under test here, not the disk's fsync speed
      local base = portable.execute "test -d /dev/shm -a -w /dev/shm" and "/dev/shm" or nil
      local dir = base and (base .. "/planapi-burst-" .. tostring(core.monotime()):gsub("%.", "")) or portable.tmpdir()
      if base then assert(core.mkdir(dir)) end
      local seed = os.time()
      math.randomseed(seed)
      local all = {}
      for i = 1, N do all[#all + 1], all[#all + 2] = "ev-" .. i, "ev-" .. i end
      for i = #all, 2, -1 do
        local j = math.random(i)
        all[i], all[j] = all[j], all[i]
      end
      local lists = { {}, {} }
      for i, id in ipairs(all) do table.insert(lists[i % 2 + 1], id) end
      local log, stop = dir .. "/log", dir .. "/stop"
      local function start(name, i, crash_at)
        local list = ("%s/list-%d"):format(dir, i)
        portable.write_file(list, table.concat(lists[i], "\n") .. "\n")
        local cmd = "exec lua5.4 spec/helpers/event_worker.lua ./?.so %s file:%s/store - %s %s %s %.6f %d %s"
        return assert(io.popen(cmd:format(name, dir, list, log, stop, core.monotime(), LEASE, crash_at or "")))
      end
      local a, b = start("A", 1, 60), start("B", 2)
      assert.equal("", a:read "a") -- A died inside its 60th handler, printing nothing
      a:close()
      local again = start("A2", 1) -- restarted: its deliveries come again (the sender's retries)
      wait_for(function() return select(2, tally(log)) >= N end, 90)
      portable.write_file(stop, "")
      local b_runs, a2_runs = planapi.json.decode(b:read "a"), planapi.json.decode(again:read "a")
      b:close()
      again:close()
      local counts, distinct, retaken = tally(log)
      portable.rmtree(dir)
      local twice = {}
      for id, n in pairs(counts) do if n > 1 then twice[#twice + 1] = id end end
      assert.equal(N, distinct, "seed " .. seed)
      assert.same({}, twice, "seed " .. seed)
      assert.truthy(b_runs and a2_runs, "both live workers finished")
      assert.equal(1, #retaken, "the event A died on, taken again after its lease")
    end)
  end)
end)
