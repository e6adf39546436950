-- Checks lua/planapi/planfix_rest/ops.lua against the OpenAPI document it is
-- generated from and against the operation table in api-facts §2.12.  The
-- expectations are derived here by reading the spec directly, not by reusing
-- the generator's code, so a generator bug shows up as a failure.
-- Run from the repo root: busted --lua=lua5.4 spec/03-rest_ops_spec.lua

local cjson = require("cjson")
local portable = require("portable")

local SPEC_PATH = "../shared/specs/planfix-rest-openapi.json"
local OPS_PATH = "lua/planapi/planfix_rest/ops.lua"
local GENERATOR = "tools/gen_rest_ops.lua"

local function slurp(path) return (assert(require("portable").read_file(path))) end

local spec = cjson.decode(slurp(SPEC_PATH))
local rest_ops = require("planapi.planfix_rest.ops")

-- Every operation of the spec as { id, method, path, op, path_item }.
local spec_ops = {}
for path, path_item in pairs(spec.paths) do
  for method, op in pairs(path_item) do
    if type(op) == "table" and op.operationId then
      spec_ops[#spec_ops + 1] = { id = op.operationId, method = method:upper(), path = path, op = op }
    end
  end
end
table.sort(spec_ops, function(a, b) return a.id < b.id end)

-- Only the spec's one kind of parameter reference: "#/components/parameters/<name>".
local function spec_parameter(param)
  local ref = param["$ref"]
  if not ref then return param end
  local name = assert(ref:match("^#/components/parameters/(.+)$"), ref)
  return assert(spec.components.parameters[name], ref)
end

local function sorted_copy(list)
  local copy = {}
  for i, v in ipairs(list) do copy[i] = v end
  table.sort(copy)
  return copy
end

-- api-facts §2.12, column "paged"; every other operation is unpaged.
local EXPECTED_PAGING = {
  ["get-contact-list"] = "body", ["get-contact-comments"] = "body", ["get-task-list"] = "body",
  ["get-task-comments"] = "body", ["get-task-checklist"] = "body", ["get-comment-list"] = "body",
  ["get-data-tags"] = "body", ["post-list-data-tag-entries"] = "body", ["get-project-list"] = "body",
  ["get-user-list"] = "body", ["get-list-directories"] = "body",
  ["post-list-directory-entries"] = "body", ["get-report-list"] = "body", ["get-object-list"] = "body",
  ["get-contact-list-templates"] = "query", ["get-task-list-templates"] = "query",
  ["get-task-list-recurring"] = "query", ["get-project-files"] = "query",
  ["get-project-list-templates"] = "query",
  ["get-report-save-data"] = "chunk",
}

describe("planfix_rest_ops", function()
  it("covers the spec version and all of its 114 operations", function()
    assert.are.equal(spec.info.version, rest_ops.spec_version)
    assert.are.equal(114, #spec_ops)
    assert.are.equal(114, rest_ops.count)
    local listed = 0
    for _ in pairs(rest_ops.ops) do listed = listed + 1 end
    assert.are.equal(114, listed)
  end)

  it("gives every operationId the spec's method and path", function()
    for _, expected in ipairs(spec_ops) do
      local op = rest_ops.ops[expected.id]
      assert.is_table(op, expected.id)
      assert.are.equal(expected.method, op.method, expected.id)
      assert.are.equal(expected.path, op.path, expected.id)
      assert.are.equal(expected.op.summary, op.summary, expected.id)
      assert.are.equal(expected.op.tags[1], op.tag, expected.id)
    end
  end)

  it("lists the path placeholders in order as path_params, all required", function()
    for _, expected in ipairs(spec_ops) do
      local op = rest_ops.ops[expected.id]
      local placeholders = {}
      for name in expected.path:gmatch("{(.-)}") do placeholders[#placeholders + 1] = name end
      assert.are.same(placeholders, op.path_params, expected.id)
      for _, name in ipairs(placeholders) do
        local found = false
        for _, req in ipairs(op.required) do found = found or req == name end
        assert.is_true(found, expected.id .. " requires " .. name)
      end
    end
  end)

  it("has exactly the spec's query parameters, with their types", function()
    for _, expected in ipairs(spec_ops) do
      local query = {}
      for _, raw in ipairs(expected.op.parameters or {}) do
        local param = spec_parameter(raw)
        if param["in"] == "query" then query[param.name] = param.schema.type end
      end
      -- on the wire: a name the path has too is `query_<name>` in the table
      local op = rest_ops.ops[expected.id]
      local on_wire = {}
      for name, t in pairs(op.query) do on_wire[(op.wire or {})[name] or name] = t end
      assert.are.same(query, on_wire, expected.id)
    end
  end)

  it("lists the spec's 2xx/3xx statuses as sorted integers", function()
    for _, expected in ipairs(spec_ops) do
      local statuses = {}
      for code in pairs(expected.op.responses) do
        local n = tonumber(code)
        if n >= 200 and n < 400 then statuses[#statuses + 1] = n end
      end
      table.sort(statuses)
      local success = rest_ops.ops[expected.id].success
      assert.are.same(statuses, success, expected.id)
      for _, status in ipairs(success) do
        assert.are.equal("integer", portable.number_type(status), expected.id)
      end
    end
  end)

  it("keeps required sorted and free of duplicates", function()
    for id, op in pairs(rest_ops.ops) do
      assert.are.same(sorted_copy(op.required), op.required, id)
      for i = 2, #op.required do
        assert.are_not.equal(op.required[i - 1], op.required[i], id)
      end
    end
  end)

  it("marks the body kind from the spec's request media type", function()
    local kinds = { ["application/json"] = "json", ["multipart/form-data"] = "multipart" }
    for _, expected in ipairs(spec_ops) do
      local op = rest_ops.ops[expected.id]
      local body = expected.op.requestBody
      if body then
        local media = next(body.content)
        assert.are.equal(kinds[media], op.body, expected.id)
        assert.is_table(op.body_params, expected.id)
        for name in pairs(body.content[media].schema.properties or {}) do
          assert.is_string(op.body_params[name], expected.id .. "." .. name)
        end
      else
        assert.is_nil(op.body, expected.id)
        assert.is_nil(op.body_params, expected.id)
      end
    end
  end)

  it("matches the paged column of api-facts §2.12 exactly", function()
    for id, op in pairs(rest_ops.ops) do
      assert.are.equal(EXPECTED_PAGING[id], op.paged, id)
    end
  end)

  it("treats creates as non-idempotent and reads as idempotent", function()
    for id, op in pairs(rest_ops.ops) do
      local creates = false
      for _, status in ipairs(op.success) do creates = creates or status == 201 end
      if creates then assert.is_false(op.idempotent, id) end
      if op.method ~= "POST" then assert.is_true(op.idempotent, id) end
    end
    local ops = rest_ops.ops
    assert.is_false(ops["generate-report"].idempotent)
    assert.is_false(ops["post-contact-import"].idempotent)
    assert.is_false(ops["post-file-upload"].idempotent)        -- POST /file/ answers 200
    assert.is_false(ops["post-add-directory-entry"].idempotent) -- POST /directory/{id}/entry/ answers 200
    assert.is_true(ops["post-task-by-id"].idempotent)
    assert.is_true(ops["get-task-list"].idempotent)
    assert.is_true(ops["post-task-filters"].idempotent)
  end)

  describe("spot checks against api-facts §2.12", function()
    local ops = rest_ops.ops

    it("get-task-list", function()
      local op = ops["get-task-list"]
      assert.are.equal("POST", op.method)
      assert.are.equal("/task/list", op.path)
      assert.are.equal("json", op.body)
      assert.are.equal("body", op.paged)
      assert.are.equal("tasks", op.list_key)
      assert.are.equal("integer", op.body_params.offset)
      assert.are.equal("integer", op.body_params.pageSize)
      assert.are.equal("array", op.body_params.filters)
    end)

    it("post-task creates with 201", function()
      assert.is_false(ops["post-task"].idempotent)
      assert.are.same({ 201 }, ops["post-task"].success)
      assert.is_nil(ops["post-task"].list_key)
    end)

    it("post-task-by-id takes silent and may be queued", function()
      assert.are.equal("boolean", ops["post-task-by-id"].query.silent)
      assert.are.same({ 200, 202 }, ops["post-task-by-id"].success)
      assert.are.same({ "id" }, ops["post-task-by-id"].path_params)
      assert.is_nil(ops["post-task-by-id"].list_key) -- `failures` is not a list
    end)

    it("post-file-upload is multipart with a required file", function()
      assert.are.equal("multipart", ops["post-file-upload"].body)
      assert.are.equal("string", ops["post-file-upload"].query.targetType)
      assert.are.same({ "file" }, ops["post-file-upload"].required)
    end)

    it("get-report-save-data is fetched in chunks", function()
      local op = ops["get-report-save-data"]
      assert.are.equal("chunk", op.paged)
      assert.are.equal("integer", op.query.chunk)
      assert.are.same({ "id", "saveId" }, op.path_params)
    end)

    it("get-task-list-templates pages in the query", function()
      assert.are.equal("query", ops["get-task-list-templates"].paged)
      assert.are.equal("templates", ops["get-task-list-templates"].list_key)
      assert.are.equal("query", ops["get-project-files"].paged)
    end)

    it("resolves the $ref query parameter of get-project-by-id", function()
      assert.are.equal("string", ops["get-project-by-id"].query.sourceId)
    end)

    it("orders path_params by the path, not by the parameter list", function()
      -- The spec declares `key` before `id` for this operation.
      assert.are.same({ "id", "key" }, ops["post-update-directory-entry"].path_params)
    end)

    it("names the attach target's query id apart from the file's path id, both required", function()
      local op = ops["attach-file-to-task"]
      assert.are.same({ "id" }, op.path_params)
      assert.are.equal("integer", op.path_types.id)
      assert.are.equal("integer", op.query.query_id)
      assert.are.equal("id", op.wire.query_id)
      assert.are.same({ "id", "query_id" }, op.required)
    end)

    it("names a body id apart from the path id (post-task-by-id, post-contact-by-id, main field update)", function()
      for _, op_id in ipairs { "post-task-by-id", "post-contact-by-id", "post-customfield-main-update" } do
        local op = ops[op_id]
        assert.is_not_nil(op.path_types.id, op_id)
        assert.is_not_nil(op.body_params.body_id, op_id)
        assert.is_nil(op.body_params.id, op_id)
        assert.are.equal("id", op.wire.body_id, op_id)
      end
    end)

    it("carries the spec's limits: minimum, maximum, enum, lengths, at least one of", function()
      assert.are.same({ minimum = 1 }, ops["get-task-by-id"].limits.id)
      assert.are.same({ minimum = 0 }, ops["get-task-list"].limits.offset)
      assert.are.same({ minimum = 1, maximum = 100 }, ops["get-task-list"].limits.pageSize)
      assert.are.same({ enum = { "NotUrgent", "Urgent" } }, ops["post-task"].limits.priority)
      assert.are.same({ "secretToken", "webhookManagedExternally" },
        ops["post-integration-telegram-bot-webhook"].at_least_one)
      -- integer fields whose enum lists strings ("0 // Line") get no enum
      assert.is_nil((ops["post-customfield-add"].limits or {}).type)
    end)

    it("takes required body properties", function()
      assert.are.same({ "id", "name" }, ops["post-checklist-item"].required)
      assert.are.same({ "name" }, ops["post-user-positions"].required)
    end)

    it("types $ref/allOf body properties as objects", function()
      assert.are.equal("object", ops["post-task"].body_params.assigner)
      assert.are.equal("object", ops["post-user"].body_params.birthDate)
    end)

    it("has the get-report-save-data rows and get-file-id-download 302", function()
      assert.are.equal("rows", ops["get-report-save-data"].list_key)
      assert.are.same({ 302 }, ops["get-file-id-download"].success)
    end)
  end)

  describe("filter_types", function()
    local ENTITIES = {
      task = "ComplexTaskFilter", contact = "ComplexContactFilter", project = "ComplexProjectFilter",
      user = "ComplexUserFilter", comment = "ComplexCommentFilter",
      datatag = "ComplexDataTagFilter", directory = "ComplexDirectoryFilter",
    }

    it("parses the '<n> // description' enum strings", function()
      assert.are.equal("Task assigner", rest_ops.filter_types.task[1])
      assert.are.equal("Comment author", rest_ops.filter_types.comment[3001])
      assert.are.equal("", rest_ops.filter_types.task[5]) -- a plain number in the enum
    end)

    it("has one integer key per distinct enum value of every entity", function()
      for entity, schema_name in pairs(ENTITIES) do
        local types = rest_ops.filter_types[entity]
        assert.is_table(types, entity)
        local expected = {}
        for _, value in ipairs(spec.components.schemas[schema_name].properties.type.enum) do
          expected[tonumber(tostring(value):match("^%s*(%d+)"))] = true
        end
        for key, description in pairs(types) do
          assert.are.equal("integer", portable.number_type(key), entity)
          assert.is_string(description, entity)
          assert.is_true(expected[key], entity .. " " .. key)
          expected[key] = nil
        end
        assert.is_nil(next(expected), entity .. " misses a filter type")
      end
    end)
  end)

  describe("the generated file", function()
    local text = slurp(OPS_PATH)

    it("never mentions the spec's `filed` typo", function()
      assert.is_nil(text:find("filed", 1, true))
      assert.are.equal("array", rest_ops.ops["get-task-comments"].body_params.resultOrder)
    end)

    it("carries the generated-by header", function()
      local header = "-- generated by tools/gen_rest_ops.lua from " .. spec.info.title .. " "
        .. spec.info.version .. "; do not edit by hand\n"
      assert.are.equal(header, text:sub(1, #header))
    end)

    it("loads under LuaJIT when it is installed", function()
      if not portable.execute("command -v luajit >/dev/null 2>&1") then
        pending("luajit not installed")
        return
      end
      local ok = portable.execute("luajit -e 'assert(dofile(\"" .. OPS_PATH .. "\").count == 114)'")
      assert.is_true(ok)
    end)

    it("is byte-identical to a fresh run of the generator", function()
      local tmp = os.tmpname()
      local ok = portable.execute(string.format("lua5.4 %s %s %s", GENERATOR, SPEC_PATH, tmp))
      local fresh = slurp(tmp)
      os.remove(tmp)
      assert.is_true(ok)
      assert.are.equal(text, fresh)
    end)
  end)
end)
