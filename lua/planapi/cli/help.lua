-- cli/help.lua: the command line explains the APIs from the library's own
-- tables (no text written twice):
--   planapi planfix-rest ops [filter]      planapi planfix-rest help <operationId>
--   planapi planfix-xml methods [filter]   planapi planfix-xml help <method>
--   planapi planado resources [filter]     planapi planado help <resource>
-- REST from planfix_rest/ops.lua (generated from the OpenAPI file), XML from
-- planfix_xml/methods.lua and params.lua, Planado from planado/resources.lua and fields.lua.
local suggest = require("planapi.suggest")
local scaffold = require("planapi.scaffold")
local sorted_keys = require("planapi.client_base").sorted_keys
local usage_error = require("planapi.cli.args").usage_error
local rest = require("planapi.planfix_rest")
local xml = require("planapi.planfix_xml")
local xml_params = require("planapi.planfix_xml.params")
local planado_resources = require("planapi.planado.resources")
local planado_fields = require("planapi.planado.fields")

local M = {}

--- The library's own lookups: the description of an operation or method, or nil.
M.rest_operation, M.xml_method = rest.operation, xml.method

local function sorted(map) return sorted_keys(map or {}) end

-- Plain, case-blind substring: a filter is text, never a Lua pattern.
local function matches(filter, ...)
  if filter == nil then return true end
  local f = filter:lower()
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    if s and s:lower():find(f, 1, true) then return true end
  end
  return false
end

-- Rows { name, text } as aligned lines.
local function columns(rows)
  local width = 0
  for _, r in ipairs(rows) do width = math.max(width, #r[1]) end
  local out = {}
  for i, r in ipairs(rows) do out[i] = ("%-" .. width .. "s  %s"):format(r[1], r[2]):gsub("%s+$", "") end
  return table.concat(out, "\n") .. "\n"
end

local function listing(rows, filter, what, cmd)
  if #rows == 0 then
    usage_error(("no %s matches '%s'; try: %s"):format(what, filter, cmd))
  end
  return columns(rows)
end

-- ------------------------------------------------------------ Planfix REST

--- The ops lines: "operationId  METHOD  summary", those whose operationId,
-- summary, tag or path holds filter.
function M.rest_ops(filter)
  local rows = {}
  for _, id in ipairs(rest.operations()) do
    local op = rest.operation(id)
    if matches(filter, id, op.summary, op.tag, op.path) then
      rows[#rows + 1] = { id, ("%-6s %s"):format(op.method, op.summary or "") }
    end
  end
  return listing(rows, filter, "Planfix REST operation", "planapi planfix-rest ops")
end

-- "(minimum 1, maximum 100)", "(one of a, b)" or "".
local function limits_text(limits)
  if not limits then return "" end
  local parts = {}
  if limits.minimum then parts[#parts + 1] = "minimum " .. limits.minimum end
  if limits.maximum then parts[#parts + 1] = "maximum " .. limits.maximum end
  if limits.min_length then parts[#parts + 1] = "at least " .. limits.min_length .. " characters" end
  if limits.max_length then parts[#parts + 1] = "at most " .. limits.max_length .. " characters" end
  if limits.enum then
    local values = {}
    for i, v in ipairs(limits.enum) do values[i] = tostring(v) end
    parts[#parts + 1] = "one of " .. table.concat(values, ", ")
  end
  if #parts == 0 then return "" end
  return "(" .. table.concat(parts, ", ") .. ")"
end
M.limits_text = limits_text

-- The parameters of a REST operation: { name, type, where, required, limits }
-- in the order path, query, body; `where` names the wire name of a renamed one.
function M.rest_params(op)
  local required = {}
  for _, name in ipairs(op.required or {}) do required[name] = true end
  local out = {}
  local function add(name, t, location)
    local wire = op.wire and op.wire[name]
    out[#out + 1] = { name = name, type = t, location = location, wire = wire,
      required = required[name] or false, limits = op.limits and op.limits[name] }
  end
  for _, name in ipairs(op.path_params or {}) do add(name, op.path_types[name], "path") end
  for _, name in ipairs(sorted(op.query)) do add(name, op.query[name], "query") end
  local body = op.body == "multipart" and "body (multipart)" or "body"
  for _, name in ipairs(sorted(op.body_params)) do add(name, op.body_params[name], body) end
  return out
end

local EXAMPLE_VALUE = { integer = "=1", number = "=1", string = "=text", boolean = "=true",
  object = ":='{}'", array = ":='[]'", any = ":=null" }

-- name=value for the example, within the parameter's limits.
local function example_word(p)
  local limits = p.limits or {}
  local value
  if limits.enum then
    value = "=" .. tostring(limits.enum[1])
  elseif limits.minimum and (p.type == "integer" or p.type == "number") then
    value = "=" .. tostring(math.max(limits.minimum, 1))
  elseif limits.min_length and p.type == "string" then
    value = "=" .. ("x"):rep(limits.min_length)
  end
  return p.name .. (value or EXAMPLE_VALUE[p.type] or "=...")
end

-- A command line with every required parameter, --all for a paged list.
local function rest_example(id, op, params)
  local words = { "planapi planfix-rest " .. id }
  for _, p in ipairs(params) do
    local first_of_some = op.at_least_one and op.at_least_one[1] == p.name
    if p.required or first_of_some then words[#words + 1] = example_word(p) end
  end
  if op.paged and op.list_key then words[#words + 1] = "--all" end
  return table.concat(words, " ")
end

local function rest_param_lines(params)
  if #params == 0 then return "parameters: none\n" end
  local rows = {}
  for _, p in ipairs(params) do
    local where = p.location .. (p.wire and (" (sent as " .. p.wire .. ")") or "")
    local notes = (p.required and "required " or "") .. limits_text(p.limits)
    rows[#rows + 1] = { "  " .. p.name, ("%-8s %-22s %s"):format(p.type, where, notes) }
  end
  return "parameters (name, type, where it goes):\n" .. columns(rows)
end

--- The help of one REST operation (a usage error naming the nearest for an unknown one).
function M.rest_help(id)
  local op = id and rest.operation(id)
  if not op then M.unknown_rest(id) end
  local params = M.rest_params(op)
  local out = {
    ("%s: %s"):format(id, op.summary or ""),
    ("  %s %s  (%s; %s)"):format(op.method, op.path, op.tag or "",
      op.idempotent and "repeated after a failure" or "a write, never repeated blindly"),
    "",
    rest_param_lines(params),
  }
  if op.at_least_one then out[#out + 1] = "at least one of: " .. table.concat(op.at_least_one, ", ") .. "\n" end
  if op.paged and op.list_key then
    out[#out + 1] = ("a list (%s): --all pages through it (paging in the %s)\n"):format(op.list_key, op.paged)
  end
  out[#out + 1] = "example:\n  " .. rest_example(id, op, params) .. "\n"
  return table.concat(out, "\n")
end

local function rest_set()
  local set = {}
  for _, name in ipairs(rest.operations()) do set[name] = true end
  return set
end

-- The first word of the nearest operation's tag: the filter to suggest.
local function tag_word(id)
  local near = suggest.nearest(id, rest_set(), 1)[1]
  local op = near and rest.operation(near)
  return op and op.tag and op.tag:match("%a+"):lower() or "task"
end

--- Raise the usage error of an unknown REST operation: the nearest names and the CLI command that lists them.
function M.unknown_rest(id)
  if id == nil then usage_error "planfix-rest needs an operationId; list them with: planapi planfix-rest ops" end
  usage_error(("unknown Planfix REST operation '%s'%s; list them with: planapi planfix-rest ops %s")
    :format(id, scaffold.did_you_mean(id, rest_set()), tag_word(id)))
end

-- ------------------------------------------------------------ Planfix XML

-- One line on what an XML method does, from its row of the table.
local function xml_summary(info)
  local answer
  if info.raw then
    answer = "the file's bytes (or its link)"
  elseif info.list then
    answer = "a list of " .. (info.item or "items") .. (info.paged and ", paged (pageCurrent, pageSize)" or "")
  else
    answer = "<" .. tostring(info.root) .. ">"
  end
  return (info.writes and "writes; answers " or "reads ") .. answer
end
M.xml_summary = xml_summary

function M.xml_methods(filter)
  local rows = {}
  for _, name in ipairs(xml.methods()) do
    local info = xml.method(name)
    if matches(filter, name, info.group) then rows[#rows + 1] = { name, xml_summary(info) } end
  end
  return listing(rows, filter, "Planfix XML method", "planapi planfix-xml methods")
end

function M.unknown_xml(name)
  if name == nil then usage_error "planfix-xml needs a method name; list them with: planapi planfix-xml methods" end
  local set = {}
  for _, m in ipairs(xml.methods()) do set[m] = true end
  usage_error(("unknown Planfix XML method '%s'%s; list them with: planapi planfix-xml methods %s")
    :format(name, scaffold.did_you_mean(name, set), name:match "^[%a]+" or ""))
end

-- The object the method is about, as a key path from its first documented
-- parameter ("silent, task.{id|general}, ..." -> "task.id"); nil when that
-- is no id (a date, a filter) or the method lists its own group.
local function xml_id_param(name)
  local first = xml_params[name]:gsub("^silent, ", ""):match "^[^,]+"
  first = first and first:gsub("%*", ""):gsub("{([%w_]+)[^}]*}?.*$", "%1"):match "^[^|%s]+"
  if not first or not first:match "%.id$" or name:match "%.getList$" then return nil end
  return first
end
M.xml_id_param = xml_id_param

-- A command line for an XML method: its first parameter, --all for a paged
-- list, a JSON file for an add (its parameters are many).
local function xml_example(name, info)
  if name:match "%.add$" then
    return ("planapi planfix-xml %s @request.json   (a JSON object such as {\"%s\": {...}})"):format(name, info.group)
  end
  local words = { "planapi planfix-xml " .. name }
  local id = xml_id_param(name)
  if id then words[#words + 1] = id .. "=1" end
  if info.paged then words[#words + 1] = "--all" end
  return table.concat(words, " ")
end

function M.xml_help(name)
  local info = name and xml.method(name)
  if not info then M.unknown_xml(name) end
  local group = info.group
  local out = {
    ("%s: %s"):format(name, xml_summary(info)),
    "  POST <data centre>/xml/ with <request method=\"" .. name .. "\">; account, sid and signature are added",
    "parameters: " .. (xml_params[name] ~= "" and xml_params[name] or "none"),
    "  all in the request's XML body, given as key.path=value (" .. group .. ".id=1 is <" .. group
      .. "><id>1</id></" .. group .. ">);\n  a key given twice repeats the element; x.{a,b} is x.a and x.b,"
      .. " a|b either one, * may repeat",
  }
  if info.silent then out[#out + 1] = "  silent=1: the change notifies no one" end
  if info.writes then out[#out + 1] = "a write: never repeated blindly after a failure" end
  out[#out + 1] = "example:\n  " .. xml_example(name, info)
  return table.concat(out, "\n") .. "\n"
end

-- ------------------------------------------------------------ Planado

-- The command line's actions and what each sends; a resource has those its
-- methods (planado/resources.lua) offer.
local ACTIONS = {
  { "list", "all", "GET %s" }, { "get", "get", "GET %s/{uuid or external_id}" },
  { "create", "create", "POST %s" }, { "update", "update", "PATCH %s/{uuid or external_id}" },
  { "upsert", "upsert", "PATCH %s/{external_id} (creates it when unknown)" },
  { "delete", "delete", "DELETE %s/{uuid}" }, { "history", "history", "GET %s/{uuid}/history" },
  { "request", "request", "POST %s/requests" },
}
-- The fields each resource's writes take (planado/fields.lua's kinds).
local KIND = { jobs = "job", clients = "client", sites = "site", services = "service", products = "product",
  print = "print_request" }
local CATALOG = { services = true, products = true }
M.PLANADO_KIND, M.PLANADO_ACTIONS, M.PLANADO_CATALOG = KIND, ACTIONS, CATALOG

-- The resource's methods, bound to a stand-in client (binding calls nothing).
local function resource_actions(name)
  local res = planado_resources.bind({}, name)
  if not res then return nil end
  local out = {}
  for _, a in ipairs(ACTIONS) do
    if res[a[2]] then out[#out + 1] = a end
  end
  return out
end

--- The command line's actions of a Planado resource (nil for no resource).
function M.planado_actions(name)
  local actions = resource_actions(name)
  if not actions then return nil end
  local names = {}
  for i, a in ipairs(actions) do names[i] = a[1] end
  return names
end

function M.planado_resources(filter)
  local rows = {}
  for _, name in ipairs(planado_resources.names()) do
    if matches(filter, name) then rows[#rows + 1] = { name, table.concat(M.planado_actions(name), " ") } end
  end
  return listing(rows, filter, "Planado resource", "planapi planado resources")
end

--- Raise the usage error of an unknown Planado resource: the nearest, the
-- resources, and the command that explains them.
function M.unknown_planado(name)
  if name == nil then usage_error "planado needs a resource; list them with: planapi planado resources" end
  local names = planado_resources.names()
  local set = {}
  for _, r in ipairs(names) do set[r] = true end
  usage_error(("unknown planado resource '%s'%s; the resources are %s (planapi planado help <resource>)")
    :format(name, scaffold.did_you_mean(name, set, 1, 2), table.concat(names, ", ")))
end

--- The fields a Planado resource's create and update take (nil: not checked).
function M.planado_fields(name)
  local fields = planado_fields[KIND[name]]
  return fields and sorted(fields)
end

local function field_lines(name)
  local fields = planado_fields[KIND[name]]
  if not fields then return "" end
  local rows = {}
  for _, f in ipairs(M.planado_fields(name)) do
    rows[#rows + 1] = { "  " .. f, "body" .. (fields[f] and "  (may be null: clears it)" or "") }
  end
  return "fields of its writes (checked before sending):\n" .. columns(rows)
end

function M.planado_help(name)
  local actions = name and resource_actions(name)
  if not actions then M.unknown_planado(name) end
  local path = (CATALOG[name] and "catalog/" or "") .. name
  local rows = {}
  for _, a in ipairs(actions) do rows[#rows + 1] = { "  " .. a[1], a[3]:format(path) } end
  local first = actions[1][1]
  local example = ("planapi planado %s %s"):format(name, first)
  if first == "list" then example = example .. " --all" end
  return ("%s: Planado v2 /%s\nactions:\n%s%sexample:\n  %s\n"):format(name, path, columns(rows),
    field_lines(name), example)
end

return M
