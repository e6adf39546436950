-- cursor.lua: save a pager's position to a file and load it back, so a
-- long export stopped by the quota, a crash or Ctrl-C resumes where it
-- stopped, with no item lost or repeated.
--   local pager = rest:pager("get-task-list", params, { cursor = cursor.load "export.cursor" })
--   for task in pager:each() do
--     write(task); n = n + 1
--     if n % 100 == 0 then cursor.save("export.cursor", pager:position()) end
--   end
-- Save after the items handed out so far are safely written: resuming
-- starts with the first item not yet handed out.
local core = require "planapi.core"

local M = {}

--- cursor.save(path, position): atomically (a temporary file, then a
-- rename), so a crash leaves the old cursor or the new one, never half.
-- position: pager:position() (a table, nil = from the start, false = done).
function M.save(path, position)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, core.error { kind = "config", message = "cannot write the cursor: " .. tostring(err) } end
  local doc
  if position == false then
    doc = { done = true }
  else
    doc = { cursor = position }
  end
  f:write(core.json_encode(doc), "\n")
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then return nil, core.error { kind = "config", message = "cannot write the cursor: " .. tostring(rerr) } end
  return true
end

--- cursor.load(path) -> position (nil when there is no file: start over;
-- false when the saved export had finished).
function M.load(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read "a"
  f:close()
  local doc, err = core.json_decode(text)
  if type(doc) ~= "table" then
    error(core.error { kind = "config", message = "the cursor file " .. path .. " is damaged: "
      .. (err and err.message or "not an object") }, 2)
  end
  if doc.done then return false end
  return doc.cursor
end

return M
