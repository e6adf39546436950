-- Generates lua/planapi/planfix_rest/ops.lua, the operation table of the
-- Planfix REST API, from the official OpenAPI document.
--
--   lua5.4 tools/gen_rest_ops.lua [spec.json] [out.lua]
--
-- Defaults: ../shared/specs/planfix-rest-openapi.json (relative to the repo
-- root) and lua/planapi/planfix_rest/ops.lua.  The output is deterministic
-- (sorted keys, fixed layout, no timestamps) so that regenerating it from the
-- same spec gives a byte-identical file; spec/03-rest_ops_spec.lua checks this.
-- The generated file must load under Lua 5.1/LuaJIT as well as 5.4.

local cjson = require("cjson")

local GENERATOR = "tools/gen_rest_ops.lua"

-- Query/body parameter types we pass through as the spec gives them.
local KNOWN_TYPES = {
  string = true, integer = true, number = true, boolean = true,
  array = true, object = true,
}

local function fail(fmt, ...)
  io.stderr:write("gen_rest_ops: ", string.format(fmt, ...), "\n")
  os.exit(1)
end

---------------------------------------------------------------------------
-- Paths
---------------------------------------------------------------------------

local function dirname(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir == nil then return "." end
  if dir == "" then return "/" end
  return dir
end

-- The repo root is the parent of the directory holding this script, so the
-- defaults work whatever the current directory is.
local function repo_root()
  local script_dir = dirname(arg[0])
  if script_dir == "." then return ".." end
  return dirname(script_dir)
end

local function read_file(path)
  local fh, err = io.open(path, "rb")
  if not fh then fail("cannot read %s", err) end
  local data = fh:read("a")
  fh:close()
  return data
end

local function write_file(path, data)
  -- Write beside the target and rename, so a failed run never leaves a
  -- truncated table behind.
  local tmp = path .. ".tmp"
  local fh, err = io.open(tmp, "wb")
  if not fh then fail("cannot write %s", err) end
  fh:write(data)
  fh:close()
  local ok, rename_err = os.rename(tmp, path)
  if not ok then fail("cannot rename %s: %s", tmp, rename_err) end
end

---------------------------------------------------------------------------
-- OpenAPI helpers
---------------------------------------------------------------------------

local spec -- the decoded document; set in main()

-- Follows local "#/a/b" references (JSON pointer, with ~1 and ~0 escapes),
-- including chains of references.
local function resolve(node)
  local seen = {}
  while type(node) == "table" and node["$ref"] do
    local ref = node["$ref"]
    if seen[ref] then fail("reference cycle at %s", ref) end
    seen[ref] = true
    if ref:sub(1, 2) ~= "#/" then fail("non-local reference %s", ref) end
    local target = spec
    for part in ref:sub(3):gmatch("[^/]+") do
      part = part:gsub("~1", "/"):gsub("~0", "~")
      target = type(target) == "table" and target[part] or nil
    end
    if target == nil then fail("dangling reference %s", ref) end
    node = target
  end
  return node
end

local function is_empty_schema(schema)
  return next(schema) == nil
end

-- The type of a schema as one word: its own `type`, else the common type of
-- its allOf/anyOf/oneOf members (a lone $ref wrapped in allOf is the spec's
-- usual way to describe a property), else "object"/"array" from its shape.
-- Members that disagree, or an unconstrained `{}` in anyOf/oneOf (the spec's
-- way of saying "anything", e.g. ContactRequest.birthDate), give "any".
local function schema_type(schema)
  schema = resolve(schema)
  if schema.type then
    if not KNOWN_TYPES[schema.type] then fail("unknown schema type %s", tostring(schema.type)) end
    return schema.type
  end
  for _, combinator in ipairs({ "allOf", "anyOf", "oneOf" }) do
    local parts = schema[combinator]
    if parts then
      local found
      for _, part in ipairs(parts) do
        part = resolve(part)
        if is_empty_schema(part) then
          if combinator ~= "allOf" then return "any" end
        else
          local t = schema_type(part)
          if found and found ~= t then return "any" end
          found = t
        end
      end
      if found then return found end
    end
  end
  if schema.properties then return "object" end
  if schema.items then return "array" end
  return "any"
end

-- Top-level properties (name -> type) and required names of an object
-- schema, merging the members of allOf; `schemas` gets each property's
-- resolved schema (for its constraints). In a request, a readOnly
-- property is left out: OpenAPI says it is not sent (CustomField's
-- listValuesColors is only returned).
local function object_properties(schema, for_request, props, required, schemas)
  schema = resolve(schema)
  props, required, schemas = props or {}, required or {}, schemas or {}
  for _, part in ipairs(schema.allOf or {}) do
    object_properties(part, for_request, props, required, schemas)
  end
  for name, prop in pairs(schema.properties or {}) do
    if not (for_request and resolve(prop).readOnly == true) then
      props[name] = schema_type(prop)
      schemas[name] = resolve(prop)
    end
  end
  for _, name in ipairs(schema.required or {}) do
    required[name] = true
  end
  return props, required, schemas
end

-- "At least one of these properties": an anyOf whose members only require
-- names (TelegramWebhookSettingsRequest: secretToken or
-- webhookManagedExternally).  nil when the schema says no such thing.
local function at_least_one(schema)
  schema = resolve(schema)
  local names = {}
  for _, part in ipairs(schema.anyOf or {}) do
    part = resolve(part)
    for key in pairs(part) do
      if key ~= "required" then return nil end
    end
    for _, name in ipairs(part.required or {}) do names[#names + 1] = name end
  end
  if #names == 0 then return nil end
  table.sort(names)
  return names
end

local VALUE_TYPES = { string = "string", integer = "number", number = "number", boolean = "boolean" }

-- The constraints of a scalar parameter the library checks before sending,
-- as JSON Schema means them: minimum/maximum bind numbers only, lengths
-- strings only.  The spec has enums the library cannot use, left out here:
-- integer fields whose enum lists strings ("0 // Line", the custom field
-- types; see filter_types below for the same habit), and a one-value enum
-- that is the whole list of language codes written as one string
-- ("az - ay - sq - ...", communicationLanguageCode).
local function constraints(schema, t)
  schema = resolve(schema)
  local c, any = {}, false
  if (t == "integer" or t == "number") then
    for _, key in ipairs({ "minimum", "maximum" }) do
      if type(schema[key]) == "number" then c[key], any = schema[key], true end
    end
  end
  if t == "string" then
    if type(schema.minLength) == "number" then c.min_length, any = schema.minLength, true end
    if type(schema.maxLength) == "number" then c.max_length, any = schema.maxLength, true end
  end
  local enum = schema.enum
  if type(enum) == "table" and #enum > 1 and VALUE_TYPES[t] then
    local usable = true
    for _, value in ipairs(enum) do
      if type(value) ~= VALUE_TYPES[t] or (t == "integer" and math.tointeger(value) == nil) then
        usable = false
      end
    end
    if usable then
      c.enum, any = {}, true
      for i, value in ipairs(enum) do c.enum[i] = value end
    end
  end
  return any and c or nil
end

---------------------------------------------------------------------------
-- Per-operation facts
---------------------------------------------------------------------------

local BODY_KINDS = {
  ["application/json"] = "json",
  ["multipart/form-data"] = "multipart",
}

local function sorted_keys(map)
  local keys = {}
  for key in pairs(map) do keys[#keys + 1] = key end
  table.sort(keys)
  return keys
end

local function path_placeholders(path)
  local names = {}
  for name in path:gmatch("{([^}]+)}") do names[#names + 1] = name end
  return names
end

-- Parameters may be declared on the path item and overridden per operation
-- (OpenAPI keys them by name + location).  One of them is a $ref into
-- components.parameters.
local function collect_parameters(path_item, op)
  local by_key, order = {}, {}
  for _, list in ipairs({ path_item.parameters or {}, op.parameters or {} }) do
    for _, raw in ipairs(list) do
      local param = resolve(raw)
      local key = param["in"] .. ":" .. param.name
      if not by_key[key] then order[#order + 1] = key end
      by_key[key] = param
    end
  end
  local params = {}
  for i, key in ipairs(order) do params[i] = by_key[key] end
  return params
end

local function request_body(op)
  if not op.requestBody then return nil end
  local content = resolve(op.requestBody).content or {}
  local media_types = sorted_keys(content)
  if #media_types ~= 1 then
    fail("%s: expected one request media type, got %d", op.operationId, #media_types)
  end
  local kind = BODY_KINDS[media_types[1]]
  if not kind then fail("%s: unsupported media type %s", op.operationId, media_types[1]) end
  local schema = content[media_types[1]].schema or {}
  local props, required, schemas = object_properties(schema, true)
  return kind, props, required, schemas, at_least_one(schema)
end

local function success_statuses(op)
  local statuses = {}
  for code in pairs(op.responses or {}) do
    local status = math.tointeger(tonumber(code))
    if status and status >= 200 and status < 400 then statuses[#statuses + 1] = status end
  end
  table.sort(statuses)
  return statuses
end

-- The array a list operation returns, e.g. "tasks" for /task/list.  Only
-- the 200 response counts: creates answer 201 (data-tag creates return a
-- `keys` array that is not a list).  `failures` is the partial-success
-- report of updates (Planfix's REST API documentation), not a list.
local function list_key(op)
  local response = op.responses and op.responses["200"]
  if not response then return nil end
  local media = (resolve(response).content or {})["application/json"]
  if not media or not media.schema then return nil end
  local props = object_properties(media.schema, false)
  local found
  for _, name in ipairs(sorted_keys(props)) do
    if props[name] == "array" and name ~= "failures" and name ~= "result" then
      if found then fail("%s: ambiguous list key (%s, %s)", op.operationId, found, name) end
      found = name
    end
  end
  return found
end

-- Planfix's REST API documentation, paging: offset/pageSize in the JSON body or in the query, or the
-- 0-based ?chunk=N of saved report data.
local function paging(query, body_params)
  if body_params and body_params.offset and body_params.pageSize then return "body" end
  if query.offset and query.pageSize then return "query" end
  if query.chunk then return "chunk" end
  return nil
end

-- Creates must not be retried blindly (a retry makes a duplicate).  A create
-- answers 201 (this covers generate-report and /contact/import too) or is a
-- POST to a collection path with a trailing slash ("/task/", "/file/",
-- "/directory/{id}/entry/"), some of which the spec documents as plain 200.
-- Whether an operation changes data: every method but GET, except the POSTs
-- that only read (the spec's summary says "Get ...": lists and filters,
-- which Planfix takes as POST for their JSON filter bodies).
local function is_write(method, summary)
  if method == "GET" then return false end
  return not (method == "POST" and type(summary) == "string" and summary:match "^Get ")
end

local function is_idempotent(method, path, statuses)
  for _, status in ipairs(statuses) do
    if status == 201 then return false end
  end
  return not (method == "POST" and path:sub(-1) == "/")
end

-- A parameter whose name another location of the same operation uses
-- too gets its own name, prefixed by where it goes: the path keeps `id`,
-- the query's `id` of attach-file-to-* becomes `query_id` and the body's
-- `id` of post-task-by-id becomes `body_id`.  `wire` maps such a name back.
local function own_name(entry, location, name, taken)
  if not taken[name] then
    taken[name] = true
    return name
  end
  local renamed = location .. "_" .. name
  if taken[renamed] then fail("%s %s: cannot name %s %s", entry.method, entry.path, location, name) end
  taken[renamed] = true
  entry.wire = entry.wire or {}
  entry.wire[renamed] = name
  return renamed
end

local function add_limits(entry, name, schema, t)
  local c = constraints(schema, t)
  if c then
    entry.limits = entry.limits or {}
    entry.limits[name] = c
  end
end

local function build_operation(path, path_item, method, op)
  local entry = {
    method = method:upper(),
    path = path,
    tag = op.tags and op.tags[1],
    summary = op.summary,
    path_params = path_placeholders(path),
    path_types = {},
    query = {},
    success = success_statuses(op),
  }
  local required, taken = {}, {}

  local params = collect_parameters(path_item, op)
  for _, param in ipairs(params) do
    if param["in"] == "path" then
      local t = schema_type(param.schema or {})
      entry.path_types[own_name(entry, "path", param.name, taken)] = t
      add_limits(entry, param.name, param.schema or {}, t)
    end
  end
  for _, param in ipairs(params) do
    if param["in"] == "query" then
      local t = schema_type(param.schema or {})
      local name = own_name(entry, "query", param.name, taken)
      entry.query[name] = t
      add_limits(entry, name, param.schema or {}, t)
      if param.required == true then required[name] = true end
    end
  end
  for _, name in ipairs(entry.path_params) do
    if not entry.path_types[name] then fail("%s: path parameter {%s} not declared", op.operationId, name) end
    required[name] = true -- path parameters are always required
  end

  local kind, body_params, body_required, body_schemas, one_of = request_body(op)
  if kind then
    entry.body, entry.body_params = kind, {}
    for _, wire in ipairs(sorted_keys(body_params)) do
      local name = own_name(entry, "body", wire, taken)
      entry.body_params[name] = body_params[wire]
      add_limits(entry, name, body_schemas[wire], body_params[wire])
      if body_required[wire] then required[name] = true end
    end
    entry.at_least_one = one_of
  end

  entry.required = sorted_keys(required)
  entry.paged = paging(entry.query, body_params)
  entry.idempotent = is_idempotent(entry.method, path, entry.success)
  if entry.idempotent then entry.list_key = list_key(op) end
  entry.writes = is_write(entry.method, entry.summary)
  return entry
end

---------------------------------------------------------------------------
-- Filter type enums
---------------------------------------------------------------------------

-- Complex<Entity>Filter.type is declared `type: number` but its enum mixes
-- plain numbers with strings such as "1 // Task assigner" (the
-- official OpenAPI file's quirk).  Keyed by the lower-cased entity: task, contact, datatag, ...
local function filter_types()
  local result = {}
  for name, schema in pairs(spec.components.schemas) do
    local entity = name:match("^Complex(%a+)Filter$")
    local type_prop = entity and schema.properties and schema.properties.type
    if type_prop and type_prop.enum then
      local descriptions = {}
      for _, value in ipairs(type_prop.enum) do
        local number, description
        if type(value) == "number" then
          number, description = math.tointeger(value), ""
        else
          local digits, rest = value:match("^%s*([0-9]+)%s*//(.*)$")
          if not digits then fail("%s: unparsable filter type %q", name, value) end
          number = math.tointeger(tonumber(digits))
          description = rest:match("^%s*(.-)%s*$")
        end
        if not number then fail("%s: non-integral filter type %s", name, tostring(value)) end
        -- Keep a description over a bare repeat of the same number.
        if descriptions[number] == nil or descriptions[number] == "" then
          descriptions[number] = description
        elseif description ~= "" and description ~= descriptions[number] then
          fail("%s: filter type %d described twice", name, number)
        end
      end
      result[entity:lower()] = descriptions
    end
  end
  return result
end

---------------------------------------------------------------------------
-- Deterministic Lua serialiser
---------------------------------------------------------------------------

local LUA_KEYWORDS = {}
for word in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  LUA_KEYWORDS[word] = true
end

local MAX_INLINE = 100 -- longest line for a table written on one line

local NAMED_ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- Decimal escapes (\ddd) rather than %q, whose output differs between Lua
-- versions; the file must read back identically under LuaJIT.
local function quote(s)
  local body = s:gsub('[%c"\\]', function(c)
    return NAMED_ESCAPES[c] or string.format("\\%03d", c:byte())
  end)
  return '"' .. body .. '"'
end

local function scalar(value)
  local kind = type(value)
  if kind == "string" then return quote(value) end
  if kind == "boolean" then return tostring(value) end
  if kind == "number" then
    local int = math.tointeger(value)
    if not int then fail("refusing to emit non-integral number %s", tostring(value)) end
    return string.format("%d", int)
  end
  fail("cannot serialise a %s", kind)
end

local function render_key(key)
  if type(key) == "string" and key:match("^[%a_][%w_]*$") and not LUA_KEYWORDS[key] then
    return key
  end
  return "[" .. scalar(key) .. "]"
end

-- Numbers first (ascending), then strings (byte order): a total order, so
-- the output never depends on hash iteration order.
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  return a < b
end

local function is_sequence(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

-- `lead` is the width of what precedes the value on its line ("key = "),
-- so that the one-line form is only used when the whole line stays short.
local function serialise(value, indent, lead)
  if type(value) ~= "table" then return scalar(value) end
  if next(value) == nil then return "{}" end

  local items, all_scalar = {}, true
  if is_sequence(value) then
    for i, item in ipairs(value) do
      all_scalar = all_scalar and type(item) ~= "table"
      items[i] = serialise(item, indent .. "  ", 0)
    end
  else
    local keys = {}
    for key in pairs(value) do keys[#keys + 1] = key end
    table.sort(keys, key_less)
    for i, key in ipairs(keys) do
      all_scalar = all_scalar and type(value[key]) ~= "table"
      local prefix = render_key(key) .. " = "
      items[i] = prefix .. serialise(value[key], indent .. "  ", #prefix)
    end
  end

  local inline = "{ " .. table.concat(items, ", ") .. " }"
  -- +1 for the comma that follows a nested value.
  if all_scalar and #indent + lead + #inline + 1 <= MAX_INLINE then return inline end
  local inner = indent .. "  "
  return "{\n" .. inner .. table.concat(items, ",\n" .. inner) .. ",\n" .. indent .. "}"
end

---------------------------------------------------------------------------
-- Main
---------------------------------------------------------------------------

local HTTP_METHODS = { "get", "put", "post", "delete", "options", "head", "patch", "trace" }

local function main()
  local root = repo_root()
  local spec_path = arg[1] or (root .. "/../shared/specs/planfix-rest-openapi.json")
  local out_path = arg[2] or (root .. "/lua/planapi/planfix_rest/ops.lua")

  spec = cjson.decode(read_file(spec_path))

  local ops, count = {}, 0
  for path, path_item in pairs(spec.paths) do
    for _, method in ipairs(HTTP_METHODS) do
      local op = path_item[method]
      if op then
        local id = op.operationId
        if type(id) ~= "string" then fail("%s %s has no operationId", method, path) end
        if ops[id] then fail("duplicate operationId %s", id) end
        ops[id] = build_operation(path, path_item, method, op)
        count = count + 1
      end
    end
  end

  local title = spec.info.title .. " " .. spec.info.version
  local tables = {
    spec_version = spec.info.version,
    count = count,
    ops = ops,
    filter_types = filter_types(),
  }
  write_file(out_path, table.concat({
    "-- generated by " .. GENERATOR .. " from " .. title .. "; do not edit by hand",
    "return " .. serialise(tables, "", #"return "),
    "",
  }, "\n"))
end

main()
