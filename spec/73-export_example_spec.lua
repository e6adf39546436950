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

  it("resumes inside the first page after a crash", function()
    sandbox.data { tasks = 150 }
    -- LUA_INIT runs before the example: the process dies right after its
    -- 5th cursor save, in the middle of the first page.
    local crash = sandbox_env { PLANFIX_FIELDS = "id,name", LUA_INIT = [[
      local cursor = require "planapi.cursor"
      local save, n = cursor.save, 0
      cursor.save = function(...)
        local ok, err = save(...)
        n = n + 1
        if n == 5 then os.exit(9) end
        return ok, err
      end]] }
    local _, _, code = export({ out_path }, crash)
    assert.equal(9, code)
    assert.same({ 1, 2, 3, 4, 5 }, ids_of(out_path))
    assert.same({ offset = 0, skip = 5, out_bytes = #read(out_path), fields = "id,name" },
      planapi.cursor.load(cursor_path))

    local out, err
    out, err, code = export({ out_path }, sandbox_env { PLANFIX_FIELDS = "id,name" })
    assert.equal(0, code, out .. err)
    assert_each_once(ids_of(out_path), 150)

    -- A resumed export must keep its fields.
    assert(planapi.cursor.save(cursor_path, { offset = 100, out_bytes = #read(out_path), fields = "id,name" }))
    out, err, code = export({ out_path }, sandbox_env { PLANFIX_FIELDS = "id" })
    assert.equal(1, code)
    assert.matches("PLANFIX_FIELDS=id,name", err, 1, true)
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
