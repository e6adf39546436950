-- webhook_store.lua: where a webhook receiver remembers what it has seen,
-- so every event is handled once and an old version never overwrites a
-- newer one. One operation decides both, atomically:
--   store:claim(event_uuid, resource_key, version) -> "new" | "duplicate" | "stale", previous_version
--                                                    | nil, err (nothing claimed: the store cannot write)
--   store:release(event_uuid, resource_key, previous_version)  -- undo a claim whose handling failed
-- memory_store: one process (an LRU-like window of recent events).
-- file_store: several processes on one host (flock; survives restarts).
local core = require "planapi.core"

local M = {}

local config_error = require "planapi.config_error"

-- A bounded map that forgets the least recently written half when full:
-- two generations, each at most max/2 entries, O(1) per operation.
local function bounded(max)
  local half = math.max(1, math.floor(max / 2))
  local new, old, count = {}, {}, 0
  local m = {}
  function m.get(k)
    local v = new[k]
    if v == nil then v = old[k] end
    return v
  end
  function m.set(k, v)
    if new[k] == nil then
      count = count + 1
      if count > half then
        old, new, count = new, {}, 1
      end
    end
    new[k] = v
  end
  function m.delete(k)
    new[k], old[k] = nil, nil
  end
  return m
end

--- webhook_store.memory{ max = 100000 }: events and versions kept in this
-- process (lost on restart; a retried delivery after a restart is then
-- handled again, which the version check still orders).
function M.memory(opts)
  opts = opts or {}
  local max = opts.max or 100000
  if type(max) ~= "number" or max < 2 then config_error("memory store option 'max' must be a number >= 2", 2) end
  local events, versions = bounded(max), bounded(max)
  local store = { kind = "memory" }
  function store.claim(_, event_uuid, key, version)
    if events.get(event_uuid) then return "duplicate", versions.get(key) end
    local previous = versions.get(key)
    events.set(event_uuid, true)
    if version ~= nil and previous ~= nil and version <= previous then return "stale", previous end
    if version ~= nil then versions.set(key, version) end
    return "new", previous
  end
  function store.release(_, event_uuid, key, previous)
    events.delete(event_uuid)
    if previous == nil then versions.delete(key) else versions.set(key, previous) end
  end
  return store
end

-- A file name from an event uuid or a resource key: anything outside
-- [A-Za-z0-9_.-] becomes %XX, so no value can climb out of the directory.
local function safe_name(s)
  return (tostring(s):gsub("[^%w_%.%-]", function(c) return ("%%%02X"):format(c:byte()) end):gsub("^%.", "%%2E"))
end

-- Versions are written as the JSON encoder writes numbers, exactly:
-- tostring keeps only 14 digits under LuaJIT, and a large version read
-- back rounded would make every later delivery look stale.
local function read_number(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local v = tonumber(f:read "a")
  f:close()
  return v
end

-- Durably (core.write_file_durably): a crash or a full disk leaves the old
-- value or the new one, never half of one, and a failure is reported.
local function write_version(path, version)
  return core.write_file_durably(path, core.json_encode(version))
end

local function day(t) return os.date("!%Y%m%d", t) end

-- Where an event's mark may lie: today's folder first, then one for each
-- day of the retention.
local function event_paths(dir, retention, now, event_uuid)
  local out = {}
  for i = 0, retention do
    out[#out + 1] = ("%s/events/%s/%s"):format(dir, day(now - i * 86400), safe_name(event_uuid))
  end
  return out
end

-- fn's results with the store's lock held (every process of the host).
local function locked(lock_path, fn)
  local lock, err = core.lock_file(lock_path)
  if not lock then return nil, err end
  local ok, a, b = pcall(fn)
  lock:unlock()
  if not ok then error(a, 0) end
  return a, b
end

-- Remove event folders older than the retention.
local function prune_events(dir, retention, now)
  local keep = {}
  for i = 0, retention do keep[day(now - i * 86400)] = true end
  for _, d in ipairs(core.list_dir(dir .. "/events") or {}) do
    if not keep[d] and d:match "^%d+$" then
      local folder = dir .. "/events/" .. d
      for _, f in ipairs(core.list_dir(folder) or {}) do os.remove(folder .. "/" .. f) end
      os.remove(folder)
    end
  end
end

-- The claim itself, under the lock: "new" | "duplicate" | "stale", previous | nil, err.
-- paths: event_paths (today's first).
local function claim_locked(dir, paths, key, version)
  local vpath = dir .. "/versions/" .. safe_name(key)
  local previous = read_number(vpath)
  for _, p in ipairs(paths) do
    local f = io.open(p, "rb")
    if f then
      f:close()
      return "duplicate", previous
    end
  end
  local today = paths[1]:match "^(.*)/[^/]+$"
  core.mkdir(today)
  local created, cerr = core.create_exclusive(paths[1])
  if created == nil then return nil, cerr end
  if version ~= nil and previous ~= nil and version <= previous then return "stale", previous end
  if version ~= nil then
    local ok, werr = write_version(vpath, version)
    if not ok then
      -- Not claimed after all: the next delivery of the event is handled.
      os.remove(paths[1])
      return nil, werr
    end
  end
  return "new", previous
end

-- The release, under the lock: the event's marks gone, the version back.
local function release_locked(dir, paths, key, previous)
  for _, p in ipairs(paths) do os.remove(p) end
  local vpath = dir .. "/versions/" .. safe_name(key)
  if previous == nil then
    os.remove(vpath)
    return true
  end
  return write_version(vpath, previous)
end

--- webhook_store.file{ dir = "/var/lib/myapp/planado", retention_days = 8 }:
-- every process on the host that names the same directory shares it.
-- Events are kept in one folder per day and forgotten after
-- retention_days (Planado retries for about a week).
function M.file(opts)
  opts = opts or {}
  local dir = opts.dir
  if type(dir) ~= "string" or dir == "" then config_error("file store option 'dir' is required", 2) end
  local retention = opts.retention_days or 8
  local clock = opts.time or os.time
  for _, sub in ipairs { dir, dir .. "/events", dir .. "/versions" } do
    local ok, err = core.mkdir(sub)
    if ok == nil then error(err, 2) end
  end
  local lock_path = dir .. "/lock"
  local store = { kind = "file", dir = dir }

  --- Remove event folders older than the retention (called now and then by claim).
  function store.prune(_)
    prune_events(dir, retention, clock())
  end

  local claims = 0
  function store.claim(self, event_uuid, key, version)
    claims = claims + 1
    if claims % 1000 == 1 then self:prune() end
    return locked(lock_path, function()
      return claim_locked(dir, event_paths(dir, retention, clock(), event_uuid), key, version)
    end)
  end

  function store.release(_, event_uuid, key, previous)
    return locked(lock_path, function()
      return release_locked(dir, event_paths(dir, retention, clock(), event_uuid), key, previous)
    end)
  end
  return store
end

return M
