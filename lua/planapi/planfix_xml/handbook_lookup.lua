-- planfix_xml/handbook_lookup.lua: handbook records by name and by their fields' values (issue 20),
-- the XML API's directories (its handbook methods).
--   local r = assert(xml.handbook:find("Lead sources", { Name = "Website" }))   -- r.key, r.fields.Channel
--   xml.handbook:find("Lead sources", { Name = "Fair" }, { create_missing = true })
--   xml.handbook:find_all("Lead sources", { Channel = "Online" }) / xml.handbook:invalidate()
-- The handbook is named (handbook.getList) or given by id; its fields come from
-- handbook.getStructure and every page of its records from handbook.getRecords, read once per TTL
-- through the client's definitions cache (a client without the `definitions` option keeps them
-- in memory); a create (handbook.addRecord) forgets the records and reads the new one back.
local Definitions = require "planapi.planfix_fields.definitions"
local entries = require "planapi.planfix_fields.entries"
local custom = require "planapi.planfix_xml.custom_data"

local M = {}

-- The definitions object that keeps the names: the client's, or one of its own without fields.
local function defs(xml)
  if rawget(xml, "definitions_option") then return custom.definitions(xml) end
  local d = rawget(xml, "handbook_names")
  if d == nil then
    d = Definitions.new { load_fields = function() return {} end, namespace = "planfix_xml:" .. xml.account }
    rawset(xml, "handbook_names", d)
  end
  return d
end

local function handbook_of(xml, name_or_id)
  return defs(xml):find_named("handbooks", "all", function()
    local result, err = xml:call("handbook.getList", {})
    if not result then return nil, err end
    local out = {}
    for i, h in ipairs(result.handbooks or {}) do out[i] = { id = tonumber(h.id), name = h.name } end
    return out
  end, name_or_id, "handbook", "the account")
end

local function field_defs(xml, hb)
  return defs(xml):named("handbook_fields", hb.id, function()
    local result, err = xml:call("handbook.getStructure", { handbook = { id = hb.id } })
    if not result then return nil, err end
    local fields = type(result.handbook) == "table" and result.handbook.fields or {}
    local out = {}
    for i, f in ipairs(type(fields) == "table" and (fields.field or fields) or {}) do
      out[i] = { id = tonumber(f.id), name = f.name, type = tonumber(f.type) }
    end
    return out
  end, function(raw) return Definitions.field_def(raw, "directory") end)
end

-- A record as the cache keeps it (its key as id, each value's text) and as a caller gets it.
local function cached_record(r)
  local values = {}
  for _, cv in ipairs(type(r.customData) == "table" and r.customData or {}) do
    local id = tonumber(type(cv.field) == "table" and cv.field.id or cv.id)
    if id then values[#values + 1] = { id = id, value = cv.value } end
  end
  return { id = tonumber(r.key), key = tonumber(r.key), name = r.name, parentKey = tonumber(r.parentKey),
    isGroup = r.isGroup == "1", archived = r.archived == "1", values = values }
end

local function view(cached, fdefs) return entries.view(cached, fdefs, custom.decode) end

-- What planfix_fields/entries.lua reads and writes through, for one client.
local function source(xml)
  return {
    directory = function(name_or_id) return handbook_of(xml, name_or_id) end,
    fields = function(hb) return field_defs(xml, hb) end,
    list = function(hb, fdefs)
      return entries.cached_list(defs(xml), "handbook_records", hb, fdefs, function()
        return xml:all("handbook.getRecords", { handbook = { id = hb.id } })
      end, cached_record, custom.decode)
    end,
    add = function(hb, name, values)
      local cvs = {}
      for i, v in ipairs(values) do cvs[i] = { id = v.def.id, value = custom.text(v.def, v.wire) } end
      return xml.handbook:add_record { handbook = { id = hb.id }, name = name,
        customData = #cvs > 0 and { customValue = cvs } or nil }
    end,
    read = function(hb, key, fdefs)
      local read, err = xml.handbook:record { handbook = { id = hb.id }, key = key }
      if not read then return nil, err end
      return view(cached_record(read), fdefs)
    end,
    forget = function(hb) defs(xml):forget("handbook_records", hb.id) end,
    new_error = function(t) return xml.core:error(t) end,
    list_op = "handbook.getRecords", add_op = "handbook.addRecord",
  }
end

--- xml.handbook:find(handbook, match, { create_missing = false }) -> record | nil, err;
-- xml.handbook:find_all(handbook, match) -> list of records | nil, err
M.find, M.find_all = entries.methods(source)

--- xml.handbook:invalidate(): read the handbooks, their fields and records again on next use.
function M.invalidate(xml)
  local d = defs(xml)
  for _, kind in ipairs { "handbooks", "handbook_fields", "handbook_records" } do
    d.cache:invalidate_prefix(("%s/%s/"):format(d.namespace, kind))
  end
  d.indexes = {}
end

return M
