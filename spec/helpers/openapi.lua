-- The official Planfix REST OpenAPI file, read for the specs that take it
-- as their oracle (spec/11, spec/15): the document, its $ref resolver and
-- the properties of an object schema.
local cjson = require("cjson").new()
local planapi = require "planapi"

local M = {}

M.PATH = "../shared/specs/planfix-rest-openapi.json"

-- lua-cjson 2.1.0 decodes [] and {} alike; an empty array outside a string
-- is rewritten to a one-element array of a marker first, and marked as an
-- array (planapi.array) after decoding, so an example's [] is sent as [].
local EMPTY = "\0planapi-empty-array"

local function mark_empty_arrays(text)
  local out, pos = {}, 1
  while true do
    local at = text:find('["%[]', pos)
    if not at then break end
    if text:sub(at, at) == '"' then
      local close = at
      repeat
        close = text:find('"', close + 1, true)
        local i = close - 1
        while text:byte(i) == 92 do i = i - 1 end -- backslashes before the quote
      until (close - 1 - i) % 2 == 0
      out[#out + 1] = text:sub(pos, close)
      pos = close + 1
    else
      local after = text:match("^%[%s*%]()", at)
      if after then
        out[#out + 1] = text:sub(pos, at - 1) .. '["\\u0000planapi-empty-array"]'
        pos = after
      else
        out[#out + 1] = text:sub(pos, at)
        pos = at + 1
      end
    end
  end
  out[#out + 1] = text:sub(pos)
  return table.concat(out)
end

--- The spec document, its empty arrays kept as arrays.
function M.load()
  local f = assert(io.open(M.PATH, "rb"), "the OpenAPI spec is expected at " .. M.PATH)
  local text = f:read "a"
  f:close()
  local function restore(v)
    if type(v) ~= "table" then return v end
    if v[1] == EMPTY and v[2] == nil then return planapi.array() end
    for k, x in pairs(v) do v[k] = restore(x) end
    return v
  end
  return restore(cjson.decode(mark_empty_arrays(text)))
end

--- resolve(node) -> the node its $ref chain points to in doc ({} for nil),
-- and object_schema(schema) -> its properties and required names, allOf merged.
function M.tools(doc)
  local function resolve(node)
    while type(node) == "table" and node["$ref"] do
      local cur = doc
      for part in node["$ref"]:gsub("^#/", ""):gmatch "[^/]+" do cur = cur[part] end
      node = cur
    end
    return node or {}
  end
  local function object_schema(schema)
    local props, required = {}, {}
    local function merge(s)
      s = resolve(s)
      for _, part in ipairs(s.allOf or {}) do merge(part) end
      for k, v in pairs(s.properties or {}) do props[k] = resolve(v) end
      for _, r in ipairs(s.required or {}) do required[#required + 1] = r end
    end
    merge(schema)
    return props, required
  end
  return resolve, object_schema
end

--- Ajv's verdicts (spec/helpers/openapi_responses.js, the validator Stoplight Prism brings) on
-- cases { operation =, status = } or { schema = }, each with `body`: the JSON text as it is.
-- flag: "--numeric-enums" reads the file's "N // name" enum strings as numbers.
function M.verdicts(cases, flag)
  local prism, portable = require "prism", require "portable"
  local why = prism.missing()
  if why then error(why, 2) end
  local parts = {}
  for i, c in ipairs(cases) do
    local head = c.schema and ('"schema":%q'):format(c.schema)
      or ('"operation":%q,"status":%d'):format(c.operation, c.status)
    parts[i] = ("{%s,\"body\":%s}"):format(head, c.body)
  end
  local dir = portable.tmpdir()
  local input = dir .. "/cases.json"
  local f = assert(io.open(input, "wb"))
  f:write("[" .. table.concat(parts, ",") .. "]")
  f:close()
  local out = portable.run(("node spec/helpers/openapi_responses.js %s %s < %s"):format(M.PATH, flag or "", input))
  portable.rmtree(dir)
  local ok, result = pcall(planapi.json.decode, out)
  assert(ok and type(result) == "table", "the validator said: " .. tostring(out))
  return result
end

return M
