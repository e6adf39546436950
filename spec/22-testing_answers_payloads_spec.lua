-- planapi.testing's builders judged by what is not the builders' own code:
-- the REST answers against the official OpenAPI file's response schemas
-- (Ajv, the JSON Schema validator Stoplight Prism brings:
-- spec/helpers/openapi_responses.js); the answers of all three APIs beside
-- the sandbox's for the same content (the same document, status and type);
-- and the event payloads by the real receivers (the Planado webhook's and
-- the Planfix scenario's), each in every form the builder offers.
local planapi = require "planapi"
local testing = require "planapi.testing"
local openapi = require "openapi"

-- Each case's body is the builder's own text, put into the JSON as it is.
local function verdicts(cases)
  local with_bodies = {}
  for i, c in ipairs(cases) do
    with_bodies[i] = { schema = c.schema, operation = c.operation, status = c.status, body = c.answer.body }
  end
  return openapi.verdicts(with_bodies)
end

describe("testing.rest's answers", function()
  it("validate against the official OpenAPI file's response schemas; a wrong body does not (the oracle can fail)",
    function()
      local rest = testing.rest
      local cases = {
        { operation = "get-task-list", status = 200, answer = rest.task_list {
          { id = 1, name = "Fix the tap", status = { id = 2, name = "In progress" } }, { id = 2, name = "Call" } } },
        { operation = "get-task-list", status = 200, answer = rest.task_list {} },
        { operation = "get-contact-list", status = 200, answer = rest.list("contacts", { { id = 5, name = "Ann" } }) },
        { operation = "get-task-by-id", status = 200, answer = rest.ok { task = { id = 7, name = "New" } } },
        { operation = "post-task", status = 201, answer = rest.created(7) },
        { operation = "post-task", status = 400,
          answer = rest.error { code = 41, message = "Status not find by id 2" } },
        { operation = "post-task-by-id", status = 404,
          answer = rest.error { status = 404, code = 1000, message = "Task for update not found by id 1" } },
        { operation = "post-task-by-id", status = 200,
          answer = rest.ok { failures = { { field = "counterparty", error = "Field change failed" } } } },
        { schema = "ApiResponseError", answer = rest.rate_limited { retry_after = 2 } },
        -- controls: what the schemas refuse
        { operation = "get-task-list", status = 200, answer = rest.task_list { { id = "one" } }, refused = true },
        { operation = "post-task", status = 201, answer = rest.ok {}, refused = true },
      }
      local result = verdicts(cases)
      assert.equal(#cases, #result)
      for i, c in ipairs(cases) do
        local v = result[i]
        local what = c.operation and (c.operation .. " " .. c.status) or c.schema
        assert.is_nil(v.missing, what .. ": " .. tostring(v.missing))
        assert.equal(not c.refused, v.valid, what .. ": " .. tostring(v.errors))
        if not c.refused then assert.equal(c.status or 429, c.answer.status) end
      end
    end)

  it("rest.queued answers the 202 the spec documents for a task update", function()
    local op = planapi.planfix_rest.operation "post-task-by-id"
    local documented = false
    for _, s in ipairs(op.success) do documented = documented or s == 202 end
    assert.is_true(documented)
    assert.equal(202, testing.rest.queued().status)
  end)
end)

describe("testing.planado_delivery", function()
  local SECRET = "spec-testing-webhook-secret"

  it("is a delivery the Planado webhook receiver takes: secret header, event, resource, version, attempt", function()
    local hook = planapi.planado_webhook { secret = SECRET }
    local seen = {}
    local d = testing.planado_delivery { secret = SECRET, event_type = "job_finished", attempt = 2,
      job = { uuid = "job-1", external_id = "planfix-5", resolution = { name = "Done" } } }
    local response = hook:serve(d, function(event) seen[#seen + 1] = event return true end)
    assert.equal(200, response.status)
    assert.equal(1, #seen)
    local e = seen[1]
    assert.same({ "job_finished", "job", "job-1", 1, 2 }, { e.type, e.kind, e.resource_uuid, e.version, e.attempt })
    assert.equal("planfix-5", e.resource.external_id)
    assert.equal("new", planapi.json.decode(response.body).status)
    -- the same delivery again is a duplicate, by its event_uuid
    assert.equal("duplicate", planapi.json.decode(hook:serve(d, error).body).status)
  end)

  it("gives each delivery its own event_uuid, orders versions, and works with hook:handle(headers, body)", function()
    local hook = planapi.planado_webhook { secret = SECRET }
    local newer = testing.planado_delivery { secret = SECRET, client = { uuid = "c-1", version = 3 } }
    local older = testing.planado_delivery { secret = SECRET, client = { uuid = "c-1", version = 2 } }
    assert.not_equal(planapi.json.decode(newer.body).event_uuid, planapi.json.decode(older.body).event_uuid)
    local e1 = assert(hook:handle(newer.headers, newer.body))
    assert.is_true(e1.fresh)
    assert.equal("client_updated", e1.type)
    local e2 = assert(hook:handle(older.headers, older.body))
    assert.is_true(e2.stale)
  end)

  it("with a wrong or no secret is refused by the receiver (401)", function()
    local hook = planapi.planado_webhook { secret = SECRET }
    assert.equal(401, hook:serve(testing.planado_delivery { secret = "wrong", job = {} }, error).status)
    assert.equal(401, hook:serve(testing.planado_delivery { job = {} }, error).status)
  end)
end)

describe("testing.planfix_request", function()
  local SECRET = "spec-testing-scenario-secret"
  local PLACES = { "field:secret", "header:X-Scenario-Token", "query:token" }

  for _, place in ipairs(PLACES) do
    for _, format in ipairs { "json", "form" } do
      it(("is a scenario request planfix_events takes, its secret in %s, as %s"):format(place, format), function()
        local pf = planapi.planfix_events { secret = SECRET, secret_in = place, id = { "event", "task_id" } }
        local got
        local request = testing.planfix_request { secret = SECRET, secret_in = place, format = format,
          fields = { event = "task_changed", task_id = 42, name = "Fix the tap & sink" } }
        local response = pf:serve(request, function(event) got = event return true end)
        assert.equal(200, response.status)
        assert.equal("task_changed", got.type)
        assert.equal(42, got.task_id)
        assert.equal("Fix the tap & sink", got.fields.name)
        assert.is_nil(got.fields.secret)
        local wrong = testing.planfix_request { secret = "wrong", secret_in = place, format = format,
          fields = { event = "task_changed", task_id = 42 } }
        assert.equal(401, pf:serve(wrong, error).status)
      end)
    end
  end

  it("refuses a field it does not know and a format it cannot make", function()
    assert.has_error(function() testing.planfix_request { field = {} } end)
    assert.has_error(function() testing.planfix_request { format = "xml" } end)
    assert.has_error(function() testing.planado_delivery { jobs = {} } end)
  end)
end)

-- The same content answered by the sandbox (the emulator the clients' own
-- specs run against) and by a builder: the same document, status and type.
describe("the builders beside the sandbox's answers", function()
  local sandbox = require "sandbox"
  local core = planapi.core

  -- One raw exchange with the sandbox: no pacing, no retries, no parse.
  local function raw(client, ...)
    return assert(client:perform(client:prepare(...)))
  end

  local function same_answer(server, built, decode)
    assert.equal(server.status, built.status)
    local stype = (server.headers["content-type"] or ""):match "^[^;]+"
    local btype = built.headers["Content-Type"]:match "^[^;]+"
    assert.equal(stype, btype)
    assert.same(decode(server.body), decode(built.body))
  end

  local function json(text) return assert(planapi.json.decode(text, { nulls = "keep" })) end

  before_each(function() sandbox.reset() end)
  after_each(function() sandbox.reset() end) -- the queued task and Planado's rate limit go

  it("REST: a task list page, an error, a queued update", function()
    local rest = sandbox.rest()
    local page = raw(rest, "get-task-list", { pageSize = 3, fields = "id,name,status" })
    same_answer(page, testing.rest.task_list(json(page.body).tasks), json)
    local missing = raw(rest, "get-task-by-id", { id = 987654 })
    local doc = json(missing.body)
    same_answer(missing, testing.rest.error { status = missing.status, code = doc.code, message = doc.error }, json)
    local id = json(page.body).tasks[1].id
    sandbox.config { queue_updates = { id } }
    local queued = raw(rest, "post-task-by-id", { id = id, name = "Queued" })
    same_answer(queued, testing.rest.queued(), json)
  end)

  it("XML: a page of task.getList and an error with its code", function()
    local xml = sandbox.xml()
    local function decode(text) return assert(core.xml_decode(text, { tasks = true })) end
    local page = raw(xml, "task.getList", { pageCurrent = 1, pageSize = 2 })
    local tasks = decode(page.body).tasks
    local items = {}
    for i, t in ipairs(tasks) do items[i] = t end
    same_answer(page, testing.xml.list("tasks", "task", items, { total = tonumber(tasks["@totalCount"]) }), decode)
    local failed = raw(xml, "task.get", { task = { id = 987654 } })
    local doc = decode(failed.body)
    assert.equal("error", doc["@status"])
    same_answer(failed, testing.xml.error(doc.code, doc.message), decode)
  end)

  it("Planado: a webhook delivery has the sandbox's keys, at the top and in its context", function()
    local pd = sandbox.planado()
    local uuid = assert(pd.jobs:create { external_id = "testing-keys", description = "d" })
    assert(pd.jobs:update(uuid, { description = "changed" }))
    local events = sandbox.control("GET", "planado/events?entity_uuid=" .. uuid .. "&event_type=job_updated").events
    local server = events[1].body
    local built = json(testing.planado_delivery { event_type = "job_updated", job = server.job,
      previous = server.previous_job }.body)
    local function keys(t)
      local out = {}
      for k in pairs(t) do out[#out + 1] = k end
      table.sort(out)
      return out
    end
    assert.same(keys(server), keys(built))
    assert.same(keys(server.context), keys(built.context))
  end)

  it("Planado: a list, a 404 and a 429 with its Retry-After", function()
    local pd = sandbox.planado()
    local list = raw(pd, "GET", "jobs")
    same_answer(list, testing.planado.list("jobs", json(list.body).jobs), json)
    local missing = raw(pd, "GET", "jobs/no-such-job")
    same_answer(missing, testing.planado.error(404, json(missing.body).errors[1].message), json)
    sandbox.config { planado = { rate = { enabled = true, per_minute = 1, burst = 1, retry_after = true } } }
    raw(pd, "GET", "jobs")
    local limited = raw(pd, "GET", "jobs")
    local built = testing.planado.rate_limited { retry_after = tonumber(limited.headers["retry-after"]) }
    same_answer(limited, built, json)
    assert.equal(limited.headers["retry-after"], built.headers["Retry-After"])
  end)
end)
