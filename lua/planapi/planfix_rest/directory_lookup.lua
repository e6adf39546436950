-- planfix_rest/directory_lookup.lua: directory entries by their fields' values (issue 20).
--   local e = assert(rest.directories:find("Lead sources", { Name = "Website" }))
--   print(e.key, e.name, e.fields.Channel)                           -- fields by name, decoded
--   rest.directories:find("Lead sources", { Name = "Fair" }, { create_missing = true })
--   rest.directories:find_all("Lead sources", { Channel = "Online" }) -> list
--   rest.directories:fields("Lead sources") -> the directory's field definitions
--   rest.directories:invalidate("Lead sources")
-- A directory is named or given by id (rest.names:directory). Its field definitions and ALL of
-- its entries (every page: the entry list answers 100 at most, Planfix's REST API
-- documentation, paging) are read once per TTL through the definitions cache; a create
-- forgets the cached entries. `match` is a table of field name (or id) = value, or a string:
-- the entry's name.
local Definitions = require "planapi.planfix_fields.definitions"
local entries_match = require "planapi.planfix_fields.entries"
local types = require "planapi.planfix_fields.types"
local custom = require "planapi.planfix_rest.custom_fields"
local names = require "planapi.planfix_rest.names"

local M = {}

local options = require "planapi.options"

local function defs(rest) return custom.definitions(rest) end

local function new_error(rest)
  return function(t) return rest.core:error(t) end
end

-- Forget a directory's cached entries: these, and the entry names set_fields resolves values by
-- (planfix_rest/custom_fields.lua keeps them under "directory/<id>/entries").
local function forget_entries(rest, dir_id)
  defs(rest):forget("directory_entries", dir_id)
  defs(rest):forget("directory", ("%d/entries"):format(dir_id))
end

local function directory_of(rest, name_or_id)
  return names.METHODS.directory(rest, name_or_id)
end

-- The directory's fields as definitions (GET /directory/{id} with `fields`).
local function field_defs(rest, dir)
  return custom.owner_fields(rest, "directory", dir.id)
end

local function wanted_fields(list)
  local out = { "key", "name", "parentKey", "isGroup", "archived" }
  for _, def in ipairs(list) do out[#out + 1] = ("%d"):format(def.id) end
  return table.concat(out, ",")
end

-- An entry as the cache keeps it: its key as `id`, its name, and each custom value as sent.
local function cached_entry(raw)
  local values = {}
  for id, item in pairs(Definitions.by_field_id(raw.customFieldData)) do
    values[#values + 1] = { id = id, value = item.value }
  end
  table.sort(values, function(a, b) return a.id < b.id end)
  return { id = tonumber(raw.key), key = tonumber(raw.key), name = raw.name ~= nil and tostring(raw.name) or nil,
    parentKey = raw.parentKey, isGroup = raw.isGroup, archived = raw.archived, values = values }
end

-- What a caller gets: { key, name, fields = { [field name] = decoded value }, values (wire by id) }.
local function entry_of(cached, fdefs)
  local by_id = {}
  for _, def in ipairs(fdefs) do by_id[def.id] = def end
  local out = { key = cached.key, name = cached.name, parentKey = cached.parentKey, isGroup = cached.isGroup,
    archived = cached.archived, fields = {}, values = {} }
  for _, v in ipairs(cached.values or {}) do
    out.values[v.id] = v.value
    local def = by_id[v.id]
    if def then out.fields[def.name] = types.decode(def, v.value) end
  end
  return out
end

local function entries(rest, dir, fdefs)
  return defs(rest):named("directory_entries", dir.id, function()
    local list, err = rest:all("post-list-directory-entries", { id = dir.id, fields = wanted_fields(fdefs) })
    if not list then return nil, err end
    local out = {}
    for i, raw in ipairs(list) do out[i] = cached_entry(raw) end
    return out
  end, function(cached) return entry_of(cached, fdefs) end)
end

local function resolve(rest, directory, match)
  local dir, err = directory_of(rest, directory)
  if not dir then return nil, err end
  local fdefs
  fdefs, err = field_defs(rest, dir)
  if not fdefs then return nil, err end
  return dir, fdefs, entries_match.conditions(fdefs, dir.name, match)
end

local function matching(rest, dir, fdefs, conds)
  local list, err = entries(rest, dir, fdefs)
  if not list then return nil, err end
  return entries_match.filter(list, conds)
end

--- rest.directories:find_all(directory, match) -> list of entries | nil, err
function M.find_all(rest, directory, match)
  local dir, fdefs, conds = resolve(rest, directory, match)
  if not dir then return nil, fdefs end
  return matching(rest, dir, fdefs, conds)
end

-- A create with the match's values, read back: the entry, or an api error when Planfix stored
-- other values than were sent (it answers success to values it drops).
local function create(rest, dir, fdefs, conds, opts)
  local data = {}
  local body = { id = dir.id, customFieldData = data }
  for _, c in ipairs(conds) do
    if c.name then
      body.name = c.name
    else
      local wire, err = types.encode(c.def, c.value, { resolve = opts.resolve })
      if wire == nil then return nil, err end
      data[#data + 1] = { field = { id = c.def.id }, value = wire }
    end
  end
  local result, err = rest:call("post-add-directory-entry", body)
  if not result then return nil, err end
  forget_entries(rest, dir.id)
  local read
  read, err = rest:call("get-directory-id-entry-key", { id = dir.id, key = result.key, fields = wanted_fields(fdefs) })
  if not read then return nil, err end
  local entry = entry_of(cached_entry(read.entry or {}), fdefs)
  if not entries_match.matches(entry, conds) then
    return nil, entries_match.not_stored(dir.name, result.key, "post-add-directory-entry", new_error(rest))
  end
  entry.created = true
  return entry
end

local FIND_OPTIONS = { create_missing = "boolean", resolve = "function" }

--- rest.directories:find(directory, match, { create_missing = false }) -> entry | nil, err
-- No entry matches: nil and an api error saying so (`not_found = true`), or the entry created
-- with the match's values when create_missing. Several match: a config error listing them.
function M.find(rest, directory, match, opts)
  opts = opts or {}
  options.check("directories:find", opts, 3, FIND_OPTIONS)
  local dir, fdefs, conds = resolve(rest, directory, match)
  if not dir then return nil, fdefs end
  local found, err = matching(rest, dir, fdefs, conds)
  if not found then return nil, err end
  if #found == 0 and opts.create_missing then return create(rest, dir, fdefs, conds, opts) end
  return entries_match.one(found, dir.name, "post-list-directory-entries", new_error(rest))
end

--- rest.directories:fields(directory) -> list of field definitions | nil, err
function M.fields(rest, directory)
  local dir, err = directory_of(rest, directory)
  if not dir then return nil, err end
  return field_defs(rest, dir)
end

--- rest.directories:invalidate(directory?): read its fields and entries (or every directory's, and
-- the directory list) again on next use.
function M.invalidate(rest, directory)
  local d = defs(rest)
  if directory == nil then
    for _, kind in ipairs { "directories", "directory_fields", "directory_entries", "directory" } do
      d.cache:invalidate_prefix(("%s/%s/"):format(d.namespace, kind))
    end
    d.indexes = {}
    return
  end
  local dir, err = directory_of(rest, directory)
  if not dir then return nil, err end
  d:forget("directory_fields", dir.id)
  forget_entries(rest, dir.id)
  return true
end

return M
