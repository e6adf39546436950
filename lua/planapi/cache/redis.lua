-- cache/redis.lua: the Redis scope's store, shared by every host using the
-- Redis (the limiter's redis:// url and connection,
-- limiter/redis_connection.lua: cosockets in nginx, the C socket elsewhere).
-- Keys are planapi:cache:<namespace>|<what>|<key>, each expiring with its
-- record. A key's single flight is SET NX PX on its lock key, holding a
-- token of this holder: the lock expires on its own after `hold` seconds
-- (a holder that died frees it), and the release deletes it only while it
-- still holds that token (one script), never a later holder's.
local core = require "planapi.core"
local connection = require "planapi.limiter.redis_connection"

local M = {}

local Store = connection.class "definitions cache"

local PREFIX = "planapi:cache:"
local SCAN_COUNT = 500

local RELEASE = [[
-- planapi cache (lua/planapi/cache/redis.lua): free a lock only its holder's token still holds.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
]]

function Store:read(key)
  local value, err = self:request { "GET", PREFIX .. key }
  if value == nil then return nil, self:failed(err) end
  if value == core.null then return nil end
  return value
end

function Store:write(key, text, ttl)
  local ok, err = self:request { "SET", PREFIX .. key, text, "PX", math.ceil(ttl * 1000) }
  if ok == nil then return nil, self:failed(err) end
  return true
end

function Store:delete(key)
  local ok, err = self:request { "DEL", PREFIX .. key }
  if ok == nil then return nil, self:failed(err) end
  return true
end

-- SCAN's pattern for keys starting with text: glob characters escaped.
local function glob_prefix(text)
  return (text:gsub("[%*%?%[%]\\]", "\\%0")) .. "*"
end

function Store:delete_prefix(prefix)
  local cursor, pattern = "0", glob_prefix(PREFIX .. prefix)
  repeat
    local reply, err = self:request { "SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT }
    if reply == nil then return nil, self:failed(err) end
    cursor = reply[1]
    local keys = reply[2]
    if #keys > 0 then
      local command = { "DEL" }
      for i, k in ipairs(keys) do command[i + 1] = k end
      local ok, derr = self:request(command)
      if ok == nil then return nil, self:failed(derr) end
    end
  until cursor == "0"
  return true
end

function Store:try_lock(key)
  local token = core.md5_hex(tostring({}) .. tostring(core.monotime()) .. tostring(math.random()))
  local lock_key = PREFIX .. key
  local ok, err = self:request { "SET", lock_key, token, "NX", "PX", math.ceil(self.hold * 1000) }
  if ok == nil then return nil, self:failed(err) end
  if ok == core.null then return false end
  return function() self:run_script(RELEASE, { lock_key }, { token }) end
end

function Store:__tostring() return ("planapi.cache redis (redis://%s)"):format(self.server) end

--- The store on url; hold: how long a lock outlives a holder that died.
function M.new(url, opts)
  local self = setmetatable({ hold = opts.hold or 30 }, Store)
  return connection.init(self, url, { label = "cache", connect = opts.connect })
end

return M
