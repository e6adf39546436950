-- planapi.cli: the `planapi` command (bin/planapi).
--   planapi planfix-rest get-task-by-id id=42 fields=id,name
--   planapi planfix-xml task.get task.id=42
--   planapi planado jobs get <uuid>
--   planapi planfix-rest get-task-list fields=id,name --all --resume tasks.cursor --output tasks.jsonl
--   planapi config check
-- Exit codes: 0 ok, 1 internal error, 2 usage, 3 API error (api, http,
-- decode, auth), 4 quota or rate limit, 5 transport (transport, timeout, tls),
-- 130 interrupted by Ctrl-C (the transfer is aborted at once, the cursor of
-- --resume saved; bin/planapi calls core.catch_interrupt).
local planapi = require("planapi")
local core = require("planapi.core")
local args = require("planapi.cli.args")
local profiles = require("planapi.cli.profiles")
local output = require("planapi.cli.output")
local progress = require("planapi.cli.progress")
local help = require("planapi.cli.help")
local completion = require("planapi.cli.completion")
local custom_fields = require("planapi.planfix_rest.custom_fields")

local M = {}

M.EXIT = { ok = 0, internal = 1, usage = 2, api = 3, quota = 4, transport = 5, io = 6, interrupted = 130 }
local KIND_EXIT = {
  config = 2, api = 3, http = 3, decode = 3, auth = 3, quota = 4, rate_limit = 4,
  transport = 5, timeout = 5, tls = 5, io = 6,
}

M.USAGE = [[
usage: planapi [options] <api> <operation> [key.path=value | key.path:=json | @body.json]...
  planapi planfix-rest <operationId> id=42 fields=id,name     any of the 114 REST operations
  planapi planfix-xml <method> task.id=42                      any documented XML method
  planapi planado <resource> <get|list|create|update|upsert|delete|history> [ref] key=value
  planapi planado call <METHOD> <path> key=value               anything else
  planapi config check                                        one cheap call per configured API
  planapi receive planfix|planado --handler on_event.lua       receive events: claim, answer at once, then
      [--listen 127.0.0.1:8090] [--store memory|file:DIR|redis://HOST:PORT] [--secret-in header:X-Token]
                                                              run the script's function(event) for each
  planapi sandbox start|stop|status [--dir DIR]              a local emulator of the three APIs for
                                                              your tests: eval "$(planapi sandbox start)"
  planapi planfix-rest fields task       the account's custom fields of task, contact, project or user
  planapi planfix-rest ops [filter]      the REST operations;  planapi planfix-rest help <operationId>
  planapi planfix-xml methods [filter]   the XML methods;      planapi planfix-xml help <method>
  planapi planado resources [filter]     Planado's resources;  planapi planado help <resource>
  planapi completion bash|zsh            a shell completion script (see README)
options:
  --all               page through a list, one JSON object per line (JSON Lines)
  --resume FILE       with --all: continue from the cursor saved in FILE (and keep it there)
  --output FILE       write to FILE instead of stdout; with --resume, a resumed export cuts
                      what the cursor did not vouch for and appends: every item once
  --max-items N       with --all: stop after N items
  --format FMT        json (default), jsonl or table
  --columns a,b,c     the columns of --format table
  --profile NAME      credentials from the profile file instead of the environment
  --keep-nulls        print a JSON null member as null (default: left out, as the library does)
  --max-requests N    with receive: stop after N requests
  --dir DIR           with sandbox: its folder (default $XDG_RUNTIME_DIR/planapi-sandbox)
  --dry-run           send no write: print each write's request as JSON instead (reads still run)
  --rate N/PERIOD     pace the calls at N per PERIOD (1/s, 2/1m, 90/60s) instead of the API's limit
  --limiter SCOPE     who shares that pace: local (this command), shm:FILE (every process naming
                      FILE), redis://host:port/db (every host; a password only in PLANAPI_LIMITER)
Credentials come from the environment or a profile file, never from the command line
(see README: PLANFIX_TOKEN, PLANFIX_API_KEY, PLANFIX_XML_TOKEN, PLANADO_API_KEY, ...; for
receive, PLANFIX_EVENTS_SECRET and PLANADO_WEBHOOK_SECRET).
Exit codes: 0 ok, 2 usage, 3 API error, 4 quota or rate limit, 5 transport, 6 a local file
could not be written, 130 Ctrl-C.
]]

local API_NAMES = { ["planfix-rest"] = "planfix_rest", ["planfix-xml"] = "planfix_xml", planado = "planado" }

-- In this process: a child (`test -t`) run by os.execute would have the
-- command ignore Ctrl-C while it runs (system(3) does), losing it.
local function is_tty(fd)
  return core.isatty(fd)
end

-- The client of one API with the user's credentials and the command line's options.
local function client(api, env, options)
  local opts = profiles.options(api, env.getenv, options["--profile"])
  if not opts then
    local names = {}
    for _, name in pairs(profiles.ENV[api]) do names[#names + 1] = name end
    table.sort(names)
    args.usage_error(("%s is not configured: set %s, or use --profile"):format(api:gsub("_", "-"),
      table.concat(names, " / ")))
  end
  if options["--keep-nulls"] then opts.nulls = "keep" end
  if options["--dry-run"] then opts.dry_run = true end
  if options["--rate"] then opts.rate = args.rate(options["--rate"]) end
  if options["--limiter"] then opts.limiter = args.limiter(options["--limiter"]) end
  return planapi[api](opts)
end

-- An operation, method or resource the library does not know: a usage
-- error naming the nearest and the command that lists them, before any
-- credentials are needed.
local function known_name(api, name)
  if api == "planfix_rest" and name == "fields" then return end
  if api == "planfix_rest" then
    if not (name and help.rest_operation(name)) then help.unknown_rest(name) end
  elseif api == "planfix_xml" then
    if not (name and help.xml_method(name)) then help.unknown_xml(name) end
  elseif name ~= "call" and not (name and help.planado_actions(name)) then
    help.unknown_planado(name)
  end
end

-- What the command line says about itself: the text of `ops`, `help`,
-- `methods`, `resources` and `completion`, or nil for any other command.
local EXPLAIN = {
  ["planfix-rest"] = { ops = help.rest_ops, help = help.rest_help },
  ["planfix-xml"] = { methods = help.xml_methods, help = help.xml_help },
  planado = { resources = help.planado_resources, help = help.planado_help },
  completion = { bash = completion.bash, zsh = completion.zsh },
}

local function explain(words)
  local topic = EXPLAIN[words[1]]
  local fn = topic and topic[words[2]]
  if words[1] == "completion" and not fn then args.usage_error "try: planapi completion bash (or zsh)" end
  if not fn then return nil end
  if #words > 3 then args.usage_error(("%s %s takes one word"):format(words[1], words[2])) end
  return fn(words[3])
end

-- `planapi planfix-rest fields task`: the account's custom fields of an entity, with their types
-- and options.
local function field_list(c, entity)
  if entity == nil then args.usage_error "try: planapi planfix-rest fields task (or contact, project, user)" end
  local defs, err = c.fields:list(entity)
  if not defs then return nil, err end
  local out = core.array()
  for i, d in ipairs(defs) do
    out[i] = { id = d.id, name = d.name, type = d.type, type_name = d.type_name, options = d.options,
      directory_id = d.directory_id, readonly = d.readonly or nil }
  end
  return out
end

-- Resolve the command into a runner: { call = fn() -> result, err } or
-- { pager = fn(cursor) -> pager, page_size =, interval = }.
local function command(parsed, env)
  local w = parsed.words
  local api = API_NAMES[w[1]]
  if not api then args.usage_error("unknown API '" .. tostring(w[1]) .. "' (planfix-rest, planfix-xml, planado)") end
  known_name(api, w[2])
  local c = client(api, env, parsed.options)
  local params = parsed.params
  -- For the progress bar's ETA only: a Redis scope out of reach has no
  -- info, and its calls then fail as transport errors of their own.
  local info = c.limiter and c.limiter.info and c.limiter:info()
  local interval = info and info.interval
  if api == "planfix_rest" then
    local op = w[2]
    if op == "fields" then return c, { call = function() return field_list(c, w[3]) end } end
    args.rest_params(op, params) -- text to the spec's types
    return c, {
      -- a get's fields= may name custom fields: "fields=name,Order number"
      call = function() return custom_fields.call(c, op, params) end,
      pager = function(cursor)
        local pager, err = custom_fields.pager(c, op, params, { cursor = cursor })
        if not pager then error(err, 0) end -- the definitions could not be read: exits as that error
        return pager
      end,
      page_size = c.page_size, interval = interval,
    }
  elseif api == "planfix_xml" then
    local method = w[2]
    return c, {
      call = function() return c:call(method, params) end,
      pager = function(cursor) return c:pager(method, params, { cursor = cursor }) end,
      page_size = c.page_size, interval = interval, xml = true,
    }
  end
  -- planado
  local resource, action, ref = w[2], w[3], w[4]
  if resource == "call" then
    local method, path = w[3], w[4]
    if not (method and path) then args.usage_error "planado call needs a METHOD and a path" end
    return c, {
      call = function() return c:call(method:upper(), path, params) end,
      pager = function(cursor) return c:pager(path, params, { cursor = cursor }) end,
      interval = interval,
    }
  end
  local res = c[resource]
  action = action or "list"
  if action == "list" then
    return c, {
      call = function() return res:all(params) end,
      pager = function(cursor) return res:pager(params, { cursor = cursor }) end,
      interval = interval, list = true,
    }
  end
  local fn = res[action]
  if not fn then
    args.usage_error(("Planado %s has no '%s'; its actions: %s (planapi planado help %s)"):format(resource, action,
      table.concat(help.planado_actions(resource), ", "), resource))
  end
  if action == "history" then
    if not ref then args.usage_error "planado jobs history needs a job uuid" end
    return c, {
      pager = function(cursor)
        return c:pager("jobs/" .. core.url_escape(ref) .. "/history", nil,
          { cursor = cursor, list_key = "events", cursor_field = "version" })
      end,
      interval = interval,
    }
  end
  return c, {
    call = function()
      if action == "get" or action == "delete" then return fn(res, ref) end
      if action == "update" or action == "upsert" then return fn(res, ref, params) end
      return fn(res, params)
    end,
  }
end

-- A stdout write or flush that failed (a full disk, a closed pipe) is an
-- io error, exit 6, never a silent success.
local function stdout_done(ok, why)
  if ok then return true end
  return nil, core.error { kind = "io", message = "cannot write the output: " .. tostring(why) }
end

-- Where --all writes. --output FILE: a cursor.export, whose cursor also
-- records the file's size, so a resume cuts what the last save did not
-- vouch for and appends. stdout: the caller's redirection decides (a
-- resume with `>` would empty the file: README shows --output).
local function output_sink(parsed, env)
  local cursor_file, out_path = parsed.options["--resume"], parsed.options["--output"]
  if out_path then
    local ex, err = planapi.cursor.export { output = out_path, cursor = cursor_file }
    if not ex then return nil, err end
    return {
      position = ex.position,
      write = function(_, text) return ex:write(text) end,
      save = function(_, position) return ex:save(position) end,
      close = function() return ex:close() end,
    }
  end
  local position, meta
  if cursor_file then position, meta = planapi.cursor.load(cursor_file) end
  if meta and meta.output_bytes then
    args.usage_error(("%s is the cursor of an export into a file: resume it with --output and that file")
      :format(cursor_file))
  end
  return {
    position = position,
    write = function(_, text) return stdout_done(env.stdout:write(text)) end,
    save = function(_, pos)
      -- The cursor vouches only for lines the flush got out of stdio.
      local ok, err = stdout_done(env.stdout:flush())
      if not ok or not cursor_file then return ok, err end
      return planapi.cursor.save(cursor_file, pos)
    end,
    close = function() return stdout_done(env.stdout:flush()) end,
  }
end

-- The error of a Ctrl-C seen between two requests.
local function interrupted()
  local err = core.error { kind = "transport", message = "interrupted (Ctrl-C)" }
  err.interrupted = true
  return err
end

-- Every item of one page from `from` on, up to max_items in all: the index of
-- the last one written (or, for a table, kept), and the count so far.
local function write_page(sink, items, from, rows, n, max_items)
  local written = from - 1
  for i = from, #items do
    if rows then
      rows[#rows + 1] = items[i]
    else
      local ok, err = sink:write(output.line(items[i]))
      if not ok then return nil, err end
    end
    n, written = n + 1, i
    if max_items and n >= max_items then break end
  end
  return written, n
end

-- Stopped inside this page: resume at its first unwritten item.
local function position_after(pager, items, written)
  if written >= #items then return pager:position() end
  local position = { skip = written }
  for k, v in pairs(pager.page_cursor or {}) do if k ~= "skip" then position[k] = v end end
  return position
end

-- --all: every item of every page as JSON Lines, the cursor kept in --resume
-- and saved after each page, once its lines are written.
local function run_all(runner, parsed, env)
  if not runner.pager then args.usage_error "--all needs a list operation" end
  local sink, serr = output_sink(parsed, env)
  if not sink then return serr end
  local max_items = tonumber(parsed.options["--max-items"])
  local pager = runner.pager(sink.position)
  local bar = progress.new { stream = env.stderr, enabled = env.stderr_tty, clock = core.monotime,
    interval = runner.interval }
  local rows = parsed.options["--format"] == "table" and {} or nil
  local n = 0
  local saved = sink.position
  local function walk()
    while true do
      local items, err = pager:next_page()
      if items == nil then return err end
      if items == false then return nil end
      local skip = pager.skip or 0 -- resuming inside a page: those items were written before
      pager.skip = 0
      local written, werr = write_page(sink, items, skip + 1, rows, n, max_items)
      if not written then return werr end
      n = werr
      saved = position_after(pager, items, written)
      local ok, save_err = sink:save(saved)
      if not ok then return save_err end
      bar:page(#items, items.totalCount or tonumber(items["@totalCount"]), runner.page_size)
      if max_items and n >= max_items then return nil end
      if core.interrupted() then return interrupted() end
    end
  end
  local err = walk()
  if err and err.interrupted and parsed.options["--resume"] then
    -- Ctrl-C before the first page: the cursor file exists all the same,
    -- so the resume the hint names starts cleanly.
    local ok, save_err = sink:save(saved)
    if not ok then err = save_err end
  end
  bar:done()
  if rows and not err then
    local ok, werr = sink:write(output.table(rows, M.columns(parsed)))
    if not ok then err = werr end
  end
  local closed, cerr = sink:close()
  if not err and not closed then err = cerr end
  return err
end

-- One line on stderr for Ctrl-C: how to resume, when there is a way.
local function interrupted_hint(parsed)
  local cursor_file = parsed.options["--resume"]
  if cursor_file then
    return ("interrupted: the position is saved in %s; run the same command again to resume"):format(cursor_file)
  end
  if parsed.options["--all"] then
    return "interrupted: with --resume FILE and --output FILE an export can resume where it stopped"
  end
  return "interrupted"
end

-- The one table an answer wraps: REST's {result, task|tasks}, XML's
-- {@status, task|tasks}, Planado's {jobs}; nil for an object of its own
-- (a Planado job holds many arrays, none of them its rows).
local function wrapped(result)
  local only, keys = nil, 0
  for _, v in pairs(result) do
    keys = keys + 1
    if type(v) == "table" then
      if only ~= nil then return nil end
      only = v
    end
  end
  local envelope = result.result ~= nil or result["@status"] ~= nil or keys == 1
  return envelope and only or nil
end

-- The rows of --format table: a list's items, or one object as one row.
local function table_rows(result)
  if type(result) ~= "table" then return { result } end
  if result[1] ~= nil or planapi.is_array(result) then return result end
  local inner = wrapped(result)
  if inner == nil then return { result } end
  if inner[1] ~= nil or planapi.is_array(inner) then return inner end
  return { inner }
end

-- The text of one call's result in the chosen format.
local function result_text(result, parsed, env)
  local fmt = parsed.options["--format"]
  if fmt == "table" then
    return output.table(table_rows(result), M.columns(parsed))
  elseif fmt == "jsonl" then
    return output.line(result)
  end
  return output.value(result, env.stdout_tty and not parsed.options["--output"])
end

--- Write one call's result to stdout or --output FILE: nil | err.
function M.write_result(result, parsed, env)
  local text = result_text(result, parsed, env)
  local path = parsed.options["--output"]
  if not path then
    local ok, err = stdout_done(env.stdout:write(text))
    if not ok then return err end
    return select(2, stdout_done(env.stdout:flush()))
  end
  local out, err = core.open_output(path)
  if not out then return err end
  local ok, werr = out:write(text)
  local closed, cerr = out:close()
  if not ok then return werr end
  if not closed then return cerr end
  return nil
end

function M.columns(parsed)
  local c = parsed.options["--columns"]
  if not c then return nil end
  local out = {}
  for name in c:gmatch "[^,]+" do out[#out + 1] = name end
  return out
end

local function config_check(parsed, env)
  local failed = 0
  local checks = {
    { "planfix_rest", function(c) return c:call "ping" end },
    { "planfix_xml", function(c) return c:call("user.getList", { pageCurrent = 1, pageSize = 1 }) end },
    { "planado", function(c) return c:call("GET", "job_types") end },
  }
  local any = false
  for _, check in ipairs(checks) do
    local opts = profiles.options(check[1], env.getenv, parsed.options["--profile"])
    local label = check[1]:gsub("_", "-")
    if opts then
      any = true
      local ok, c = pcall(planapi[check[1]], opts)
      local r, err
      if ok then r, err = check[2](c) else err = c end
      if r then
        env.stdout:write(("%-14s ok\n"):format(label))
      else
        failed = failed + 1
        env.stdout:write(("%-14s %s\n"):format(label, tostring(err)))
      end
    else
      env.stdout:write(("%-14s not configured\n"):format(label))
    end
  end
  if not any then args.usage_error "no API is configured (see README: environment variables or --profile)" end
  return failed == 0 and 0 or M.EXIT.api
end

--- main(argv, env) -> exit code. env: { getenv, stdout, stderr, stdout_tty, stderr_tty } (defaults: the process's)
function M.main(argv, env)
  env = env or {}
  env.getenv = env.getenv or os.getenv
  env.stdout = env.stdout or io.stdout
  env.stderr = env.stderr or io.stderr
  if env.stdout_tty == nil then env.stdout_tty = is_tty(1) end
  if env.stderr_tty == nil then env.stderr_tty = is_tty(2) end
  local ok, code = pcall(function()
    local parsed = args.parse(argv)
    if parsed.options["--version"] then
      env.stdout:write("planapi " .. planapi.version .. "\n")
      return 0
    end
    if parsed.options["--help"] or parsed.options["-h"] or #parsed.words == 0 or parsed.words[1] == "help" then
      env.stdout:write(M.USAGE)
      return #parsed.words == 0 and not (parsed.options["--help"] or parsed.options["-h"]) and 2 or 0
    end
    local fmt = parsed.options["--format"]
    if fmt and fmt ~= "json" and fmt ~= "jsonl" and fmt ~= "table" then
      args.usage_error "--format takes json, jsonl or table"
    end
    if fmt == "table" and parsed.options["--resume"] then
      -- The table comes out at the end, the cursor moves page by page:
      -- stopped midway, it would vouch for rows never printed.
      args.usage_error "--format table prints its rows at the end: it cannot go with --resume (use JSON Lines)"
    end
    if parsed.words[1] == "receive" then return require("planapi.cli.receive").run(parsed, env) end
    if parsed.words[1] == "sandbox" then return require("planapi.cli.sandbox").run(parsed, env) end
    local text = explain(parsed.words)
    if text then
      local ok, err = stdout_done(env.stdout:write(text))
      if ok then ok, err = stdout_done(env.stdout:flush()) end
      if not ok then env.stderr:write("planapi: ", tostring(err), "\n") end
      return ok and 0 or M.EXIT.io
    end
    if parsed.words[1] == "config" then
      if parsed.words[2] ~= "check" then args.usage_error "try: planapi config check" end
      return config_check(parsed, env)
    end
    local c, runner = command(parsed, env)
    local err
    if parsed.options["--all"] then
      err = run_all(runner, parsed, env)
    else
      if not runner.call then args.usage_error "this command needs --all" end
      local result, second = runner.call()
      if result == nil then err = second end -- on success the second value is meta, not an error
      if result ~= nil then err = M.write_result(result, parsed, env) end
    end
    if c and c.close then c:close() end
    if err and (err.interrupted or core.interrupted()) then
      env.stderr:write("planapi: ", interrupted_hint(parsed), "\n")
      return M.EXIT.interrupted
    end
    if err then
      env.stderr:write("planapi: ", tostring(err), "\n")
      return KIND_EXIT[err.kind] or M.EXIT.api
    end
    return 0
  end)
  if ok then return code end
  if type(code) == "table" and code.usage then
    env.stderr:write("planapi: ", code.usage, "\n")
    return M.EXIT.usage
  end
  if core.is_error(code) then
    env.stderr:write("planapi: ", tostring(code), "\n")
    return KIND_EXIT[code.kind] or M.EXIT.internal
  end
  env.stderr:write("planapi: internal error: ", tostring(code), "\n")
  return M.EXIT.internal
end

return M
