-- planfix_fields/types.lua: Planfix custom-field values by type, both ways.
--   types.encode(def, value, ctx) -> wire | nil, err   (what Lua gives -> what Planfix expects)
--   types.decode(def, wire, ctx) -> value               (what Planfix returns -> a plain Lua value)
--   types.same(def, sent_wire, read_wire) -> bool        (did a write stick? for the read-back)
--   types.read_problem(def, sent_wire, read_wire) -> nil | "lost" | "period"
--   types.not_an_option(def, read_wire, options) -> the value that is none of the options | nil
--   types.raw(value): a wire value sent as given, unencoded and unchecked
-- def is a field definition (planfix_fields/definitions.lua): { id, name, type, options, ... }.
-- The wire forms are those of the Planfix REST API documentation's customFieldData examples
-- (CustomFieldValueRequest / CustomFieldValueResponse): dates as TimePoint objects
-- ({ date = "dd-MM-yyyy", time = "HH:mm" }), people as prefixed ids ("user:3", "contact:5",
-- "group:1"), directory entries, tasks and projects as { id = N }.
-- ctx (optional): { utc_offset = seconds added to os.time() values before they become a date
-- (default 0: UTC; Planfix reads dates in the token user's time zone), resolve = function(kind,
-- name, def) -> id | nil, err (kind "user", "contact", "person", "directory"), for names given
-- where an id is expected }.
-- A value of the wrong shape is a config error (nothing is sent); a resolver's failure is
-- returned as nil, err. A read-only type refuses every write. ctx.check = false skips the checks
-- that guard against Planfix's silent no-ops (a list value among the options, a period as
-- { from, to } rather than { durationSec }): for a script whose definitions may be stale.
local core = require "planapi.core"
local config_error = require "planapi.config_error"

local M = {}

-- Names of the Planfix REST API documentation's CustomField.type enum and of
-- GET /customfield/type (28 and 29 are only in the latter; 18 and 19 are in neither).
M.NAMES = {
  [0] = "Line", "Number", "Text", "Date", "Time", "Date and time", "Period of time", "Checkbox", "List",
  "Directory entry", "Contact", "Employee", "Counterparty", "Group, employee, or contact", "List of users",
  "Set of directory values", "Task", "Task set", nil, nil, "Set of values", "Files", "Project",
  "Data tag summaries", "Calculated field", "Location", "Subtask total", "AI results field",
  "Date with time frame", "Totals field",
}

-- Computed by Planfix: a write is refused (the Planfix REST API documentation calls data-tag
-- summaries read-only; formulas and totals have nothing to write to).
M.READONLY = { [23] = true, [24] = true, [26] = true, [29] = true }

--- The type's name ("Line"), or "type N" for a number no documentation names.
function M.name(t)
  return M.NAMES[t] or ("type " .. tostring(t))
end

function M.readonly(t)
  return M.READONLY[t] == true
end

-- ------------------------------------------------------------ helpers

--- A string quoted for an error's text: one line (%q would break it at a newline).
function M.quoted(s)
  return (("%q"):format(s):gsub("\\\n", "\\n"))
end

-- def.label: how a caller names the value instead (filters name where clauses so).
local function field_label(def)
  if def.label then return def.label end
  return ("custom field '%s' (%s)"):format(tostring(def.name or def.id), M.name(def.type))
end

local function refuse(def, what, value)
  local shown = type(value) == "string" and M.quoted(value) or type(value)
  config_error(("%s takes %s, got %s"):format(field_label(def), what, shown), 0)
end

local function is_integer(n)
  return type(n) == "number" and n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53
end

local function int_text(n)
  return ("%d"):format(n)
end

local function is_list(v)
  return type(v) == "table" and (v[1] ~= nil or (next(v) == nil))
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- ------------------------------------------------------------ dates and times

local DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function valid_date(y, m, d)
  if not (y and m and d) or m < 1 or m > 12 or d < 1 or d > DAYS[m] then return nil end
  local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  if m == 2 and d == 29 and not leap then return nil end
  return { y = y, m = m, d = d }
end

-- "2021-12-31" or "31-12-2021" (Planfix's own) or "31.12.2021"
local function parse_date(s)
  local y, m, d = s:match "^(%d%d%d%d)%-(%d%d?)%-(%d%d?)$"
  if not y then d, m, y = s:match "^(%d%d?)[%-%.](%d%d?)[%-%.](%d%d%d%d)$" end
  return valid_date(tonumber(y), tonumber(m), tonumber(d))
end

-- "9:05", "09:05" or "09:05:00" (seconds are dropped: Planfix keeps minutes)
local function parse_time(s)
  local h, mi, sec = s:match "^(%d%d?):(%d%d)(:?%d*)$"
  h, mi = tonumber(h), tonumber(mi)
  if not h or h > 23 or mi > 59 or not (sec == "" or sec:match "^:[0-5]%d$") then return nil end
  return { h = h, mi = mi }
end

-- A date and a time: "2021-12-31 09:05", "2021-12-31T09:05[:00][Z]", "31-12-2021 09:05:00".
local function parse_datetime(s)
  local date_part, time_part = s:match "^(%S+)[ T](%d%d?:%d%d:?%d*)Z?$"
  if not date_part then return nil end
  local date, time = parse_date(date_part), parse_time(time_part)
  if not (date and time) then return nil end
  date.h, date.mi = time.h, time.mi
  return date
end

local function from_timestamp(t, ctx)
  local d = os.date("!*t", math.floor(t + (ctx and ctx.utc_offset or 0)))
  return { y = d.year, m = d.month, d = d.day, h = d.hour, mi = d.min }
end

local function wire_date(p)
  return ("%02d-%02d-%04d"):format(p.d, p.m, p.y)
end

local function wire_time(p)
  return ("%02d:%02d"):format(p.h, p.mi)
end

local function iso_date(p)
  return ("%04d-%02d-%02d"):format(p.y, p.m, p.d)
end

-- A point in time from what Lua gives: os.time() number, a string, or Planfix's own TimePoint.
local function point(def, v, ctx, with_time)
  local what = with_time and "os.time() or \"YYYY-MM-DD HH:MM\"" or "os.time() or \"YYYY-MM-DD\""
  if type(v) == "number" then return from_timestamp(v, ctx) end
  if type(v) == "table" and type(v.date) == "string" then
    local p = parse_date(v.date)
    local tp = type(v.time) == "string" and parse_time(v.time)
    if p and with_time then p.h, p.mi = tp and tp.h or 0, tp and tp.mi or 0 end
    if p then return p end
  elseif type(v) == "string" then
    local p = with_time and (parse_datetime(trim(v)) or parse_date(trim(v))) or parse_date(trim(v))
    if p and with_time and not p.h then p.h, p.mi = 0, 0 end
    if p then return p end
  end
  refuse(def, what, v)
end

-- The date (and time) a TimePoint names, as Lua strings: "2021-12-31", "2021-12-31 09:05".
local function read_point(wire, with_time)
  if type(wire) == "string" then
    local p = parse_datetime(trim(wire)) or parse_date(trim(wire))
    if not p then return wire end
    if not with_time then return iso_date(p) end
    return iso_date(p) .. " " .. wire_time { h = p.h or 0, mi = p.mi or 0 }
  end
  if type(wire) ~= "table" or type(wire.date) ~= "string" then return nil end
  local p = parse_date(wire.date)
  if not p then return nil end
  local t = type(wire.time) == "string" and parse_time(wire.time)
  if not with_time then return iso_date(p) end
  return iso_date(p) .. " " .. wire_time(t or { h = 0, mi = 0 })
end

local function time_of_day(def, v)
  if type(v) == "number" and v >= 0 and v < 86400 then
    return { h = math.floor(v / 3600), mi = math.floor(v % 3600 / 60) }
  end
  local p = type(v) == "string" and parse_time(trim(v))
    or type(v) == "table" and type(v.time) == "string" and parse_time(v.time)
  if p then return p end
  refuse(def, "\"HH:MM\" or seconds since midnight", v)
end

local function read_time(wire)
  local s = type(wire) == "table" and wire.time or wire
  local p = type(s) == "string" and parse_time(s)
  return p and wire_time(p) or nil
end

-- A period's end: a time of day ("09:05") or a date and time.
local function period_end(def, v, ctx, dated)
  if dated then
    local p = point(def, v, ctx, true)
    return { date = wire_date(p), time = wire_time(p) }
  end
  return { time = wire_time(time_of_day(def, v)) }
end

local function encode_period(def, v, ctx, dated)
  if ctx and ctx.check == false and type(v) == "table" and v.durationSec ~= nil and v.from == nil then
    return v -- unchecked: sent as given, for the read-back to judge
  end
  if type(v) == "number" or (type(v) == "table" and v.durationSec ~= nil) then
    -- Planfix answers 200 to { durationSec } and stores the period empty
    -- (the Planfix REST API documentation's gotchas, period of time).
    config_error(("%s takes { from = ..., to = ... }: a duration alone is stored empty by Planfix")
      :format(field_label(def)), 0)
  end
  if type(v) ~= "table" or v.from == nil or v.to == nil then refuse(def, "{ from = ..., to = ... }", v) end
  return { from = period_end(def, v.from, ctx, dated), to = period_end(def, v.to, ctx, dated) }
end

local function read_period_end(wire, dated)
  if type(wire) ~= "table" then return nil end
  if wire.date ~= nil or dated then return read_point(wire, true) end
  return read_time(wire)
end

local function decode_period(wire, dated)
  if type(wire) ~= "table" then return nil end
  local from, to = read_period_end(wire.from, dated), read_period_end(wire.to, dated)
  if from == nil and to == nil then return nil end
  return { from = from, to = to }
end

-- ------------------------------------------------------------ references

-- People: type -> the prefixes it takes (the first one is what a bare number means).
local PERSON = {
  [10] = { "contact" }, [11] = { "user" }, [12] = { "contact" },
  [13] = { "user", "contact", "group" }, [14] = { "user", "contact", "group" },
}
local RESOLVE_KIND = { [10] = "contact", [11] = "user", [12] = "contact", [13] = "person", [14] = "person" }

local function resolve(def, kind, name, ctx)
  if not (ctx and ctx.resolve) then
    config_error(("%s takes an id; the name %s cannot be looked up here"):format(field_label(def), M.quoted(name)), 0)
  end
  local id, err = ctx.resolve(kind, name, def)
  if id == nil then return nil, err end
  return id
end

local function person_id(def, v, ctx)
  local prefixes = PERSON[def.type]
  if type(v) == "table" then v = v.id end
  if is_integer(v) and #prefixes == 1 then return prefixes[1] .. ":" .. int_text(v) end
  if type(v) == "string" then
    local prefix = v:match "^(%a+):%d+$"
    for _, p in ipairs(prefixes) do
      if p == prefix then return v end
    end
    if v:match "^%d+$" and #prefixes == 1 then return prefixes[1] .. ":" .. v end
    if prefix == nil and v ~= "" then return resolve(def, RESOLVE_KIND[def.type], v, ctx) end
  end
  refuse(def, ("an id (%s:N%s) or a name"):format(table.concat(prefixes, ":N, "),
    #prefixes == 1 and ", N" or ""), v)
end

local function plain_id(def, v, what)
  if type(v) == "table" then v = v.id end
  if type(v) == "string" and v:match "^%d+$" then v = tonumber(v) end
  if is_integer(v) and v >= 0 then return v end
  refuse(def, what, v)
end

-- A directory entry: its key, { id = key }, or its name (looked up by ctx.resolve).
local function entry_key(def, v, ctx)
  if type(v) == "string" and not v:match "^%d+$" then return resolve(def, "directory", v, ctx) end
  return plain_id(def, v, "an entry key or name")
end

local function reference(wire)
  if type(wire) ~= "table" or wire.id == nil or wire.id == "" then return nil end
  return { id = wire.id, name = wire.name }
end

local function entry_name(wire)
  if type(wire) ~= "table" then return nil end
  local name = wire.value or wire.name
  if name ~= nil then return name end
  if wire.id == nil or wire.id == 0 or wire.id == "" then return nil end
  return wire.id
end

-- Each item of a multi-value field through one encoder; a single value is a list of one.
local function each_item(def, v, ctx, one)
  if type(v) ~= "table" or (v[1] == nil and next(v) ~= nil) then v = { v } end
  local out = core.array()
  for i, item in ipairs(v) do
    local wire, err = one(def, item, ctx)
    if wire == nil then return nil, err end
    out[i] = wire
  end
  return out
end

local function map_list(wire, one)
  if not is_list(wire) then return nil end
  local out = {}
  for _, item in ipairs(wire) do
    local v = one(item)
    if v ~= nil then out[#out + 1] = v end
  end
  return out
end

-- ------------------------------------------------------------ per type

local function among(options, s)
  for _, o in ipairs(options) do
    if o == s then return true end
  end
  return false
end

local function option_checked(def, s, ctx)
  if def.options and def.options[1] ~= nil and not (ctx and ctx.check == false) then
    if among(def.options, s) then return s end
    config_error(("%s has no option %s (options: %s)"):format(field_label(def), M.quoted(s),
      table.concat(def.options, ", ")), 0)
  end
  return s
end

local function text(def, v)
  if type(v) == "number" then return is_integer(v) and int_text(v) or tostring(v) end
  if type(v) ~= "string" then refuse(def, "a string", v) end
  return v
end

local function number(def, v)
  local n = type(v) == "string" and tonumber(trim(v)) or v
  if type(n) ~= "number" or n ~= n or n == math.huge or n == -math.huge then refuse(def, "a number", v) end
  return n
end

local function boolean(def, v)
  if v == "true" then return true elseif v == "false" then return false end
  if type(v) ~= "boolean" then refuse(def, "true or false", v) end
  return v
end

local function location(def, v)
  if type(v) == "string" then return { address = v } end
  if type(v) ~= "table" or (v.address == nil and v.latitude == nil) then
    refuse(def, "an address or { address =, latitude =, longitude = }", v)
  end
  return { address = v.address, latitude = v.latitude, longitude = v.longitude }
end

local ENCODE = {
  [0] = text, [1] = number, [2] = text, [27] = text,
  [3] = function(def, v, ctx) return { date = wire_date(point(def, v, ctx, false)) } end,
  [4] = function(def, v) return { time = wire_time(time_of_day(def, v)) } end,
  [5] = function(def, v, ctx)
    local p = point(def, v, ctx, true)
    return { date = wire_date(p), time = wire_time(p) }
  end,
  [6] = function(def, v, ctx) return encode_period(def, v, ctx, false) end,
  [28] = function(def, v, ctx) return encode_period(def, v, ctx, true) end,
  [7] = boolean,
  [8] = function(def, v, ctx) return option_checked(def, text(def, v), ctx) end,
  [9] = function(def, v, ctx)
    local key, err = entry_key(def, v, ctx)
    if key == nil then return nil, err end
    return { id = key }
  end,
  [15] = function(def, v, ctx)
    return each_item(def, v, ctx, function(d, item, c)
      local key, err = entry_key(d, item, c)
      if key == nil then return nil, err end
      return { id = key }
    end)
  end,
  [16] = function(def, v) return { id = plain_id(def, v, "a task number") } end,
  [17] = function(def, v, ctx)
    return each_item(def, v, ctx, function(d, item) return { id = plain_id(d, item, "task numbers") } end)
  end,
  [20] = function(def, v, ctx)
    return each_item(def, v, ctx, function(d, item, c) return option_checked(d, text(d, item), c) end)
  end,
  [21] = function(def, v, ctx)
    return each_item(def, v, ctx, function(d, item) return plain_id(d, item, "file ids") end)
  end,
  [22] = function(def, v) return { id = plain_id(def, v, "a project number") } end,
  [25] = location,
}
for t = 10, 13 do
  ENCODE[t] = function(def, v, ctx)
    local id, err = person_id(def, v, ctx)
    if id == nil then return nil, err end
    return { id = id }
  end
end
ENCODE[14] = function(def, v, ctx)
  return each_item(def, v, ctx, function(d, item, c)
    local id, err = person_id(d, item, c)
    if id == nil then return nil, err end
    return { id = id }
  end)
end

-- ------------------------------------------------------------ raw values

-- Known by a mark rather than by identity, so a value made by one load of this module is known
-- by another (a script or a test may load it afresh).
local RAW = { planfix_raw = true, __name = "planapi.planfix_raw" }

--- types.raw(value) -> a marked value that encode passes through as the wire value, unchecked
-- (planapi.planfix_raw): for a form planapi refuses or does not know, sent on purpose.
function M.raw(value)
  if value == nil then config_error("planfix_raw takes a wire value (planapi.null clears a field)", 2) end
  return setmetatable({ value = value }, RAW)
end

function M.is_raw(v)
  local mt = type(v) == "table" and getmetatable(v)
  return type(mt) == "table" and rawget(mt, "planfix_raw") == true
end

--- types.encode(def, value, ctx) -> wire | nil, err
-- core.null clears the field (an empty value of its type); types.raw(v) is sent as v.
function M.encode(def, value, ctx)
  if M.is_raw(value) then return value.value end
  local t = def.type
  if M.READONLY[t] then
    config_error(("%s is read-only: Planfix computes it"):format(field_label(def)), 0)
  end
  if value == core.null then return M.empty(t) end
  if value == nil then config_error(("%s: no value given (core.null clears it)"):format(field_label(def)), 0) end
  local encode = ENCODE[t]
  if encode == nil then
    -- A type no documentation describes: what the script gives, as given.
    return value
  end
  return encode(def, value, ctx)
end

local MULTI = { [14] = true, [15] = true, [17] = true, [20] = true, [21] = true }

--- The empty value of a type: what clears a field.
function M.empty(t)
  if MULTI[t] then return core.array() end
  if t == 9 then return { id = 0 } end
  if t == 0 or t == 2 or t == 8 or t == 27 then return "" end
  return core.null
end

local DECODE = {
  [1] = function(wire) return type(wire) == "string" and tonumber(wire) or wire end,
  [3] = function(wire) return read_point(wire, false) end,
  [4] = read_time,
  [5] = function(wire) return read_point(wire, true) end,
  [6] = function(wire) return decode_period(wire, false) end,
  [28] = function(wire) return decode_period(wire, true) end,
  [7] = function(wire) return wire == true or wire == 1 or wire == "true" or wire == "1" end,
  [9] = entry_name,
  [15] = function(wire) return map_list(wire, entry_name) end,
  [14] = function(wire) return map_list(wire, reference) end,
  [17] = function(wire) return map_list(wire, reference) end,
  [20] = function(wire) return map_list(wire, function(x) return x end) end,
  [21] = function(wire) return map_list(wire, function(x) return type(x) == "table" and x.id or x end) end,
  [24] = function(wire) return type(wire) == "table" and wire.id or wire end,
  [23] = function(wire) return type(wire) == "table" and wire.id or wire end,
}
for _, t in ipairs { 10, 11, 12, 13, 16, 22 } do DECODE[t] = reference end

--- types.decode(def, wire, ctx) -> a plain Lua value (nil when the field is empty).
-- Strings, numbers and booleans as they are; dates "YYYY-MM-DD", times "HH:MM", dates and
-- times "YYYY-MM-DD HH:MM" (as Planfix shows them: in the account's time zone); periods
-- { from =, to = }; people, tasks, projects { id =, name = }; directory entries their name;
-- multi-value fields lists.
function M.decode(def, wire)
  if wire == nil or wire == core.null then return nil end
  local decode = DECODE[def.type]
  if decode == nil then
    if wire == "" then return nil end
    return wire
  end
  return decode(wire)
end

-- ------------------------------------------------------------ comparison

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', nbsp = " ", ["#39"] = "'" }

-- Multi-line text as words: Planfix may keep it as HTML ("<p>a<br>b</p>" for "a\nb"; the
-- Planfix REST API documentation's directory examples show both forms), so a read-back
-- compares the text without tags, entities and the layout of white space.
local function plain_text(s)
  s = s:gsub("<[^>]*>", " "):gsub("&(#?%w+);", function(e) return ENTITIES[e] end)
  return trim(s:gsub("%s+", " "))
end

-- What identifies a value of a type: ids for references, the decoded value otherwise.
local function key_of(def, wire)
  local t = def.type
  if wire == core.null or wire == nil then return "" end
  if t == 2 and type(wire) == "string" then return plain_text(wire) end
  if t == 9 or t == 16 or t == 22 or PERSON[t] and t ~= 14 then
    local id = type(wire) == "table" and wire.id or wire
    if id == nil or id == 0 or id == "" then return "" end
    if type(id) == "string" and id:match "^%d+$" then id = tonumber(id) end
    id = is_integer(id) and int_text(id) or tostring(id)
    if PERSON[t] and id:match "^%d+$" then id = PERSON[t][1] .. ":" .. id end
    return id
  end
  if MULTI[t] then
    local keys = {}
    for _, item in ipairs(is_list(wire) and wire or {}) do
      keys[#keys + 1] = key_of({ type = t == 14 and 13 or t == 15 and 9 or (t == 17 or t == 21) and 16 or 0 }, item)
    end
    table.sort(keys)
    return table.concat(keys, "\0")
  end
  local v = M.decode(def, wire)
  if type(v) == "table" then
    return ("%s\0%s\0%s"):format(tostring(v.from), tostring(v.to), tostring(v.address))
  end
  if type(v) == "number" then return ("%.15g"):format(v) end
  if v == nil then return "" end
  return tostring(v)
end

--- types.same(def, sent, read) -> bool: whether the value read back is the one written.
function M.same(def, sent, read)
  return key_of(def, sent) == key_of(def, read)
end

-- A wire value that holds nothing: what clears a field.
local function empty_form(wire)
  if wire == nil or wire == core.null or wire == "" then return true end
  if type(wire) ~= "table" then return false end
  local k = next(wire)
  return k == nil or (k == "id" and wire.id == 0 and next(wire, k) == nil)
end

--- types.read_problem(def, sent, read) -> nil when the value read back is the one written, else
-- "period" (a period written without from and to, read back empty: Planfix stores a duration
-- alone as an empty period) or "lost" (another value, or nothing: the field is not on the
-- object's template, or its type ignored the form written).
function M.read_problem(def, sent, read)
  local read_key = key_of(def, read)
  if key_of(def, sent) ~= read_key then return "lost" end
  if read_key ~= "" or empty_form(sent) then return nil end
  return (def.type == 6 or def.type == 28) and "period" or "lost"
end

--- types.not_an_option(def, read, options) -> the first value of a list field (8, 20) read back
-- that is none of `options` (Planfix stores list values unchecked), or nil.
function M.not_an_option(def, read, options)
  if (def.type ~= 8 and def.type ~= 20) or type(options) ~= "table" or options[1] == nil then return nil end
  local values = def.type == 20 and (is_list(read) and read or {}) or { read }
  for _, v in ipairs(values) do
    if type(v) == "string" and v ~= "" and not among(options, v) then return v end
  end
  return nil
end

--- The message part for a list value read back that is none of the field's options.
function M.option_problem(def, value, options)
  local listed = table.concat(options, ", ")
  if #listed > 120 then listed = listed:sub(1, 117) .. "..." end
  return ("'%s' holds %s, none of its options (%s): Planfix stores a list value unchecked"):format(def.name,
    M.quoted(value), listed)
end

--- The text of a value read back, for messages: one line (an error's text is), at most 60
-- characters.
function M.show(def, wire)
  local k = key_of(def, wire):gsub("%z", ", "):gsub("%c", " ")
  if k == "" then return "(empty)" end
  if #k > 60 then k = k:sub(1, 57) .. "..." end
  return k
end

return M
