-- planfix_xml/resources.lua: sugar on the common XML API groups, each
-- method mapping 1:1 to a documented method.
--   xml.task:get{ id = 1 }                 -> the <task> table
--   xml.task:add{ title = "Fix pump" }     -> the <task> table (id, general)
--   for t in xml.task:each{ target = "in" } do ... end
--   xml.action:add{ description = "Done", task = { id = 1 } }
--   for r in xml.handbook:records{ handbook = { id = 3 } } do ... end
-- `wrap` puts the parameters inside the group's element (task.get takes
-- <task><id>), `unwrap` returns that element of the result; paging kinds
-- take the method's parameters as they are.
local base = require("planapi.client_base")
local scaffold = require("planapi.scaffold")

local config_error = base.config_error
local custom = require("planapi.planfix_xml.custom_data")
local handbook_lookup = require("planapi.planfix_xml.handbook_lookup")

-- The reads whose object gets `fields` by name when the client has definitions.
local DECODED = { ["task.get"] = "task", ["contact.get"] = "contact", ["project.get"] = "project" }

local function obj(method, el) return { method, wrap = el, unwrap = el } end
local function paged(method, kind) return { method, kind = kind } end
local function lists(method) -- list (all items), each, pages, pager
  return { list = paged(method, "all"), each = paged(method, "each"), pages = paged(method, "pages"),
    pager = paged(method, "pager") }
end

local function merge(a, b)
  for k, v in pairs(b) do a[k] = v end
  return a
end

local DEFS = {
  task = merge({
    get = obj("task.get", "task"), add = obj("task.add", "task"), update = obj("task.update", "task"),
    update_custom_data = obj("task.updateCustomData", "task"),
    change_status = obj("task.changeStatus", "task"), change_workers = obj("task.changeWorkers", "task"),
    change_expect_date = obj("task.changeExpectDate", "task"),
    accept = obj("task.accept", "task"), reject = obj("task.reject", "task"),
    multi = { "task.getMulti", unwrap = "tasks" },
    filters = { "task.getFilterList", unwrap = "taskFilterList" },
    possible_statuses = { "task.getPossibleStatusToChange", wrap = "task", unwrap = "statusList" },
  }, lists "task.getList"),
  action = merge({
    get = obj("action.get", "action"), add = obj("action.add", "action"),
    update = obj("action.update", "action"), delete = obj("action.delete", "action"),
  }, lists "action.getList"),
  contact = merge({
    get = obj("contact.get", "contact"), add = obj("contact.add", "contact"),
    update = obj("contact.update", "contact"), delete = obj("contact.delete", "contact"),
    update_custom_data = obj("contact.updateCustomData", "contact"),
    groups = { "contact.getGroupList", unwrap = "contactGroups" },
    filters = { "contact.getFilterList", unwrap = "contactFilterList" },
  }, lists "contact.getList"),
  project = merge({
    get = obj("project.get", "project"), add = obj("project.add", "project"),
    update = obj("project.update", "project"),
  }, lists "project.getList"),
  user = merge({
    get = obj("user.get", "user"), add = obj("user.add", "user"), update = obj("user.update", "user"),
  }, lists "user.getList"),
  handbook = {
    list = { "handbook.getList", unwrap = "handbooks" },
    structure = { "handbook.getStructure", unwrap = "handbook" },
    record = { "handbook.getRecord", unwrap = "record" },
    records = paged("handbook.getRecords", "each"),
    record_pages = paged("handbook.getRecords", "pages"),
    all_records = paged("handbook.getRecords", "all"),
    add_record = { "handbook.addRecord", unwrap = "key" },
    update_record = { "handbook.updateRecord", unwrap = "key" },
  },
  file = {
    get = obj("file.get", "file"),
    for_task = paged("file.getListForTask", "each"),
    for_project = paged("file.getListForProject", "each"),
  },
  -- xml.fields: the custom field definitions the client was given (planfix_xml/custom_data.lua)
  fields = {},
  analitic = {
    list = { "analitic.getList", unwrap = "analitics" },
    options = { "analitic.getOptions", unwrap = "analitic" },
    handbook = { "analitic.getHandbook", unwrap = "records" },
  },
}

local function bind_method(xml, def)
  local name = def[1]
  assert(xml.method(name), "sugar names an undocumented method " .. name)
  return function(_, params, opts)
    if params ~= nil and type(params) ~= "table" then
      config_error(name .. " takes a table of parameters", 2)
    end
    if def.kind then return xml[def.kind](xml, name, params, opts) end
    local p = params or {}
    if def.wrap then p = { [def.wrap] = params or {} } end
    local result, meta = xml:call(name, p, opts)
    if result == nil then return nil, meta end
    if def.unwrap then
      local v, err = base.expect(result[def.unwrap], meta, ("<%s> element"):format(def.unwrap), name)
      if v ~= nil and DECODED[name] then
        local ok, derr = custom.decode_into(xml, DECODED[name], v)
        if not ok then return nil, derr end
      end
      return v, err
    end
    return result, meta
  end
end

-- Lua functions (xml, ...) as a resource's methods.
local function bound(fns)
  local out = {}
  for name, fn in pairs(fns) do
    out[name] = function(xml)
      return function(_, ...) return fn(xml, ...) end
    end
  end
  return out
end

local function set_fields(entity)
  local ent = custom.ENTITIES[entity]
  return bound { set_fields = function(xml, id, values, opts) return custom.set_fields(xml, ent, id, values, opts) end }
end

local EXTRAS = {
  task = set_fields "task", contact = set_fields "contact", project = set_fields "project",
  handbook = bound { find = handbook_lookup.find, find_all = handbook_lookup.find_all,
    invalidate = handbook_lookup.invalidate },
  fields = bound {
    --- xml.fields:list("task") -> definitions | nil, err
    list = function(xml, entity) return custom.definitions(xml, 2):fields(entity) end,
    --- xml.fields:get("task", "Region") -> definition | nil, err
    get = function(xml, entity, name_or_id) return custom.definitions(xml, 2):field(entity, name_or_id) end,
    --- xml.fields:invalidate(entity?)
    invalidate = function(xml, entity) custom.definitions(xml, 2):invalidate(entity) end,
  },
  file = {
    --- xml.file:download(id, { path =, follow = }) -> bytes, or { file, size }, or { location }
    download = function(xml)
      return function(_, id, opts) return xml:download(id, opts) end
    end,
  },
}

--- bind(xml, name) -> the resource object `name` of an XML client, or nil;
-- names() -> resource names and their methods (for documentation and specs).
return scaffold.resources(DEFS, bind_method, EXTRAS)
