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
-- the entry's name. The matching is planfix_fields/entries.lua's, shared with the XML client.
local Definitions = require("planapi.planfix_fields.definitions")
local entries = require("planapi.planfix_fields.entries")
local types = require("planapi.planfix_fields.types")
local custom = require("planapi.planfix_rest.custom_fields")
local names = require("planapi.planfix_rest.names")

local M = {}

local function defs(rest) return custom.definitions(rest) end

-- Forget a directory's cached entries: these, and the entry names set_fields resolves values by
-- (planfix_rest/custom_fields.lua keeps them under "directory/<id>/entries").
local function forget_entries(rest, dir_id)
  defs(rest):forget("directory_entries", dir_id)
  defs(rest):forget("directory", ("%d/entries"):format(dir_id))
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

local function view(cached, fdefs) return entries.view(cached, fdefs, types.decode) end

-- What planfix_fields/entries.lua reads and writes through, for one client.
local function source(rest)
  return {
    directory = function(name_or_id) return names.METHODS.directory(rest, name_or_id) end,
    fields = function(dir) return field_defs(rest, dir) end,
    list = function(dir, fdefs)
      return entries.cached_list(defs(rest), "directory_entries", dir, fdefs, function()
        return rest:all("post-list-directory-entries", { id = dir.id, fields = wanted_fields(fdefs) })
      end, cached_entry, types.decode)
    end,
    add = function(dir, name, values)
      local data = {}
      for i, v in ipairs(values) do data[i] = { field = { id = v.def.id }, value = v.wire } end
      local result, err = rest:call("post-add-directory-entry", { id = dir.id, name = name, customFieldData = data })
      return result and result.key, err
    end,
    read = function(dir, key, fdefs)
      local read, err = rest:call("get-directory-id-entry-key",
        { id = dir.id, key = key, fields = wanted_fields(fdefs) })
      if not read then return nil, err end
      return view(cached_entry(read.entry or {}), fdefs)
    end,
    forget = function(dir) forget_entries(rest, dir.id) end,
    new_error = function(t) return rest.core:error(t) end,
    list_op = "post-list-directory-entries", add_op = "post-add-directory-entry",
  }
end

--- rest.directories:find(directory, match, { create_missing = false }) -> entry | nil, err
-- No entry matches: nil and an api error saying so (`not_found = true`), or the entry created
-- with the match's values when create_missing. Several match: a config error listing them.
-- rest.directories:find_all(directory, match) -> list of entries | nil, err
M.find, M.find_all = entries.methods(source)

--- rest.directories:fields(directory) -> list of field definitions | nil, err
function M.fields(rest, directory)
  local dir, err = names.METHODS.directory(rest, directory)
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
  local dir, err = names.METHODS.directory(rest, directory)
  if not dir then return nil, err end
  d:forget("directory_fields", dir.id)
  forget_entries(rest, dir.id)
  return true
end

return M
