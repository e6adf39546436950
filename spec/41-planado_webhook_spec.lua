-- The Planado webhook receiver and its stores, without a network: the
-- secret, malformed input, dedupe, version order, release, and a file store
-- shared by several real processes.
local planapi = require "planapi"
local stores = planapi.webhook_store

local SECRET = "whsec-0123456789"

local function delivery(event_uuid, job_uuid, version, attempt, extra)
  local body = { event_uuid = event_uuid, event_type = "job_updated",
    context = { source = "api", happened_at = "2024-01-01T10:00:00Z" },
    job = { uuid = job_uuid, version = version, status = "scheduled" } }
  for k, v in pairs(extra or {}) do body[k] = v end
  return { ["X-Planado-Secret"] = SECRET, ["X-Planado-Delivery-Attempt"] = tostring(attempt or 1) },
    planapi.json.encode(body)
end

local portable = require "portable"
local tmpdir, rmtree = portable.tmpdir, portable.rmtree

describe("Planado webhook receiver", function()
  it("returns the event: type, uuids, kind, resource, previous, version, attempt", function()
    local hook = planapi.planado_webhook { secret = SECRET }
    local headers, body = delivery("ev-1", "job-1", 3, 2, { previous_job = { uuid = "job-1", version = 2 } })
    local e = assert(hook:handle(headers, body))
    assert.equal("job_updated", e.type)
    assert.equal("ev-1", e.uuid)
    assert.equal("job", e.kind)
    assert.equal("job-1", e.resource_uuid)
    assert.equal(3, e.version)
    assert.equal(2, e.previous.version)
    assert.equal(2, e.attempt)
    assert.equal("api", e.context.source)
    assert.is_true(e.fresh)
    assert.equal(200, e.answer)
  end)

  it("checks X-Planado-Secret in any letter case and refuses a wrong or missing one", function()
    local hook = planapi.planado_webhook { secret = SECRET }
    local _, body = delivery("ev-2", "job-1", 1)
    assert.is_truthy(hook:handle({ ["x-planado-secret"] = SECRET }, body))
    for _, h in ipairs { {}, { ["X-Planado-Secret"] = "wrong" }, { ["X-Planado-Secret"] = SECRET .. "x" },
      { ["X-Planado-Secret"] = SECRET:sub(1, -2) } } do
      local e, err = hook:handle(h, body)
      assert.is_nil(e)
      assert.equal("auth", err.kind)
      assert.equal(401, err.answer)
      assert.is_nil(tostring(err):find(SECRET, 1, true))
    end
  end)

  it("compares the secret with the constant-time function", function()
    local calls = 0
    local real = planapi.core.secure_equals
    planapi.core.secure_equals = function(a, b)
      calls = calls + 1
      return real(a, b)
    end
    local hook = planapi.planado_webhook { secret = SECRET }
    hook:handle(delivery("ev-ct", "job-1", 1))
    planapi.core.secure_equals = real
    assert.equal(1, calls)
  end)

  it("refuses bodies too large, malformed JSON and non-events without crashing", function()
    local hook = planapi.planado_webhook { secret = SECRET, max_body = 20000 }
    local h = { ["X-Planado-Secret"] = SECRET }
    local cases = {
      { ("x"):rep(20001), 413 }, { "{not json", 400 }, { "[1,2,3]", 400 }, { '{"event_uuid":1}', 400 },
      { '"just a string"', 400 }, { "", 400 }, { ('{"a":'):rep(2000), 400 },
    }
    for _, c in ipairs(cases) do
      local e, err = hook:handle(h, c[1])
      assert.is_nil(e)
      assert.equal(c[2], err.answer)
    end
    assert.is_nil((hook:handle(h, nil)))
  end)

  it("needs a secret unless told to accept anyone's posts", function()
    assert.has_error(function() planapi.planado_webhook {} end)
    assert.has_error(function() planapi.planado_webhook { secret = "" } end)
    assert.has_error(function() planapi.planado_webhook { secret = SECRET, sekret = 1 } end)
    local open = planapi.planado_webhook { allow_unsigned = true }
    local _, body = delivery("ev-open", "job-1", 1)
    assert.is_true(open:handle({}, body).fresh)
  end)

  it("handles a duplicate once and reports it", function()
    local hook = planapi.planado_webhook { secret = SECRET }
    local first = assert(hook:handle(delivery("ev-3", "job-1", 1, 1)))
    local again = assert(hook:handle(delivery("ev-3", "job-1", 1, 2)))
    assert.is_true(first.fresh)
    assert.is_false(again.fresh)
    assert.is_true(again.duplicate)
    assert.equal(200, again.answer)
  end)

  it("keeps the last write: an older version after a newer one is stale", function()
    local hook = planapi.planado_webhook { secret = SECRET }
    assert.is_true(hook:handle(delivery("ev-a", "job-7", 1)).fresh)
    assert.is_true(hook:handle(delivery("ev-c", "job-7", 3)).fresh)
    local old = hook:handle(delivery("ev-b", "job-7", 2))
    assert.is_true(old.stale)
    assert.is_false(old.fresh)
    assert.is_true(hook:handle(delivery("ev-x", "job-8", 1)).fresh) -- per resource
  end)

  it("release lets the next delivery of a failed event be handled", function()
    local hook = planapi.planado_webhook { secret = SECRET }
    local e = hook:handle(delivery("ev-r", "job-9", 5))
    hook:release(e)
    assert.is_true(hook:handle(delivery("ev-r", "job-9", 5, 2)).fresh)
  end)

  describe("memory store", function()
    it("forgets the oldest events beyond its size", function()
      local s = stores.memory { max = 4 }
      for i = 1, 10 do assert.equal("new", s:claim("e" .. i, "k" .. i, 1)) end
      assert.equal("new", s:claim("e1", "k1", 2)) -- forgotten, so new again
      assert.equal("duplicate", s:claim("e10", "k10", 1))
    end)
  end)

  describe("file store", function()
    local dir
    before_each(function() dir = tmpdir() end)
    after_each(function() rmtree(dir) end)

    it("is shared by every store on the same directory and survives a restart", function()
      local a = stores.file { dir = dir }
      local b = stores.file { dir = dir }
      assert.equal("new", a:claim("ev-1", "job:1", 1))
      assert.equal("duplicate", b:claim("ev-1", "job:1", 1))
      assert.equal("new", b:claim("ev-2", "job:1", 3))
      assert.equal("stale", a:claim("ev-3", "job:1", 2))
      local restarted = stores.file { dir = dir }
      assert.equal("duplicate", restarted:claim("ev-2", "job:1", 3))
    end)

    -- Under LuaJIT tostring keeps 14 digits: a version written with it came
    -- back as 1.7000000001235e+15, and every later version looked stale.
    it("keeps a 16-digit version exact across processes", function()
      local s = stores.file { dir = dir }
      local v = 1700000000123456
      assert.equal("new", s:claim("ev-1", "job:1", v))
      local status, previous = stores.file { dir = dir }:claim("ev-2", "job:1", v + 1)
      assert.equal("new", status)
      assert.equal(v, previous)
      assert.equal("stale", s:claim("ev-3", "job:1", v))
      s:release("ev-2", "job:1", v)
      local _, restored = s:claim("ev-4", "job:1", v + 2)
      assert.equal(v, restored)
      assert.equal("new", s:claim("ev-6", "job:2", 0.1)) -- fractions come back exactly too
      assert.equal(0.1, select(2, s:claim("ev-7", "job:2", 2)))
    end)

    it("keeps names inside its directory", function()
      local s = stores.file { dir = dir }
      assert.equal("new", s:claim("../../escape", "job:../../x", 1))
      local top = planapi.core.list_dir(dir)
      table.sort(top)
      assert.same({ "events", "lock", "versions" }, top)
    end)

    it("forgets events after the retention period", function()
      local now = 1700000000
      local s = stores.file { dir = dir, retention_days = 2, time = function() return now end }
      assert.equal("new", s:claim("ev-old", "job:1", 1))
      now = now + 5 * 86400
      s:prune()
      assert.equal("new", s:claim("ev-old", "job:2", 1))
    end)

    it("lets exactly one of several processes claim each event", function()
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(([[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local s = require("planapi.webhook_store").file { dir = %q }
local won = 0
for i = 1, 60 do
  if s:claim("ev-" .. i, "job:" .. i, 1) == "new" then won = won + 1 end
end
print(won)
]]):format(dir))
      f:close()
      local procs = {}
      for i = 1, 4 do procs[i] = assert(io.popen("lua5.4 " .. script)) end
      local total = 0
      for i = 1, 4 do
        total = total + assert(tonumber(procs[i]:read "a"))
        procs[i]:close()
      end
      os.remove(script)
      assert.equal(60, total)
    end)
  end)
end)
