-- Custom fields of the emulated Planfix account: the field types, the
-- default definitions (every type for tasks, contacts, projects and users),
-- the templates that fields are attached to, and what a write of a value
-- does, including the writes Planfix answers with success and stores
-- nothing for (described in "Custom fields as users meet them" of the
-- project's API notes, from Planfix's REST API documentation and peers):
--   * a field not attached to the object's template: 200/202, nothing stored;
--   * a list value that is not among the field's options: stored as given;
--   * a period given as {durationSec}: stored empty;
--   * type 23 (data tag summaries) and the other computed types: read-only,
--     a write is ignored.
-- Values are stored in the form the REST API answers with (the spec's
-- response examples per type): a date {date} becomes {date, time,
-- datetime}, a contact {id = 5} becomes {id = "contact:5", name = ...}.
--
-- Functions take the store's db (sandbox.store requires this module for its
-- seed, so this one cannot require the store).
local json = require("sandbox.json")
local util = require("sandbox.util")

local M = {}
local null = json.null

-- GET /customfield/type, as the spec's example lists it (no 18 or 19).
M.TYPES = {
  [0] = "Short text", [1] = "Number", [2] = "Multi-line text", [3] = "Date", [4] = "Time",
  [5] = "Date and time", [6] = "Period of time", [7] = "Checkbox", [8] = "List", [9] = "Directory entry",
  [10] = "Contact", [11] = "Employee", [12] = "Counterparty", [13] = "Group, employee, or contact",
  [14] = "List of users", [15] = "Set of directory values", [16] = "Task", [17] = "Task set",
  [20] = "Set of values", [21] = "Files", [22] = "Project", [23] = "Data tag summaries",
  [24] = "Calculated field", [25] = "Location", [26] = "Subtask total", [27] = "AI results field",
  [28] = "Date with time frame", [29] = "Totals field",
}
M.TYPE_IDS = util.sorted_ids(M.TYPES)

-- Values Planfix computes itself: a write is ignored (23 is the one
-- observed live; the others are computed by their definition).
M.READ_ONLY = { [23] = true, [24] = true, [26] = true, [29] = true }

M.OBJECT_TYPES = { task = 0, contact = 1, directory = 2, project = 3, datatag = 4, main = 5, user = 6 }

-- The table of templates per object kind (users have none).
M.TEMPLATE_TABLES = { task = "templates", contact = "contact_templates", project = "project_templates" }

-- Ids of the catalogue fields: base + type.
M.CATALOGUE_BASE = { task = 500, contact = 600, project = 700, user = 800 }

-- The "Lead sources" directory (id 3) and its fields.
M.LEAD_SOURCES = 3
M.LEAD_NAME_FIELD, M.LEAD_CHANNEL_FIELD = 321, 322

---------------------------------------------------------------- seed

local function catalogue_field(kind, ty)
  local f = { id = M.CATALOGUE_BASE[kind] + ty, name = M.TYPES[ty] .. " (type " .. ty .. ")", type = ty,
    objectType = M.OBJECT_TYPES[kind], groupId = 9 }
  if ty == 8 or ty == 20 then f.enumValues = { "Alpha", "Beta", "Gamma" } end
  if ty == 9 or ty == 15 then
    f.directoryId = M.LEAD_SOURCES
    f.directoryFields = { M.LEAD_NAME_FIELD }
  end
  return f
end

-- Appends one field of every type to each kind's definitions.
local function add_catalogue(customfields)
  for kind in pairs(M.CATALOGUE_BASE) do
    for _, ty in ipairs(M.TYPE_IDS) do
      table.insert(customfields[kind], catalogue_field(kind, ty))
    end
  end
end

-- The fields README's examples use: "Order number", "Region", "Deadline".
local function add_readme_fields(customfields)
  local task = customfields.task
  task[#task + 1] = { id = 106, name = "Order number", type = 0, objectType = 0, groupId = 1 }
  task[#task + 1] = { id = 107, name = "Region", type = 8, objectType = 0, groupId = 1,
    enumValues = { "North", "South", "East", "West" } }
  task[#task + 1] = { id = 108, name = "Deadline", type = 3, objectType = 0, groupId = 1 }
end

local function ids_of(defs, except)
  local out = {}
  for _, f in ipairs(defs) do
    if f.id ~= except then out[#out + 1] = f.id end
  end
  return out
end

-- Lead sources: 150 entries, so a lookup must page (100 per page). Named
-- entries sit on both pages; "Website" only on the second.
local LEAD_NAMED = { [1] = "Referral", [2] = "Cold call", [60] = "Partner", [137] = "Website", [150] = "Exhibition" }

local function lead_sources(db)
  db.directories[M.LEAD_SOURCES] = { id = M.LEAD_SOURCES, name = "Lead sources",
    group = { id = 1, name = "Catalog" }, sourceObjectId = "", sourceDataVersion = "",
    fields = { { id = M.LEAD_NAME_FIELD, name = "Name", type = 0, objectType = 2 },
               { id = M.LEAD_CHANNEL_FIELD, name = "Channel", type = 8, objectType = 2,
                 enumValues = { "Online", "Offline" } } } }
  local entries = {}
  for key = 1, 150 do
    local name = LEAD_NAMED[key] or ("Lead source %03d"):format(key)
    entries[key] = { key = key, parentKey = 0, name = name, archived = false, isGroup = false,
      _cf = { [M.LEAD_NAME_FIELD] = name, [M.LEAD_CHANNEL_FIELD] = key % 2 == 0 and "Online" or "Offline" } }
  end
  db.directory_entries[M.LEAD_SOURCES] = entries
end

-- Adds the definitions, templates and directory of the default account to
-- a freshly seeded db (after its own fields, templates and directories).
function M.seed(db)
  add_readme_fields(db.customfields)
  add_catalogue(db.customfields)
  -- Task templates: "bug report" has every task field, "monthly report"
  -- every one but "Region" (a write of Region to its tasks is a no-op).
  db.templates[100]._fields = ids_of(db.customfields.task)
  db.templates[101]._fields = ids_of(db.customfields.task, 107)
  db.contact_templates = {
    [1] = { id = 1, name = "Contact", isCompany = false, _fields = ids_of(db.customfields.contact) },
    [2] = { id = 2, name = "Company", isCompany = true, _fields = ids_of(db.customfields.contact) },
  }
  db.project_templates = {
    [1] = { id = 1, name = "Project template", _fields = ids_of(db.customfields.project) },
  }
  lead_sources(db)
end

---------------------------------------------------------------- definitions and templates

function M.find(db, kind, id)
  for _, f in ipairs(db.customfields[kind] or {}) do
    if f.id == id then return f end
  end
  return nil
end

-- The template a record's custom fields follow: the record itself when it
-- is a template, the one its `template.id` names, or nil (no template, or
-- one the account does not have: every field of the kind applies).
function M.template_of(db, kind, rec)
  if rec._fields then return rec end
  local tid = type(rec.template) == "table" and util.to_int(rec.template.id)
  local tbl = db[M.TEMPLATE_TABLES[kind] or ""]
  if not tid or tid == 0 or not tbl then return nil end
  return tbl[tid]
end

function M.attached(db, kind, rec, id)
  local tpl = M.template_of(db, kind, rec)
  if not tpl or not tpl._fields then return true end
  for _, f in ipairs(tpl._fields) do
    if f == id then return true end
  end
  return false
end

---------------------------------------------------------------- values

local function date_parts(v)
  local date, time
  if type(v) == "table" then
    date, time = v.date, v.time
  elseif type(v) == "string" then
    date, time = v:match("^%s*(%d%d%-%d%d%-%d%d%d%d)%s*(.-)%s*$")
  end
  if type(date) ~= "string" or not date:match("^%d%d%-%d%d%-%d%d%d%d$") then return nil end
  local hh, mm = tostring(time or ""):match("^(%d%d?):(%d%d)")
  return date, hh and ("%02d:%s"):format(tonumber(hh), mm) or nil
end

local function timepoint(date, time)
  local d, m, y = date:match("^(%d%d)%-(%d%d)%-(%d%d%d%d)$")
  time = time or "00:00"
  return { date = date, time = time, datetime = ("%s-%s-%sT%sZ"):format(y, m, d, time) }
end

local function time_only(v)
  local t = type(v) == "table" and v.time or v
  local hh, mm = tostring(t or ""):match("^%s*(%d%d?):(%d%d)")
  if not hh then return nil end
  return { time = ("%02d:%s"):format(tonumber(hh), mm) }
end

local function full_name(first, last)
  if last and last ~= "" then return first .. " " .. last end
  return first
end

local function person_name(db, prefix, n)
  if prefix == "user" then
    local u = db.users[n]
    return u and full_name(u.name, u.lastname)
  elseif prefix == "contact" then
    local c = db.contacts[n]
    return c and full_name(c.name, c.lastname)
  elseif prefix == "group" then
    for _, g in ipairs(db.user_groups) do
      if g.id == n then return g.name end
    end
  end
  return nil
end

-- {id = "user:3"} / {id = 3} (the default prefix) -> {id = "user:3", name}.
local function person(db, v, default_prefix, allowed)
  local id = type(v) == "table" and v.id or v
  local prefix, n
  if util.to_int(id) then
    prefix, n = default_prefix, util.to_int(id)
  elseif type(id) == "string" then
    local p, digits = id:match("^(%a+):(%d+)$")
    prefix, n = p, tonumber(digits)
  end
  if not prefix or not allowed[prefix] then return nil end
  local name = person_name(db, prefix, n)
  if not name then return nil end
  return { id = prefix .. ":" .. n, name = name }
end

-- {id = key} of the field's directory -> {id, value = the entry's name};
-- {id = 0} and {id = ""} empty the field (the spec's examples).
local function directory_entry(db, def, v)
  local raw = type(v) == "table" and v.id or v
  if raw == 0 or raw == "" or raw == "0" then return null end
  local key = util.to_int(raw)
  local e = key and (db.directory_entries[def.directoryId] or {})[key]
  if not e then return nil end
  return { id = key, value = e.name }
end

local function named_ref(tbl, v)
  local id = util.to_int(type(v) == "table" and v.id or v)
  local rec = id and tbl[id]
  if not rec then return nil end
  return { id = id, name = rec.name }
end

-- Applies `one` to each item of an array value; nil when any fails.
local function each(v, one)
  if type(v) ~= "table" or (next(v) ~= nil and #v == 0) then return nil end
  local out = json.array()
  for i, item in ipairs(v) do
    out[i] = one(item)
    if out[i] == nil then return nil end
  end
  return out
end

local function text(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(v) end
  return nil
end

local function checkbox(v)
  if v == true or v == "true" or v == 1 or v == "1" then return true end
  if v == false or v == "false" or v == 0 or v == "0" then return false end
  return nil
end

local function date_value(v, with_time)
  local date, time = date_parts(v)
  if not date or (with_time and type(v) == "table" and not time) then return nil end
  return timepoint(date, time)
end

local function frame(v)
  if type(v) ~= "table" or type(v.from) ~= "table" or type(v.to) ~= "table" then return nil end
  local fd, ft = date_parts(v.from)
  local td, tt = date_parts(v.to)
  if not fd or not td then return nil end
  local from, to = timepoint(fd, ft), timepoint(td, tt)
  return { from = from, to = to, considerTimeZone = v.considerTimeZone == true,
    stringValue = from.date .. " " .. from.time .. " – " .. to.date .. " " .. to.time }
end

-- A period: {from = {time}, to = {time}}. {durationSec} is accepted and
-- stored empty, as on the real service.
local function period(v)
  if type(v) ~= "table" then return nil end
  if v.from == nil and v.to == nil and v.durationSec ~= nil then return null end
  local from, to = time_only(v.from), time_only(v.to)
  if not from or not to then return nil end
  return { from = from, to = to }
end

local PEOPLE = { user = true, contact = true, group = true }

-- type -> function(db, def, value): the stored value, or nil when the type
-- cannot take it.
local CONVERT = {
  [0] = function(_, _, v) return text(v) end,
  [1] = function(_, _, v) return util.to_number(v) end,
  [3] = function(_, _, v) return date_value(v) end,
  [4] = function(_, _, v) return time_only(v) end,
  [5] = function(_, _, v) return date_value(v, true) end,
  [6] = function(_, _, v) return period(v) end,
  [7] = function(_, _, v) return checkbox(v) end,
  -- Not checked against enumValues: Planfix stores any text.
  [8] = function(_, _, v) return text(v) end,
  [9] = directory_entry,
  [10] = function(db, _, v) return person(db, v, "contact", { contact = true }) end,
  [11] = function(db, _, v) return person(db, v, "user", { user = true }) end,
  [12] = function(db, _, v) return person(db, v, "contact", { contact = true }) end,
  [13] = function(db, _, v) return person(db, v, "user", PEOPLE) end,
  [14] = function(db, _, v) return each(v, function(x) return person(db, x, "user", PEOPLE) end) end,
  [15] = function(db, def, v) return each(v, function(x) return directory_entry(db, def, x) end) end,
  [16] = function(db, _, v) return named_ref(db.tasks, v) end,
  [17] = function(db, _, v) return each(v, function(x) return named_ref(db.tasks, x) end) end,
  [20] = function(_, _, v) return each(v, text) end,
  [21] = function(db, _, v) return each(v, function(x) return db.files[util.to_int(x)] and util.to_int(x) end) end,
  [22] = function(db, _, v) return named_ref(db.projects, v) end,
  [25] = function(_, _, v) return type(v) == "table" and type(v.address) == "string" and v or nil end,
  [28] = function(_, _, v) return frame(v) end,
}
CONVERT[2], CONVERT[27] = CONVERT[0], CONVERT[0]

-- What writing `value` to field `def` of `rec` (an object of `kind`) does:
--   "stored", value[, note]  the value to keep (json.null clears the field)
--   "ignored", reason   Planfix answers success and keeps nothing
--   "failed", message   a per-field failure entry
function M.write(db, kind, rec, def, value)
  if not M.attached(db, kind, rec, def.id) then return "ignored", "not on the template" end
  if M.READ_ONLY[def.type] then return "ignored", "read-only type" end
  if value == nil or value == null then return "stored", null end
  local convert = CONVERT[def.type]
  local stored = convert and convert(db, def, value)
  if stored == nil then return "failed", "Invalid value" end
  -- A {durationSec} period: success, and the field is emptied.
  if stored == null and def.type == 6 then return "stored", null, "stored empty" end
  return "stored", stored
end

---------------------------------------------------------------- the XML API's text form

-- Planfix's XML API documentation, data types: dates "dd-mm-yyyy" or
-- "dd-mm-yyyy hh:mm", booleans 0/1, and multi-value fields as ids in
-- brackets ("[1,2]") or quoted texts ('["v1","v2"]'). Reads answer values in
-- the form writes take them, so a value read can be written back.

local MULTI = { [14] = true, [15] = true, [17] = true, [20] = true, [21] = true }

local function scalar_text(v)
  if v == true then return "1" end
  if v == false then return "0" end
  if type(v) == "number" and v % 1 == 0 and math.abs(v) < 2 ^ 53 then return ("%d"):format(v) end
  return tostring(v)
end

-- The id part of a reference: {id = "contact:12"} -> "12", {id = 137} -> "137".
local function ref_text(v)
  local id = v.id
  if type(id) == "string" then return id:match(":(%d+)$") or id end
  return scalar_text(id)
end

-- The text of a stored table value of field `def`.
function M.xml_table_text(def, v)
  local ty = def and def.type
  if v.stringValue then return v.stringValue end
  if v.date then return ty == 5 and (v.date .. " " .. (v.time or "00:00")) or v.date end
  if v.time then return v.time end
  if type(v.from) == "table" and type(v.to) == "table" then
    return (v.from.time or "") .. "-" .. (v.to.time or "")
  end
  if v.address then return v.address end
  if v.id ~= nil then return ref_text(v) end
  local parts = {}
  for i, item in ipairs(v) do
    if type(item) == "table" then
      parts[i] = ref_text(item)
    elseif type(item) == "string" then
      parts[i] = '"' .. item:gsub('"', '\\"') .. '"'
    else
      parts[i] = scalar_text(item)
    end
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

local function multi_items(given)
  local inner = given:match("^%s*%[(.*)%]%s*$")
  if not inner then return { given } end
  local out = util.split_list(inner)
  for i, item in ipairs(out) do out[i] = item:match('^"?(.-)"?$') end
  return out
end

-- The value a written text stands for, for M.write (which converts and
-- checks it like a REST value); "" empties the field.
function M.from_xml_text(def, given)
  if given == nil or given == "" then return null end
  local ty = def.type
  if MULTI[ty] then
    local items = multi_items(given)
    if ty == 15 or ty == 17 then
      for i, item in ipairs(items) do items[i] = { id = item } end
    end
    return items
  end
  if ty == 6 then
    local from, to = given:match("^%s*(%d%d?:%d%d)%s*%-%s*(%d%d?:%d%d)%s*$")
    return from and { from = { time = from }, to = { time = to } } or given
  end
  if ty == 25 then return { address = given } end
  return given
end

-- The public view of a definition (internal "_" keys dropped).
M.view = util.public

return M
