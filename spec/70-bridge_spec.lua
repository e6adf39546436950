-- examples/planfix_to_planado.lua, the bridge, against the sandbox: sync is
-- idempotent from either Planfix API, a task added in the synced status
-- becomes a job through its Planfix scenario request (once, however often
-- the request comes), and a finished job is reported on its task exactly
-- once, even when delivered twice or after a failure.
package.path = "examples/?.lua;" .. package.path
local planapi = require "planapi"
local sandbox = require "sandbox"
local Bridge = require "planfix_to_planado"

local SECRET = "bridge-spec-secret"
local PF_SECRET = "bridge-spec-scenario-secret"

local function bridge(source)
  return Bridge.new {
    source = source,
    planfix = source == "xml" and sandbox.xml() or sandbox.rest(),
    planado = sandbox.planado(),
    webhook = planapi.planado_webhook { secret = SECRET },
    status = 1, done_status = 3,
  }
end

-- The job_finished delivery Planado would send for a job.
local function finished_delivery(uuid)
  sandbox.control("POST", "planado/jobs/" .. uuid .. "/finish",
    { resolution = { name = "Done", successful = true }, comment = "Pump replaced" })
  local events = sandbox.control("GET", "planado/events?entity_uuid=" .. uuid .. "&event_type=job_finished").events
  return { ["X-Planado-Secret"] = SECRET, ["X-Planado-Delivery-Attempt"] = "1" }, planapi.json.encode(events[1].body)
end

local function comments_of(rest, id)
  local out = {}
  for c in rest.tasks:comments(tonumber(id), { fields = "id,description" }) do out[#out + 1] = c.description end
  return out
end

describe("the Planfix to Planado bridge", function()
  before_each(function() sandbox.reset() end)

  for _, source in ipairs { "rest", "xml" } do
    it(("syncs tasks in a status from %s into jobs, and a re-run creates nothing"):format(source), function()
      local b = bridge(source)
      local counts, jobs = b:sync()
      assert.is_true(counts.tasks >= 2)
      assert.equal(counts.tasks, counts.created)
      assert.equal(0, counts.failed)
      for id, uuid in pairs(jobs) do
        assert.equal("planfix-" .. id, assert(b.planado.jobs:get(uuid)).external_id)
      end
      local again = b:sync()
      assert.equal(0, again.created)
      assert.equal(counts.tasks, again.existing)
      local posts = 0
      for _, e in ipairs(sandbox.log_of "planado") do
        if e.method == "POST" and e.path == "/jobs" then posts = posts + 1 end
      end
      assert.equal(counts.tasks, posts)
    end)
  end

  it("makes the job of a task added in the synced status when its scenario request arrives, once", function()
    local b = bridge "rest"
    b.planfix_events = planapi.planfix_events { secret = PF_SECRET, secret_in = "field:secret" }
    sandbox.control("POST", "planfix/scenarios", { url = sandbox.env().planfix_receiver_url .. "/bridge",
      triggers = { "task_created" }, body = { event = "{{event}}", task_id = "{{task.id}}", secret = PF_SECRET } })
    local synced = assert(b.planfix.tasks:create { name = "Fix the tap", status = { id = 1 } })
    local other = assert(b.planfix.tasks:create { name = "Call the client", status = { id = 2 } })
    assert.equal(0, sandbox.control("POST", "planfix/scenarios/flush", { timeout = 20 }).pending)
    local received = sandbox.control("GET", "planfix/receiver?path=/bridge").requests
    assert.equal(2, #received)
    local answers = {}
    for _ = 1, 2 do -- Planfix retries a request it thinks failed: the same body twice
      for _, r in ipairs(received) do
        local request = { method = r.method, path = r.path, query = r.query, headers = r.headers, body = r.body }
        local response = b.planfix_events:serve(request, function(ev) return b:on_planfix_event(ev) end)
        answers[#answers + 1] = planapi.json.decode(response.body).status
      end
    end
    assert.same({ "new", "new", "duplicate", "duplicate" }, answers)
    assert.equal("planfix-" .. synced, assert(b.planado.jobs:get("planfix-" .. synced)).external_id)
    local _, err = b.planado.jobs:get("planfix-" .. other)
    assert.equal(404, err.status) -- not in the synced status: no job
    local posts = 0
    for _, e in ipairs(sandbox.log_of "planado") do
      if e.method == "POST" and e.path == "/jobs" then posts = posts + 1 end
    end
    assert.equal(1, posts)
  end)

  it("reports a finished job on its task once: a comment and the done status", function()
    local b = bridge "rest"
    local _, jobs = b:sync()
    local id, uuid = next(jobs)
    local headers, body = finished_delivery(uuid)
    local event = assert(b:on_webhook(headers, body))
    assert.equal(tostring(id), event.reported)
    local rest = sandbox.rest()
    local comments = comments_of(rest, id)
    assert.matches("Resolution: Done%. Pump replaced", comments[#comments])
    local task = assert(rest.tasks:get(tonumber(id), { fields = "status" }))
    assert.equal(3, type(task.status) == "table" and task.status.id or task.status)
    -- The same delivery again: answered, not reported twice.
    local again = assert(b:on_webhook(headers, body))
    assert.is_true(again.duplicate)
    assert.equal(#comments, #comments_of(rest, id))
  end)

  it("reports through the XML API too (action.add and task.changeStatus)", function()
    local b = bridge "xml"
    local _, jobs = b:sync()
    local id, uuid = next(jobs)
    assert(b:on_webhook(finished_delivery(uuid)))
    local methods = {}
    for _, e in ipairs(sandbox.xml_log()) do methods[e.xml_method] = (methods[e.xml_method] or 0) + 1 end
    assert.equal(1, methods["action.add"])
    assert.equal(1, methods["task.changeStatus"])
    assert.equal(tostring(id), sandbox.xml_log()[#sandbox.xml_log()].xml.task.id)
  end)

  it("answers an error when Planfix fails, so Planado retries, and then reports once", function()
    local b = bridge "rest"
    b.planfix = sandbox.rest { retry = { attempts = 1 } }
    local _, jobs = b:sync()
    local id, uuid = next(jobs)
    local headers, body = finished_delivery(uuid)
    sandbox.fault { mode = "status", status = 500, count = 1, path = "/comments/" }
    local event, err = b:on_webhook(headers, body)
    assert.is_nil(event)
    assert.equal(503, err.answer)
    assert.is_true(assert(b:on_webhook(headers, body)).fresh) -- the retry is handled
    local comments = comments_of(sandbox.rest(), id)
    assert.matches("Pump replaced", comments[#comments])
  end)

  it("refuses a delivery with the wrong secret", function()
    local b = bridge "rest"
    local _, jobs = b:sync()
    local _, uuid = next(jobs)
    local headers, body = finished_delivery(uuid)
    headers["X-Planado-Secret"] = "wrong"
    local event, err = b:on_webhook(headers, body)
    assert.is_nil(event)
    assert.equal(401, err.answer)
  end)
end)
