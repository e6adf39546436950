-- Answers exactly as the server meant them, against the sandbox (issue 14
-- §2, §3, §4): the CLI prints [] for the empty arrays of every API; a
-- Planado job read and written back leaves the stored job unchanged, with
-- nulls left out or kept; a well-formed HTML page with HTTP 200 on the XML
-- endpoint is named by its content type; a certificate that is not trusted
-- says which option helps; an API error with code 0 shows the server's text.
local portable = require "portable"
local planapi = require "planapi"
local sandbox = require "sandbox"
local FIELDS = require "planapi.planado.fields"

-- The CLI in a pipe, configured for the sandbox by its environment.
local function cli(args)
  local out, code = portable.run(("%s bin/planapi %s 2>/dev/null"):format(sandbox.cli_env(), args))
  assert.equal(0, code, out)
  return out
end

-- The text contains this exact JSON fragment (the CLI's output is compact
-- with sorted keys, so the bytes are the judge, not our decoder).
local function has(text, fragment)
  assert(text:find(fragment, 1, true), ("%q not in the output:\n%s"):format(fragment, text))
end

describe("the CLI prints [] for empty arrays", function()
  before_each(function() sandbox.reset() end)

  it("of Planfix REST", function()
    local out = cli "planfix-rest get-task-by-id id=1 fields=id,name,assignees,auditors"
    has(out, '"groups":[]')
    sandbox.data { tasks = 0 }
    has(cli "planfix-rest get-task-list fields=id,name", '"tasks":[]')
  end)

  it("of Planfix XML, list containers included", function()
    has(cli "planfix-xml task.get task.id=1", '"members":{"users":[]}')
    sandbox.data { tasks = 0 }
    local out = cli "planfix-xml task.getList pageCurrent=1"
    has(out, '"items":[]')
    has(out, '"@count":"0"')
  end)

  it("of Planado", function()
    local pd = sandbox.planado()
    local uuid = assert(pd.jobs:create { description = "Nothing assigned" })
    local out = cli("planado jobs get " .. uuid)
    for _, key in ipairs { "assignees", "skills", "contacts" } do has(out, '"' .. key .. '":[]') end
  end)

  it("and null members only with --keep-nulls", function()
    local pd = sandbox.planado()
    local uuid = assert(pd.jobs:create { description = "No date" })
    assert.is_nil(cli("planado jobs get " .. uuid):find('"scheduled_at"', 1, true))
    has(cli("--keep-nulls planado jobs get " .. uuid), '"scheduled_at":null')
  end)
end)

describe("a Planado job read and written back", function()
  -- The stored record without what every write changes.
  local function stored(uuid)
    local rec = sandbox.control("GET", "store/planado_jobs/" .. uuid).record
    for _, k in ipairs { "_history", "_events", "_seq", "version", "updated_at" } do rec[k] = nil end
    return rec
  end

  for _, nulls in ipairs { "absent", "keep" } do
    it("leaves the stored job unchanged with nulls = \"" .. nulls .. "\"", function()
      sandbox.reset()
      local pd = sandbox.planado { nulls = nulls }
      -- Null: description, scheduled_at, client, site, territory, ...; empty: skills, assignees, contacts.
      local uuid = assert(pd.jobs:create { external_id = "rmw-" .. nulls, description = planapi.null })
      local before = stored(uuid)
      local job = assert(pd.jobs:get(uuid))
      if nulls == "keep" then
        assert.equal(planapi.null, job.description)
      else
        assert.is_nil(job.description)
      end
      assert.is_true(planapi.is_array(job.skills))
      local patch = {}
      for k in pairs(FIELDS.job) do
        if k ~= "template" and k ~= "job_type" then patch[k] = job[k] end -- create-only
      end
      sandbox.clear_log()
      assert(pd.jobs:update(uuid, patch))
      local body = sandbox.log_of("planado")[1].body
      for _, key in ipairs { "skills", "assignees", "contacts" } do
        assert(body:find('"' .. key .. '":[]', 1, true), body) -- an array, not {}
      end
      assert.same(before, stored(uuid))
    end)
  end
end)

describe("error messages a newcomer can act on", function()
  before_each(function() sandbox.reset() end)

  it("name the content type of a well-formed HTML page answered with 200 on the XML endpoint", function()
    sandbox.fault { mode = "html", status = 200, path = "/xml" }
    local xml = sandbox.xml()
    local result, err = xml:call("task.get", { task = { id = 1 } })
    assert.is_nil(result)
    assert.equal("decode", err.kind)
    assert.matches("text/html", err.message)
  end)

  it("say which option trusts a private CA", function()
    local env = sandbox.env()
    local function fails(port, ca_file)
      local rest = planapi.planfix_rest { base_url = sandbox.https_url("rest/", port), token = sandbox.TOKEN,
        ca_file = ca_file, rate = false, retry = { attempts = 1 } }
      local result, err = rest:call("get-task-by-id", { id = 1 })
      assert.is_nil(result)
      assert.equal("tls", err.kind)
      assert.is_nil(tostring(err):find("\n"))
      return err.message
    end
    assert.matches("set the client option ca_file", fails(env.untrusted_port, nil))
    assert.matches("not trusted by the client's ca_file", fails(env.untrusted_port, env.ca_file))
    assert.matches("not for this host name", fails(env.wrong_host_port, env.ca_file))
  end)

  it("show the server's text for a REST error with code 0, without \"unknown error:\"", function()
    sandbox.fault { mode = "code", code = 0, error = "Filter field is wrong", path = "/task/" }
    local result, err = sandbox.rest():call("get-task-by-id", { id = 1 })
    assert.is_nil(result)
    assert.equal(0, err.code)
    assert.equal("Filter field is wrong", err.message)
    assert.is_nil(tostring(err):find("unknown error", 1, true))
  end)

  it("show the server's text for an XML error with an undocumented code", function()
    sandbox.fault { mode = "code", code = 0, error = "Something odd", path = "/xml" }
    local result, err = sandbox.xml():call("task.get", { task = { id = 1 } })
    assert.is_nil(result)
    assert.equal("Something odd", err.message)
    assert.is_nil(tostring(err):find("error 0", 1, true))
  end)
end)

describe("REST results", function()
  it("leave a null member out by default and keep it with nulls = \"keep\"", function()
    local body = '{"result":"success","task":{"id":1,"description":null,"assignees":{"users":[],"groups":[]}}}'
    for _, nulls in ipairs { "absent", "keep" } do
      local rest = planapi.planfix_rest { base_url = "https://127.0.0.1:1/rest/", token = "t", rate = false,
        nulls = nulls, transport = function()
          return { status = 200, headers = { ["content-type"] = "application/json" }, body = body }
        end }
      local r = assert(rest:call("get-task-by-id", { id = 1 }))
      assert.equal(nulls == "keep" and planapi.null or nil, r.task.description)
      assert.is_true(planapi.is_array(r.task.assignees.users))
    end
  end)
end)
