-- List filters of the emulated Planfix REST API (POST /task/list, /contact/list, /project/list,
-- /user/list, /datatag/{id}/entry/list, /directory/{id}/entry/list): each filter is checked, and
-- one the sandbox does not understand (a type it does not emulate, an unknown operator, a value
-- of the wrong form, a custom field that is not the entity's or not of the filter's type) is
-- refused as Planfix refuses an invalid parameter (400, code 41); the accepted ones are
-- applied (AND). The filter types are those of the Planfix REST API documentation's
-- ComplexTaskFilter, ComplexContactFilter, ... enums that the sandbox emulates (sandbox/README.md
-- lists them).
local json = require("sandbox.json")
local M = {}

-- Operators: the spec's enum, the documentation's date forms, and the custom-field words.
local OPERATORS = { equal = "eq", equals = "eq", have = "eq", notequal = "ne", nothave = "ne", gt = "gt",
  lt = "lt", gtAndEqual = "ge", ltAndEqual = "le" }

---------------------------------------------------------------- value forms

local PEOPLE = { user = true, contact = true, group = true }

local function is_int(v) return type(v) == "number" and v == math.floor(v) end

local function date_key(s)
  local d, m, y = tostring(s or ""):match("^(%d%d)%-(%d%d)%-(%d%d%d%d)$")
  if not d then return nil end
  return tonumber(y) * 10000 + tonumber(m) * 100 + tonumber(d)
end

local function key_of_time(t)
  return date_key(os.date("!%d-%m-%Y", t))
end

-- Symbolic dates, relative to the request's time (UTC): { from, to } as date keys.
local function word_range(word, now)
  local day = 86400
  if word == "today" then return key_of_time(now), key_of_time(now) end
  if word == "yesterday" then return key_of_time(now - day), key_of_time(now - day) end
  if word == "tomorrow" then return key_of_time(now + day), key_of_time(now + day) end
  if word == "thisWeek" then
    local wday = (tonumber(os.date("!%w", now)) + 6) % 7 -- Monday 0
    return key_of_time(now - wday * day), key_of_time(now + (6 - wday) * day)
  end
end

-- A date filter's value -> { from, to } (date keys), or nil.
local function date_range(v, now)
  if type(v) ~= "table" then return nil end
  local t = v.dateType
  if t == "otherDate" then
    local k = date_key(v.dateValue or v.dateFrom)
    return k and { k, k }
  elseif t == "otherRange" then
    local a, b = date_key(v.dateFrom), date_key(v.dateTo)
    return a and b and a <= b and { a, b } or nil
  end
  local a, b = word_range(t, now)
  return a and { a, b }
end

local function minutes(s)
  local h, m = tostring(s or ""):match("^(%d%d?):(%d%d)$")
  h, m = tonumber(h), tonumber(m)
  return h and h < 24 and m < 60 and h * 60 + m or nil
end

-- family -> { want = function(value, now) -> normalized | nil (wrong form), ops = allowed }
local EQ = { eq = true, ne = true }
local ORDERED = { eq = true, ne = true, gt = true, lt = true, ge = true, le = true }
local FAMILY = {
  person = { ops = EQ, want = function(v)
    local p = type(v) == "string" and v:match("^(%a+):%d+$")
    return PEOPLE[p] and v or nil
  end },
  id = { ops = EQ, want = function(v) return is_int(v) and v or nil end },
  status = { ops = EQ, want = function(v)
    if is_int(v) then return { v } end
    if type(v) ~= "table" or #v == 0 then return nil end
    for _, x in ipairs(v) do if not is_int(x) then return nil end end
    return v
  end },
  contains = { ops = EQ, want = function(v) return type(v) == "string" and v ~= "" and v:lower() or nil end },
  text = { ops = EQ, want = function(v) return type(v) == "string" and v or nil end },
  bool = { ops = EQ, want = function(v)
    if type(v) == "boolean" then return v end -- false is a value, not a refusal
  end },
  number = { ops = ORDERED, want = function(v) return type(v) == "number" and v or nil end },
  date = { ops = ORDERED, want = date_range },
  time = { ops = ORDERED, want = function(v) return type(v) == "string" and minutes(v) or nil end },
}

---------------------------------------------------------------- what a record holds

local function ids_of(people)
  local out = {}
  if type(people) ~= "table" then return out end
  for _, u in ipairs(people.users or {}) do out[#out + 1] = u.id end
  for _, g in ipairs(people.groups or {}) do
    out[#out + 1] = type(g.id) == "number" and ("group:" .. g.id) or g.id
  end
  return out
end

local function ref_id(v)
  local id = type(v) == "table" and v.id or nil
  if type(id) == "string" then id = tonumber(id:match("(%d+)$")) end
  if id == 0 then return nil end
  return id
end

local function date_of(tp)
  return type(tp) == "table" and date_key(tp.date) or nil
end

local function full_name(r)
  if r.lastname and r.lastname ~= "" then return r.name .. " " .. r.lastname end
  return r.name
end

-- System filters: type -> { family, getter(rec) -> list of the record's values }.
local SYSTEM = {
  task = {
    [1] = { "person", function(t) return { type(t.assigner) == "table" and t.assigner.id or nil } end },
    [2] = { "person", function(t) return ids_of(t.assignees) end },
    [3] = { "person", function(t) return ids_of(t.auditors) end },
    [39] = { "person", function(t) return ids_of(t.participants) end },
    [5] = { "id", function(t) return { ref_id(t.project) } end },
    [7] = { "id", function(t) return { ref_id(t.counterparty) } end },
    [8] = { "contains", function(t) return { t.name } end },
    [10] = { "status", function(t) return { ref_id(t.status) } end },
    [12] = { "date", function(t) return { date_of(t.dateTime) } end },
    [13] = { "date", function(t) return { date_of(t.startDateTime) } end },
    [14] = { "date", function(t) return { date_of(t.endDateTime) } end },
    [19] = { "date", function(t) return { date_of(t.actualCompletionDate) } end },
    [24] = { "id", function(t) return { t.processId } end },
    [51] = { "id", function(t) return { ref_id(t.template) } end },
    [73] = { "id", function(t) return { ref_id(t.parent) } end },
  },
  contact = {
    [4001] = { "contains", function(c) return { full_name(c) } end },
    [4003] = { "contains", function(c)
      local out = {}
      for _, p in ipairs(c.phones or {}) do out[#out + 1] = p.number end
      return out
    end },
    [4005] = { "contains", function(c) return { c.email } end },
    [4006] = { "bool", function(c) return { c.isCompany == true } end },
    [4008] = { "id", function(c) return { ref_id(c.group) } end },
    [4016] = { "id", function(c) return { ref_id(c.template) } end },
  },
  project = {
    [5001] = { "contains", function(p) return { p.name } end },
    [5002] = { "id", function(p) return { ref_id(p.group) } end },
    [5003] = { "id", function(p) return { ref_id(p.counterparty) } end },
    [5004] = { "person", function(p) return { type(p.owner) == "table" and p.owner.id or nil } end },
  },
  user = {
    [9001] = { "id", function(u)
      local out = {}
      for _, g in ipairs(u.groups or {}) do out[#out + 1] = g.id end
      return out
    end },
    [9006] = { "contains", function(u) return { full_name(u) } end },
    [9123] = { "text", function(u) return { u.lastname } end },
  },
  datatag = {},
  directory = { [6005] = { "bool", function(e) return { e.archived == true } end } },
}

-- Custom-field filters: the last two digits of the type -> the field type they filter (the
-- documentation's enums name them: 01 short text ... 18 location); the entity's base; the
-- numbers its enum lacks. Data-tag entries number theirs apart.
local CF_FIELD_TYPE = { 0, 1, 3, 4, 7, 8, 9, 10, 11, 12, 20, 13, 14, 15, 16, 17, 22, 25 }
local CF_BASE = { task = 100, contact = 4100, project = 5100, user = 9100, directory = 6100 }
local CF_MISSING = { task = { [4] = true, [18] = true }, project = { [14] = true },
  directory = { [11] = true, [16] = true, [18] = true }, contact = {}, user = {} }
local DATATAG_CF = { [3101] = 3, [3103] = 14, [3104] = 11, [3105] = 9, [3106] = 12, [3108] = 0, [3109] = 1,
  [3111] = 13, [3115] = 7, [3116] = 10, [3117] = 16, [3123] = 17 }

local CF_FAMILY = { [0] = "text", [25] = "text", [1] = "number", [3] = "date", [4] = "time", [7] = "bool",
  [8] = "text", [20] = "text", [9] = "id", [15] = "id", [16] = "id", [17] = "id", [22] = "id", [10] = "person",
  [11] = "person", [12] = "person", [13] = "person", [14] = "person" }

-- A stored custom value (in the answer's form) -> the list of its comparable values.
local function cf_values(ftype, v)
  if v == nil or v == json.null then return {} end
  if ftype == 3 then return { date_of(v) } end
  if ftype == 4 then return { minutes(type(v) == "table" and v.time) } end
  if ftype == 7 then return { v == true } end
  if ftype == 25 then return { type(v) == "table" and v.address or nil } end
  local list = (ftype == 14 or ftype == 15 or ftype == 17 or ftype == 20) and v or { v }
  local out = {}
  for _, x in ipairs(type(list) == "table" and list or {}) do
    local fam = CF_FAMILY[ftype]
    if fam == "id" then out[#out + 1] = ref_id(x)
    elseif fam == "person" then out[#out + 1] = type(x) == "table" and x.id or nil
    else out[#out + 1] = x end
  end
  return out
end

-- The field type a custom-field filter type of the entity filters, or nil.
local function cf_type(entity, ty)
  if entity == "datatag" then return DATATAG_CF[ty] end
  local base = CF_BASE[entity]
  local suffix = base and ty - base
  if not suffix or suffix < 1 or suffix > #CF_FIELD_TYPE or CF_MISSING[entity][suffix] then return nil end
  return CF_FIELD_TYPE[suffix]
end

---------------------------------------------------------------- compiling

-- One filter -> { family, op, want, get } | nil, what is wrong.
local function compile_one(entity, f, i, field_def, now)
  local where = ("filters[%d]"):format(i)
  local ty = type(f) == "table" and is_int(f.type) and f.type
  if not ty then return nil, where .. ".type" end
  local family, get
  local sys = SYSTEM[entity][ty]
  if sys then
    family, get = sys[1], sys[2]
  else
    local ftype = cf_type(entity, ty)
    if ftype == nil then return nil, ("%s.type %d"):format(where, ty) end
    local def = is_int(f.field) and field_def(f.field)
    if not def or def.type ~= ftype then return nil, where .. ".field" end
    family = CF_FAMILY[ftype]
    get = function(rec) return cf_values(ftype, rec._cf and rec._cf[def.id]) end
  end
  local op = OPERATORS[f.operator]
  if not op or not FAMILY[family].ops[op] then return nil, where .. ".operator" end
  local want = FAMILY[family].want(f.value, now)
  if want == nil then return nil, where .. ".value" end
  return { family = family, op = op, want = want, get = get }
end

-- -1, 0, 1: a record's value before, at or after what the filter wants (nil: not comparable).
local function compare(c, v)
  if v == nil then return nil end
  if c.family == "date" then
    if v < c.want[1] then return -1 elseif v > c.want[2] then return 1 end
    return 0
  end
  if c.family == "contains" then return tostring(v):lower():find(c.want, 1, true) and 0 or nil end
  if c.family == "status" then
    for _, s in ipairs(c.want) do if s == v then return 0 end end
    return nil
  end
  if type(v) ~= type(c.want) then return nil end
  if v == c.want then return 0 end
  if type(v) == "boolean" then return nil end
  return v < c.want and -1 or 1
end

local function hit(c, rec)
  local values = c.get(rec)
  if c.op == "eq" or c.op == "ne" then
    local any = false
    for i = 1, #values do
      if compare(c, values[i]) == 0 then any = true end
    end
    if c.op == "eq" then return any end
    return not any
  end
  local r = compare(c, values[1])
  if r == nil then return false end
  if c.op == "gt" then return r > 0 elseif c.op == "lt" then return r < 0
  elseif c.op == "ge" then return r >= 0 end
  return r <= 0
end

--- filters.compile(entity, filters, field_def, now) -> predicate(rec) | nil, what is wrong.
-- entity: task, contact, project, user, datatag, directory; field_def(id) -> the definition of
-- one of the entity's custom fields (nil for none); now: the request's time (symbolic dates).
function M.compile(entity, filters, field_def, now)
  if filters == nil or filters == json.null then return function() return true end end
  if type(filters) ~= "table" then return nil, "filters" end
  local compiled = {}
  for i, f in ipairs(filters) do
    local c, err = compile_one(entity, f, i, field_def, now or os.time())
    if not c then return nil, err end
    compiled[i] = c
  end
  return function(rec)
    for _, c in ipairs(compiled) do
      if not hit(c, rec) then return false end
    end
    return true
  end
end

return M
