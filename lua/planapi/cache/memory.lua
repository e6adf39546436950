-- cache/memory.lua: the memory scope's store, one per process: every cache
-- object of the process shares it (their namespaces keep them apart), so a
-- client made per request in an nginx worker still finds what the previous
-- request loaded. Entries are kept as the JSON text the cache wrote; expiry
-- is the cache's business (the record says when), so a store over its
-- bound simply starts afresh: it is a cache.
local M = {}

local MAX_ENTRIES = 10000

local entries, count, locks = {}, 0, {}

local Store = { in_process = true }
Store.__index = Store

function Store.read(_, key) return entries[key] end

function Store.write(_, key, text)
  if entries[key] == nil then
    if count >= MAX_ENTRIES then entries, count = {}, 0 end
    count = count + 1
  end
  entries[key] = text
  return true
end

function Store.delete(_, key)
  if entries[key] ~= nil then
    entries[key], count = nil, count - 1
  end
  return true
end

function Store.delete_prefix(_, prefix)
  for key in pairs(entries) do
    -- Removing the current key while pairs walks the table is allowed.
    if key:sub(1, #prefix) == prefix then entries[key], count = nil, count - 1 end
  end
  return true
end

-- Held by a coroutine of this process until it releases it.
function Store.try_lock(_, key)
  if locks[key] then return false end
  locks[key] = true
  return function() locks[key] = nil end
end

function M.new() return setmetatable({}, Store) end

return M
