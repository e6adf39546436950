-- planfix_xml/custom_data.lua: custom data by field name on the XML client (issue 20).
--   local xml = planapi.planfix_xml{ ..., definitions = { rest = rest } }   -- or { load_fields = fn }
--   local t = assert(xml.task:get { id = 42 }); print(t.fields["Order number"])
--   assert(xml.task:set_fields(42, { ["Order number"] = "ORD-7", Region = "North" }))
--   xml.fields:list("task") / xml.fields:get("task", "Region") / xml.fields:invalidate()
-- The XML API has no method that lists the custom fields (its documentation names them only by
-- id in customData), so the definitions come from a loader: a REST client of the same account
-- (its rest.fields) or the script's own function. They are kept by planfix_fields.definitions, as
-- the REST client keeps them; values go through planfix_fields.types and then into the XML API's
-- text forms (dates dd-mm-yyyy, multi-values [a,b], booleans 1/0: its documentation's data types).
local Definitions = require "planapi.planfix_fields.definitions"
local types = require "planapi.planfix_fields.types"

local M = {}

local core = require "planapi.core"
local config_error = require "planapi.config_error"
local options = require "planapi.options"

-- The groups with custom data: their entity, how one object is read and how its custom data is
-- written (projects have no updateCustomData: project.update with the id and customData alone).
M.ENTITIES = {
  task = { entity = "task", get = "task.get", write = "task.updateCustomData" },
  contact = { entity = "contact", get = "contact.get", write = "contact.updateCustomData" },
  project = { entity = "project", get = "project.get", write = "project.update" },
}

--- The client option `definitions = { rest = <planfix_rest client> | load_fields = fn(entity),
-- cache = <scope or cache object>, ttl = 3600 }`, checked; secrets: what the cache must refuse.
function M.check_option(v, level, secrets)
  if v == nil then return nil end
  options.check("planfix_xml definitions", v, level + 1,
    { rest = "table", load_fields = "function", cache = "string|table", ttl = "number" })
  if (v.rest == nil) == (v.load_fields == nil) then
    config_error("planfix_xml option 'definitions' takes a REST client (rest =) or a loader (load_fields =)",
      level + 1)
  end
  local c = v.cache
  if type(c) == "string" then
    c = require("planapi.cache").new { scope = c, ttl = v.ttl, namespace = "planfix_fields", secrets = secrets }
  end
  return { rest = v.rest, load_fields = v.load_fields, cache = c, ttl = v.ttl }
end

-- A REST client's definitions as the wire tables the definitions layer reads.
local function from_rest(rest)
  return function(entity)
    local list, err = rest.fields:list(entity)
    if not list then return nil, err end
    local out = {}
    for i, def in ipairs(list) do out[i] = def.raw end
    return out
  end
end

--- The client's definitions (made on first use); nil when it has no `definitions` option.
function M.definitions(xml, level)
  local defs = rawget(xml, "field_definitions")
  if defs then return defs end
  local opt = rawget(xml, "definitions_option")
  if opt == nil then
    config_error("custom fields by name need the planfix_xml option 'definitions' (rest = a REST client)",
      (level or 1) + 1)
  end
  defs = Definitions.new { load_fields = opt.load_fields or from_rest(opt.rest), cache = opt.cache,
    namespace = "planfix_xml:" .. xml.account, ttl = opt.ttl }
  rawset(xml, "field_definitions", defs)
  return defs
end

-- ------------------------------------------------------------ text forms

local function number_text(n)
  if n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then return ("%d"):format(n) end
  return ("%.14g"):format(n)
end

-- "user:3" -> "3": the XML API names people, tasks and entries by their number.
local function id_text(id)
  if type(id) == "number" then return number_text(id) end
  return (tostring(id):gsub("^%a+:", ""))
end

local function scalar_text(def, wire)
  if type(wire) == "boolean" then return wire and "1" or "0" end
  if type(wire) == "number" then return number_text(wire) end
  if type(wire) ~= "table" then return tostring(wire) end
  if wire.date then return def.type == 5 and (wire.date .. " " .. (wire.time or "00:00")) or wire.date end
  if wire.time then return wire.time end
  if type(wire.from) == "table" then return (wire.from.time or "") .. "-" .. (wire.to and wire.to.time or "") end
  if wire.address then return wire.address end
  if wire.id ~= nil then return id_text(wire.id) end
  return ""
end

--- The XML text of a value the REST wire form gives (types.encode's result).
function M.text(def, wire)
  if wire == core.null or wire == nil then return "" end
  if type(wire) == "table" and (wire[1] ~= nil or core.is_array(wire)) then
    local parts = {}
    for i, item in ipairs(wire) do
      parts[i] = type(item) == "string" and ('"' .. item:gsub('[\\"]', "\\%0") .. '"') or scalar_text(def, item)
    end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  return scalar_text(def, wire)
end

local MULTI = { [14] = true, [15] = true, [17] = true, [20] = true, [21] = true }

-- The items of a multi-value text ('"a","b, c"' or '1,2'): quoted items may hold commas and \"
-- (as M.text writes them), bare ones are numbers where they read as one.
local function list_items(inner)
  local out, i = {}, 1
  while i <= #inner do
    local c = inner:sub(i, i)
    if c == '"' then
      local j, buf = i + 1, {}
      while j <= #inner and inner:sub(j, j) ~= '"' do
        if inner:sub(j, j) == "\\" and j < #inner then j = j + 1 end
        buf[#buf + 1] = inner:sub(j, j)
        j = j + 1
      end
      out[#out + 1] = table.concat(buf)
      i = (inner:find(",", j, true) or #inner) + 1
    elseif c:match "[%s,]" then
      i = i + 1
    else
      local j = inner:find(",", i, true) or (#inner + 1)
      local item = inner:sub(i, j - 1):gsub("%s+$", "")
      out[#out + 1] = tonumber(item) or item
      i = j + 1
    end
  end
  return out
end

--- A value as the XML API gives it, in plain Lua: numbers, booleans, lists; text as it is.
function M.decode(def, text)
  if text == nil or text == "" then return nil end
  local t = def.type
  if t == 1 then return tonumber(text) or text end
  if t == 7 then return text == "1" or text == "true" end
  local inner = MULTI[t] and text:match "^%s*%[(.*)%]%s*$"
  if inner then return list_items(inner) end
  return text
end

-- ------------------------------------------------------------ reads

--- obj.fields[name] = each custom value of obj, decoded (the XML API sends every field of the
-- object's template). Nothing is read when the client has no definitions.
function M.decode_into(xml, entity, obj)
  if type(obj) ~= "table" or rawget(xml, "definitions_option") == nil then return obj end
  local fields, err = M.definitions(xml):fields(entity)
  if not fields then return nil, err end
  local by_id = {}
  for _, def in ipairs(fields) do by_id[def.id] = def end
  local out = {}
  for _, cv in ipairs(type(obj.customData) == "table" and obj.customData or {}) do
    local id = type(cv) == "table" and tonumber(type(cv.field) == "table" and cv.field.id or cv.id)
    local def = id and by_id[id]
    if def then out[def.name] = M.decode(def, type(cv.value) == "string" and cv.value or nil) end
  end
  obj.fields = out
  return obj
end

-- ------------------------------------------------------------ writes

local SET_OPTIONS = { read_back = "boolean", check = "boolean", resolve = "function", utc_offset = "number",
  silent = "boolean",
  timeout = "number" }

-- The customValue items of values by name, each checked and encoded (a config error, nothing sent).
local function custom_values(xml, entity, values, opts)
  if type(values) ~= "table" or next(values) == nil then
    config_error("set_fields takes a table of field name = value", 4)
  end
  local defs, items = M.definitions(xml, 4), {}
  local ctx = { resolve = opts.resolve, utc_offset = opts.utc_offset, check = opts.check }
  for name, v in pairs(values) do
    local def, err = defs:field(entity, name)
    if not def then return nil, err end
    local wire
    wire, err = types.encode(def, v, ctx)
    if wire == nil then return nil, err end
    items[#items + 1] = { id = def.id, value = M.text(def, wire), def = def }
  end
  table.sort(items, function(a, b) return a.id < b.id end)
  return items
end

-- Each field's text as read: { [id] = text }.
local function texts_read(obj)
  local read = {}
  for _, cv in ipairs(type(obj) == "table" and type(obj.customData) == "table" and obj.customData or {}) do
    local id = type(cv) == "table" and tonumber(type(cv.field) == "table" and cv.field.id or cv.id)
    if id then read[id] = type(cv.value) == "string" and cv.value or "" end
  end
  return read
end

-- The entity's fields read afresh, by id: through the REST client's own definitions when they
-- come from one (its cache would answer the stale list again otherwise).
local function reload_fields(xml, entity)
  local opt = rawget(xml, "definitions_option")
  if opt.rest then opt.rest.fields:invalidate(entity) end
  return M.definitions(xml):reload_fields(entity)
end

-- A list value read as written may still be none of the field's options (Planfix stores list
-- values unchecked): judged against the definitions, read again once before blaming the value.
local function option_problems(xml, entity, items, read)
  local bad, fresh = {}, nil
  for _, it in ipairs(items) do
    local value = read[it.id] == it.value and types.not_an_option(it.def, M.decode(it.def, read[it.id]),
      it.def.options)
    if value then
      if not fresh then
        local err
        fresh, err = reload_fields(xml, entity)
        if not fresh then return nil, err end
      end
      local def = fresh[it.id] or it.def
      local choices = def.options or it.def.options
      value = types.not_an_option(def, M.decode(def, read[it.id]), choices)
      if value then bad[#bad + 1] = types.option_problem(def, value, choices) end
    end
  end
  return bad
end

-- The fields whose value read back is not the one written (by their text), or is none of the
-- options of a list field.
local function not_stuck(xml, entity, obj, items)
  local read = texts_read(obj)
  local bad = {}
  for _, it in ipairs(items) do
    local got = read[it.id]
    if got ~= it.value then
      bad[#bad + 1] = ("'%s' (wrote %s, read %s)"):format(it.def.name, types.quoted(it.value),
        got and types.quoted(got) or "nothing: not on the object's template?")
    end
  end
  local unlisted, err = option_problems(xml, entity, items, read)
  if not unlisted then return nil, err end
  for _, text in ipairs(unlisted) do bad[#bad + 1] = text end
  return bad
end

local function read_back(xml, ent, id, items, opts)
  local result, err = xml:call(ent.get, { [ent.entity] = { id = id } }, { timeout = opts.timeout })
  if not result then return nil, err end
  local bad
  bad, err = not_stuck(xml, ent.entity, result[ent.entity], items)
  if not bad then return nil, err end
  if #bad == 0 then return true end
  return nil, xml.core:error { kind = "api", operation = ent.write, retryable = false,
    message = ("%s %s: custom data did not stick: %s (Planfix answers success to a field not on the"
      .. " object's template, a list value not among its options, a read-only type)"):format(ent.entity,
      tostring(id), table.concat(bad, "; ")) }
end

--- xml.<group>:set_fields(id, { [name] = value }, opts) -> result, meta | nil, err
function M.set_fields(xml, ent, id, values, opts)
  opts = opts or {}
  options.check(ent.entity .. ":set_fields", opts, 3, SET_OPTIONS)
  if id == nil then config_error(ent.entity .. ":set_fields needs the object's id", 3) end
  local items, err = custom_values(xml, ent.entity, values, opts)
  if not items then return nil, err end
  local cvs = {}
  for i, it in ipairs(items) do cvs[i] = { id = it.id, value = it.value } end
  local result, meta = xml:call(ent.write, { [ent.entity] = { id = id, customData = { customValue = cvs } } },
    { silent = opts.silent, timeout = opts.timeout })
  if not result then return nil, meta end
  if opts.read_back ~= false and not meta.dry_run then
    local ok, rerr = read_back(xml, ent, id, items, opts)
    if not ok then return nil, rerr end
    result.verified = true
  end
  return result, meta
end

return M
