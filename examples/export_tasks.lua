-- A full export of Planfix tasks to a JSON Lines file (one task a line),
-- that resumes where it stopped: after Ctrl-C, a crash or the daily quota,
-- run the same command again and it continues with the first task not yet
-- written, so every task is in the file exactly once.
--
--   PLANFIX_REST_URL=https://acme.planfix.com/rest/ PLANFIX_TOKEN=... \
--     [PLANAPI_CA_FILE=...] [PLANFIX_FIELDS=id,name,status] \
--     lua5.4 examples/export_tasks.lua OUT.jsonl [CURSOR_FILE]
--
-- PLANFIX_ACCOUNT=acme may replace PLANFIX_REST_URL. Credentials come only
-- from the environment, never from the command line (where `ps` shows them).
-- PLANFIX_FIELDS: the task fields to export (default id,name,status); a
-- resumed export must use the fields it started with.
--
-- CURSOR_FILE (default OUT.jsonl.cursor) holds the position: it is saved
-- after every line written, and holds the size of OUT at that moment, so a
-- line written just before a crash (and before its cursor) is cut off on
-- the next run instead of written twice. Without a cursor file the export
-- starts over and OUT is replaced; once the export is complete, the cursor
-- says so and another run does nothing (remove it to export again).
--
-- Progress (items, pages, items/s) goes to stderr when stderr is a
-- terminal; otherwise only errors do.
--
-- Exit codes: 0 done, 1 an error, 2 usage, 4 the daily quota is spent (run
-- again after it resets), 130 interrupted.
local planapi = require "planapi"
local core = planapi.core

local function fail(code, msg)
  io.stderr:write(msg, "\n")
  os.exit(code)
end

local out_path, cursor_path = arg[1], arg[2]
if not out_path or out_path == "" or arg[3] then
  fail(2, "usage: PLANFIX_REST_URL=... PLANFIX_TOKEN=... lua5.4 examples/export_tasks.lua OUT.jsonl [CURSOR_FILE]")
end
cursor_path = cursor_path or out_path .. ".cursor"

local token = os.getenv "PLANFIX_TOKEN"
local base_url, account = os.getenv "PLANFIX_REST_URL", os.getenv "PLANFIX_ACCOUNT"
if not token or not (base_url or account) then
  fail(2, "set PLANFIX_TOKEN and PLANFIX_REST_URL (or PLANFIX_ACCOUNT)")
end
local fields = os.getenv "PLANFIX_FIELDS"
if not fields or fields == "" then fields = "id,name,status" end

-- Progress only for a person watching: `test -t 2` runs with our stderr.
local tty = os.execute "test -t 2" == true

--- The saved position: nil (start over), false (complete) or the pager's
-- cursor with two fields of ours: out_bytes and fields.
local ok, saved = pcall(planapi.cursor.load, cursor_path)
if not ok then fail(1, tostring(saved)) end
if saved == false then
  print(("the export to %s is complete (remove %s to export again)"):format(out_path, cursor_path))
  os.exit(0)
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek "end"
  f:close()
  return size
end

-- Keep the first n bytes of path (plain Lua cannot truncate in place):
-- only needed when a crash fell between a line and its cursor.
local function cut(path, n)
  local src = assert(io.open(path, "rb"))
  local tmp = path .. ".tmp"
  local dst = assert(io.open(tmp, "wb"))
  local left = n
  while left > 0 do
    local chunk = src:read(math.min(left, 1 << 20))
    if not chunk then break end
    assert(dst:write(chunk))
    left = left - #chunk
  end
  src:close()
  assert(dst:close())
  assert(os.rename(tmp, path))
end

local out, bytes
if saved == nil then
  out = io.open(out_path, "wb") -- a new export
  bytes = 0
  -- Start from an explicit first page: its cursor is what lets a position
  -- taken inside the first page resume inside it.
  saved = { offset = 0 }
else
  if saved.fields ~= nil and saved.fields ~= fields then
    fail(1, ("%s was started with PLANFIX_FIELDS=%s; resume with the same fields or remove %s")
      :format(out_path, tostring(saved.fields), cursor_path))
  end
  bytes = saved.out_bytes
  local size = file_size(out_path)
  if bytes then
    if not size or size < bytes then
      fail(1, ("%s is shorter than %s records (%d bytes): remove the cursor to start over")
        :format(out_path, cursor_path, bytes))
    elseif size > bytes then
      cut(out_path, bytes) -- lines written after the last saved cursor come again
    end
  else
    bytes = size or 0
  end
  out = io.open(out_path, "ab")
end
if not out then fail(1, "cannot write " .. out_path) end
local resume = {}
for k, v in pairs(saved) do
  if k ~= "out_bytes" and k ~= "fields" then resume[k] = v end
end

local rest = planapi.planfix_rest {
  account = account,
  base_url = base_url,
  token = token,
  ca_file = os.getenv "PLANAPI_CA_FILE",
}
local pager = rest:pager("get-task-list", { fields = fields }, { cursor = resume })

local function save_position()
  local pos = pager:position()
  if pos ~= false then
    local c = { out_bytes = bytes, fields = fields }
    for k, v in pairs(pos) do
      if k ~= "out_bytes" and k ~= "fields" then c[k] = v end
    end
    pos = c
  end
  return planapi.cursor.save(cursor_path, pos)
end

local started, last_shown = core.monotime(), -1
local function progress(final)
  if not tty then return end
  local now = core.monotime()
  if not final and now - last_shown < 0.25 then return end
  last_shown = now
  local elapsed = now - started
  local rate = elapsed > 0 and pager.items_read / elapsed or 0
  io.stderr:write(("\r%d items, %d pages, %.1f items/s "):format(pager.items_read, pager.pages_read, rate),
    final and "\n" or "")
end

local encode = planapi.json.encode
local run_ok, err = pcall(function()
  for task in pager:each() do
    local line = encode(task) .. "\n"
    assert(out:write(line))
    assert(out:flush()) -- the line is in the file before the cursor moves past it
    bytes = bytes + #line
    assert(save_position())
    progress(false)
  end
end)
-- Every written line already has its cursor; after an error the pager may
-- have handed out an item that was not written, so nothing more is saved.
progress(true)
out:close()

if run_ok then
  assert(save_position()) -- false: complete
  rest:close()
  if tty then
    io.stderr:write(("exported %d tasks to %s\n"):format(pager.items_read, out_path))
  end
  os.exit(0)
end

rest:close()
if planapi.is_error(err) and err.kind == "quota" then
  fail(4, tostring(err):gsub("\n", " ") .. " (run again after the reset to resume)")
elseif type(err) == "string" and err:find "interrupted!" then
  fail(130, "interrupted: run again to resume")
end
fail(1, (tostring(err):gsub("\n", " ")))
