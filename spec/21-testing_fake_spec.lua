-- planapi.testing's fake transport under the three real clients: its
-- answers go through the clients' own parsers (the oracle that they are
-- well-formed: a malformed one would be a decode error), what was sent is
-- recorded in API terms, an unexpected request is a clear error, and the
-- limiter and the retry policy wait in the fake's time, not the machine's.
local planapi = require "planapi"
local testing = require "planapi.testing"

local function rest_with(fake, opts)
  local o = { account = "acme", token = "spec-testing-token", transport = fake }
  for k, v in pairs(opts or {}) do o[k] = v end
  return planapi.planfix_rest(o)
end

local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("planapi.testing.fake with the Planfix REST client", function()
  it("answers in order, and records each request by operation, params, body and path", function()
    local fake = testing.fake {
      testing.rest.task_list { { id = 1, name = "Fix the tap" }, { id = 2, name = "Call" } },
      testing.rest.created(7),
      testing.rest.ok { task = { id = 7, name = "New" } },
    }
    local rest = rest_with(fake)
    local tasks = assert(rest:all("get-task-list", { fields = "id,name" }, { page_size = 5 }))
    assert.same({ 1, 2 }, { tasks[1].id, tasks[2].id })
    assert.equal("Call", tasks[2].name)
    assert.equal(7, assert(rest.tasks:create { name = "New", description = "d" }))
    assert.equal("New", assert(rest.tasks:get(7, { fields = "id,name" })).name)
    local r = fake.requests
    assert.equal(3, #r)
    assert.same({ "get-task-list", "post-task", "get-task-by-id" }, fake:operations())
    assert.same({ fields = "id,name", offset = 0, pageSize = 5 }, r[1].params)
    assert.same({ fields = "id,name", offset = 0, pageSize = 5 }, r[1].body)
    assert.equal("POST", r[1].method)
    assert.equal("/rest/task/list", r[1].path)
    assert.same({ name = "New", description = "d" }, r[2].body)
    assert.equal("GET", r[3].method)
    assert.equal("/rest/task/7", r[3].path)
    assert.same({ fields = "id,name" }, r[3].query)
    assert.same({ id = 7, fields = "id,name" }, r[3].params)
    assert.equal("planfix_rest", r[3].api)
    assert.is_true(fake:assert_done())
  end)

  it("keeps a copy of the params: a table the caller changes afterwards leaves the record alone", function()
    local fake = testing.fake { handlers = { ["get-task-by-id"] = testing.rest.ok { task = { id = 1 } } } }
    local rest = rest_with(fake)
    local params = { id = 1, fields = "id" }
    assert(rest:call("get-task-by-id", params))
    params.fields = "changed"
    assert.equal("id", fake.requests[1].params.fields)
  end)

  it("handlers by operationId, by method and the end of the path, lists used once each, functions", function()
    local fake = testing.fake { handlers = {
      ["get-task-by-id"] = function(request) return testing.rest.ok { task = { id = request.params.id } } end,
      ["POST /task/"] = { testing.rest.created(10), testing.rest.created(11) },
      ["GET /contact/*"] = testing.rest.ok { contact = { id = "contact:5" } },
    } }
    local rest = rest_with(fake, { rate = false })
    assert.equal(42, assert(rest.tasks:get(42)).id)
    assert.equal(10, assert(rest.tasks:create { name = "a" }))
    assert.equal(11, assert(rest.tasks:create { name = "b" }))
    assert.equal("contact:5", assert(rest:call("get-contact-by-id", { id = 5 })).contact.id)
    local err = raised(rest.tasks.create, rest.tasks, { name = "c" })
    assert.equal("config", err.kind)
    assert.matches(
      'unexpected request 5 %(post%-task, POST /rest/task/%): the handler "POST /task/" has no answer left',
      tostring(err))
    assert.equal(1, #fake.unexpected)
    assert.equal(3, fake:count "post-task")
  end)

  it("handlers first, then the answers in order, then default", function()
    local fake = testing.fake {
      testing.rest.ok { task = { id = 1 } }, testing.rest.ok { task = { id = 2 } },
      handlers = { ["get-task-list"] = testing.rest.task_list {} },
      default = function(request) return testing.rest.error { status = 404, code = 1000, message = request.path } end,
    }
    local rest = rest_with(fake, { rate = false })
    assert(rest:call("get-task-list", {}))
    assert.equal(1, assert(rest.tasks:get(1)).id)
    assert(rest:call("get-task-list", {}))
    assert.equal(2, assert(rest.tasks:get(2)).id)
    local _, err = rest.tasks:get(3)
    assert.matches("/rest/task/3", err.message)
    assert.is_true(fake:assert_done())
  end)

  it("an unexpected request raises at once, naming it, instead of waiting or retrying", function()
    local fake = testing.fake { testing.rest.task_list {} }
    local rest = rest_with(fake, { rate = false })
    assert(rest:call("get-task-list", {}))
    local err = raised(rest.call, rest, "get-task-by-id", { id = 3 })
    assert.equal("config", err.kind)
    assert.matches("unexpected request 2 %(get%-task%-by%-id, GET /rest/task/3%): the script has 1 answers",
      err.message)
    assert.equal(0, fake.slept)
    local none = testing.fake { handlers = { ["get-task-list"] = testing.rest.task_list {} } }
    err = raised(rest_with(none).call, rest_with(none), "get-task-by-id", { id = 3 })
    assert.matches("no handler for it", err.message)
  end)

  it("assert_done says when scripted answers were never asked for", function()
    local fake = testing.fake { testing.rest.task_list {}, testing.rest.created(1) }
    assert(rest_with(fake):call("get-task-list", {}))
    local err = raised(fake.assert_done, fake)
    assert.matches("1 scripted answers were not asked for %(1 requests came%)", tostring(err))
  end)

  it("paces in virtual time: the requests are a rate's interval apart in the fake's clock, at once in the machine's",
    function()
      local answers = {}
      for i = 1, 20 do answers[i] = testing.rest.ok { task = { id = i } } end
      local fake = testing.fake(answers)
      local rest = rest_with(fake, { rate = { rate = 4, per = 1, burst = 1, margin = 0 } })
      local started = os.clock()
      for i = 1, 20 do assert(rest.tasks:get(i)) end
      local cpu = os.clock() - started
      for i = 2, 20 do
        local gap = fake.requests[i].at - fake.requests[i - 1].at
        assert.is_true(gap >= 0.25 - 1e-9, ("request %d came %.3f s after the one before"):format(i, gap))
      end
      assert.near(19 * 0.25, fake:now() - fake.start, 1e-6)
      assert.near(fake:now() - fake.start, fake.slept, 1e-6)
      -- the 4.75 virtual seconds cost no real ones (a generous bound: CPU time on a loaded machine)
      assert.is_true(cpu < 2, ("%.2f s of CPU"):format(cpu))
    end)

  it("retries in virtual time: a 429's Retry-After is slept through the fake's sleep", function()
    local fake = testing.fake {
      testing.rest.rate_limited { retry_after = 7 },
      testing.rest.rate_limited { retry_after = 5 },
      testing.rest.task_list { { id = 1 } },
    }
    local rest = rest_with(fake, { rate = false })
    local tasks, meta = rest:call("get-task-list", {})
    assert.equal(1, tasks.tasks[1].id)
    assert.equal(3, meta.attempts)
    assert.same({ 7, 5 }, fake.sleeps)
    assert.equal(12, fake.slept)
    assert.equal(12, fake.requests[3].at - fake.requests[1].at)
  end)

  it("a failure that certainly sent nothing is retried even for a create; one that may have is not", function()
    local fake = testing.fake {
      testing.failure { request_sent = false, message = "connection refused" },
      testing.rest.created(5),
      testing.failure { request_sent = true, timeout = true, message = "timed out" },
    }
    local rest = rest_with(fake, { rate = false, retry = { random = function() return 0.5 end } })
    assert.equal(5, assert(rest.tasks:create { name = "a" }))
    assert.equal(0.25, fake.slept) -- base 0.5 s, full jitter at 0.5
    local id, err = rest.tasks:create { name = "b" }
    assert.is_nil(id)
    assert.equal("timeout", err.kind)
    assert.equal(1, err.attempts)
  end)

  it("REST errors, 202 and partial updates come out of the real parser as documented", function()
    local fake = testing.fake {
      testing.rest.error { status = 404, code = 1000, message = "Task not found" },
      testing.rest.queued(),
      testing.rest.ok { failures = { { field = "counterparty", error = "Field change failed" } } },
    }
    local rest = rest_with(fake, { rate = false })
    local task, err = rest.tasks:get(9)
    assert.is_nil(task)
    assert.same({ "api", 404, 1000 }, { err.kind, err.status, err.code })
    assert.is_true(assert(rest:call("post-task-by-id", { id = 1, name = "x" })).queued)
    local r = assert(rest:call("post-task-by-id", { id = 1, name = "y" }))
    assert.equal("counterparty", r.failures[1].field)
  end)

  it("the user's own clock and sleep win over the fake's", function()
    local t, slept = 0, {}
    local fake = testing.fake { testing.rest.rate_limited { retry_after = 3 }, testing.rest.task_list {} }
    local rest = rest_with(fake, { rate = false, clock = function() return t end,
      sleep = function(s) slept[#slept + 1] = s end })
    assert(rest:call("get-task-list", {}))
    assert.same({ 3 }, slept)
    assert.equal(0, fake.slept)
  end)

  it("a transport table that cannot be called is a config error", function()
    local err = raised(planapi.planfix_rest, { account = "acme", token = "t", transport = {} })
    assert.equal("config", err.kind)
    assert.matches("callable", err.message)
    err = raised(testing.fake, { handler = {} })
    assert.matches("unknown testing.fake option 'handler'", err.message)
  end)
end)

describe("planapi.testing.fake with the Planfix XML client", function()
  it("logs in, pages a list, renews a lost session once; params and the sent XML are recorded", function()
    local fake = testing.fake { handlers = {
      ["auth.login"] = { testing.xml.login "sid-one", testing.xml.login "sid-two" },
      ["task.getList"] = {
        testing.xml.list("tasks", "task", { { id = 1, title = "a" }, { id = 2, title = "b" } }, { total = 3 }),
        testing.xml.list("tasks", "task", { { id = 3, title = "c" } }, { total = 3 }),
      },
      ["task.get"] = { testing.xml.error("0005", "session expired"),
        testing.xml.ok { task = { id = 3, title = "c" } } },
    } }
    local xml = planapi.planfix_xml { account = "acme", api_key = "spec-key", login = "u", password = "spec-pass",
      transport = fake, page_size = 2 }
    local titles = {}
    for t in xml:each("task.getList", {}) do titles[#titles + 1] = t.title end
    assert.same({ "a", "b", "c" }, titles)
    assert.equal("c", assert(xml:call("task.get", { task = { id = 3 } })).task.title)
    assert.same({ "auth.login", "task.getList", "task.getList", "task.get", "auth.login", "task.get" },
      fake:operations())
    local r = fake.requests
    assert.same({ pageCurrent = 2, pageSize = 2 }, r[3].params)
    assert.equal("sid-one", r[3].body.sid)
    assert.equal("2", r[3].body.pageCurrent)
    assert.equal("task.getList", r[3].body["@method"])
    assert.equal("sid-two", r[6].body.sid)
    assert.same({ task = { id = 3 } }, r[6].params)
    assert.equal("planfix_xml", r[6].api)
  end)

  it("an XML error's code gives the documented kind through the real parser", function()
    local fake = testing.fake { testing.xml.error("0007", "limit"), testing.xml.error("1001") }
    local xml = planapi.planfix_xml { account = "acme", api_key = "k", token = "spec-xml-token", transport = fake,
      rate = false }
    local _, err = xml:call("task.get", { task = { id = 1 } })
    assert.same({ "quota", "0007" }, { err.kind, err.code })
    _, err = xml:call("task.get", { task = { id = 1 } })
    assert.same({ "auth", "1001" }, { err.kind, err.code })
  end)
end)

describe("planapi.testing.fake with the Planado client", function()
  it("pages by after, gets by pattern, honours a 429's Retry-After in virtual time", function()
    local fake = testing.fake { handlers = {
      ["GET jobs"] = { testing.planado.list("jobs", { { uuid = "u1" }, { uuid = "u2" } }),
        testing.planado.list("jobs", {}) },
      ["GET jobs/*"] = testing.planado.object("job", { uuid = "u1", external_id = "pf-1" }),
      ["POST jobs"] = { testing.planado.rate_limited { retry_after = 9 }, testing.planado.created("job_uuid", "u9") },
    } }
    local pd = planapi.planado { api_key = "spec-planado-key", transport = fake }
    local uuids = {}
    for job in pd.jobs:each { status = { "posted" } } do uuids[#uuids + 1] = job.uuid end
    assert.same({ "u1", "u2" }, uuids)
    assert.equal("pf-1", assert(pd.jobs:get "pf-1").external_id)
    assert.equal("u9", assert(pd.jobs:create { external_id = "pf-2", description = "d" }))
    local r = fake.requests
    assert.same({ status = { "posted" } }, r[1].params)
    assert.same({ status = { "posted" }, after = "u2" }, r[2].params)
    assert.equal("GET jobs/pf-1", r[3].operation)
    assert.same({ external_id = "pf-2", description = "d" }, r[5].params)
    assert.equal(9, r[5].at - r[4].at)
    assert.is_true(fake.slept >= 9)
  end)

  it("the 200 text quirk and an error body come out of the real parser as the client documents", function()
    local fake = testing.fake {
      testing.planado.rate_limited { text = true },
      testing.planado.ok { job = { uuid = "u1" } },
      testing.planado.error(422, "external_id: has already been taken"),
    }
    local pd = planapi.planado { api_key = "spec-planado-key", transport = fake, rate = false }
    local job, meta = pd:call("GET", "jobs/u1")
    assert.equal("u1", job.job.uuid)
    assert.equal(2, meta.attempts)
    assert.equal(2, fake.slept) -- the client's rate_limit_wait without Retry-After
    local _, err = pd.jobs:update("u1", { description = "x" })
    assert.same({ "api", 422 }, { err.kind, err.status })
    assert.matches("has already been taken", err.message)
  end)
end)

describe("testing.run", function()
  local portable = require "portable"
  local dir, path
  before_each(function()
    dir = portable.tmpdir()
    path = dir .. "/script.lua"
  end)
  after_each(function() portable.rmtree(dir) end)

  local function script(text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
  end

  it("gives the script only the environment and arguments asked for, and keeps its exit code and output", function()
    script [[
      print("home", os.getenv "HOME", "token", os.getenv "TOKEN", "args", arg[1], ...)
      io.stderr:write("to stderr\n")
      os.exit(3)
      print "not reached"
    ]]
    local run = testing.run(path, { env = { TOKEN = "x" }, args = { "a", "b" } })
    assert.equal(3, run.code)
    assert.equal("home\tnil\ttoken\tx\targs\ta\ta\tb\n", run.stdout)
    assert.equal("to stderr\n", run.stderr)
    assert.is_nil(run.error)
  end)

  it("a raising script ends with code 1 and its error; one that ends by itself with 0", function()
    script 'error "broken"'
    local run = testing.run(path)
    assert.equal(1, run.code)
    assert.matches("broken", run.error)
    script 'local x = 1'
    assert.equal(0, testing.run(path).code)
  end)

  it("the script's clients answer from the fake given for their API; catch_interrupt is a stand-in", function()
    script [[
      local planapi = require "planapi"
      planapi.core.catch_interrupt()
      print(planapi.core.catch_interrupt ~= require("planapi.core").catch_interrupt)
      local rest = planapi.planfix_rest { account = "acme", token = "spec-run-token" }
      local pd = planapi.planado { api_key = "spec-run-key" }
      print(rest:call("get-task-list", {}).tasks[1].id, pd:call("GET", "jobs").jobs[1].uuid)
    ]]
    local rest = testing.fake { testing.rest.task_list { { id = 4 } } }
    local pd = testing.fake { testing.planado.list("jobs", { { uuid = "u4" } }) }
    local run = testing.run(path, { transport = { planfix_rest = rest, planado = pd } })
    assert.equal(0, run.code, tostring(run.error))
    assert.equal("true\n4\tu4\n", run.stdout)
    assert.equal(1, #rest.requests)
    assert.equal(1, #pd.requests)
  end)
end)
