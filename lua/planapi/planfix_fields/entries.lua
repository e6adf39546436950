-- planfix_fields/entries.lua: directory entries (REST) and handbook records (XML) by their
-- fields' values, shared by both clients; each gives a source that reads them its own way:
--   entries.find(source, "Lead sources", { Name = "Website" }, { create_missing = true })
--   entries.find_all(source, directory, match)
-- source: { directory(name_or_id) -> { id, name }, fields(dir) -> field definitions,
--   list(dir, fdefs) -> entries, add(dir, name, values, opts) -> key (values: { { def, wire } }),
--   read(dir, key, fdefs) -> entry, forget(dir), new_error(t), list_op, add_op } (each reader
--   -> value | nil, err). An entry: { key, name, parentKey, isGroup, archived, fields = { [name] =
--   value }, values = { [field id] = value as sent } } (entries.view makes one).
local config_error = require "planapi.config_error"
local Definitions = require "planapi.planfix_fields.definitions"
local options = require "planapi.options"
local types = require "planapi.planfix_fields.types"

local M = {}

--- The match's conditions: { { def =, value = } ... } in field id order (names resolved as custom
-- field names are: an unknown or ambiguous one is a config error), or { { name = } } for a string.
function M.conditions(fdefs, owner, match)
  if type(match) == "string" then return { { name = match } } end
  if type(match) ~= "table" or next(match) == nil then
    config_error("a directory lookup takes a table of field = value, or an entry's name", 4)
  end
  local out = {}
  for k, v in pairs(match) do
    out[#out + 1] = { def = Definitions.lookup(fdefs, k, "field", ("directory '%s'"):format(owner)), value = v }
  end
  table.sort(out, function(a, b) return a.def.id < b.def.id end)
  return out
end

local function same(a, b)
  if type(a) == "number" or type(b) == "number" then return tonumber(a) == tonumber(b) end
  return a == b
end

--- Whether an entry holds every condition's value.
function M.matches(entry, conds)
  for _, c in ipairs(conds) do
    if c.name then
      if entry.name ~= c.name then return false end
    elseif not same(entry.fields[c.def.name], c.value) then
      return false
    end
  end
  return true
end

--- The entries of list that match.
function M.filter(list, conds)
  local out = {}
  for _, e in ipairs(list) do
    if M.matches(e, conds) then out[#out + 1] = e end
  end
  return out
end

local function keys_of(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = ("%s (key %s)"):format(tostring(e.name), tostring(e.key)) end
  return table.concat(out, ", ")
end

--- The one entry found: several are a config error listing them (`candidates`); none is nil and
-- an api error with `not_found = true`, made by new_error (the client's, which names its API).
function M.one(found, owner, operation, new_error)
  if #found == 1 then return found[1] end
  if #found > 1 then
    config_error(("%d entries of directory '%s' match: %s; match on more fields or use the key"):format(#found,
      owner, keys_of(found)), 4, { candidates = found })
  end
  local nf = new_error { kind = "api", retryable = false, operation = operation,
    message = ("no entry of directory '%s' matches"):format(owner) }
  nf.not_found = true
  return nil, nf
end

--- The api error of a created entry that does not hold the values sent.
function M.not_stored(owner, key, operation, new_error)
  return new_error { kind = "api", operation = operation, retryable = false,
    message = ("directory '%s': entry %s was created but does not hold the values sent (a list value not"
      .. " among the field's options is stored as given; a field of another directory is ignored)")
      :format(owner, tostring(key)) }
end

--- An entry as a caller gets it, from its cached form { key, name, parentKey, isGroup, archived,
-- values = { { id, value } } }: each value decoded (decode(def, value)) under its field's name.
function M.view(cached, fdefs, decode)
  local by_id = {}
  for _, def in ipairs(fdefs) do by_id[def.id] = def end
  local out = { key = cached.key, name = cached.name, parentKey = cached.parentKey, isGroup = cached.isGroup,
    archived = cached.archived, fields = {}, values = {} }
  for _, v in ipairs(cached.values or {}) do
    out.values[v.id] = v.value
    local def = by_id[v.id]
    if def then out.fields[def.name] = decode(def, v.value) end
  end
  return out
end

local function resolve(src, directory, match)
  local dir, err = src.directory(directory)
  if not dir then return nil, err end
  local fdefs
  fdefs, err = src.fields(dir)
  if not fdefs then return nil, err end
  return dir, fdefs, M.conditions(fdefs, dir.name, match)
end

local function matching(src, dir, fdefs, conds)
  local list, err = src.list(dir, fdefs)
  if not list then return nil, err end
  return M.filter(list, conds)
end

--- entries.find_all(source, directory, match) -> list of entries | nil, err
function M.find_all(src, directory, match)
  local dir, fdefs, conds = resolve(src, directory, match)
  if not dir then return nil, fdefs end
  return matching(src, dir, fdefs, conds)
end

-- A create with the match's values (checked and encoded: a config error sends nothing), read
-- back: the entry, or an api error when Planfix stored other values than were sent (it answers
-- success to values it drops).
local function create(src, dir, fdefs, conds, opts)
  local name, values = nil, {}
  for _, c in ipairs(conds) do
    if c.name then
      name = c.name
    else
      local wire, err = types.encode(c.def, c.value, { resolve = opts.resolve })
      if wire == nil then return nil, err end
      values[#values + 1] = { def = c.def, wire = wire }
    end
  end
  local key, err = src.add(dir, name, values, opts)
  if not key then return nil, err end
  src.forget(dir)
  local entry
  entry, err = src.read(dir, key, fdefs)
  if not entry then return nil, err end
  if not M.matches(entry, conds) then return nil, M.not_stored(dir.name, key, src.add_op, src.new_error) end
  entry.created = true
  return entry
end

local FIND_OPTIONS = { create_missing = "boolean", resolve = "function" }

--- entries.find(source, directory, match, { create_missing = false }) -> entry | nil, err
function M.find(src, directory, match, opts)
  opts = opts or {}
  options.check("directory find", opts, 3, FIND_OPTIONS)
  local dir, fdefs, conds = resolve(src, directory, match)
  if not dir then return nil, fdefs end
  local found, err = matching(src, dir, fdefs, conds)
  if not found then return nil, err end
  if #found == 0 and opts.create_missing then return create(src, dir, fdefs, conds, opts) end
  return M.one(found, dir.name, src.list_op, src.new_error)
end

--- find and find_all of a client: (client, directory, match, opts), source_of(client) its source.
function M.methods(source_of)
  return function(client, directory, match, opts) return M.find(source_of(client), directory, match, opts) end,
    function(client, directory, match) return M.find_all(source_of(client), directory, match) end
end

--- Every entry of a directory through the definitions cache (defs:named under kind and the
-- directory's id): read_all(dir) -> raw entries | nil, err, each kept in its cached form and given
-- as entries.view makes it.
function M.cached_list(defs, kind, dir, fdefs, read_all, cached_form, decode)
  return defs:named(kind, dir.id, function()
    local list, err = read_all(dir)
    if not list then return nil, err end
    local out = {}
    for i, raw in ipairs(list) do out[i] = cached_form(raw) end
    return out
  end, function(cached) return M.view(cached, fdefs, decode) end)
end

return M
