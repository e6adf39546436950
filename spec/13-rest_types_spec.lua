-- The Planfix REST spec's types, enums, minimums and "at least one of",
-- enforced before anything is sent; the CLI's text typed by the same table.
-- The cases issue 14 §1 reproduced are here by name. A recording transport
-- stands in for the network: a mistyped call must raise a config error
-- naming the parameter and the expected type, and send nothing. What is
-- sent is read back with a separate lua-cjson decoder, not our own; the
-- CLI runs as bin/planapi against the sandbox, which logs what reached it.
-- (spec/15-rest_prism_oracle_spec.lua checks the same against Prism.)
local cjson = require("cjson").new()
local planapi = require "planapi"
local expect = require "expect"
local args = require "planapi.cli.args"
local portable = require "portable"
local sandbox = require "sandbox"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- bin/planapi against the sandbox: its output (stdout and stderr) and exit code.
local function cli(arguments)
  local env = ("env -i PATH=\"$PATH\" HOME=/nonexistent PLANFIX_REST_URL=%s PLANFIX_TOKEN=%s PLANAPI_CA_FILE=%s")
    :format(shell_quote(sandbox.https_url "rest/"), shell_quote(sandbox.TOKEN), shell_quote(sandbox.env().ca_file))
  return portable.run(env .. " bin/planapi " .. arguments)
end

local function recording_client(opts)
  local sent = {}
  local o = {
    base_url = "https://planfix.invalid/rest/", token = "t0k3n-for-types", rate = false,
    retry = { attempts = 1 },
    transport = function(req)
      sent[#sent + 1] = req
      return { status = 200, headers = { ["Content-Type"] = "application/json" },
        body = '{"result":"success","id":1,"task":{"id":1},"tasks":[]}' }
    end,
  }
  for k, v in pairs(opts or {}) do o[k] = v end
  return planapi.planfix_rest(o), sent
end

local function body_of(req)
  return cjson.decode(req.body)
end

-- A config error naming the parameter (and the type, when given), nothing sent.
local function refused(op_id, params, name, pattern)
  local rest, sent = recording_client()
  local err = expect.raises_config(function() rest:call(op_id, params) end)
  assert.matches("'" .. name .. "'", err.message, 1, true)
  if pattern then assert.matches(pattern, err.message) end
  assert.equal(0, #sent, op_id .. " sent a request")
  return err
end

describe("REST parameters are checked against the spec before sending", function()
  describe("the reproduced cases", function()
    it("get-task-list offset = '10' (integer) raises", function()
      refused("get-task-list", { offset = "10" }, "offset", "must be an integer, got a string")
    end)

    it("post-task name = 123 (string) raises", function()
      refused("post-task", { name = 123 }, "name", "must be a string, got a number")
    end)

    it("post-task inFavorites = 'true' (boolean) raises", function()
      refused("post-task", { name = "n", inFavorites = "true" }, "inFavorites", "must be a boolean, got a string")
    end)

    it("get-task-by-id id = 'abc' (integer, minimum 1) raises, and so do 0 and 1.5", function()
      refused("get-task-by-id", { id = "abc" }, "id", "must be an integer")
      refused("get-task-by-id", { id = 0 }, "id", "must be at least 1")
      refused("get-task-by-id", { id = 1.5 }, "id", "must be an integer, got a non%-integral number")
      refused("get-task-by-id", { id = 0 / 0 }, "id", "must be an integer")
    end)

    for _, target in ipairs { "task", "contact", "project" } do
      it("attach-file-to-" .. target .. " sends the file id in the path and query_id as ?id=", function()
        local op_id = "attach-file-to-" .. target
        local rest, sent = recording_client()
        assert.is_not_nil(rest:call(op_id, { id = 5, query_id = 9 }))
        assert.matches("/file/5/attach/" .. target .. "%?id=9$", sent[1].url)
        -- the query's id is required: without it, nothing goes out
        refused(op_id, { id = 5 }, "query_id")
        refused(op_id, { id = 5, query_id = "nine" }, "query_id", "must be an integer")
      end)
    end

    it("rest.files:attach keeps working and now sends ?id=", function()
      local rest, sent = recording_client()
      assert.is_not_nil(rest.files:attach(5, "task", 9))
      assert.matches("/file/5/attach/task%?id=9$", sent[1].url)
    end)

    it("an attach call that gives the target in opts.query still works", function()
      local rest, sent = recording_client()
      assert.is_not_nil(rest:call("attach-file-to-project", { id = 5 }, { query = { id = 9 } }))
      assert.matches("/file/5/attach/project%?id=9$", sent[1].url)
    end)

    for _, op_id in ipairs { "post-task-by-id", "post-contact-by-id", "post-customfield-main-update" } do
      it(op_id .. " sends body_id as the body's id, apart from the path's id", function()
        local rest, sent = recording_client()
        assert.is_not_nil(rest:call(op_id, { id = 7, body_id = 8 }))
        assert.matches("/7$", sent[1].url)
        assert.equal(8, body_of(sent[1]).id)
        refused(op_id, { id = 7, body_id = "8" }, "body_id", "must be an integer")
      end)
    end

    it("post-integration-telegram-bot-webhook with only botId raises (at least one of two)", function()
      local err = refused("post-integration-telegram-bot-webhook", { botId = 3 }, "secretToken")
      assert.matches("webhookManagedExternally", err.message)
      local rest, sent = recording_client()
      assert.is_not_nil(rest:call("post-integration-telegram-bot-webhook",
        { botId = 3, webhookManagedExternally = true }))
      assert.same({ webhookManagedExternally = true }, body_of(sent[1]))
    end)
  end)

  describe("every kind of check", function()
    it("enums: post-task priority must be NotUrgent or Urgent", function()
      refused("post-task", { name = "n", priority = "High" }, "priority", "one of NotUrgent, Urgent")
    end)

    it("minimum and maximum: pageSize 1..100, offset from 0", function()
      refused("get-task-list", { pageSize = 101 }, "pageSize", "at most 100")
      refused("get-task-list", { pageSize = 0 }, "pageSize", "at least 1")
      refused("get-task-list", { offset = -1 }, "offset", "at least 0")
    end)

    it("lengths: secretToken from 32 characters, never echoed in the message", function()
      local err = refused("post-integration-telegram-bot-webhook", { botId = 3, secretToken = "short-secret" },
        "secretToken", "at least 32 characters")
      assert.is_nil(tostring(err):find("short-secret", 1, true))
    end)

    it("arrays and objects: filters is an array, assigner an object", function()
      refused("get-task-list", { filters = { type = 51 } }, "filters", "must be an array, got an object")
      refused("post-task", { name = "n", assigner = { 1, 2 } }, "assigner", "must be an object, got an array")
      refused("post-task", { name = "n", assigner = planapi.array() }, "assigner", "must be an object")
    end)

    it("query parameters: booleans and enums (post-file-upload-by-url targetType)", function()
      refused("get-task-files", { id = "1", onlyFromDescription = "yes" }, "onlyFromDescription",
        "must be a boolean")
      refused("post-file-upload-by-url", { targetType = "wiki", name = "a", url = "https://x.invalid/a" },
        "targetType", "one of task, directory")
    end)

    it("a string parameter in the URL takes a whole number (the text is the same)", function()
      local rest, sent = recording_client()
      assert.is_not_nil(rest:call("get-contact-by-id", { id = 12 }))
      assert.matches("/contact/12$", sent[1].url)
      assert.is_not_nil(rest:call("get-contact-by-id", { id = "contact:12" }))
      assert.matches("/contact/contact:12$", sent[2].url)
    end)

    it("the right types go out as the spec types them", function()
      local rest, sent = recording_client()
      assert.is_not_nil(rest:call("get-task-list", { offset = 10, pageSize = 50, fields = "id" }))
      local body = body_of(sent[1])
      assert.equal(10, body.offset)
      assert.equal(50, body.pageSize)
      assert.is_not_nil(rest:call("post-task", { name = "123", inFavorites = true, priority = "Urgent" }))
      body = body_of(sent[2])
      assert.equal("123", body.name)
      assert.equal(true, body.inFavorites)
    end)

    it("planapi.null fits any body parameter (JSON null)", function()
      local rest, sent = recording_client()
      assert.is_not_nil(rest:call("post-task-by-id", { id = 4, description = planapi.null }))
      assert.matches('"description":null', sent[1].body, 1, true)
    end)
  end)

  describe("unchecked", function()
    it("per call sends what the spec refuses (e.g. a date as text where it says object)", function()
      local rest, sent = recording_client()
      assert.is_not_nil(rest:call("post-task-by-id", { id = 4, startDateTime = "01-01-2023 00:05:00",
        priority = "High" }, { unchecked = true }))
      local body = body_of(sent[1])
      assert.equal("01-01-2023 00:05:00", body.startDateTime)
      assert.equal("High", body.priority)
    end)

    it("per client, for every call", function()
      local rest, sent = recording_client { unchecked = true }
      assert.is_not_nil(rest:call("get-task-list", { offset = "10" }))
      assert.equal("10", body_of(sent[1]).offset)
    end)

    it("still refuses unknown names and missing path parameters", function()
      local rest = recording_client { unchecked = true }
      expect.raises_config(function() rest:call("get-task-list", { offest = 1 }) end, "offest")
      expect.raises_config(function() rest:call("get-task-by-id", {}) end, "'id'")
    end)

    it("must be a boolean", function()
      expect.raises_config(function() recording_client { unchecked = "yes" } end, "unchecked")
      local rest = recording_client()
      expect.raises_config(function() rest:call("ping", nil, { unchecked = 1 }) end, "unchecked")
    end)
  end)

  describe("pager options", function()
    it("pageSize = '50' raises, naming pageSize and the type", function()
      local rest = recording_client()
      expect.raises_config(function() rest:pager("get-task-list", { pageSize = "50" }) end,
        "'pageSize' of get%-task%-list must be an integer")
    end)

    it("a typo (max_item = 2) raises, naming the valid options", function()
      local rest = recording_client()
      local err = expect.raises_config(function() rest:pager("get-task-list", {}, { max_item = 2 }) end,
        "unknown rest:pager option 'max_item'")
      assert.matches("max_items", err.message)
      expect.raises_config(function() rest:all("get-task-list", {}, { max_items = "2" }) end, "max_items")
      expect.raises_config(function() rest:pager("get-task-list", {}, { max_items = 1.5 }) end, "max_items")
    end)

    it("the XML and Planado pagers check theirs the same way", function()
      local xml = planapi.planfix_xml { url = "https://xml.invalid/xml/", account = "a", api_key = "k",
        token = "t", rate = false, transport = function() error "nothing may be sent" end }
      expect.raises_config(function() xml:pager("task.getList", {}, { max_item = 2 }) end, "max_item")
      local pd = planapi.planado { api_key = "k", url = "https://planado.invalid/v2/", rate = false,
        transport = function() error "nothing may be sent" end }
      expect.raises_config(function() pd:pager("jobs", {}, { dedup = true }) end, "dedup")
    end)
  end)

  describe("the CLI's text", function()
    it("is typed by the same table: integers, booleans, path ids", function()
      local p = args.rest_params("post-task-by-id", { id = "42", inFavorites = "true", name = "123",
        silent = "false", body_id = "7" })
      assert.same({ id = 42, inFavorites = true, name = "123", silent = false, body_id = 7 }, p)
      local rest, sent = recording_client()
      assert.is_not_nil(rest:call("post-task-by-id", p, {}))
      assert.matches("/task/42%?silent=false$", sent[1].url)
      assert.same({ id = 7, inFavorites = true, name = "123" }, body_of(sent[1]))
    end)

    it("leaves text that is not of its type, so the library names the parameter and type", function()
      local p = args.rest_params("get-task-by-id", { id = "abc" })
      assert.equal("abc", p.id)
      refused("get-task-by-id", p, "id", "must be an integer")
      p = args.rest_params("get-task-list", { offset = "1e3", pageSize = "50" })
      assert.equal("1e3", p.offset)
      assert.equal(50, p.pageSize)
    end)
  end)

  -- `files = {}` is an empty list to a Lua user; the spec says array, so it
  -- must go out as [] (an object there is what the spec refuses).
  it("sends an empty table as [] where the spec says array, and as {} where it says object", function()
    local rest, sent = recording_client()
    assert.is_not_nil(rest:call("post-task", { name = "n", files = {}, assignees = {} }))
    assert.matches('"files":%[%]', sent[1].body)
    assert.matches('"assignees":{}', sent[1].body)
    local unchecked = recording_client { unchecked = true }
    assert.is_not_nil(unchecked:call("post-task", { name = "n", files = {} })) -- as given, unchecked
  end)

  it("bin/planapi types its text by the table, and refuses what is not of its type before sending", function()
    sandbox.reset()
    local out, code = cli "planfix-rest get-task-by-id id=1 fields=id,name"
    assert.equal(0, code, out)
    assert.matches('"id":1', out, 1, true)
    out, code = cli "planfix-rest get-task-by-id id=abc"
    assert.equal(2, code, out)
    assert.matches("parameter 'id' of get%-task%-by%-id must be an integer", out)
    out, code = cli "planfix-rest post-integration-telegram-bot-webhook botId=3"
    assert.equal(2, code, out)
    assert.matches("at least one of the parameters 'secretToken', 'webhookManagedExternally'", out, 1, true)
    local sent = 0
    for _, e in ipairs(sandbox.log()) do
      if e.kind == "rest" then sent = sent + 1 end
    end
    assert.equal(1, sent, "only the valid call reached the server")
  end)

  it("planapi.planfix_rest.operations() works as README names it", function()
    local ops = planapi.planfix_rest.operations()
    assert.equal(114, #ops)
    assert.equal("GET", planapi.planfix_rest.operation("get-task-by-id").method)
    local rest = planapi.planfix_rest { base_url = "https://planfix.invalid/rest/", token = "t" }
    assert.equal("planapi.planfix_rest (https://planfix.invalid/rest/)", tostring(rest))
  end)
end)
