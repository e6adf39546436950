-- The OpenResty gateway's logic (examples/openresty/gateway_jobs.lua: what
-- it calls for a task or an event) tested without nginx, on planapi.testing's
-- fakes and deliveries. What only nginx shows (cosockets, workers sharing
-- the rate and the events store, the answers of each location, the timers)
-- is spec/60-62's, which run the real gateway against the sandbox.
--
--   busted --lua=lua5.4 examples/spec   (from a checkout, after `make`; see README, "Testing your scripts")
local planapi = require "planapi"
local testing = require "planapi.testing"
package.path = "examples/openresty/?.lua;" .. package.path
local jobs = require "gateway_jobs"

-- The gateway's two clients, each answering from its fake.
local function clients(planfix, planado)
  return { rest = planapi.planfix_rest { account = "acme", token = "t", transport = planfix },
    planado = planapi.planado { api_key = "k", transport = planado } }
end

local TASK_7 = testing.rest.ok { task = { id = 7, name = "Fix the pump", description = "Basement" } }

describe("the OpenResty gateway", function()
  it("makes a task's job once, with the task's text", function()
    local planado = testing.fake { handlers = { ["POST jobs"] = testing.planado.created("job_uuid", "job-7") } }
    local result, created = jobs.task_to_job(clients(testing.fake { TASK_7 }, planado), 7)
    assert.is_true(created)
    assert.same({ job_uuid = "job-7", external_id = "planfix-7", task_id = 7 }, result)
    assert.same({ external_id = "planfix-7", description = "Fix the pump\n\nBasement" }, planado.requests[1].body)
  end)

  it("answers a task sent before with the job made then, never a second one", function()
    local planado = testing.fake { handlers = {
      ["POST jobs"] = testing.planado.error(422, "external_id: has already been taken"),
      ["GET jobs/planfix-7"] = testing.planado.object("job", { uuid = "job-first", external_id = "planfix-7" }),
    } }
    local result, created = jobs.task_to_job(clients(testing.fake { TASK_7 }, planado), 7)
    assert.is_false(created)
    assert.equal("job-first", result.job_uuid)
    assert.equal(1, planado:count "POST jobs")
  end)

  it("comments on the task of a finished job delivered by Planado's webhook, once", function()
    local planfix = testing.fake { handlers = { ["post-task-add-comment"] = testing.rest.created(500) } }
    local c = clients(planfix, testing.fake {})
    local hook = planapi.planado_webhook { secret = "s" }
    local d = testing.planado_delivery { secret = "s", event_type = "job_finished",
      job = { external_id = "planfix-7", resolution = { name = "Done", comment = "New filter" } } }
    local function handler(event) return jobs.on_planado_event(c, event) end
    assert.equal(200, hook:serve(d, handler).status)
    assert.equal(200, hook:serve(d, handler).status) -- delivered again: answered, not handled
    assert.same({ "post-task-add-comment" }, planfix:operations())
    assert.same({ id = 7, description = "Planado job finished: Done (New filter)" }, planfix.requests[1].params)
  end)

  it("leaves alone the events that are not a finished job of a Planfix task", function()
    local planfix = testing.fake {}
    local c = clients(planfix, testing.fake {})
    for _, event in ipairs {
      { kind = "job", type = "job_updated", resource = { external_id = "planfix-7" } },
      { kind = "job", type = "job_finished", resource = { external_id = "crm-7" } },
      { kind = "client", type = "job_finished", resource = { external_id = "planfix-7" } },
    } do
      assert.is_true(jobs.on_planado_event(c, event))
    end
    assert.equal(0, #planfix.requests)
  end)

  it("makes the job of a Planfix event's task, and gives up at once on a task Planfix does not have", function()
    local missing = testing.rest.error { status = 404, code = 1000, message = "Task not found by id 8" }
    local planfix = testing.fake { TASK_7, missing }
    local planado = testing.fake { handlers = { ["POST jobs"] = testing.planado.created("job_uuid", "job-7") } }
    local c = clients(planfix, planado)
    assert.is_true(jobs.on_planfix_event(c, { task_id = "7" }))
    local ok, permanent, why = jobs.on_planfix_event(c, { task_id = "8" })
    assert.same({ false, "permanent" }, { ok or false, permanent })
    assert.matches("Task not found by id 8", why)
    assert.same({ 7, 8 }, { planfix.requests[1].params.id, planfix.requests[2].params.id })
    assert.equal(1, #planado.requests)
  end)
end)
