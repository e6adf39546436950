-- The Planfix scenario receiver (planapi.planfix_events): the secret where
-- the template puts it, JSON and form templates, an id from fields or a
-- function, and without one a hash of the body (checked against md5sum)
-- remembered for a window; versions per key; handling through the core;
-- and event:fetch reading the task again from the sandbox's REST API.
local planapi = require "planapi"
local portable = require "portable"
local sandbox = require "sandbox"

local SECRET = "pfhook-0123456789abcdef"
require("journal").secret(SECRET)

local function clock_at(t)
  local c = { now = t or 1700000000 }
  c.fn = function() return c.now end
  return c
end

local function json_post(doc, headers)
  local h = { ["Content-Type"] = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return { method = "POST", path = "/hooks/planfix", headers = h, body = planapi.json.encode(doc) }
end

-- The recommended template's body (README): event, task, change time, secret.
local function template(task, changed_at, extra)
  local doc = { event = "task.changed", task_id = task, changed_at = changed_at, secret = SECRET }
  for k, v in pairs(extra or {}) do doc[k] = v end
  return doc
end

local function md5sum(text)
  local path = os.tmpname()
  portable.write_file(path, text)
  local out = portable.run("md5sum < " .. path)
  os.remove(path)
  return out:match "^(%x+)"
end

describe("Planfix scenario receiver", function()
  it("takes the secret from a header, a body field or the query, and refuses a wrong or missing one", function()
    for _, case in ipairs {
      { "header:X-Hook-Token", function(v)
        return json_post(template(1, "a", { secret = false }), { ["X-Hook-Token"] = v })
      end },
      { "field:secret", function(v) return json_post(template(1, "a", { secret = v or false })) end },
      { "query:token", function(v)
        local r = json_post(template(1, "a", { secret = false }))
        r.query = { token = v }
        return r
      end },
    } do
      local pf = planapi.planfix_events { secret = SECRET, secret_in = case[1] }
      assert.equal(401, pf:receive(case[2]("wrong")).status, case[1])
      assert.equal(401, pf:receive(case[2](nil)).status, case[1])
      local response, event = pf:receive(case[2](SECRET))
      assert.equal(200, response.status, case[1])
      assert.equal("task.changed", event.type)
      assert.equal(1, event.task_id)
    end
  end)

  it("reads a form template as well as JSON", function()
    local pf = planapi.planfix_events { secret = SECRET, secret_in = "field:secret", id = { "task_id", "changed_at" } }
    local response, event = pf:receive {
      method = "POST", headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
      body = "event=task.created&task_id=1001&changed_at=06-12-2026+17%3A20&secret=" .. SECRET,
    }
    assert.equal(200, response.status, response.body)
    assert.equal("1001|06-12-2026 17:20", event.id)
    assert.equal("task.created", event.type)
    assert.equal(1001, event.task_id)
  end)

  it("knows an event by the fields named as its id, or by a function", function()
    local pf = planapi.planfix_events { secret = SECRET, secret_in = "field:secret", id = { "task_id", "changed_at" } }
    assert.truthy(select(2, pf:receive(json_post(template(7, "10:00")))))
    assert.equal("duplicate", select(3, pf:receive(json_post(template(7, "10:00", { note = "retry" })))).claim)
    assert.truthy(select(2, pf:receive(json_post(template(7, "10:01")))))
    local response, _, err = pf:receive(json_post(template(nil, "10:02")))
    assert.equal(400, response.status)
    assert.truthy(err.message:find("id", 1, true))
    local fn = planapi.planfix_events { secret = SECRET, secret_in = "field:secret",
      id = function(fields) return "n-" .. fields.task_id end }
    assert.equal("n-8", select(2, fn:receive(json_post(template(8, "x")))).id)
  end)

  it("without an id, dedupes by the MD5 of the body within the window", function()
    local c = clock_at()
    local pf = planapi.planfix_events { secret = SECRET, secret_in = "field:secret", window = 600, clock = c.fn }
    local request = json_post(template(5, "12:00"))
    local _, event = pf:receive(request)
    assert.equal("md5:" .. md5sum(request.body), event.id)
    assert.truthy(pf:handle(event, function() return true end))
    c.now = c.now + 599
    assert.equal("duplicate", select(3, pf:receive(request)).claim) -- Planfix's retry of the same request
    assert.truthy(select(2, pf:receive(json_post(template(5, "12:01"))))) -- another body, another event
    c.now = c.now + 1
    assert.truthy(select(2, pf:receive(request))) -- past the window: a new event
  end)

  it("orders the events of one key by version: an older one is stale", function()
    local pf = planapi.planfix_events { secret = SECRET, secret_in = "field:secret", id = "event_id", key = "task_id",
      version = "seq" }
    assert.truthy(select(2, pf:receive(json_post(template(3, "x", { event_id = "a", seq = 5 })))))
    assert.equal("stale", select(3, pf:receive(json_post(template(3, "x", { event_id = "b", seq = "4" })))).claim)
    assert.truthy(select(2, pf:receive(json_post(template(3, "x", { event_id = "c", seq = 6 })))))
    assert.truthy(select(2, pf:receive(json_post(template(4, "x", { event_id = "d", seq = 1 })))))
  end)

  it("retries a failed handler through pending, handled once", function()
    local c = clock_at()
    local pf = planapi.planfix_events { secret = SECRET, secret_in = "field:secret", clock = c.fn, retry_delay = 10 }
    local runs = 0
    local function handler(ev)
      runs = runs + 1
      assert.equal(9, ev.task_id)
      return runs > 1 or nil, "not yet"
    end
    local _, event = pf:receive(json_post(template(9, "t")))
    assert.is_nil(pf:handle(event, handler))
    local handled = {}
    for _, wait in ipairs { 10, 100 } do -- the retry delay, then long after the success
      c.now = c.now + wait
      handled[#handled + 1] = pf:pending(handler)
    end
    assert.same({ 1, 0 }, handled)
    assert.equal(2, runs)
  end)

  -- A handler that logs its event (ev.fields as JSON, the usual first line
  -- of a handler) must not log the secret the template carries in a field.
  it("hands the handler the fields without the secret field, first time and through pending", function()
    local c = clock_at()
    local pf = planapi.planfix_events { secret = SECRET, secret_in = "field:secret", clock = c.fn, retry_delay = 10 }
    local seen = {}
    local function handler(ev)
      seen[#seen + 1] = planapi.json.encode(ev.fields)
      return #seen > 1 or nil, "not yet"
    end
    for _, request in ipairs {
      json_post(template(7, "t")),
      { method = "POST", path = "/hooks/planfix", headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
        body = "event=task.changed&task_id=8&changed_at=t&secret=" .. SECRET },
    } do
      seen = {}
      local _, event = pf:receive(request)
      assert.truthy(event)
      pf:handle(event, handler)
      c.now = c.now + 10
      assert.equal(1, pf:pending(handler))
      assert.equal(2, #seen)
      for _, text in ipairs(seen) do
        assert.matches("task.changed", text, 1, true)
        assert.is_nil(text:find(SECRET:sub(1, 6), 1, true), "the secret in the handler's fields: " .. text)
      end
    end
  end)

  it("refuses unknown options and a malformed id option", function()
    assert.has_error(function() planapi.planfix_events { secret = SECRET, secret_in = "field:secret", idd = "x" } end)
    assert.has_error(function() planapi.planfix_events { secret = SECRET, secret_in = "field:secret", id = 5 } end)
    assert.has_error(function() planapi.planfix_events { secret = SECRET, secret_in = "field:secret", window = 0 } end)
    assert.has_error(function() planapi.planfix_events { secret = SECRET } end) -- where is it?
  end)

  describe("event:fetch", function()
    it("reads the task again over REST (the sandbox's API)", function()
      sandbox.reset()
      local rest = sandbox.rest()
      local id = assert(rest.tasks:create { name = "Pump broke" })
      local pf = planapi.planfix_events { secret = SECRET, secret_in = "field:secret" }
      local fetched
      local response = pf:serve(json_post(template(id, "now")), function(ev)
        fetched = assert(ev:fetch(rest, { fields = "id,name" }))
        return true
      end)
      assert.equal(200, response.status)
      assert.equal("Pump broke", fetched.name)
      local missing = pf:receive(json_post(template(99999, "now")))
      assert.equal(200, missing.status)
      local _, event = pf:receive(json_post(template(99998, "later")))
      local task, err = event:fetch(rest)
      assert.is_nil(task)
      assert.truthy(err.kind)
      assert.has_error(function() event:fetch({}) end)
    end)
  end)
end)
