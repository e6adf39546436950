-- Control endpoints that seed custom fields, templates and directories
-- (sandbox/README.md, "Custom fields, templates and directories"):
--   POST /_sandbox/planfix/fields       {"task":[{name,type,...}], "replace":false}
--   POST /_sandbox/planfix/templates    {"task":[{name,fields:[ids]}], "replace":false}
--   POST /_sandbox/planfix/directories  {"directories":[{name,fields:[...],entries:N|[...]}]}
--   GET  the same three paths: the current state.
-- A reset returns to the default seed (sandbox.planfix_fields).
local json = require("sandbox.json")
local util = require("sandbox.util")
local store = require("sandbox.store")
local fields = require("sandbox.planfix_fields")

local M = {}

local KINDS = { task = true, contact = true, project = true, user = true, main = true }
local DEF_KEYS = { "names", "groupId", "directoryId", "directoryFields", "enumValues", "listValuesColors", "mainValue" }

local function reply(status, value) return util.send_json(status, value) end
local function bad(msg) return reply(400, { result = "fail", error = msg }) end


-- A definition from its control form, or nil, err.
local function definition(kind, d, object_type)
  if type(d) ~= "table" or type(d.name) ~= "string" or d.name == "" then
    return nil, kind .. ": each field needs a name"
  end
  local ty = util.to_int(d.type)
  if not ty or not fields.TYPES[ty] then return nil, kind .. ": field '" .. d.name .. "' has no known type (0..29)" end
  local id = d.id ~= nil and util.to_int(d.id) or store.next_id("customfield")
  if not id then return nil, kind .. ": field '" .. d.name .. "': id must be an integer" end
  local def = { id = id, name = d.name, type = ty, objectType = object_type }
  for _, k in ipairs(DEF_KEYS) do
    if d[k] ~= nil and d[k] ~= json.null then def[k] = util.deepcopy(d[k]) end
  end
  return def
end

-- Adds def to list, replacing a definition with the same id.
local function put(list, def)
  for i, f in ipairs(list) do
    if f.id == def.id then
      list[i] = def
      return
    end
  end
  list[#list + 1] = def
end

local function set_fields(b)
  local ids = {}
  for kind, defs in pairs(b) do
    if kind ~= "replace" then
      if not KINDS[kind] then
        return nil, "unknown kind '" .. tostring(kind) .. "' (task, contact, project, user, main)"
      end
      if type(defs) ~= "table" then return nil, kind .. " must be an array of fields" end
      local list = b.replace == true and {} or store.db.customfields[kind]
      ids[kind] = json.array()
      for _, d in ipairs(defs) do
        local def, err = definition(kind, d, fields.OBJECT_TYPES[kind])
        if not def then return nil, err end
        put(list, def)
        ids[kind][#ids[kind] + 1] = def.id
      end
      store.db.customfields[kind] = list
    end
  end
  return ids
end

-- The field ids a template's control form attaches: a list, or "all".
local function template_fields(kind, t)
  if t.fields == "all" or t.fields == nil then
    local out = {}
    for _, f in ipairs(store.db.customfields[kind]) do out[#out + 1] = f.id end
    return out
  end
  if type(t.fields) ~= "table" then return nil end
  local out = {}
  for _, v in ipairs(t.fields) do
    local id = util.to_int(v)
    if not id or not store.customfield(kind, id) then return nil end
    out[#out + 1] = id
  end
  return out
end

local function template_record(kind, id, t, attached)
  if kind == "task" then
    return util.merge(store.task_record(id, t.name, { type = "Template" }), { _fields = attached })
  end
  return { id = id, name = t.name, isCompany = kind == "contact" and t.isCompany == true or nil, _fields = attached }
end

local function set_templates(b)
  local ids = {}
  for kind, list in pairs(b) do
    if kind ~= "replace" then
      local tname = fields.TEMPLATE_TABLES[kind]
      if not tname then return nil, "unknown kind '" .. tostring(kind) .. "' (task, contact, project)" end
      if type(list) ~= "table" then return nil, kind .. " must be an array of templates" end
      if b.replace == true then store.db[tname] = {} end
      ids[kind] = json.array()
      for _, t in ipairs(list) do
        if type(t) ~= "table" or type(t.name) ~= "string" then return nil, kind .. ": each template needs a name" end
        local attached = template_fields(kind, t)
        if not attached then
          return nil, ("%s: template '%s': fields must be ids of %s fields or \"all\""):format(kind, t.name, kind)
        end
        local id = t.id ~= nil and util.to_int(t.id) or store.next_id("template")
        store.db[tname][id] = template_record(kind, id, t, attached)
        ids[kind][#ids[kind] + 1] = id
      end
    end
  end
  return ids
end

-- Entries of a directory: a count (named "<directory> 001"...) or a list of
-- {name, values = {[field id or name] = value}, parentKey, isGroup}.
local function directory_entries(d, spec)
  local entries = {}
  if util.to_int(spec) then
    for key = 1, util.to_int(spec) do
      local name = ("%s %03d"):format(d.name, key)
      entries[key] = { key = key, parentKey = 0, name = name, archived = false, isGroup = false,
        _cf = { [d.fields[1] and d.fields[1].id or 0] = name } }
    end
    return entries
  end
  if type(spec) ~= "table" then return nil end
  for key, e in ipairs(spec) do
    if type(e) ~= "table" or type(e.name) ~= "string" then return nil end
    local cf = {}
    for k, v in pairs(type(e.values) == "table" and e.values or {}) do
      for _, f in ipairs(d.fields) do
        if f.id == util.to_int(k) or f.name == k then cf[f.id] = v end
      end
    end
    entries[key] = { key = key, parentKey = util.to_int(e.parentKey) or 0, name = e.name, archived = e.archived == true,
      isGroup = e.isGroup == true, _cf = cf }
  end
  return entries
end

local function directory(spec)
  if type(spec) ~= "table" or type(spec.name) ~= "string" then return nil, "each directory needs a name" end
  local id = spec.id ~= nil and util.to_int(spec.id) or store.next_id("directory")
  if not id then return nil, "directory '" .. spec.name .. "': id must be an integer" end
  local defs = {}
  for _, f in ipairs(type(spec.fields) == "table" and spec.fields or { { name = "Name", type = 0 } }) do
    local def, err = definition("directory " .. spec.name, f, fields.OBJECT_TYPES.directory)
    if not def then return nil, err end
    defs[#defs + 1] = def
  end
  local d = { id = id, name = spec.name, group = util.deepcopy(spec.group) or { id = 1, name = "Catalog" },
    sourceObjectId = "", sourceDataVersion = "", fields = defs }
  local entries = directory_entries(d, spec.entries or 0)
  if not entries then
    return nil, "directory '" .. spec.name .. "': entries must be a count or a list of {name, values}"
  end
  store.db.directories[id] = d
  store.db.directory_entries[id] = entries
  return id
end

local function set_directories(b)
  if type(b.directories) ~= "table" then return nil, "body must be {\"directories\":[...]}" end
  local ids = json.array()
  for _, spec in ipairs(b.directories) do
    local id, err = directory(spec)
    if not id then return nil, err end
    ids[#ids + 1] = id
  end
  return ids
end

local function state(what)
  local db = store.db
  if what == "fields" then return { customfields = db.customfields } end
  if what == "templates" then
    return { templates = { task = db.templates, contact = db.contact_templates, project = db.project_templates } }
  end
  local dirs = {}
  for id, d in pairs(db.directories) do
    dirs[tostring(id)] = util.merge(util.deepcopy(d), { entries = util.deepcopy(db.directory_entries[id] or {}) })
  end
  return { directories = dirs }
end

local SETTERS = { fields = set_fields, templates = set_templates, directories = set_directories }

-- Handles /_sandbox/planfix/{fields,templates,directories}; false when the
-- path is not one of them.
function M.control(req, path)
  local what = path:match("^/planfix/(%a+)$")
  local setter = what and SETTERS[what]
  if not setter then return false end
  if req.method == "GET" then
    util.send(200, json.encode(util.merge({ result = "success" }, state(what))), { ["Content-Type"] = util.JSON_TYPE })
    return true
  end
  if req.method ~= "POST" then return false end
  local b = util.json_object(req)
  if not b then
    bad("body must be a JSON object")
    return true
  end
  local ids, err = setter(b)
  if not ids then
    bad(err)
    return true
  end
  reply(200, { result = "success", ids = ids })
  return true
end

return M
