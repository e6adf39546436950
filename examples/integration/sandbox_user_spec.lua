-- A user's own integration test against `planapi sandbox`: the three APIs
-- on this machine, with no account and no network.
--
--   eval "$(planapi sandbox start)"     # PLANFIX_*, PLANADO_*, PLANAPI_CA_FILE, PLANAPI_SANDBOX_*
--   busted examples/integration/sandbox_user_spec.lua
--   planapi sandbox stop
--
-- The clients read the same variables a script reads in production, so
-- the code under test runs unchanged; only the sandbox's control API
-- (PLANAPI_SANDBOX_CONTROL_URL: reset, faults) is test-only.
local planapi = require "planapi"
local core = require "planapi.core"

local function env(name)
  return assert(os.getenv(name), name .. " is not set: run eval \"$(planapi sandbox start)\" first")
end

-- The production code would build its clients exactly so. The sandbox
-- enforces no rate unless told to: pacing off keeps the tests fast.
local function clients()
  local ca = env "PLANAPI_CA_FILE"
  return {
    rest = planapi.planfix_rest { base_url = env "PLANFIX_REST_URL", token = env "PLANFIX_TOKEN",
      ca_file = ca, rate = false },
    xml = planapi.planfix_xml { url = env "PLANFIX_XML_URL", account = env "PLANFIX_ACCOUNT",
      api_key = env "PLANFIX_API_KEY", token = env "PLANFIX_XML_TOKEN",
      private_key = env "PLANFIX_PRIVATE_KEY", ca_file = ca, rate = false },
    planado = planapi.planado { url = env "PLANADO_URL", api_key = env "PLANADO_API_KEY", ca_file = ca,
      rate = false },
  }
end

-- The code under test: a Planfix task becomes a Planado job, once.
local function task_to_job(c, task_id)
  local task = assert(c.rest.tasks:get(task_id, { fields = "id,name" }))
  local external_id = "planfix-" .. task.id
  local job = c.planado.jobs:get(external_id)
  if job then return job.uuid end
  return assert(c.planado.jobs:create { external_id = external_id, description = task.name })
end

-- The sandbox's control API (sandbox/README.md, "Control API"): plain HTTP on loopback.
local function control(method, path, body)
  local c = core.client { base_url = env "PLANAPI_SANDBOX_CONTROL_URL", allow_http = true }
  local res = assert(c:perform(c:prepare { method = method, path = path, body = body }))
  assert(res.status < 300, res.body)
  return c:decode(res)
end

describe("my integration with Planfix and Planado (against planapi sandbox)", function()
  local c
  before_each(function()
    control("POST", "reset") -- every test starts from the sandbox's seed data
    c = clients()
  end)

  it("creates a Planfix task that the XML API sees too", function()
    local id = assert(c.rest.tasks:create { name = "Replace the pump" })
    local got = assert(c.xml:call("task.get", { task = { id = id } }))
    assert.equal("Replace the pump", got.task.title)
  end)

  it("makes one Planado job per task, however often it runs", function()
    local id = assert(c.rest.tasks:create { name = "Check the boiler" })
    local first = task_to_job(c, id)
    assert.equal(first, task_to_job(c, id))
    local job = assert(c.planado.jobs:get("planfix-" .. id))
    assert.equal("Check the boiler", job.description)
  end)

  it("survives a Planado outage of one request", function()
    control("POST", "fault", { mode = "status", status = 503, count = 1, path = "/planado/v2/jobs" })
    local fast = planapi.planado { url = env "PLANADO_URL", api_key = env "PLANADO_API_KEY",
      ca_file = env "PLANAPI_CA_FILE", rate = false, sleep = function() end } -- retry at once
    local jobs = assert(fast.jobs:all())
    assert.is_true(#jobs > 0)
    local log = control("GET", "log") -- every request the sandbox answered, oldest first
    assert.same({ 503, 200 }, { log[1].status, log[2].status })
  end)
end)
