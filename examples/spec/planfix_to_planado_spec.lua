-- The bridge (examples/planfix_to_planado.lua) tested as a user tests a
-- planapi script: no account, no network, no sandbox. planapi.testing's
-- fake answers for Planfix and Planado, and builds the deliveries the
-- receivers get. Each test runs in milliseconds: the clients' pacing and
-- retries wait in the fake's time.
--
--   busted --lua=lua5.4 examples/spec   (from a checkout, after `make`; see README, "Testing your scripts")
package.path = "examples/?.lua;" .. package.path
local planapi = require "planapi"
local testing = require "planapi.testing"
local Bridge = require "planfix_to_planado"

local SECRET = "example-webhook-secret"

-- Tasks as the REST list returns them.
local TASKS = {
  { id = 1, name = "Fix the tap", description = "Kitchen" },
  { id = 2, name = "Replace the pump" },
}

local function bridge(planfix_fake, planado_fake, source)
  local planfix
  if source == "xml" then
    planfix = planapi.planfix_xml { account = "acme", api_key = "k", token = "t", transport = planfix_fake }
  else
    planfix = planapi.planfix_rest { account = "acme", token = "t", transport = planfix_fake }
  end
  return Bridge.new {
    source = source or "rest", planfix = planfix, status = 1, done_status = 3,
    planado = planapi.planado { api_key = "k", transport = planado_fake },
    webhook = planapi.planado_webhook { secret = SECRET },
  }
end

local function finished(uuid, task_id)
  return testing.planado_delivery { secret = SECRET, event_type = "job_finished",
    job = { uuid = uuid, external_id = "planfix-" .. task_id, serial_no = "J-7",
      resolution = { name = "Done", comment = "Pump replaced" } } }
end

describe("the Planfix to Planado bridge", function()
  it("makes a job for each task in the status that Planado does not have yet", function()
    local planfix = testing.fake { testing.rest.task_list(TASKS) }
    local planado = testing.fake { handlers = {
      ["GET jobs/planfix-1"] = testing.planado.error(404, "Job not found"),
      ["GET jobs/planfix-2"] = testing.planado.object("job", { uuid = "job-2", external_id = "planfix-2" }),
      ["POST jobs"] = testing.planado.created("job_uuid", "job-1"),
    } }
    local counts, jobs = bridge(planfix, planado):sync()
    assert.same({ tasks = 2, created = 1, existing = 1, failed = 0 }, counts)
    assert.same({ ["1"] = "job-1", ["2"] = "job-2" }, jobs)
    -- what was asked of Planfix: the tasks in status 1
    local list = planfix.requests[1]
    assert.equal("get-task-list", list.operation)
    assert.same({ { type = 10, operator = "equal", value = 1 } }, list.params.filters)
    -- what was sent to Planado: one create, with the task's text
    assert.equal(1, planado:count "POST jobs")
    local create = planado.requests[2]
    assert.same({ external_id = "planfix-1", description = "Fix the tap\n\nKitchen" }, create.body)
  end)

  it("reads the tasks from the XML API too", function()
    local planfix = testing.fake { handlers = {
      ["task.getList"] = testing.xml.list("tasks", "task", {
        { id = 5, title = "Fix the tap", status = 1 }, { id = 6, title = "Later", status = 2 } }),
    } }
    local planado = testing.fake { handlers = {
      ["GET jobs/*"] = testing.planado.error(404, "Job not found"),
      ["POST jobs"] = testing.planado.created("job_uuid", "job-5"),
    } }
    local counts = bridge(planfix, planado, "xml"):sync()
    assert.same({ tasks = 1, created = 1, existing = 0, failed = 0 }, counts)
    assert.equal("planfix-5", planado.requests[2].body.external_id)
  end)

  it("reports a finished job on its task once: a comment, then the done status", function()
    local planfix = testing.fake { handlers = {
      ["post-task-add-comment"] = testing.rest.created(900),
      ["post-task-by-id"] = testing.rest.ok {},
    } }
    local b = bridge(planfix, testing.fake {})
    local d = finished("job-1", 1)
    local event = assert(b:on_webhook(d.headers, d.body))
    assert.equal("1", event.reported)
    assert.same({ "post-task-add-comment", "post-task-by-id" }, planfix:operations())
    assert.equal(1, planfix.requests[1].params.id)
    assert.matches("job J%-7 finished%. Resolution: Done%. Pump replaced", planfix.requests[1].params.description)
    assert.same({ id = 1, status = { id = 3 } }, planfix.requests[2].params)
    -- Planado delivers it again: answered, not reported twice
    assert.is_true(assert(b:on_webhook(d.headers, d.body)).duplicate)
    assert.equal(2, #planfix.requests)
  end)

  it("answers 503 when Planfix fails, so Planado delivers again, and reports then", function()
    local planfix = testing.fake { handlers = {
      ["post-task-add-comment"] = { testing.rest.error { status = 500, code = 30, message = "Rest API error" },
        testing.rest.created(901) },
      ["post-task-by-id"] = testing.rest.ok {},
    } }
    local b = bridge(planfix, testing.fake {})
    local d = finished("job-1", 1)
    local event, err = b:on_webhook(d.headers, d.body)
    assert.is_nil(event)
    assert.equal(503, err.answer)
    assert.is_true(assert(b:on_webhook(d.headers, d.body)).fresh)
    assert.equal(2, planfix:count "post-task-add-comment")
  end)

  it("refuses a delivery with the wrong secret, and asks nothing of Planfix", function()
    local planfix = testing.fake {}
    local b = bridge(planfix, testing.fake {})
    local d = testing.planado_delivery { secret = "wrong", event_type = "job_finished",
      job = { external_id = "planfix-1" } }
    local event, err = b:on_webhook(d.headers, d.body)
    assert.is_nil(event)
    assert.equal(401, err.answer)
    assert.equal(0, #planfix.requests)
  end)

  it("makes the job of a task when its Planfix scenario request arrives", function()
    local planfix = testing.fake { handlers = {
      ["get-task-by-id"] = testing.rest.ok { task = { id = 8, name = "Fix the tap", status = { id = 1 } } },
    } }
    local planado = testing.fake { handlers = {
      ["GET jobs/planfix-8"] = testing.planado.error(404, "Job not found"),
      ["POST jobs"] = testing.planado.created("job_uuid", "job-8"),
    } }
    local b = bridge(planfix, planado)
    local receiver = planapi.planfix_events { secret = "pf-secret", secret_in = "field:secret" }
    local request = testing.planfix_request { secret = "pf-secret", fields = { event = "task_changed", task_id = 8 } }
    local response = receiver:serve(request, function(event) return b:on_planfix_event(event) end)
    assert.equal(200, response.status)
    assert.same({ "GET jobs/planfix-8", "POST jobs" }, planado:operations())
    assert.equal("planfix-8", planado.requests[2].body.external_id)
  end)
end)
