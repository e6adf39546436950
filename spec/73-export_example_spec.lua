-- examples/export_tasks.lua, run as a user would run it against the
-- sandbox: a full export to JSON Lines, a run stopped by the daily quota
-- and resumed with every task exactly once, and progress only on a terminal.
local portable = require "portable"
local planapi = require "planapi"
local sandbox = require "sandbox"

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local read = portable.read_file

local function env_prefix(env)
  local vars = { LUA_PATH = "lua/?.lua;lua/?/init.lua;;", LUA_CPATH = "./?.so;;" }
  for k, v in pairs(env or {}) do vars[k] = v end
  local prefix = {}
  for k, v in pairs(vars) do prefix[#prefix + 1] = k .. "=" .. shell_quote(v) end
  return "env " .. table.concat(prefix, " ")
end

local function sandbox_env(extra)
  local env = {
    PLANFIX_REST_URL = sandbox.https_url "rest/", PLANFIX_TOKEN = sandbox.TOKEN,
    PLANAPI_CA_FILE = sandbox.env().ca_file,
  }
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

-- One run of the example: stdout, stderr (apart: stderr is a file, not a
-- terminal) and the exit code.
local function export(args, env)
  local errfile = os.tmpname()
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
  local p = assert(portable.popen(("%s lua5.4 examples/export_tasks.lua %s 2>%s")
    :format(env_prefix(env or sandbox_env()), table.concat(quoted, " "), shell_quote(errfile))))
  local out = p:read "a"
  local ok, _, code = p:close()
  local err = read(errfile)
  os.remove(errfile)
  return out, err, ok and 0 or code
end

-- The ids in the JSON Lines file, in order; every line must be an object.
local function ids_of(path)
  local ids = {}
  for line in assert(io.open(path, "rb")):lines() do
    local t = assert(planapi.json.decode(line))
    assert.is_table(t, line)
    ids[#ids + 1] = t.id
  end
  return ids
end

local function assert_each_once(ids, n)
  local seen = {}
  for _, id in ipairs(ids) do
    assert.is_nil(seen[id], "repeated task " .. tostring(id))
    seen[id] = true
  end
  for i = 1, n do assert.is_true(seen[i], "lost task " .. i) end
  assert.equal(n, #ids)
end

describe("examples/export_tasks.lua", function()
  local out_path, cursor_path
  before_each(function()
    sandbox.reset()
    out_path = os.tmpname()
    cursor_path = out_path .. ".cursor"
  end)
  after_each(function()
    os.remove(out_path)
    os.remove(cursor_path)
    os.remove(out_path .. ".tmp")
  end)

  it("exports every task to JSON Lines, silently when stderr is not a terminal", function()
    sandbox.data { tasks = 250 }
    local out, err, code = export { out_path }
    assert.equal(0, code, out .. err)
    assert.equal("", err) -- no progress, no carriage returns
    assert.equal("", out)
    local ids = ids_of(out_path)
    assert_each_once(ids, 250)
    assert.same({ 1, 2, 3 }, { ids[1], ids[2], ids[3] }) -- in the API's order
    local first = planapi.json.decode(read(out_path):match "^[^\n]*")
    assert.same({ id = 1, name = "Task 1", status = { id = 1, name = "New" } }, first)
    assert.is_false(planapi.cursor.load(cursor_path)) -- complete

    -- A complete export is not repeated: no request, the file is unchanged.
    local before = read(out_path)
    sandbox.clear_log()
    out, err, code = export { out_path }
    assert.equal(0, code, out .. err)
    assert.matches("complete", out)
    assert.equal(0, #sandbox.log_of "rest")
    assert.equal(before, read(out_path))
  end)

  it("stops on the daily quota with exit code 4 and resumes with every task exactly once", function()
    sandbox.data { tasks = 250 }
    sandbox.config { quota = { limit = 20000, remaining = 2 } } -- two pages today
    local out, err, code = export { out_path, cursor_path }
    assert.equal(4, code, out .. err)
    assert.matches("^[^\n]*quota error[^\n]*\n$", err) -- one line
    assert.equal(200, #ids_of(out_path))
    assert.equal(3, #sandbox.log_of "rest") -- two pages and the refused third

    sandbox.config { quota = { limit = 20000, remaining = 20000 } } -- the next day
    out, err, code = export { out_path, cursor_path }
    assert.equal(0, code, out .. err)
    assert.equal("", err)
    assert_each_once(ids_of(out_path), 250)
    assert.is_false(planapi.cursor.load(cursor_path))
  end)

  it("drops a line written after the last saved cursor (a crash between the two)", function()
    sandbox.data { tasks = 250 }
    sandbox.config { quota = { limit = 20000, remaining = 2 } }
    local _, _, code = export { out_path }
    assert.equal(4, code)
    -- The process died right after writing task 201, before its cursor.
    local f = assert(io.open(out_path, "ab"))
    f:write('{"id":201,"name":"Task 201"}\n')
    f:close()
    sandbox.config { quota = false }
    local out, err
    out, err, code = export { out_path }
    assert.equal(0, code, out .. err)
    assert_each_once(ids_of(out_path), 250)
  end)

  it("cuts the lines a crash left after the last saved page, and resumes with every task once", function()
    sandbox.data { tasks = 250 }
    -- LUA_INIT runs before the example: the process dies as it writes its
    -- 150th line, in the middle of the second page (saves come per page).
    local crash = sandbox_env { PLANFIX_FIELDS = "id,name", LUA_INIT = [[
      local cursor = require "planapi.cursor"
      local export = cursor.export
      cursor.export = function(...)
        local ex, err = export(...)
        if ex then
          local write, n = ex.write, 0
          ex.write = function(self, text)
            n = n + 1
            if n == 150 then os.exit(9) end
            return write(self, text)
          end
        end
        return ex, err
      end]] }
    local _, _, code = export({ out_path }, crash)
    assert.equal(9, code)
    assert.equal(149, #ids_of(out_path))
    local position, meta = planapi.cursor.load(cursor_path)
    assert.same({ offset = 100 }, position)
    assert.equal("id,name", meta.fields)
    local first_page = read(out_path):match(("[^\n]*\n"):rep(100))
    assert.equal(#first_page, meta.output_bytes) -- the cursor vouches for the saved page only

    local out, err
    out, err, code = export({ out_path }, sandbox_env { PLANFIX_FIELDS = "id,name" })
    assert.equal(0, code, out .. err)
    local ids = ids_of(out_path)
    assert_each_once(ids, 250)
    for i = 1, 250 do assert.equal(i, ids[i]) end

    -- A resumed export must keep its fields.
    assert(planapi.cursor.save(cursor_path, { offset = 100 }, { output_bytes = #read(out_path), fields = "id,name" }))
    _, err, code = export({ out_path }, sandbox_env { PLANFIX_FIELDS = "id" })
    assert.equal(1, code)
    assert.matches("PLANFIX_FIELDS=id,name", err, 1, true)
  end)

  it("stops on Ctrl-C with exit code 130, and resumes", function()
    sandbox.data { tasks = 150 }
    sandbox.fault { mode = "slow", delay = 30, path = "/task/list" }
    local errfile = os.tmpname()
    local p = assert(portable.popen(("(sh -c %s; exit $?) 2>/dev/null"):format(shell_quote(
      ("echo $$; exec %s lua5.4 examples/export_tasks.lua %s 2>%s"):format(env_prefix(sandbox_env()),
        shell_quote(out_path), shell_quote(errfile))))))
    local pid = assert(tonumber(p:read "*l"))
    require("planapi.core").sleep(1)
    local t0 = require("planapi.core").monotime()
    os.execute("kill -s INT " .. pid)
    p:read "*a"
    local _, _, status = p:close()
    assert.equal(130, status)
    assert.is_true(require("planapi.core").monotime() - t0 < 2) -- the held request was aborted
    assert.equal("interrupted: run again to resume\n", read(errfile))
    os.remove(errfile)
    local out, err, code = export { out_path }
    assert.equal(0, code, out .. err)
    assert_each_once(ids_of(out_path), 150)
  end)

  -- Ctrl-C at any moment of the start: a child the script runs then (a
  -- `test -t` through os.execute) has system(3) ignore SIGINT meanwhile, and
  -- the export would go on as if nothing was pressed.
  it("never loses a Ctrl-C pressed while it starts", function()
    local core = require "planapi.core"
    sandbox.data { tasks = 1000 } -- 10 pages at 1 request/s: a lost Ctrl-C is still exporting 3 s later
    local seed = os.time()
    math.randomseed(seed)
    for i = 1, 30 do
      os.remove(out_path)
      os.remove(out_path .. ".cursor")
      local p = assert(portable.popen(("(sh -c %s; exit $?) 2>/dev/null"):format(shell_quote(
        ("echo $$; exec %s lua5.4 examples/export_tasks.lua %s 2>/dev/null"):format(env_prefix(sandbox_env()),
          shell_quote(out_path))))))
      local pid = assert(tonumber(p:read "*l"))
      core.sleep(math.random() * 0.4)
      os.execute("kill -s INT " .. pid)
      local deadline = core.monotime() + 3
      while portable.execute(("kill -0 %d 2>/dev/null"):format(pid)) and core.monotime() < deadline do
        core.sleep(0.02)
      end
      local lost = core.monotime() >= deadline
      if lost then os.execute("kill -s KILL " .. pid) end
      p:read "*a"
      local _, _, status = p:close()
      assert.is_false(lost, ("seed %d, run %d: still exporting 3 s after Ctrl-C"):format(seed, i))
      assert.equal(130, status) -- by its message, or killed by SIGINT before Lua runs (128 + 2)
    end
  end)

  it("shows progress when stderr is a terminal", function()
    if not portable.has_pty() then
      pending "no pseudo-terminal on this host (script(1) or /dev/pts missing)"
      return
    end
    sandbox.data { tasks = 150 }
    -- script(1) gives the example a pseudo-terminal for stdout and stderr.
    local cmd = ("%s lua5.4 examples/export_tasks.lua %s"):format(env_prefix(sandbox_env()), shell_quote(out_path))
    local p = assert(portable.popen(("script -qec %s /dev/null < /dev/null"):format(shell_quote(cmd))))
    local text = p:read "a"
    assert.is_true(p:close())
    assert.matches("\r150 items, 2 pages, [%d.]+ items/s", text)
    assert.matches("exported 150 tasks", text, 1, true)
    assert_each_once(ids_of(out_path), 150)
  end)

  it("takes credentials from the environment only", function()
    local out, err, code = export({ out_path }, { PLANFIX_REST_URL = sandbox.https_url "rest/" })
    assert.equal(2, code, out .. err)
    assert.matches("PLANFIX_TOKEN", err, 1, true)
    _, err, code = export({})
    assert.equal(2, code)
    assert.matches("usage", err, 1, true)
  end)
end)
