-- planfix_fields/definitions.lua: the account's custom-field definitions and templates, by
-- name or id, shared by the REST and XML clients (each injects its loaders; nothing here
-- knows how they are fetched).
--   local defs = Definitions.new{ load_fields = fn(entity), load_templates = fn(entity),
--     cache = <cache object>, namespace = "acme.planfix.com", ttl = 3600 }
--   defs:field("task", "Order number") -> def      defs:fields("task") -> list
--   defs:template("task", "Delivery") -> template  defs:invalidate("task")
-- The cache (planapi.cache or any object with its methods) keeps JSON: the fields as the API gave
-- them and each template's field ids; indexes are built after each read.
-- A def: { id, name, type (0..29), type_name, entity, options (list values) | nil,
-- directory_id | nil, readonly, raw (the wire table) }; a template: { id, name, entity,
-- field_ids = { [101] = true, ... } }.
-- Names resolve exactly first, then ignoring case; an ambiguous or unknown name is a config
-- error (the candidates, or the closest names, listed). A loader's failure is nil, err and is
-- not cached.
local cache = require("planapi.cache")
local config_error = require("planapi.config_error")
local options = require("planapi.options")
local suggest = require("planapi.suggest")
local types = require("planapi.planfix_fields.types")

local M = {}

-- The entities whose custom fields the REST API lists (GET /customfield/{entity}).
M.ENTITIES = { task = true, contact = true, project = true, user = true }

local Definitions = {}
Definitions.__index = Definitions

local OPTIONS = { load_fields = "function", load_templates = "function", cache = "table",
  namespace = "string", ttl = "number" }

-- ------------------------------------------------------------ normalizing

-- "0 // Line" (the spec's enum text) or 0
local function type_number(t)
  if type(t) == "string" then t = tonumber(t:match "^%s*(%d+)") end
  return type(t) == "number" and math.floor(t) or nil
end

local function id_number(v)
  if type(v) == "string" then v = tonumber(v:match "(%d+)$") end
  return type(v) == "number" and v or nil
end

local function strings(list)
  if type(list) ~= "table" or list[1] == nil then return nil end
  local out = {}
  for i, s in ipairs(list) do out[i] = tostring(s) end
  return out
end

--- A field definition from its wire table (GET /customfield/{entity}, a directory's `fields`).
function M.field_def(raw, entity)
  local t = type_number(raw.type)
  return {
    id = id_number(raw.id), name = type(raw.name) == "string" and raw.name or tostring(raw.id),
    type = t, type_name = types.name(t), entity = entity, options = strings(raw.enumValues),
    directory_id = id_number(raw.directoryId), readonly = types.readonly(t), raw = raw,
  }
end

--- The items of a customFieldData list by their field's id: { [101] = { field =, value = } }.
function M.by_field_id(data)
  local map = {}
  for _, item in ipairs(type(data) == "table" and data or {}) do
    local id = type(item) == "table" and type(item.field) == "table" and id_number(item.field.id)
    if id then map[id] = item end
  end
  return map
end

-- A template's attached fields: a list of ids (field_ids), of definitions (fields), or the
-- customFieldData a template read with field ids in `fields` answers with.
local function template_field_ids(raw)
  local set = {}
  for _, f in ipairs(type(raw.field_ids) == "table" and raw.field_ids or {}) do set[id_number(f) or f] = true end
  for _, f in ipairs(type(raw.fields) == "table" and raw.fields or {}) do set[id_number(f.id) or f.id] = true end
  for id in pairs(M.by_field_id(raw.customFieldData)) do set[id] = true end
  return set
end

local function template_def(raw, entity)
  return { id = id_number(raw.id), name = type(raw.name) == "string" and raw.name or tostring(raw.id),
    entity = entity, field_ids = template_field_ids(raw) }
end

-- ------------------------------------------------------------ names

-- Lower case for ASCII and the Cyrillic alphabet in UTF-8 (Planfix accounts name their fields
-- in Russian as often as in English; string.lower knows only ASCII).
local function fold(s)
  s = s:lower()
  s = s:gsub("\208([\144-\159])", function(c) return "\208" .. string.char(c:byte() + 32) end)
  s = s:gsub("\208([\160-\175])", function(c) return "\209" .. string.char(c:byte() - 32) end)
  return (s:gsub("\208\129", "\209\145"))
end

local function index(list)
  local ix = { by_id = {}, exact = {}, folded = {}, names = {} }
  for _, item in ipairs(list) do
    if item.id then ix.by_id[item.id] = item end
    local e, f = ix.exact[item.name] or {}, ix.folded[fold(item.name)] or {}
    e[#e + 1], f[#f + 1] = item, item
    ix.exact[item.name], ix.folded[fold(item.name)], ix.names[item.name] = e, f, true
  end
  return ix
end

local function candidates(list)
  local out = {}
  for i, item in ipairs(list) do out[i] = ("'%s' (id %s)"):format(item.name, tostring(item.id)) end
  return table.concat(out, ", ")
end

-- what: "custom field" | "template"
local function find(ix, entity, name_or_id, what, level)
  local id = type(name_or_id) == "number" and name_or_id
    or type(name_or_id) == "string" and name_or_id:match "^%d+$" and tonumber(name_or_id)
  if id then
    local item = ix.by_id[id]
    if item then return item end
    config_error(("no %s with id %s for %s"):format(what, tostring(name_or_id), entity), level)
  end
  if type(name_or_id) ~= "string" or name_or_id == "" then
    config_error(("a %s is named by a string or an id, got %s"):format(what, type(name_or_id)), level)
  end
  local found = ix.exact[name_or_id] or ix.folded[fold(name_or_id)]
  if found and #found == 1 then return found[1] end
  local shown = name_or_id:gsub("%c", " ") -- an error's text is one line
  if found then
    config_error(("%s name '%s' is ambiguous for %s: %s; use the id"):format(what, shown, entity,
      candidates(found)), level, { candidates = found })
  end
  local near = suggest.nearest(name_or_id, ix.names, 5)
  config_error(("unknown %s '%s' for %s%s"):format(what, shown, entity,
    #near > 0 and (" (closest: " .. table.concat(near, ", ") .. ")") or " (none are defined)"), level)
end

-- ------------------------------------------------------------ the object

--- Definitions.new{ load_fields, load_templates?, cache?, namespace?, ttl? }
function M.new(opts)
  if type(opts) ~= "table" then config_error("planfix_fields.definitions.new takes an options table", 2) end
  options.check("definitions", opts, 3, OPTIONS)
  if opts.load_fields == nil then config_error("definitions option 'load_fields' is required", 2) end
  return setmetatable({
    load_fields = opts.load_fields, load_templates = opts.load_templates,
    -- planapi.cache's memory scope: every client of this process shares what one loaded
    cache = opts.cache or cache.new { ttl = opts.ttl }, ttl = opts.ttl or 3600,
    namespace = opts.namespace or "planfix", indexes = {},
  }, Definitions)
end

local function check_entity(entity, level)
  if not M.ENTITIES[entity] then
    config_error(("custom fields belong to task, contact, project or user, not '%s'"):format(tostring(entity)),
      level + 1)
  end
end

-- What the cache keeps (JSON-encodable, no secrets): a field as the API gave it; a template
-- as its id, name and the sorted ids of its fields.
local function cached_form(kind, raw, entity)
  if kind == "fields" then return raw end
  local t = template_def(raw, entity)
  local ids = {}
  for fid in pairs(t.field_ids) do ids[#ids + 1] = fid end
  table.sort(ids)
  return { id = t.id, name = t.name, field_ids = ids }
end

local MAKE = { fields = M.field_def, templates = template_def }

-- A named item of any other kind (statuses, users, directory entries...): a copy, so that a
-- caller changing what it was given does not change what the next lookup finds.
local function copy_named(item)
  local out = {}
  for k, v in pairs(item) do out[k] = v end
  return out
end

-- The cached list of one kind ("fields", "templates", or a named kind) of an entity (or any
-- key), as definitions, and its index. `keep` makes an item's cached form, `make` the item.
local function load(self, kind, entity, loader, make, keep)
  local key = ("%s/%s/%s"):format(self.namespace, kind, entity)
  local list, err = self.cache:fetch(key, function()
    local raw, e = loader(entity)
    if raw == nil then return nil, e end
    local out = {}
    for i, item in ipairs(raw) do out[i] = keep and keep(item) or cached_form(kind, item, entity) end
    return out
  end, self.ttl)
  if list == nil then return nil, err end
  local memo = self.indexes[key]
  if memo and memo.list == list then return memo.items, memo.ix end
  local items = {}
  for i, item in ipairs(list) do items[i] = (make or MAKE[kind])(item, entity) end
  local ix = index(items)
  self.indexes[key] = { list = list, items = items, ix = ix }
  return items, ix
end

--- defs:fields(entity) -> list of defs | nil, err
function Definitions:fields(entity)
  check_entity(entity, 2)
  return load(self, "fields", entity, self.load_fields)
end

--- defs:field(entity, name_or_id) -> def | nil, err (the definitions could not be loaded)
function Definitions:field(entity, name_or_id)
  check_entity(entity, 2)
  local items, ix = load(self, "fields", entity, self.load_fields)
  if items == nil then return nil, ix end
  return find(ix, entity, name_or_id, "custom field", 3)
end

local function templates(self, entity)
  if self.load_templates == nil then
    config_error("these definitions have no templates loader", 3)
  end
  return load(self, "templates", entity, self.load_templates)
end

--- defs:templates(entity) -> list of templates | nil, err
function Definitions:templates(entity)
  check_entity(entity, 2)
  return templates(self, entity)
end

--- defs:template(entity, name_or_id) -> template | nil, err
function Definitions:template(entity, name_or_id)
  check_entity(entity, 2)
  local items, ix = templates(self, entity)
  if items == nil then return nil, ix end
  return find(ix, entity, name_or_id, "template", 3)
end

--- defs:fetch(key, loader) -> value | nil, err: something else the definitions go with (a
-- directory's entry names), kept in the same cache under the namespace, for the same TTL, and
-- forgotten by defs:invalidate().
function Definitions:fetch(key, loader)
  return self.cache:fetch(self.namespace .. "/" .. key, loader, self.ttl)
end

--- M.lookup(items, name_or_id, what, owner) -> item: one of items ({ id, name }) by name (exact,
-- then ignoring case) or id; ambiguous or unknown: a config error as for fields ("entry", "Lead
-- sources").
function M.lookup(items, name_or_id, what, owner)
  return find(index(items), owner, name_or_id, what, 3)
end

-- ------------------------------------------------------------ other named things

local function named_id(item)
  return item
end

--- defs:named(kind, key, loader, make?) -> items, index | nil, err: any other list of named
-- things (task statuses, users, projects, directory entries...) through the same cache, under
-- "<namespace>/<kind>/<key>". loader(key) returns JSON-encodable items, each with `id` and
-- `name` (what a lookup matches); make(item, key) builds what a caller gets (a copy by default).
function Definitions:named(kind, key, loader, make)
  return load(self, kind, tostring(key), loader, make or copy_named, named_id)
end

--- defs:find_named(kind, key, loader, name_or_id, what, where, make?) -> item | nil, err: one item of
-- defs:named by id, exact name or name in any case; `what` ("task status") and `where` ("process
-- 'Support'") word the config error of an ambiguous or unknown name.
function Definitions:find_named(kind, key, loader, name_or_id, what, where, make)
  local items, ix = self:named(kind, key, loader, make)
  if items == nil then return nil, ix end
  return find(ix, where, name_or_id, what, 3)
end

--- defs:forget(kind, key): read one named list again on next use (after a create).
function Definitions:forget(kind, key)
  local k = ("%s/%s/%s"):format(self.namespace, kind, tostring(key))
  self.cache:invalidate(k)
  self.indexes[k] = nil
end

--- defs:reload_fields(entity) -> { [field id] = def } | nil, err: the entity's fields read afresh
-- (a read-back that doubts the cached ones reloads them so, once).
function Definitions:reload_fields(entity)
  self:invalidate(entity)
  local list, err = self:fields(entity)
  if not list then return nil, err end
  local by_id = {}
  for _, def in ipairs(list) do by_id[def.id] = def end
  return by_id
end

--- defs:invalidate(entity?): forget the fields and templates of one entity, or of all.
function Definitions:invalidate(entity)
  if entity == nil then
    self.cache:invalidate_prefix(self.namespace .. "/")
  else
    check_entity(entity, 2)
    self.cache:invalidate(("%s/fields/%s"):format(self.namespace, entity))
    self.cache:invalidate(("%s/templates/%s"):format(self.namespace, entity))
  end
  self.indexes = {}
end

return M
