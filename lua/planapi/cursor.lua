-- cursor.lua: save a pager's position to a file and load it back, so a
-- long export stopped by the quota, a crash or Ctrl-C resumes where it
-- stopped, with no item lost or repeated.
--   local pager = rest:pager("get-task-list", params, { cursor = cursor.load "export.cursor" })
--   for task in pager:each() do
--     write(task); n = n + 1
--     if n % 100 == 0 then assert(cursor.save("export.cursor", pager:position())) end
--   end
-- Save after the items handed out so far are safely written: resuming
-- starts with the first item not yet handed out. When the items go to a
-- file, cursor.export does both (the file's size is saved with the cursor).
local core = require "planapi.core"

local M = {}

local config_error = require "planapi.config_error"

local ENOENT = 2 -- io.open's errno for a file that is not there (Linux)

-- The saved document's own keys; meta may use any other.
local RESERVED = { cursor = true, done = true, output_bytes = true }

--- cursor.save(path, position[, meta]) -> true | nil, err
-- Durably (core.write_file_durably: a temporary file, fsync, rename, fsync
-- of the folder): a crash leaves the old cursor or the new one, never half,
-- and a failed write (disk full) returns nil, err with the old one intact.
-- position: pager:position() (a table, nil = from the start, false = done).
-- meta: a table of more keys saved beside it (cursor.load returns it).
function M.save(path, position, meta)
  if type(path) ~= "string" or path == "" then config_error("cursor.save needs a file path", 2) end
  if meta ~= nil and type(meta) ~= "table" then config_error("cursor.save: meta must be a table", 2) end
  local doc = {}
  for k, v in pairs(meta or {}) do
    if RESERVED[k] and k ~= "output_bytes" then
      config_error("cursor.save: meta cannot use the key '" .. k .. "'", 2)
    end
    doc[k] = v
  end
  if position == false then
    doc.done = true
  else
    doc.cursor = position
  end
  local ok, err = core.write_file_durably(path, core.json_encode(doc) .. "\n")
  if not ok then
    err.message = "cannot save the cursor: " .. err.message
    return nil, err
  end
  return true
end

--- cursor.load(path) -> position, meta (position nil when there is no
-- file: start over; false when the saved export had finished).
function M.load(path)
  local f, why, errno = io.open(path, "rb")
  local text
  if f then
    text, why = f:read "*a"
    f:close()
  elseif errno == ENOENT then
    return nil
  end
  -- There but unreadable (a folder, permissions): starting over would redo,
  -- or an export replace, what was already written.
  if text == nil then
    error(core.error { kind = "io", message = "cannot read the cursor " .. path .. ": " .. tostring(why) }, 2)
  end
  local doc, err = core.json_decode(text, "keep") -- the position exactly as saved
  if type(doc) ~= "table" then
    config_error("the cursor file " .. path .. " is damaged: " .. (err and err.message or "not an object"), 2)
  end
  local meta = {}
  for k, v in pairs(doc) do
    if not RESERVED[k] or k == "output_bytes" then meta[k] = v end
  end
  if doc.done then return false, meta end
  return doc.cursor, meta
end

local Export = {}
Export.__index = Export

--- cursor.export{ output = "tasks.jsonl", cursor = "tasks.cursor", meta = {...} } -> export | nil, err
-- An export into a file that resumes with every item exactly once, even
-- after a crash between writing an item and saving the cursor: the cursor
-- also records how many bytes of the output it vouches for, and a resume
-- cuts the output back to them (a half-written line, items written again)
-- before appending.
--   local ex = assert(planapi.cursor.export { output = "tasks.jsonl", cursor = "tasks.cursor" })
--   local pager = rest:pager("get-task-list", params, { cursor = ex.position })
--   local ok, err = ex:run(pager)        -- or ex:write(line) ... ex:save(pager:position())
-- export.position: where the pager starts (nil: the beginning, false: the
-- export had finished, and the output is left as it is).
-- export.meta: what the cursor file held beside the position (the meta of
-- the run that saved it), nil on a new export.
-- Without `cursor`, the output is written from the start and nothing resumes.
function M.export(opts)
  if type(opts) ~= "table" then config_error("cursor.export needs { output = path, cursor = path }", 2) end
  for k in pairs(opts) do
    if k ~= "output" and k ~= "cursor" and k ~= "meta" then
      config_error("cursor.export: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  if type(opts.output) ~= "string" or opts.output == "" then config_error("cursor.export needs output = path", 2) end
  if opts.cursor ~= nil and (type(opts.cursor) ~= "string" or opts.cursor == "") then
    config_error("cursor.export: cursor must be a file path", 2)
  end
  if opts.meta ~= nil and type(opts.meta) ~= "table" then config_error("cursor.export: meta must be a table", 2) end
  if opts.cursor == opts.output then
    -- Every save would replace the exported lines with the cursor.
    config_error("cursor.export: the cursor and the output must be two files (both are " .. opts.output .. ")", 2)
  end
  local position, meta
  if opts.cursor then
    local ok, a, b = pcall(M.load, opts.cursor)
    if not ok then
      if core.is_error(a) and a.kind == "io" then return nil, a end -- a runtime failure: nil, err
      error(a, 2)
    end
    position, meta = a, b
  end
  local self = setmetatable({ output = opts.output, cursor_path = opts.cursor, position = position,
    meta = position ~= nil and meta or nil, own_meta = opts.meta }, Export)
  if position == false then return self end -- finished: nothing to write, the file stays whole
  local keep
  if position ~= nil then
    keep = meta.output_bytes
    if type(keep) ~= "number" then
      return nil, core.error { kind = "config", message = ("the cursor %s records no output size: it was not "
        .. "saved by an export into %s"):format(opts.cursor, opts.output) }
    end
  end
  local out, err = core.open_output(opts.output, keep)
  if not out then return nil, err end
  self.out = out
  return self
end

--- export:write(text) -> true | nil, err (the bytes go to the file now;
-- they count once a save vouches for them).
function Export:write(text)
  if not self.out then config_error("this export is finished or closed", 2) end
  return self.out:write(text)
end

--- export:line(value) -> true | nil, err: value as one JSON Lines record.
function Export:line(value)
  return self:write(core.json_encode(value) .. "\n")
end

--- export:save(position) -> true | nil, err: the output on disk first,
-- then the cursor with the output's size. position false: the export is
-- complete (a later run writes nothing).
function Export:save(position)
  if not self.out then config_error("this export is finished or closed", 2) end
  local ok, err = self.out:sync()
  if not ok then return nil, err end
  if not self.cursor_path then return true end
  local meta = { output_bytes = self.out:size() }
  for k, v in pairs(self.own_meta or {}) do meta[k] = v end
  return M.save(self.cursor_path, position, meta)
end

--- export:size() -> the bytes of the output so far.
function Export:size()
  return self.out and self.out:size() or nil
end

--- export:close() -> true | nil, err (what was not saved is cut off by the next resume).
function Export:close()
  local out = self.out
  self.out = nil
  if out then return out:close() end
  return true
end

--- export:run(pager[, encode]) -> true | nil, err
-- Every remaining item as one line (encode(item) -> text, default compact
-- JSON and "\n"), the cursor saved at the end of every page and at the end
-- (then as complete). The output is closed in every case. An error (the
-- API's, the disk's) returns nil, err with the last saved position intact:
-- running the same code again resumes there.
function Export:run(pager, encode)
  if self.position == false then return true end
  encode = encode or function(item) return core.json_encode(item) .. "\n" end
  local function step()
    for item in pager:each() do
      local ok, err = self:write(encode(item))
      if not ok then return nil, err end
      if pager.in_page == nil then -- the page is all written: vouch for it
        ok, err = self:save(pager:position())
        if not ok then return nil, err end
      end
    end
    return self:save(pager:position())
  end
  local ok, a, b = pcall(step)
  local closed, cerr = self:close()
  if not ok then
    if core.is_error(a) then return nil, a end
    error(a, 0)
  end
  if a and not closed then return nil, cerr end
  return a, b
end

return M
