-- Dry run, write guards and the loop forms that do not raise (issue 17),
-- against the sandbox, whose request log is the oracle of what was sent.
-- The write operations come from the APIs' own tables (the REST ops table's
-- `writes`, XML methods.lua's `writes`, Planado's collections under every
-- HTTP method but GET): none is listed by hand here.
local planapi = require "planapi"
local core = require "planapi.core"
local sandbox = require "sandbox"
local expect = require "expect"
local ops = require("planapi.planfix_rest.ops").ops
local xml_methods = require("planapi.planfix_xml.methods").methods
local planado_resources = require "planapi.planado.resources"

local SECRETS = { sandbox.TOKEN, sandbox.PLANADO_KEY, sandbox.XML.token, sandbox.XML.api_key,
  sandbox.XML.password }

local sorted = require("planapi.client_base").sorted_keys

-- A value of a spec type, for a request that is prepared and never sent.
local SAMPLE = { string = "1", integer = 1, number = 1, boolean = true, object = {} }
local function sample(t)
  if t == "array" then return planapi.array() end
  return SAMPLE[t] or "1"
end

-- Every REST write: its operationId and parameters enough to prepare it.
local function rest_writes()
  local out = {}
  for _, op_id in ipairs(sorted(ops)) do
    local op = ops[op_id]
    if op.writes then
      local params = {}
      for _, name in ipairs(op.required) do
        params[name] = sample(op.path_types[name] or op.query[name] or (op.body_params or {})[name])
      end
      out[#out + 1] = { op_id, params }
    end
  end
  return out
end

local function xml_writes()
  local out = {}
  for _, name in ipairs(sorted(xml_methods)) do
    if xml_methods[name].writes then out[#out + 1] = name end
  end
  return out
end

-- Planado: every collection of the resources under every writing method.
local PLANADO_WRITE_METHODS = { "POST", "PATCH", "PUT", "DELETE" }
local function planado_writes()
  local out = {}
  for _, collection in ipairs(planado_resources.names()) do
    for _, method in ipairs(PLANADO_WRITE_METHODS) do
      out[#out + 1] = { method, collection .. "/x-1", method ~= "DELETE" and {} or nil }
    end
  end
  return out
end

local function assert_no_secret(v)
  local text = core.json_encode(v) -- every string of the answer, the secrets have no JSON escapes
  for _, s in ipairs(SECRETS) do
    assert.is_nil(text:find(s, 1, true), "a secret in the dry run's answer")
  end
end

local function api_log()
  local out = {}
  for _, e in ipairs(sandbox.log()) do
    if e.kind == "rest" or e.kind == "xml" or e.kind == "planado" then out[#out + 1] = e end
  end
  return out
end

local function assert_dry(result, meta, method)
  assert.is_table(result, "a dry run answers")
  assert.is_true(result.dry_run)
  assert.is_true(meta.dry_run)
  assert.equals(method, result.request.method)
  assert.is_string(result.request.url)
  assert_no_secret(result)
end

-- A config error raised by fn, with the operation named.
local function assert_refused(operation, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, operation .. " was not refused")
  assert.is_true(core.is_error(err), tostring(err))
  assert.equals("config", err.kind)
  assert.equals(operation, err.operation)
  assert.truthy(tostring(err):find(operation, 1, true))
  return err
end

describe("dry run", function()
  before_each(function()
    sandbox.reset()
    sandbox.clear_log()
  end)

  -- Per API: a dry-run client, its writes (from its own table), the call of
  -- one, and what the request it answers must show.
  local TABLES = {
    { "REST writes of the ops table", 40, function() return sandbox.rest { dry_run = true } end, rest_writes,
      function(c, w) return c:call(w[1], w[2], { unchecked = true }) end,
      function(w, req)
        assert.equals(ops[w[1]].method, req.method)
        assert.equals(w[1], req.operation)
        assert.equals("Bearer ***", req.headers.Authorization)
      end },
    { "XML writes of methods.lua", 30, function() return sandbox.xml { dry_run = true } end, xml_writes,
      function(c, name) return c:call(name, {}) end,
      function(name, req)
        assert.equals("POST", req.method)
        assert.equals(name, req.operation)
        assert.truthy(req.body:find('method="' .. name .. '"', 1, true))
      end },
  }
  for _, t in ipairs(TABLES) do
    it("sends none of the " .. t[1] .. ", and answers each prepared request", function()
      local client, writes = t[3](), t[4]()
      assert.is_true(#writes > t[2])
      for _, w in ipairs(writes) do
        local result, meta = t[5](client, w)
        assert_dry(result, meta, result.request.method)
        t[6](w, result.request)
      end
      assert.same({}, api_log())
    end)
  end

  it("sends none of Planado's writes, and the sugar answers the dry run", function()
    local pd = sandbox.planado { dry_run = true }
    for _, w in ipairs(planado_writes()) do
      local result, meta = pd:call(w[1], w[2], w[3])
      assert_dry(result, meta, w[1])
    end
    local made = pd.jobs:create { external_id = "dry-1", description = "never sent" }
    assert.is_true(made.dry_run)
    assert.truthy(made.request.body:find("dry-1", 1, true))
    assert.is_true(pd.clients:upsert("crm-dry", { first_name = "x" }).dry_run)
    assert.is_true(pd.jobs:update("dry-1", { description = "y" }).dry_run)
    assert.same({}, api_log())
  end)

  it("runs the reads (true), sends nothing at all (\"all\")", function()
    local clients = {
      { sandbox.rest, function(c) return c:call("get-task-list", { pageSize = 2 }) end, "tasks", "get-task-list" },
      { sandbox.xml, function(c) return c:call("task.getList", { pageSize = 2 }) end, "tasks", "task.getList" },
      { sandbox.planado, function(c) return c:call("GET", "jobs") end, "jobs", "jobs" },
    }
    for _, c in ipairs(clients) do
      local result = assert(c[2](c[1] { dry_run = true }))
      assert.is_nil(result.dry_run)
      assert.is_table(result[c[3]])
    end
    assert.equals(3, #api_log())
    sandbox.clear_log()
    for _, c in ipairs(clients) do
      local client = c[1] { dry_run = "all" }
      assert.is_true(c[2](client).dry_run)
      -- a list over a dry run is empty, not an error
      assert.same({}, assert(client:all(c[4])))
    end
    local login = sandbox.xml { login = true, dry_run = "all" }
    assert.is_true(login:call("task.update", { task = { id = 1 } }).dry_run)
    assert.same({}, api_log())
  end)

  it("is per call too, and a call's false sends on a dry-run client", function()
    local rest = sandbox.rest()
    assert.is_true(rest.tasks:update(1, { name = "per call" }, { dry_run = true }).dry_run)
    assert.same({}, api_log())
    local dry = sandbox.rest { dry_run = true }
    assert.is_nil(assert(dry.tasks:update(1, { name = "sent" }, { dry_run = false })).dry_run)
    assert.equals("sent", rest.tasks:get(1, { fields = "name" }).name)
    assert.is_true(sandbox.planado():call("POST", "jobs", {}, { dry_run = true }).dry_run)
    assert.is_true(sandbox.xml():call("task.add", {}, { dry_run = true }).dry_run)
  end)

  it("refuses an unknown dry_run value", function()
    expect.raises_config(function() sandbox.rest { dry_run = "yes" } end, "dry_run")
  end)
end)

describe("write guards", function()
  before_each(function()
    sandbox.reset()
    sandbox.clear_log()
  end)

  it("writes = false refuses every write of the three APIs before sending, reads still run", function()
    local rest = sandbox.rest { writes = false }
    for _, w in ipairs(rest_writes()) do
      assert_refused(w[1], rest.call, rest, w[1], w[2], { unchecked = true })
    end
    local xml = sandbox.xml { writes = false }
    for _, name in ipairs(xml_writes()) do assert_refused(name, xml.call, xml, name, {}) end
    local pd = sandbox.planado { writes = false }
    for _, w in ipairs(planado_writes()) do
      assert_refused(w[1] .. " " .. w[2], pd.call, pd, w[1], w[2], w[3])
    end
    assert_refused("post-task", rest.tasks.create, rest.tasks, { name = "x" })
    assert.same({}, api_log())
    assert(rest.tasks:get(1))
    assert(xml:call("task.get", { task = { id = 1 } }))
    assert(pd:call("GET", "jobs"))
    assert.equals(3, #api_log())
  end)

  it("writes.allow lets through the operations and resources it names, and only those", function()
    local rest = sandbox.rest { writes = { allow = { "post-task", "contacts" } } }
    assert(rest.tasks:create { name = "allowed" })
    assert(rest.contacts:create { name = "allowed" })
    assert_refused("post-task-by-id", rest.tasks.update, rest.tasks, 1, { name = "no" })
    assert_refused("post-project", rest.projects.create, rest.projects, { name = "no" })
    local xml = sandbox.xml { writes = { allow = { "task" } } }
    assert(xml:call("task.update", { task = { id = 1, title = "allowed" } }))
    assert_refused("contact.add", xml.call, xml, "contact.add", { contact = { name = "no" } })
    local pd = sandbox.planado { writes = { allow = { "clients" } } }
    assert(pd.clients:upsert("crm-allowed", { first_name = "allowed" }))
    assert_refused("POST jobs", pd.jobs.create, pd.jobs, { description = "no" })
    local sent = {}
    for _, e in ipairs(api_log()) do sent[#sent + 1] = e.method .. " " .. (e.xml_method or e.uri) end
    table.sort(sent)
    -- only the allowed writes reached the server
    assert.same({ "PATCH /planado/v2/clients/crm-allowed",
      "POST /rest/contact/", "POST /rest/task/", "POST task.update" }, sent)
  end)

  local function make_projects()
    local rest = sandbox.rest()
    local p1 = assert(rest.projects:create { name = "guarded" })
    local p2 = assert(rest.projects:create { name = "other" })
    local t1 = assert(rest.tasks:create { name = "in guarded", project = { id = p1 } })
    local t2 = assert(rest.tasks:create { name = "in other", project = { id = p2 } })
    sandbox.clear_log()
    return p1, p2, t1, t2
  end

  it("writes.projects (REST): only tasks of the projects listed, the task's project read first", function()
    local p1, p2, t1, t2 = make_projects()
    local rest = sandbox.rest { writes = { projects = { p1 } } }
    assert(rest.tasks:update(t1, { name = "changed" }))
    local log = api_log()
    assert.equals(2, #log) -- the read of the task's project, then the write
    assert.equals("GET", log[1].method)
    assert.equals("POST", log[2].method)
    sandbox.clear_log()
    assert_refused("post-task-by-id", rest.tasks.update, rest.tasks, t2, { name = "no" })
    assert_refused("post-task-by-id", rest.tasks.update, rest.tasks, t1, { project = { id = p2 } })
    assert_refused("post-task-add-comment", rest.tasks.add_comment, rest.tasks, t2, { description = "no" })
    assert_refused("attach-file-to-task", rest.files.attach, rest.files, 1, "task", t2)
    for _, e in ipairs(api_log()) do assert.equals("GET", e.method) end -- reads only
    sandbox.clear_log()
    assert_refused("post-task", rest.tasks.create, rest.tasks, { name = "no project" })
    assert_refused("post-task", rest.tasks.create, rest.tasks, { name = "elsewhere", project = { id = p2 } })
    local other = assert_refused("post-contact", rest.contacts.create, rest.contacts, { name = "not a task" })
    assert.truthy(other.message:find("writes.allow", 1, true))
    assert.same({}, api_log()) -- a create names its project: nothing read
    assert(rest.tasks:create { name = "here", project = { id = p1 } })
    assert.equals("changed", sandbox.rest().tasks:get(t1, { fields = "name" }).name)
    assert.equals("in other", sandbox.rest().tasks:get(t2, { fields = "name" }).name)
  end)

  it("writes.projects (XML): the same by task.get", function()
    local p1, p2, t1, t2 = make_projects()
    local xml = sandbox.xml { writes = { projects = { p1 } } }
    assert(xml:call("task.update", { task = { id = t1, title = "changed" } }))
    assert_refused("task.update", xml.call, xml, "task.update", { task = { id = t2, title = "no" } })
    assert_refused("task.add", xml.call, xml, "task.add", { task = { title = "x", project = { id = p2 } } })
    assert(xml:call("task.add", { task = { title = "here", project = { id = p1 } } }))
    assert_refused("action.add", xml.call, xml, "action.add", { action = { task = { id = t2 }, description = "no" } })
    local sent = {}
    for _, e in ipairs(api_log()) do sent[#sent + 1] = e.xml_method end
    -- each write to an existing task is read first; a create names its project
    assert.same({ "task.get", "task.update", "task.get", "task.add", "task.get" }, sent)
    assert.equals("in other", sandbox.rest().tasks:get(t2, { fields = "name" }).name)
  end)

  it("refuses guard options that cannot hold", function()
    for _, bad in ipairs {
      { sandbox.planado, { writes = { projects = { 1 } } } },
      { sandbox.rest, { writes = { alow = { "post-task" } } } },
      { sandbox.rest, { writes = { projects = { "12" } } } },
      { sandbox.xml, { writes = { allow = "task" } } },
    } do
      local ok, err = pcall(bad[1], bad[2])
      assert.is_false(ok)
      assert.equals("config", err.kind)
      assert.truthy(tostring(err):find("writes", 1, true))
    end
  end)
end)

describe("loops that go on after a failure", function()
  before_each(function()
    sandbox.reset()
    sandbox.clear_log()
  end)

  -- The three pagers over lists of more than one page of 3.
  local LISTS = {
    { sandbox.rest, { "get-task-list", {}, { page_size = 3 } }, "/task/list" },
    { sandbox.xml, { "task.getList", {}, { page_size = 3 } }, "/xml/" },
    { sandbox.planado, { "jobs", {}, { list_key = "jobs" } }, "/jobs" },
  }
  local function with(list, extra)
    local opts = {}
    for k, v in pairs(list[2][3]) do opts[k] = v end
    for k, v in pairs(extra) do opts[k] = v end
    return list[2][1], list[2][2], opts
  end

  it("errors = \"yield\": a failed page is `false, err` in the loop, which then ends", function()
    for _, list in ipairs(LISTS) do
      local c = list[1]()
      local items, failures = 0, {}
      for item, err in c:each(with(list, { errors = "yield" })) do
        if item then
          items = items + 1
          -- every later page fails, past the retries
          if items == 1 then sandbox.fault { mode = "status", status = 500, count = 20, path = list[3] } end
        else
          failures[#failures + 1] = err
        end
      end
      assert.equals(1, #failures)
      assert.equals("http", failures[1].kind)
      assert.is_true(items >= 1)
      sandbox.control("DELETE", "fault")
      local pages, perr = 0, nil
      sandbox.fault { mode = "status", status = 500, count = 20, path = list[3] }
      for page, err in c:pages(with(list, { errors = "yield" })) do
        if page then pages = pages + 1 else perr = err end
      end
      assert.equals(0, pages)
      assert.equals("http", perr.kind)
      sandbox.control("DELETE", "fault")
    end
  end)

  it("raises as before without it", function()
    local c = sandbox.rest()
    sandbox.fault { mode = "status", status = 500, count = 20, path = "/task/list" }
    assert.has_error(function()
      for _ in c:each("get-task-list", {}, { page_size = 3 }) do end
    end)
  end)

  it("on_error: \"retry\" reads the page again, anything else ends the loop without raising", function()
    local c = sandbox.rest()
    local all = #assert(c:all("get-task-list", {}, { page_size = 3 }))
    local seen, calls = 0, 0
    sandbox.fault { mode = "status", status = 500, count = 3, path = "/task/list" } -- the retries' 3 attempts
    for _ in c:each("get-task-list", {}, { page_size = 3, on_error = function(err)
      calls = calls + 1
      assert.equals("http", err.kind)
      return "retry"
    end }) do seen = seen + 1 end
    assert.equals(1, calls)
    assert.equals(all, seen)
    sandbox.fault { mode = "status", status = 500, count = 20, path = "/task/list" }
    seen = 0
    for _ in c:each("get-task-list", {}, { page_size = 3, on_error = function() end }) do seen = seen + 1 end
    assert.equals(0, seen)
  end)

  it("refuses an unknown errors mode", function()
    local ok, err = pcall(function() return sandbox.rest():each("get-task-list", {}, { errors = "ignore" }) end)
    assert.is_false(ok)
    assert.equals("config", err.kind)
  end)
end)

describe("partial = \"error\"", function()
  before_each(function() sandbox.reset() end)

  local BAD_FIELD = { customFieldData = { { field = { id = 987654 }, value = "x" } } }

  it("makes a partial update an api error naming the fields not applied", function()
    local plain = sandbox.rest()
    local result = assert(plain.tasks:update(1, BAD_FIELD))
    assert.is_true(#result.failures >= 1) -- the default: success with failures
    local strict = sandbox.rest { partial = "error" }
    local none, err = strict.tasks:update(1, BAD_FIELD)
    assert.is_nil(none)
    assert.equals("api", err.kind)
    assert.equals("post-task-by-id", err.operation)
    assert.truthy(tostring(err):find(result.failures[1].field, 1, true))
    assert.same(result.failures, err.failures)
    assert(strict.tasks:update(1, { name = "whole" })) -- applied whole: no error
    local _, per_call = plain.tasks:update(1, BAD_FIELD, { partial = "error" })
    assert.equals("api", per_call.kind)
    assert.has_error(function() sandbox.rest { partial = "maybe" } end)
  end)
end)

describe("planapi --dry-run", function()
  before_each(function()
    sandbox.reset()
    sandbox.clear_log()
  end)

  local function cli(args)
    local p = assert(require("portable").popen(("%s bin/planapi %s 2>&1"):format(sandbox.cli_env(), args)))
    local out = p:read "a"
    p:close()
    return out
  end

  it("prints each write's request as JSON and sends none; reads still run", function()
    for _, cmd in ipairs {
      { "planfix-rest post-task name=dry --dry-run", "POST", "post-task" },
      { "--dry-run planfix-xml task.add task.title=dry", "POST", "task.add" },
      { "--dry-run planado call POST jobs description=dry", "POST", "POST jobs" },
    } do
      local out = cli(cmd[1])
      local printed = core.json_decode(out)
      assert.is_table(printed, out)
      assert.is_true(printed.dry_run)
      assert.equals(cmd[2], printed.request.method)
      assert.equals(cmd[3], printed.request.operation)
      assert_no_secret(printed)
    end
    assert.same({}, api_log())
    local task = core.json_decode(cli "--dry-run planfix-rest get-task-by-id id=1 fields=id,name")
    assert.equals(1, task.task.id)
    assert.equals(1, #api_log())
  end)
end)
