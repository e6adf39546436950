-- events/store.lua: where an event receiver remembers what it has seen and
-- what it still has to do, so every event is handled once and an old
-- version never overwrites a newer one. The contract every store keeps
-- (memory and file here, Redis in events/store_redis.lua):
--   store:claim(id, key, version [, record]) -> "new" | "duplicate" | "stale", previous_version
--                                              | nil, err (nothing claimed: the store cannot write)
--     record = { payload = string, lease = seconds, ttl = seconds }: a "new" event is leased until
--     now + lease with its payload, so store:take hands it out again if it is not finished by then.
--     Without a record (the webhook_store API of old) a "new" id is simply remembered.
--   store:finish(id, "done" | "failed")   drop the payload, remember the id until its ttl
--   store:retry(id, delay)                 take it again after delay seconds
--   store:take(limit, lease) -> { { id =, payload =, attempts = }, ... }   expired leases, re-leased
--   store:release(id, key, previous_version)   forget the claim entirely (undo it)
-- memory: one process, bounded. file: the processes of one host (flock), durable.
local core = require "planapi.core"
local config_error = require "planapi.config_error"

local M = {}
local unpack_args = table.unpack or unpack

-- A stored record is one line of JSON (its fields) and then the payload's
-- raw bytes: a payload need not be UTF-8, and JSON strings must be.
local function pack(meta, payload)
  return core.json_encode(meta) .. "\n" .. (payload or "")
end

local function unpack_record(text)
  local nl = text and text:find("\n", 1, true)
  if not nl then return nil end
  local meta = core.json_decode(text:sub(1, nl - 1))
  if type(meta) ~= "table" then return nil end
  return meta, text:sub(nl + 1)
end
M.pack, M.unpack = pack, unpack_record

local function check_record(record, level)
  if record == nil then return end
  if type(record) ~= "table" or type(record.payload) ~= "string" or type(record.lease) ~= "number"
      or (record.ttl ~= nil and type(record.ttl) ~= "number") then
    config_error("claim's record must be { payload = string, lease = seconds, ttl = seconds }", level + 1)
  end
end
M.check_record = check_record

local function check_outcome(outcome, level)
  if outcome ~= "done" and outcome ~= "failed" then
    config_error("finish's outcome must be \"done\" or \"failed\"", level + 1)
  end
end
M.check_outcome = check_outcome

local function clock_option(opts, what)
  local clock = opts.clock or opts.time or os.time
  if type(clock) ~= "function" then config_error(what .. " option 'clock' must be a function", 3) end
  return clock
end

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

-- The events whose lease has expired, oldest lease first, at most limit.
local function due(entries, now, limit)
  local out = {}
  for _, e in ipairs(entries) do
    if e.lease_until <= now then out[#out + 1] = e end
  end
  table.sort(out, function(a, b)
    if a.lease_until ~= b.lease_until then return a.lease_until < b.lease_until end
    return a.id < b.id
  end)
  for i = #out, limit + 1, -1 do out[i] = nil end
  return out
end

-- The memory store's claim: marks (finished ids), pending (leased events).
local function memory_claim(s, id, key, version, record)
  local now = s.clock()
  local mark = s.marks.get(id)
  if s.pending[id] or (mark and (mark.expires == nil or mark.expires > now)) then
    return "duplicate", s.versions.get(key)
  end
  local previous = s.versions.get(key)
  local ttl = record and record.ttl
  if version ~= nil and previous ~= nil and version <= previous then
    s.marks.set(id, { state = "stale", expires = ttl and now + ttl })
    return "stale", previous
  end
  if record then
    if s.pending_count >= s.max then
      return nil, core.error { kind = "io", message = ("the memory event store holds %d events not yet "
        .. "handled: it takes no more until some are finished"):format(s.max) }
    end
    s.pending[id] = { id = id, payload = record.payload, lease_until = now + record.lease, attempts = 1,
      expires = ttl and now + ttl }
    s.pending_count = s.pending_count + 1
  else
    s.marks.set(id, { state = "done" })
  end
  if version ~= nil then s.versions.set(key, version) end
  return "new", previous
end

local function memory_unpend(s, id)
  local p = s.pending[id]
  if p then
    s.pending[id] = nil
    s.pending_count = s.pending_count - 1
  end
  return p
end

local function memory_take(s, limit, lease)
  local now, entries = s.clock(), {}
  for _, p in pairs(s.pending) do entries[#entries + 1] = p end
  local out = {}
  for i, p in ipairs(due(entries, now, limit)) do
    p.lease_until, p.attempts = now + lease, p.attempts + 1
    out[i] = { id = p.id, payload = p.payload, attempts = p.attempts }
  end
  return out
end

--- store.memory{ max = 100000, clock = os.time }: events and versions kept
-- in this process (lost on restart). At most max finished ids are kept
-- (the oldest half is forgotten when full) and at most max events may wait
-- to be handled (a claim beyond that fails, so the sender delivers again).
function M.memory(opts)
  opts = opts or {}
  local max = opts.max or 100000
  if type(max) ~= "number" or max < 2 then config_error("memory store option 'max' must be a number >= 2", 2) end
  local s = { marks = bounded(max), versions = bounded(max), pending = {}, pending_count = 0, max = max,
    clock = clock_option(opts, "memory store") }
  local store = { kind = "memory" }
  function store.claim(_, id, key, version, record)
    check_record(record, 2)
    return memory_claim(s, id, key, version, record)
  end
  function store.finish(_, id, outcome)
    check_outcome(outcome, 2)
    local p, mark = memory_unpend(s, id), s.marks.get(id)
    s.marks.set(id, { state = outcome, expires = (p or mark or {}).expires })
    return true
  end
  function store.retry(_, id, delay)
    local p = s.pending[id]
    if not p then return false end
    p.lease_until = s.clock() + delay
    return true
  end
  function store.take(_, limit, lease) return memory_take(s, limit, lease) end
  function store.release(_, id, key, previous)
    s.marks.delete(id)
    memory_unpend(s, id)
    if previous == nil then s.versions.delete(key) else s.versions.set(key, previous) end
    return true
  end
  return store
end

-- The file store ----------------------------------------------------------
-- dir/events/YYYYMMDD/<id>  the id's mark: empty (claimed without a record,
--                           or claimed and not finished) or the record of its
--                           outcome {state, expires}; one folder per day.
-- dir/pending/<id>          an event claimed with a record and not finished:
--                           {lease_until, attempts, expires} and the payload.
-- dir/versions/<key>        the last version of key.
-- Every change is made under the store's flock; pending files and outcomes
-- are written durably (core.write_file_durably), pending first and the
-- mark after, so a crash between them still finds the id (a duplicate).

-- A file name from an id or a key: anything outside [A-Za-z0-9_.-] becomes
-- %XX, so no value can climb out of the directory. A name over what a file
-- system takes (255 bytes; %XX triples every other byte, so 86 Cyrillic
-- letters are already too many) keeps its start and ends with the MD5 of
-- the whole value, so ids sharing a long start stay apart.
local MAX_NAME = 200
local function safe_name(s)
  local text = tostring(s)
  local name = text:gsub("[^%w_%.%-]", function(c) return ("%%%02X"):format(c:byte()) end):gsub("^%.", "%%2E")
  if #name <= MAX_NAME then return name end
  return name:sub(1, MAX_NAME - 40):gsub("%%%x?$", "") .. "~" .. core.md5_hex(text)
end

-- The file's bytes, or nil when it is not there.
local function read_all(path)
  local f = io.open(path, "rb")
  local text = f and f:read "*a"
  if f then f:close() end
  return text
end

-- Versions are written as the JSON encoder writes numbers, exactly:
-- tostring keeps only 14 digits under LuaJIT, and a large version read
-- back rounded would make every later delivery look stale.
local function read_number(path)
  return tonumber(read_all(path))
end

local function write_version(path, version)
  return core.write_file_durably(path, core.json_encode(version))
end

local function day(t) return os.date("!%Y%m%d", t) end

-- fn's results with the store's lock held (every process of the host).
local function locked(lock_path, fn)
  local lock, err = core.lock_file(lock_path)
  if not lock then return nil, err end
  local ok, a, b = pcall(fn)
  lock:unlock()
  if not ok then error(a, 0) end
  return a, b
end

local File = {}
File.__index = File

-- Where the id's mark may lie: today's folder first, then one for each
-- day of the retention.
function File:mark_paths(id, now)
  local out, name = {}, safe_name(id)
  for i = 0, self.retention do
    out[#out + 1] = ("%s/events/%s/%s"):format(self.dir, day(now - i * 86400), name)
  end
  return out
end

function File:pending_path(id) return self.dir .. "/pending/" .. safe_name(id) end
function File:version_path(key) return self.dir .. "/versions/" .. safe_name(key) end

-- The path of the id's live mark, or nil; a mark whose ttl has passed is
-- removed on the way (the id is forgotten).
function File:live_mark(id, now)
  for _, p in ipairs(self:mark_paths(id, now)) do
    local text = read_all(p)
    if text then
      local meta = text ~= "" and core.json_decode(text) or nil
      if type(meta) == "table" and type(meta.expires) == "number" and meta.expires <= now then
        os.remove(p)
      else
        return p
      end
    end
  end
  return nil
end

-- A pending file's record: its fields and payload, the id whatever its bytes
-- (JSON holds UTF-8 only: an id that is not, from a form's %FF, goes as hex).
local function read_pending_file(path)
  local meta, payload = unpack_record(read_all(path))
  if not meta then return nil end
  if type(meta.id_hex) == "string" then
    meta.id = meta.id_hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  end
  meta.payload = payload
  return meta
end

-- Whether id's outcome is recorded (finish wrote it): its mark holds a
-- state, where a claim not yet finished leaves it empty.
function File:finished(id, now)
  local path = self:live_mark(id, now)
  local text = path and read_all(path)
  local meta = text and text ~= "" and core.json_decode(text) or nil
  return type(meta) == "table" and (meta.state == "done" or meta.state == "failed")
end

function File:read_pending(id)
  return read_pending_file(self:pending_path(id))
end

function File:write_pending(id, p)
  local ok, err = core.mkdir(self.dir .. "/pending")
  if ok == nil then return nil, err end
  local meta = { id = id, lease_until = p.lease_until, attempts = p.attempts, expires = p.expires }
  local packed, text = pcall(pack, meta, p.payload)
  if not packed then
    meta.id, meta.id_hex = nil, id:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
    text = pack(meta, p.payload)
  end
  return core.write_file_durably(self:pending_path(id), text)
end

-- Today's mark for id: empty, or the outcome {state, expires} written durably.
local function write_mark(path, outcome)
  local folder = path:match "^(.*)/[^/]+$"
  local ok, err = core.mkdir(folder)
  if ok == nil then return nil, err end
  if outcome == nil then
    local made, cerr = core.create_exclusive(path)
    if made == nil then return nil, cerr end
    return true
  end
  return core.write_file_durably(path, core.json_encode(outcome))
end

-- The claim itself, under the lock.
function File:claim_locked(id, key, version, record)
  local now = self.clock()
  local vpath = self:version_path(key)
  local previous = read_number(vpath)
  if read_all(self:pending_path(id)) or self:live_mark(id, now) then
    return "duplicate", previous
  end
  local mark = self:mark_paths(id, now)[1]
  local expires = record and record.ttl and now + record.ttl
  if version ~= nil and previous ~= nil and version <= previous then
    local ok, err = write_mark(mark, record and { state = "stale", expires = expires })
    if not ok then return nil, err end
    return "stale", previous
  end
  return self:claim_new(id, mark, vpath, version, record, now), previous
end

-- A "new" claim: pending (durably), then the version, then the mark; on a
-- failure whatever was written is taken back and nothing is claimed.
function File:claim_new(id, mark, vpath, version, record, now)
  local ok, err = true, nil
  if record then
    ok, err = self:write_pending(id, { payload = record.payload, lease_until = now + record.lease, attempts = 1,
      expires = record.ttl and now + record.ttl })
  end
  if ok and version ~= nil then ok, err = write_version(vpath, version) end
  if ok then ok, err = write_mark(mark, nil) end
  if not ok then
    os.remove(self:pending_path(id))
    error(err, 0)
  end
  return "new"
end

function File:finish_locked(id, outcome)
  local now = self.clock()
  local p = self:read_pending(id)
  local mark = self:live_mark(id, now) or self:mark_paths(id, now)[1]
  local ok, err = write_mark(mark, { state = outcome, expires = p and p.expires })
  if not ok then return nil, err end
  os.remove(self:pending_path(id))
  return true
end

function File:retry_locked(id, delay)
  local p = self:read_pending(id)
  if not p then return false end
  p.lease_until = self.clock() + delay
  return self:write_pending(id, p)
end

function File:take_locked(limit, lease)
  local now, entries = self.clock(), {}
  for _, name in ipairs(core.list_dir(self.dir .. "/pending") or {}) do
    local meta = read_pending_file(self.dir .. "/pending/" .. name)
    -- A file named for another id is a write's temporary file (name.XXXXXX).
    if meta and type(meta.id) == "string" and safe_name(meta.id) == name then
      entries[#entries + 1] = meta
    end
  end
  local out = {}
  for _, p in ipairs(due(entries, now, limit)) do
    if self:finished(p.id, now) then
      os.remove(self:pending_path(p.id)) -- what finish was cut short before
    else
      p.lease_until, p.attempts = now + lease, p.attempts + 1
      local ok, err = self:write_pending(p.id, p)
      if not ok then error(err, 0) end
      out[#out + 1] = { id = p.id, payload = p.payload, attempts = p.attempts }
    end
  end
  return out
end

function File:release_locked(id, key, previous)
  for _, p in ipairs(self:mark_paths(id, self.clock())) do os.remove(p) end
  os.remove(self:pending_path(id))
  local vpath = self:version_path(key)
  if previous == nil then
    os.remove(vpath)
    return true
  end
  return write_version(vpath, previous)
end

-- Remove event folders older than the retention.
function File:prune_locked()
  local keep, now = {}, self.clock()
  for i = 0, self.retention do keep[day(now - i * 86400)] = true end
  for _, d in ipairs(core.list_dir(self.dir .. "/events") or {}) do
    if not keep[d] and d:match "^%d+$" then
      local folder = self.dir .. "/events/" .. d
      for _, f in ipairs(core.list_dir(folder) or {}) do os.remove(folder .. "/" .. f) end
      os.remove(folder)
    end
  end
  return true
end

-- The public methods: each one runs its _locked step under the flock; an
-- io error raised inside a step (a write that failed) comes back as nil, err.
local function under_lock(step)
  return function(self, ...)
    local args, n = { ... }, select("#", ...)
    local ok, a, b = pcall(locked, self.lock_path, function() return self[step](self, unpack_args(args, 1, n)) end)
    if ok then return a, b end
    if core.is_error(a) then return nil, a end
    error(a, 0)
  end
end
File.prune = under_lock "prune_locked"
File.release = under_lock "release_locked"
File.retry = under_lock "retry_locked"
File.take = under_lock "take_locked"

function File:claim(id, key, version, record)
  check_record(record, 2)
  self.claims = self.claims + 1
  if self.claims % 1000 == 1 then self:prune() end
  return under_lock("claim_locked")(self, id, key, version, record)
end

function File:finish(id, outcome)
  check_outcome(outcome, 2)
  return under_lock("finish_locked")(self, id, outcome)
end

--- store.file{ dir = "/var/lib/myapp/events", retention_days = 8, clock = os.time }:
-- every process on the host that names the same directory shares it, and
-- a restart loses nothing. Ids are kept in one folder per day and
-- forgotten after their ttl or after retention_days, whichever is first;
-- events not yet handled are kept until they are finished.
function M.file(opts)
  opts = opts or {}
  local dir = opts.dir
  if type(dir) ~= "string" or dir == "" then config_error("file store option 'dir' is required", 2) end
  local retention = opts.retention_days or 8
  if type(retention) ~= "number" or retention < 0 then
    config_error("file store option 'retention_days' must be a number >= 0", 2)
  end
  local clock = clock_option(opts, "file store")
  for _, sub in ipairs { dir, dir .. "/events", dir .. "/versions" } do
    local ok, err = core.mkdir(sub)
    if ok == nil then error(err, 2) end
  end
  return setmetatable({ kind = "file", dir = dir, lock_path = dir .. "/lock", retention = retention,
    clock = clock, claims = 0 }, File)
end

return M
