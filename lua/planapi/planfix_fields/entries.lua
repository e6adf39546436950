-- planfix_fields/entries.lua: matching directory entries (REST) and handbook records (XML) by
-- their fields' values, shared by both clients (each reads the entries its own way).
--   local conds = entries.conditions(field_defs, "Lead sources", { Name = "Website" })  -- or "Website"
--   entries.matches(entry, conds)        -- entry = { name, fields = { [field name] = value } }
--   entries.one(found, "Lead sources")   -> the entry | nil, err (not_found) | config error (several)
local config_error = require "planapi.config_error"
local Definitions = require "planapi.planfix_fields.definitions"

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

return M
