-- cache/shared_dict.lua: the host scope inside nginx, a lua_shared_dict
-- (nginx.conf: `lua_shared_dict NAME 1m;`) that every worker of the nginx
-- shares. Entries expire with their record's TTL; a key's single flight is
-- dict:add on its lock key, which expires on its own after `hold` seconds.
local core = require "planapi.core"

local M = {}

local Store = {}
Store.__index = Store

local function failed(self, err)
  return nil, core.error { kind = "io", message = ("lua_shared_dict %s: %s"):format(self.name, tostring(err)) }
end

function Store:read(key) return self.dict:get(key) end

function Store:write(key, text, ttl)
  local ok, err = self.dict:set(key, text, ttl)
  if not ok then return failed(self, err) end
  return true
end

function Store:delete(key)
  self.dict:delete(key)
  return true
end

-- Every key of the dict is walked: invalidating is rare, and a cache's dict small.
function Store:delete_prefix(prefix)
  for _, key in ipairs(self.dict:get_keys(0)) do
    if key:sub(1, #prefix) == prefix then self.dict:delete(key) end
  end
  return true
end

function Store:try_lock(key)
  local ok, err = self.dict:add(key, true, self.hold)
  if ok then return function() self.dict:delete(key) end end
  if err == "exists" then return false end
  return failed(self, err)
end

--- The dict ngx.shared[name], or nil when nginx.conf declares none.
function M.find(name, hold)
  local n = rawget(_G, "ngx")
  local dict = n and type(n.shared) == "table" and n.shared[name]
  if not dict then return nil end
  return setmetatable({ dict = dict, name = name, hold = hold }, Store)
end

return M
