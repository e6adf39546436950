-- Files written durably, or an error (issue 13 §4): the cursor, the
-- webhook file store and an export's output, written by a child process
-- whose writes really fail, because the kernel refuses them: RLIMIT_FSIZE
-- (`ulimit -f`, SIGXFSZ ignored so write(2) returns EFBIG) is a full disk
-- for that process. Each case checks that the failure is reported as
-- nil, err and that nothing saved before is lost.
local portable = require "portable"
local planapi = require "planapi"
local sandbox = require "sandbox"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The interpreter of this run, with the core it built.
local LUA, CPATH = portable.lua, portable.cpath

-- Run a Lua chunk in a child whose files can grow to `blocks` 512-byte
-- blocks (nil: no limit): its stdout and exit code.
local function child(code, blocks, env)
  local script = os.tmpname()
  portable.write_file(script, ("package.path = 'lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;' .. package.path\n"
    .. "package.cpath = %q .. ';' .. package.cpath\n%s"):format(CPATH, code))
  local vars = {}
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. shell_quote(v) end
  local limit = blocks and ("trap '' XFSZ; ulimit -f %d; "):format(blocks) or ""
  -- Through a pipe: the limit would refuse the writes to a file of stdout too.
  local p = assert(portable.popen(("%s exec env %s %s %s 2>&1"):format(limit, table.concat(vars, " "), LUA, script)))
  local out = p:read "*a"
  local _, _, status = p:close()
  os.remove(script)
  return out, status
end

-- A temporary file is named after the file it replaces plus a suffix.
local function no_leftovers(dir)
  local names = {}
  for _, name in ipairs(planapi.core.list_dir(dir) or {}) do names[name] = true end
  for name in pairs(names) do
    local base = name:match "^(.+)%.[^.]+$"
    assert.is_nil(base and names[base], "a temporary file was left behind: " .. name)
  end
end

describe("durable files", function()
  local dir
  before_each(function() dir = portable.tmpdir() end)
  after_each(function() portable.rmtree(dir) end)

  describe("cursor.save", function()
    local save_child = [[
      local cursor = require "planapi.cursor"
      local ok, err = cursor.save(os.getenv "CURSOR", { offset = 300, note = ("x"):rep(tonumber(os.getenv "PAD")) })
      io.write(tostring(ok), "|", tostring(err))
    ]]

    for _, case in ipairs {
      { "every write fails (a full disk)", 0, 10 },
      { "a write is cut short", 1, 4000 },
    } do
      it("returns nil, err when " .. case[1] .. ", and the previous cursor stays", function()
        local path = dir .. "/tasks.cursor"
        assert(planapi.cursor.save(path, { offset = 200 }))
        local before = portable.read_file(path)
        local out = child(save_child, case[2], { CURSOR = path, PAD = case[3] })
        assert.matches("^nil|io error: cannot save the cursor: cannot write [^\n]*tasks%.cursor: "
          .. "File too large$", out)
        assert.equal(before, portable.read_file(path))
        assert.same({ offset = 200 }, planapi.cursor.load(path))
        no_leftovers(dir)
      end)
    end

    it("saves with no limit (the same child), and keeps meta beside the position", function()
      local path = dir .. "/tasks.cursor"
      local out = child(save_child, nil, { CURSOR = path, PAD = 4000 })
      assert.equal("true|nil", out)
      local pos = planapi.cursor.load(path)
      assert.equal(300, pos.offset)
      assert(planapi.cursor.save(path, false, { output_bytes = 42, fields = "id" }))
      local p, meta = planapi.cursor.load(path)
      assert.is_false(p)
      assert.same({ output_bytes = 42, fields = "id" }, meta)
      no_leftovers(dir)
    end)

    it("keeps a whole cursor while two processes save it at once (each writes a file of its own)", function()
      local path = dir .. "/tasks.cursor"
      assert(planapi.cursor.save(path, { offset = 0 }))
      local writer = [[
        local cursor = require "planapi.cursor"
        local n = tonumber(os.getenv "WHO")
        for i = 1, 150 do
          assert(cursor.save(os.getenv "CURSOR", { offset = n * 1000 + i, note = ("w"):rep(20000 + n * 7 + i) }))
        end
        io.write "done"
      ]]
      local p1 = assert(portable.popen(("env CURSOR=%s WHO=1 %s -e %s 2>&1"):format(shell_quote(path), LUA,
        shell_quote(("package.path='lua/?.lua;lua/?/init.lua;'..package.path package.cpath=%q..';'..package.cpath ")
          :format(CPATH) .. writer))))
      local out2 = child(writer, nil, { CURSOR = path, WHO = 2 })
      -- While one writer may still run, every read sees one writer's whole cursor.
      for _ = 1, 50 do
        local pos = planapi.cursor.load(path)
        assert.equal(#pos.note, 20000 + math.floor(pos.offset / 1000) * 7 + pos.offset % 1000)
      end
      local out1 = p1:read "*a"
      p1:close()
      assert.equal("done", out1)
      assert.equal("done", out2)
      local pos = planapi.cursor.load(path)
      assert.equal(150, pos.offset % 1000)
      assert.equal(#pos.note, 20000 + math.floor(pos.offset / 1000) * 7 + 150)
      no_leftovers(dir)
    end)

    it("reports a folder it cannot write to as an error, not a raise", function()
      local ok, err = planapi.cursor.save(dir .. "/missing/tasks.cursor", { offset = 1 })
      assert.is_nil(ok)
      assert.equal("io", err.kind)
      assert.matches("cannot save the cursor: cannot write .*missing/tasks%.cursor: No such file", err.message)
    end)
  end)

  describe("cursor.load", function()
    -- Only a missing file means "start over": a cursor that is there but
    -- cannot be read must stop the export, or a resume would redo (and an
    -- export would replace) what was already written.
    it("raises an io error for a cursor it cannot read, never taking it for no cursor", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(planapi.core.mkdir(dir))
      local file = dir .. "/plain"
      portable.write_file(file, "x")
      for _, path in ipairs { dir, file .. "/tasks.cursor" } do
        local ok, err = pcall(planapi.cursor.load, path)
        assert.is_false(ok, path)
        assert.is_true(planapi.is_error(err), tostring(err))
        assert.equal("io", err.kind)
        assert.matches("cannot read the cursor " .. path:gsub("%p", "%%%0"), err.message)
      end
      assert.is_nil(planapi.cursor.load(dir .. "/missing.cursor"))
      local ex, err = planapi.cursor.export { output = file, cursor = dir }
      assert.is_nil(ex)
      assert.equal("io", err.kind)
      assert.equal("x", portable.read_file(file), "the output was left as it was")
      os.remove(file)
      os.remove(dir)
    end)
  end)

  describe("webhook_store.file", function()
    it("refuses a claim it cannot record, keeps the old version, and claims it later", function()
      local store = planapi.webhook_store.file { dir = dir }
      assert.equal("new", (store:claim("ev-1", "job:1", 5)))
      local out = child(([[
        local store = require("planapi.webhook_store").file { dir = %q }
        local status, err = store:claim("ev-2", "job:1", 6)
        io.write(tostring(status), "|", tostring(err), "\n")
        local hook = require("planapi").planado_webhook { secret = "s", store = store }
        local event, herr = hook:handle({ ["X-Planado-Secret"] = "s" },
          '{"event_uuid":"ev-3","event_type":"job.updated","job":{"uuid":"1","version":7}}')
        io.write(tostring(event), "|", tostring(herr and herr.answer), "\n")
      ]]):format(dir), 0)
      local claim_line, hook_line = out:match "^([^\n]*)\n([^\n]*)\n$"
      assert.matches("^nil|io error: cannot write .*File too large$", claim_line)
      assert.equal("nil|503", hook_line) -- Planado delivers it again
      -- Nothing half-written: the old version holds, and the refused event
      -- is not marked as seen, so its next delivery is handled.
      assert.equal("5", portable.read_file(dir .. "/versions/job%3A1"))
      assert.same({ "new", 5 }, { store:claim("ev-2", "job:1", 6) })
      no_leftovers(dir .. "/versions")
    end)

    it("reports a release it cannot write", function()
      local store = planapi.webhook_store.file { dir = dir }
      assert.equal("new", (store:claim("ev-1", "job:1", 5)))
      assert.equal("new", (store:claim("ev-2", "job:1", 6)))
      local out = child(([[
        local store = require("planapi.webhook_store").file { dir = %q }
        io.write(tostring(select(2, store:release("ev-2", "job:1", 5))))
      ]]):format(dir), 0)
      assert.matches("^io error: cannot write .*File too large$", out)
      assert.equal("6", portable.read_file(dir .. "/versions/job%3A1"))
    end)
  end)

  describe("cursor.export", function()
    before_each(function() sandbox.reset() end)

    -- One run of a library export of the sandbox's tasks into out.jsonl.
    local function export_child(blocks)
      return child(([[
        local planapi = require "planapi"
        local sandbox = require "sandbox"
        local ex = assert(planapi.cursor.export { output = %q, cursor = %q })
        local pager = sandbox.rest():pager("get-task-list", { fields = "id", pageSize = 20 }, { cursor = ex.position })
        local ok, err = ex:run(pager)
        io.write(tostring(ok), "|", tostring(err))
      ]]):format(dir .. "/out.jsonl", dir .. "/out.cursor"), blocks,
        { PLANAPI_SANDBOX_DIR = os.getenv "PLANAPI_SANDBOX_DIR" or "sandbox/.run" })
    end

    local function ids(path)
      local out = {}
      for line in io.lines(path) do out[#out + 1] = assert(planapi.json.decode(line)).id end
      return out
    end

    -- One file for both (`--resume x --output x`): each save would replace
    -- the exported lines with the cursor.
    it("refuses one file as both the cursor and the output, and leaves it as it was", function()
      local path = dir .. "/both"
      portable.write_file(path, "{\"id\":1}\n")
      local ok, err = pcall(planapi.cursor.export, { output = path, cursor = path })
      assert.is_false(ok)
      assert.equal("config", err.kind)
      assert.matches("two files", err.message)
      assert.equal("{\"id\":1}\n", portable.read_file(path))
    end)

    it("stops with an error when the output cannot grow, and the resume has every task once, in order", function()
      sandbox.data { tasks = 250 }
      -- 2 blocks (1,024 bytes) hold about 100 of the 2,400 bytes of lines.
      local out = export_child(2)
      assert.matches("^nil|io error: cannot write the output: File too large$", out)
      local _, meta = planapi.cursor.load(dir .. "/out.cursor")
      assert.is_true(meta.output_bytes <= 1024)
      assert.is_true(meta.output_bytes > 0)
      out = export_child(nil)
      assert.equal("true|nil", out)
      local got = ids(dir .. "/out.jsonl")
      assert.equal(250, #got)
      for i = 1, 250 do assert.equal(i, got[i]) end
      assert.is_false(planapi.cursor.load(dir .. "/out.cursor"))
      -- A finished export is left as it is.
      local before = portable.read_file(dir .. "/out.jsonl")
      assert.equal("true|nil", export_child(nil))
      assert.equal(before, portable.read_file(dir .. "/out.jsonl"))
    end)

    it("cuts what follows the saved size (a half line, lines written again) before appending", function()
      sandbox.data { tasks = 50 }
      local path, cpath = dir .. "/out.jsonl", dir .. "/out.cursor"
      local ex = assert(planapi.cursor.export { output = path, cursor = cpath, meta = { fields = "id" } })
      assert(ex:line { id = 1 })
      assert(ex:save { offset = 0, skip = 1 })
      assert(ex:write '{"id":2}\n{"id"') -- a crash here: a line and a half after the cursor
      assert(ex:close())
      ex = assert(planapi.cursor.export { output = path, cursor = cpath })
      assert.same({ offset = 0, skip = 1 }, ex.position)
      assert.equal("id", ex.meta.fields)
      assert.equal('{"id":1}\n', portable.read_file(path))
      assert(ex:line { id = 2 })
      assert(ex:close())
      assert.equal('{"id":1}\n{"id":2}\n', portable.read_file(path))
    end)

    it("reports a write to a full device, and the size it vouches for stays honest", function()
      local out = assert(planapi.core.open_output "/dev/full")
      local ok, err = out:write "a line\n"
      assert.is_nil(ok)
      assert.matches("No space left on device", err.message)
      assert.equal(0, out:size())
      assert(out:close())
      assert(out:close()) -- twice is harmless
      assert.has_error(function() out:write "x" end)
    end)

    it("refuses an output shorter than its cursor records, and a cursor saved without an output", function()
      local path, cpath = dir .. "/out.jsonl", dir .. "/out.cursor"
      assert(planapi.cursor.save(cpath, { offset = 100 }, { output_bytes = 999 }))
      portable.write_file(path, "short\n")
      local ex, err = planapi.cursor.export { output = path, cursor = cpath }
      assert.is_nil(ex)
      assert.matches("has 6 bytes, fewer than the 999 its cursor records", err.message)
      assert.equal("short\n", portable.read_file(path)) -- untouched
      assert(planapi.cursor.save(cpath, { offset = 100 }))
      ex, err = planapi.cursor.export { output = path, cursor = cpath }
      assert.is_nil(ex)
      assert.matches("records no output size", err.message)
      assert.has_error(function() planapi.cursor.export { output = path, curser = cpath } end)
    end)
  end)
end)
