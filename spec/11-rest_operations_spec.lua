-- Every operation of the official OpenAPI spec, called with sample
-- parameters against the sandbox's request recorder: the method, path,
-- query and body on the wire must be what the spec defines. Expectations
-- come from the spec file itself, not from the generated operation table.
local planapi = require "planapi"
local sandbox = require "sandbox"
local openapi = require "openapi"

local doc = openapi.load()
-- body_properties: the top-level properties of a body schema, allOf merged; required names.
local resolve, body_properties = openapi.tools(doc)

local function sample(schema)
  schema = resolve(schema) or {}
  local t = schema.type
  if schema.enum and type(schema.enum[1]) == "string" and t == "string" then return schema.enum[1] end
  if t == "integer" then return 7 end
  if t == "number" then return 3 end
  if t == "boolean" then return true end
  if t == "string" and schema.minLength then return ("s"):rep(schema.minLength) end
  if t == "array" then return planapi.array { "a" } end
  if t == "object" or schema.properties or schema.allOf then return { id = 1 } end
  return "s-1"
end

-- The wire form of a query value as the sandbox decodes it.
local function query_text(v)
  if type(v) == "table" then return v[1] end
  return tostring(v)
end

-- Walk the spec: one case per operation, in a stable order.
local cases = {}
for path, item in pairs(doc.paths) do
  for method, op in pairs(item) do
    if method == "get" or method == "post" or method == "delete" then
      cases[#cases + 1] = { path = path, method = method:upper(), op = op }
    end
  end
end
table.sort(cases, function(a, b) return a.op.operationId < b.op.operationId end)

local function build_call(case)
  local params, opts = {}, {}
  local expect = { method = case.method, query = {}, body = nil }
  local path_values = {}
  for _, p in ipairs(case.op.parameters or {}) do
    p = resolve(p)
    if p["in"] == "path" then
      local v = (resolve(p.schema) or {}).type == "integer" and 7 or "k-1"
      params[p.name] = v
      path_values[p.name] = tostring(v)
    end
  end
  for _, p in ipairs(case.op.parameters or {}) do
    p = resolve(p)
    if p["in"] == "query" then
      local v = sample(p.schema)
      if path_values[p.name] then -- same name in path and query (attach ops)
        opts.query = opts.query or {}
        opts.query[p.name] = v
      else
        params[p.name] = v
      end
      expect.query[p.name] = query_text(v)
    end
  end
  expect.path = case.path:gsub("{([%w_]+)}", function(name) return path_values[name] end)
  local content = case.op.requestBody and case.op.requestBody.content or {}
  if content["application/json"] then
    local props, required = body_properties(content["application/json"].schema)
    local names = {}
    for _, r in ipairs(required) do names[r] = true end
    local sorted = {}
    for k in pairs(props) do sorted[#sorted + 1] = k end
    table.sort(sorted)
    if sorted[1] then names[sorted[1]] = true end -- plus one optional property
    expect.body = {}
    for name in pairs(names) do
      if props[name] then
        params[name] = sample(props[name])
        expect.body[name] = params[name]
      end
    end
  elseif content["multipart/form-data"] then
    params.file = { data = "hello from planapi", name = "hello.txt" }
    expect.multipart = true
  end
  return params, opts, expect
end

describe("every Planfix REST operation", function()
  it("is in the spec 114 times, once per operationId", function()
    assert.equal(114, #cases)
    local ids = {}
    for _, c in ipairs(cases) do
      assert.is_nil(ids[c.op.operationId])
      ids[c.op.operationId] = true
    end
  end)

  it("puts method, path, query and body on the wire as the spec defines", function()
    sandbox.reset()
    local rest = sandbox.rest { base_url = sandbox.https_url "record/", retry = { attempts = 1 } }
    local expects = {}
    for i, case in ipairs(cases) do
      local params, opts, expect = build_call(case)
      local result, err = rest:call(case.op.operationId, params, opts)
      assert(result, case.op.operationId .. ": " .. tostring(err))
      expects[i] = expect
    end
    local log = sandbox.log()
    assert.equal(#cases, #log)
    for i, case in ipairs(cases) do
      local id, e, expect = case.op.operationId, log[i], expects[i]
      assert.equal(expect.method, e.method, id)
      assert.equal(expect.path, e.path, id)
      local sent_query = {}
      for k, v in pairs(e.query) do sent_query[k] = type(v) == "table" and v[1] or v end
      assert.same(expect.query, sent_query, id)
      if expect.body then
        assert.matches("^application/json", e.headers["content-type"], 1, false, id)
        local got = planapi.json.decode(e.body)
        for k, v in pairs(expect.body) do
          if type(v) == "table" then
            assert.same(planapi.json.decode(planapi.json.encode(v)), got[k], id .. " " .. k)
          else
            assert.equal(v, got[k], id .. " " .. k)
          end
        end
        for k in pairs(got) do assert.is_not_nil(expect.body[k], id .. " sent an extra key " .. k) end
      elseif expect.multipart then
        assert.matches("^multipart/form%-data; boundary=", e.headers["content-type"], 1, false, id)
        assert.matches('filename="hello.txt"', e.body, 1, true, id)
        assert.matches("hello from planapi", e.body, 1, true, id)
      else
        assert.equal("", e.body, id .. " sent a body without one in the spec")
      end
    end
    rest:close()
  end)
end)
