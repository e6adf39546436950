-- cache/file.lua: the file and host scopes' store, a folder shared by every
-- process that names it. One file per key, named by the key's MD5 (the
-- record inside holds the key itself), written whole by rename
-- (core.write_file_durably), so a reader sees the old record or the new
-- one, never a torn one, and reads need no lock. A key's single flight is
-- an flock on <md5>.lock taken without waiting (core.try_lock_file): the
-- waiters poll, so an nginx worker is never blocked, and a process that
-- dies mid-load leaves nothing locked.
local core = require "planapi.core"
local limiter = require "planapi.limiter"

local M = {}

local Store = {}
Store.__index = Store

function Store:path(key, ext) return ("%s/%s.%s"):format(self.dir, core.md5_hex(key), ext) end

-- The file's text, or nil when there is none (yet).
local function read_all(path)
  local f = io.open(path, "rb")
  local text = f and f:read "*a"
  return text, f and f:close()
end

function Store:read(key) return (read_all(self:path(key, "json"))) end

function Store:write(key, text) return core.write_file_durably(self:path(key, "json"), text) end

function Store:delete(key)
  os.remove(self:path(key, "json"))
  return true
end

-- Every record whose key starts with prefix: each file says its key.
function Store:delete_prefix(prefix)
  local names, err = core.list_dir(self.dir)
  if not names then return nil, err end
  for _, name in ipairs(names) do
    if name:match "%.json$" then
      local path = self.dir .. "/" .. name
      local ok, record = pcall(core.json_decode, read_all(path) or "")
      if ok and type(record) == "table" and type(record.k) == "string" and record.k:sub(1, #prefix) == prefix then
        os.remove(path)
      end
    end
  end
  return true
end

function Store:try_lock(key)
  local lock, err = core.try_lock_file(self:path(key, "lock"))
  if not lock then return lock, err end
  return function() lock:unlock() end
end

local function open(dir)
  return setmetatable({ dir = dir }, Store)
end

--- The file scope: dir is created (0700) if missing; its parent must exist.
function M.new(dir)
  local ok, err = core.mkdir(dir)
  if ok == nil then error(err, 4) end
  return open(dir)
end

--- The host scope outside nginx: a folder of the user's runtime dir (the
-- limiter's: $PLANAPI_RUNTIME_DIR, $XDG_RUNTIME_DIR/planapi, a tmpfs on
-- most systems), private to the user, as the pacing state is.
function M.host(name)
  local base = limiter.default_dir()
  for _, dir in ipairs { base, base .. "/cache-" .. name } do
    local ok, err = core.private_dir(dir)
    if not ok then error(err, 4) end
  end
  return open(base .. "/cache-" .. name)
end

return M
