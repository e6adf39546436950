-- planfix_rest/filters.lua: list filters by name (issue 20).
--   for t in rest.tasks:each { where = { { "Region", "=", "North" }, { "status", "!=", "Completed" },
--     { "Deadline", "<", os.time() } } } do ... end
--   rest:all("get-task-list", { where = { status = "New" } })       -- a key = value pair is "="
--   rest.directories:entries(3, { where = { { "Channel", "=", "Online" } } })
-- A clause is { name, operator, value }: a system field by its name in the entity's answers
-- ("status", "assignees", "dateTime"), or a custom field by its name or id (resolved through
-- planfix_fields.definitions; its type decides the filter type and the value's form). Operators:
-- "=", "!=" (also "==", "~="), ">", "<" (numbers, dates, times), "contains" (names, e-mail,
-- phones: the filters that match a part), "between" (dates: { from, to }). The wire filter is
-- the Planfix REST API documentation's ComplexTaskFilter (ComplexContactFilter, ...): its type
-- from the entity's enum of filter types, operator equal|notequal|gt|lt, value, field.
-- An unknown name, an operator the field's type has no filter for or a value of the wrong form
-- is a config error raised before anything is sent. `where` adds to raw `filters` (both are
-- sent; Planfix combines filters with AND), and raw `filters` work unchanged.
local core = require("planapi.core")
local config_error = require("planapi.config_error")
local Definitions = require("planapi.planfix_fields.definitions")
local types = require("planapi.planfix_fields.types")
local custom = require("planapi.planfix_rest.custom_fields")
local names = require("planapi.planfix_rest.names")

local M = {}

-- The paged lists that take filters, and what their filters are about.
M.LISTS = {
  ["get-task-list"] = "task", ["get-contact-list"] = "contact", ["get-project-list"] = "project",
  ["get-user-list"] = "user", ["post-list-data-tag-entries"] = "datatag",
  ["post-list-directory-entries"] = "directory",
}

-- The filter types of each entity: the enums of the Planfix REST API documentation's
-- ComplexTaskFilter, ComplexContactFilter, ComplexProjectFilter, ComplexUserFilter,
-- ComplexDataTagFilter and ComplexDirectoryFilter (spec/37 compares them with the file).
local function set_of(list)
  local s = {}
  for _, n in ipairs(list) do s[n] = true end
  return s
end
local function range(from, to, out)
  out = out or {}
  for n = from, to do out[#out + 1] = n end
  return out
end
M.TYPES = {
  task = set_of { 1, 2, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28, 29,
    33, 34, 35, 38, 39, 41, 51, 57, 59, 60, 69, 70, 71, 72, 73, 79, 93, 97, 101, 102, 103, 105, 106, 107, 108,
    109, 110, 111, 112, 113, 114, 115, 116, 117, 152, 153, 307, 325 },
  contact = set_of(range(4101, 4118, range(4010, 4019, range(4001, 4008, { 1, 2, 12, 47, 48, 4152, 4153, 4221,
    4222, 4223, 4226, 4231, 4234 })))),
  project = set_of(range(5101, 5113, range(5115, 5118, range(5001, 5015)))),
  user = set_of(range(9101, 9118, { 9001, 9002, 9003, 9004, 9005, 9006, 9008, 9009, 9120, 9121, 9122, 9123,
    9126, 9127 })),
  datatag = set_of { 3101, 3103, 3104, 3105, 3106, 3108, 3109, 3111, 3115, 3116, 3117, 3123 },
  directory = set_of { 6005, 6101, 6102, 6103, 6104, 6105, 6106, 6107, 6108, 6109, 6110, 6112, 6113, 6114,
    6115, 6117 },
}

-- Custom-field filters: the field's type -> the last two digits of the filter type, as the
-- documentation's employee, contact and directory enums name them (01 "Short text", 02
-- "Number", 03 "Date", ..., 18 "Location"; the task enum's 109 is its "custom field user").
local CF_SUFFIX = { [0] = 1, [1] = 2, [3] = 3, [4] = 4, [7] = 5, [8] = 6, [9] = 7, [10] = 8, [11] = 9,
  [12] = 10, [20] = 11, [13] = 12, [14] = 13, [15] = 14, [16] = 15, [17] = 16, [22] = 17, [25] = 18 }
local CF_BASE = { task = 100, contact = 4100, project = 5100, user = 9100, directory = 6100 }
-- Data-tag entries number theirs apart (ComplexDataTagFilter's enum names each).
local DATATAG_CF = { [3] = 3101, [14] = 3103, [11] = 3104, [9] = 3105, [12] = 3106, [0] = 3108, [1] = 3109,
  [13] = 3111, [7] = 3115, [10] = 3116, [16] = 3117, [17] = 3123 }

-- What a value is, by the custom field type it is written as (types.lua encodes and checks
-- it), and the operators a filter on it takes.
local EQ, ORDER = { "=", "!=" }, { "=", "!=", ">", "<" }
local KINDS = {
  text = { type = 0, ops = EQ }, contains = { type = 0, ops = { "contains" } },
  number = { type = 1, ops = ORDER }, date = { type = 3, ops = { "=", "!=", ">", "<", "between" } },
  time = { type = 4, ops = ORDER }, bool = { type = 7, ops = { "=" } }, option = { type = 8, ops = EQ },
  entry = { type = 9, ops = EQ }, contact = { type = 10, ops = EQ }, user = { type = 11, ops = EQ },
  person = { type = 13, ops = EQ }, id = { type = 16, ops = EQ }, status = { ops = EQ },
}
-- A custom field's kind by its type.
local CF_KIND = { [0] = "text", [1] = "number", [3] = "date", [4] = "time", [7] = "bool", [8] = "option",
  [20] = "option", [9] = "entry", [15] = "entry", [10] = "contact", [12] = "contact", [11] = "user",
  [13] = "person", [14] = "person", [16] = "id", [17] = "id", [22] = "id", [25] = "text" }

-- System fields by their names in the entity's answers: { filter type, kind }.
M.SYSTEM = {
  task = {
    name = { 8, "contains" }, status = { 10, "status" }, project = { 5, "id" }, parent = { 73, "id" },
    template = { 51, "id" }, processId = { 24, "id" }, counterparty = { 7, "id" },
    assigner = { 1, "person" }, assignees = { 2, "person" }, auditors = { 3, "person" },
    participants = { 39, "person" }, dateTime = { 12, "date" }, startDateTime = { 13, "date" },
    endDateTime = { 14, "date" }, actualCompletionDate = { 19, "date" },
  },
  contact = {
    name = { 4001, "contains" }, email = { 4005, "contains" }, phones = { 4003, "contains" },
    isCompany = { 4006, "bool" }, group = { 4008, "id" }, template = { 4016, "id" },
  },
  project = { name = { 5001, "contains" }, group = { 5002, "id" }, counterparty = { 5003, "id" },
    owner = { 5004, "user" } },
  user = { name = { 9006, "contains" }, groups = { 9001, "id" }, lastname = { 9123, "text" } },
  datatag = {},
  directory = { archived = { 6005, "bool" } },
}

local OPERATORS = { ["="] = "equal", ["=="] = "equal", ["!="] = "notequal", ["~="] = "notequal",
  [">"] = "gt", ["<"] = "lt", contains = "equal", between = "equal" }
local CANONICAL = { ["=="] = "=", ["~="] = "!=" }

-- Symbolic dates the documentation's dateType enum names (read in the token user's time zone).
local DATE_WORDS = set_of { "today", "yesterday", "tomorrow", "thisWeek" }

-- ------------------------------------------------------------ values

-- A value is checked as one of the kind's type (one value, where a multi-value field's own type
-- takes a list), with the field's options and its name in messages (planfix_fields/types.lua).
local encoded = types.encode

local function as_kind(kind, def, label)
  return { name = def.name, type = KINDS[kind].type or 0, options = def.options, label = label }
end

local function date_value(def, op, value, ctx)
  if op == "between" then
    if type(value) ~= "table" or value.from == nil or value.to == nil then
      config_error(("where '%s' between takes { from = date, to = date }"):format(def.name), 0)
    end
    return { dateType = "otherRange", dateFrom = encoded(def, value.from, ctx).date,
      dateTo = encoded(def, value.to, ctx).date }
  end
  if type(value) == "string" and DATE_WORDS[value] then return { dateType = value } end
  return { dateType = "otherDate", dateValue = encoded(def, value, ctx).date }
end

-- The wire value of one clause's value, by its kind.
local function wire_value(kind, def, op, value, ctx)
  if kind == "date" then return date_value(def, op, value, ctx) end
  local w, err = encoded(def, value, ctx)
  if w == nil then return nil, err end
  if kind == "contains" and w == "" then config_error(("where '%s' contains takes some text"):format(def.name), 0) end
  if kind == "time" then return w.time end
  if kind == "entry" or kind == "contact" or kind == "user" or kind == "person" or kind == "id" then
    return type(w) == "table" and w.id or w
  end
  return w
end

-- ------------------------------------------------------------ statuses by name

-- A status by id or name, or a list of them (any of: the documentation's status filter takes
-- an array for OR).
local function status_value(rest, value)
  local list = type(value) == "table" and value or { value }
  local out = core.array()
  for _, v in ipairs(list) do
    if type(v) == "number" and v == math.floor(v) then
      out[#out + 1] = v
    elseif type(v) == "string" and v ~= "" then
      -- in any task process (planfix_rest/names.lua; a name two processes give two ids is ambiguous)
      local status, err = names.METHODS.status(rest, v)
      if status == nil then return nil, err end
      out[#out + 1] = status.id
    else
      config_error(("where 'status' takes a status id or name (or a list of them), got %s"):format(type(v)), 0)
    end
  end
  if #out == 0 then config_error("where 'status' takes at least one status", 0) end
  return #out == 1 and out[1] or out
end

-- ------------------------------------------------------------ clauses

local function check_op(name, kind, op, what)
  for _, allowed in ipairs(KINDS[kind].ops) do
    if allowed == op then return end
  end
  config_error(("where '%s' (%s) takes the operators %s, not '%s'"):format(name, what,
    table.concat(KINDS[kind].ops, " "), op), 0)
end

--- The filter type of a custom field (a definition) on this entity ("task", ..., "directory",
-- "datatag"), or a config error saying why Planfix has none.
function M.custom_type(entity, def)
  local t = entity == "datatag" and DATATAG_CF[def.type]
    or CF_SUFFIX[def.type] and CF_BASE[entity] + CF_SUFFIX[def.type]
  if not (t and M.TYPES[entity][t]) then
    config_error(("custom field '%s' (%s): Planfix has no %s filter for this type"):format(def.name,
      types.name(def.type), entity), 0)
  end
  return t
end

-- A custom field of the entity, or of one directory's or data tag's entries ("directory:3").
local function custom_def(rest, scope, name)
  local kind, id = scope:match "^(%a+):(%d+)$"
  if not kind then return custom.definitions(rest):field(scope, name) end
  local list, err = custom.owner_fields(rest, kind, tonumber(id))
  if list == nil then return nil, err end
  return Definitions.lookup(list, name, "custom field", ("%s %s"):format(kind, id))
end

-- A clause's target: { type, kind, def, field? }.
local function target(rest, scope, entity, name)
  local sys = type(name) == "string" and M.SYSTEM[entity][name]
  if sys then
    return { type = sys[1], kind = sys[2], what = name,
      def = as_kind(sys[2], { name = name }, ("where '%s'"):format(name)) }
  end
  local def, err = custom_def(rest, scope, name)
  if def == nil then return nil, err end
  local t, kind = M.custom_type(entity, def), CF_KIND[def.type]
  return { type = t, kind = kind, field = def.id, what = def.type_name,
    def = as_kind(kind, def, ("custom field '%s' (%s)"):format(def.name, def.type_name)) }
end

local function clause_parts(c, i)
  if type(c) ~= "table" then
    config_error(("where[%d] is { name, operator, value }, got a %s"):format(i, type(c)), 0)
  end
  local name, op, value = c[1], c[2], c[3]
  if type(name) ~= "string" and type(name) ~= "number" then
    config_error(("where[%d] names a field first (a string or an id), got %s"):format(i, type(name)), 0)
  end
  if not OPERATORS[op] then
    config_error(("where[%d] (%s): unknown operator %s (use = != > < contains between)"):format(i,
      tostring(name), type(op) == "string" and ("'" .. op .. "'") or type(op)), 0)
  end
  if value == nil then config_error(("where[%d] (%s): no value"):format(i, tostring(name)), 0) end
  return name, CANONICAL[op] or op, value
end

--- The wire filter of one clause { name, op, value } | nil, err (definitions not readable).
function M.clause(rest, scope, c, i, ctx)
  local entity = scope:match "^%a+"
  local name, op, value = clause_parts(c, i)
  local tg, err = target(rest, scope, entity, name)
  if tg == nil then return nil, err end
  check_op(tostring(name), tg.kind, op, tg.what)
  local v
  if tg.kind == "status" then
    v, err = status_value(rest, value)
  else
    v, err = wire_value(tg.kind, tg.def, op, value, ctx)
  end
  if v == nil then return nil, err end
  return { type = tg.type, operator = OPERATORS[op], value = v, field = tg.field }
end

-- The clauses of a where: its list items, then its name = value pairs (by name, for a stable
-- order).
local function clauses(where)
  if type(where) ~= "table" then config_error("where is a list of { name, operator, value }", 0) end
  local out = {}
  for i, c in ipairs(where) do out[i] = c end
  local keys = {}
  for k in pairs(where) do
    if type(k) == "string" then keys[#keys + 1] = k
    elseif type(k) ~= "number" or k < 1 or k > #where or k ~= math.floor(k) then
      config_error("where is a list of { name, operator, value } and name = value pairs", 0)
    end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do out[#out + 1] = { k, "=", where[k] } end
  return out
end

--- filters.build(rest, scope, where, ctx) -> the wire filters (an array) | nil, err.
-- scope: "task", "contact", "project", "user", "directory:<id>" or "datatag:<id>".
function M.build(rest, scope, where, ctx)
  local out = core.array()
  for i, c in ipairs(clauses(where)) do
    local f, err = M.clause(rest, scope, c, i, ctx)
    if f == nil then return nil, err end
    out[#out + 1] = f
  end
  return out
end

--- The parameters of a list call with `where` turned into `filters` (after any raw ones);
-- nil, err when the definitions or statuses cannot be read. A call without `where` is as given.
function M.apply(rest, op_id, params)
  if params == nil or params.where == nil then return params end
  local entity = M.LISTS[op_id]
  if entity == nil then
    config_error(("%s takes no `where` (filters by name are for the task, contact, project, user, data-tag "
      .. "entry and directory entry lists)"):format(op_id), 0)
  end
  local scope = entity
  if entity == "datatag" or entity == "directory" then
    if params.id == nil then config_error(("%s needs the %s's id for `where`"):format(op_id, entity), 0) end
    scope = ("%s:%s"):format(entity, tostring(params.id))
  end
  local built, err = M.build(rest, scope, params.where)
  if built == nil then return nil, err end
  local p, all = {}, core.array()
  for k, v in pairs(params) do p[k] = v end
  for _, f in ipairs(type(params.filters) == "table" and params.filters or {}) do all[#all + 1] = f end
  for _, f in ipairs(built) do all[#all + 1] = f end
  p.where, p.filters = nil, all
  return p
end

return M
