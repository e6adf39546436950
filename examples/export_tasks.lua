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
-- CURSOR_FILE (default OUT.jsonl.cursor) holds the position, saved after
-- every page once its lines are on disk, together with the size of OUT at
-- that moment (planapi.cursor.export): lines written after the last save
-- (a crash mid-page, a half-written line) are cut off on the next run and
-- written again, never twice. Without a cursor file the export starts over
-- and OUT is replaced; once the export is complete, the cursor says so and
-- another run does nothing (remove it to export again).
--
-- Progress (items, pages, items/s) goes to stderr when stderr is a
-- terminal; otherwise only errors do.
--
-- Exit codes: 0 done, 1 an error, 2 usage, 4 the daily quota is spent (run
-- again after it resets), 130 interrupted (Ctrl-C; run again to resume).
-- Ctrl-C from the first moment: until catch_interrupt it is the
-- interpreter's "interrupted!" error, which here means nothing was done yet.
local loaded, planapi = pcall(require, "planapi")
if not loaded then
  if tostring(planapi):find("interrupted!", 1, true) then
    io.stderr:write "interrupted: run again to resume\n"
    os.exit(130)
  end
  error(planapi, 0)
end
local core = planapi.core
-- Ctrl-C: abort the request in flight and stop with the last page saved.
core.catch_interrupt()

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

-- Progress only for a person watching (isatty in this process: a `test -t`
-- child would have Ctrl-C ignored while it runs).
local tty = core.isatty(2)

-- The output and its cursor: a resumed run has the output cut back to what
-- the cursor vouches for; a finished one (position false) is left alone.
local ok, ex, err = pcall(planapi.cursor.export,
  { output = out_path, cursor = cursor_path, meta = { fields = fields } })
if not ok then fail(1, tostring(ex)) end
if not ex then fail(1, tostring(err)) end
if ex.position == false then
  print(("the export to %s is complete (remove %s to export again)"):format(out_path, cursor_path))
  os.exit(0)
end
if ex.meta and ex.meta.fields ~= nil and ex.meta.fields ~= fields then
  fail(1, ("%s was started with PLANFIX_FIELDS=%s; resume with the same fields or remove %s")
    :format(out_path, tostring(ex.meta.fields), cursor_path))
end

local rest = planapi.planfix_rest {
  account = account,
  base_url = base_url,
  token = token,
  ca_file = os.getenv "PLANAPI_CA_FILE",
}
-- A new export starts from an explicit first page: its cursor is what lets
-- a position taken inside the first page resume inside it.
local pager = rest:pager("get-task-list", { fields = fields }, { cursor = ex.position or { offset = 0 } })

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
local done, run_err = ex:run(pager, function(task)
  progress(false)
  return encode(task) .. "\n"
end)
progress(true)
rest:close()

if done then
  if tty then
    io.stderr:write(("exported %d tasks to %s\n"):format(pager.items_read, out_path))
  end
  os.exit(0)
end
if run_err.interrupted then
  fail(130, "interrupted: run again to resume")
elseif run_err.kind == "quota" then
  fail(4, tostring(run_err):gsub("\n", " ") .. " (run again after the reset to resume)")
end
fail(1, (tostring(run_err):gsub("\n", " ")))
