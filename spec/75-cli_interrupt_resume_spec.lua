-- The command line stopped the hard way (issue 13 §5, §6): a 250-task
-- export killed (SIGKILL, SIGINT) at random moments and resumed as README
-- shows it, with --output, until it completes, has every task of the
-- sandbox exactly once and in order; Ctrl-C aborts a request the sandbox
-- holds (its `slow` fault) at once, saves the cursor, says how to resume
-- and exits 130.
local portable = require "portable"
local core = require "planapi.core"
local sandbox = require "sandbox"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function env_vars()
  local vars = {
    PLANFIX_REST_URL = sandbox.https_url "rest/", PLANFIX_TOKEN = sandbox.TOKEN,
    PLANAPI_CA_FILE = sandbox.env().ca_file, HOME = "/nonexistent",
  }
  local parts = {}
  for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  table.sort(parts)
  return "env -i PATH=\"$PATH\" " .. table.concat(parts, " ")
end

-- Start the CLI in the background: { pid =, pipe =, err_file = }.
local function start(args)
  local err_file = os.tmpname()
  -- The subshell's stderr is /dev/null: the shell's own "Killed" notice.
  local cmd = ("(sh -c %s; exit $?) 2>/dev/null"):format(shell_quote(("echo $$; exec %s bin/planapi %s 2>%s")
    :format(env_vars(), args, shell_quote(err_file))))
  local p = assert(portable.popen(cmd))
  local pid = assert(tonumber(p:read "*l"), "no pid")
  return { pid = pid, pipe = p, err_file = err_file }
end

-- Wait for it to end: exit code (128 + signal when killed) and stderr.
local function finish(run)
  run.pipe:read "*a"
  local _, _, code = run.pipe:close()
  local err = portable.read_file(run.err_file) or ""
  os.remove(run.err_file)
  return code, err
end

local function kill(run, signal)
  os.execute(("kill -s %s %d 2>/dev/null"):format(signal, run.pid))
end

local function ids_of(path)
  local ids = {}
  local text = portable.read_file(path) or ""
  for line in text:gmatch "([^\n]*)\n" do
    local t = core.json_decode(line)
    assert(type(t) == "table", "not a JSON object line: " .. line)
    ids[#ids + 1] = t.id
  end
  assert(text == "" or text:sub(-1) == "\n", "a half-written last line was left: " .. text:sub(-20))
  return ids
end

-- The sandbox's own list: `data { tasks = N }` makes ids 1..N, in this order.
local function assert_exactly(n, ids, context)
  for i = 1, math.max(n, #ids) do
    assert(ids[i] == i, ("%s: line %d holds id %s, the sandbox's list has %s"):format(context, i,
      tostring(ids[i]), i <= n and tostring(i) or "nothing"))
  end
end

describe("planapi --all --resume --output, stopped the hard way", function()
  local dir, out, cursor
  before_each(function()
    sandbox.reset()
    dir = portable.tmpdir()
    out, cursor = dir .. "/tasks.jsonl", dir .. "/tasks.cursor"
  end)
  after_each(function() portable.rmtree(dir) end)

  local export = "planfix-rest get-task-list fields=id,name pageSize:=25 --all --resume %s --output %s"

  for _, signal in ipairs { "KILL", "INT" } do
    it("killed with SIG" .. signal .. " at random moments and resumed, has every task once, in order", function()
      sandbox.data { tasks = 250 }
      local seed = os.time() + (signal == "KILL" and 0 or 1)
      math.randomseed(seed)
      local args = export:format(shell_quote(cursor), shell_quote(out))
      local kills, code, err = 0, nil, nil
      for _ = 1, 40 do
        local run = start(args)
        if kills < 8 then
          core.sleep(0.05 + math.random() * 1.5) -- pages come at 1/s: any moment of a page's life
          kill(run, signal)
        end
        code, err = finish(run)
        if code == 0 then break end
        kills = kills + 1
        if signal == "KILL" then
          assert.equal(137, code, err)
        else
          assert.equal(130, code, err) -- never an "internal error: interrupted!"
          assert.matches("^planapi: interrupted[^\n]*; "
            .. "run the same command again to resume\n$", err)
        end
      end
      assert.equal(0, code, ("seed %d: %s"):format(seed, tostring(err)))
      assert.is_true(kills > 0, "seed " .. seed .. ": no run was stopped")
      assert_exactly(250, ids_of(out), ("seed %d, %d kills"):format(seed, kills))
      assert.is_false(require("planapi.cursor").load(cursor))
    end)
  end

  it("on Ctrl-C aborts the request the sandbox holds, saves the cursor, says how to resume and exits 130", function()
    sandbox.data { tasks = 250 }
    -- The first page comes at once, the second is held for 30 s.
    sandbox.fault { mode = "slow", delay = 0.01, path = "/task/list" }
    sandbox.fault { mode = "slow", delay = 30, path = "/task/list" }
    local run = start(export:format(shell_quote(cursor), shell_quote(out)))
    local deadline = core.monotime() + 10
    while #(portable.read_file(out) or "") == 0 or not portable.read_file(cursor) do
      assert(core.monotime() < deadline, "the first page never came")
      core.sleep(0.02)
    end
    core.sleep(1.5) -- the second request leaves 1 s after the first (1 request/s) and waits on the sandbox
    local t0 = core.monotime()
    kill(run, "INT")
    local code, err = finish(run)
    local took = core.monotime() - t0
    assert.equal(130, code, err)
    assert.is_true(took < 2, ("exited %.2f s after Ctrl-C, the request was held 30 s"):format(took))
    assert.equal(("planapi: interrupted: the position is saved in %s; run the same command again to resume\n")
      :format(cursor), err)
    assert_exactly(25, ids_of(out), "after Ctrl-C")
    assert.same({ offset = 25 }, (require("planapi.cursor").load(cursor)))

    run = start(export:format(shell_quote(cursor), shell_quote(out)))
    code, err = finish(run)
    assert.equal(0, code, err)
    assert_exactly(250, ids_of(out), "resumed")
  end)

  -- Ctrl-C at any moment of the start, where the command sets itself up
  -- (a child process spawned then, by system(3), would have the parent
  -- ignore SIGINT while it runs): every time it exits 130 at once, never
  -- goes on with the export as if nothing was pressed.
  it("never loses a Ctrl-C pressed while it starts", function()
    sandbox.data { tasks = 250 }
    local seed = os.time()
    math.randomseed(seed)
    local args = export:format(shell_quote(cursor), shell_quote(out))
    for i = 1, 40 do
      os.remove(cursor) -- a fresh export each time: a finished one would end at once
      os.remove(out)
      local run = start(args)
      core.sleep(math.random() * 0.5)
      kill(run, "INT")
      local deadline = core.monotime() + 3
      while portable.execute(("kill -0 %d 2>/dev/null"):format(run.pid)) and core.monotime() < deadline do
        core.sleep(0.02)
      end
      local lost = core.monotime() >= deadline
      if lost then kill(run, "KILL") end
      local code, err = finish(run)
      assert.is_false(lost, ("seed %d, run %d: still exporting 3 s after Ctrl-C"):format(seed, i))
      assert.equal(130, code, err) -- by its message, or killed by SIGINT before Lua runs (128 + 2)
    end
  end)

  it("on Ctrl-C before the first page, leaves a cursor that resumes from the start", function()
    sandbox.data { tasks = 30 }
    sandbox.fault { mode = "slow", delay = 30, path = "/task/list" }
    local run = start(export:format(shell_quote(cursor), shell_quote(out)))
    core.sleep(1)
    kill(run, "INT")
    local code, err = finish(run)
    assert.equal(130, code, err)
    assert.matches("run the same command again to resume", err, 1, true)
    code, err = finish(start(export:format(shell_quote(cursor), shell_quote(out))))
    assert.equal(0, code, err)
    assert_exactly(30, ids_of(out), "resumed")
  end)

  it("cuts a half-written last line and lines written after the cursor, then appends", function()
    sandbox.data { tasks = 60 }
    local code, err = finish(start(("planfix-rest get-task-list fields=id pageSize:=25 --all --max-items 30 "
      .. "--resume %s --output %s"):format(shell_quote(cursor), shell_quote(out))))
    assert.equal(0, code, err)
    assert_exactly(30, ids_of(out), "first run")
    -- A crash after the cursor: a whole line and half of the next.
    local f = assert(io.open(out, "ab"))
    f:write '{"id":31}\n{"id":3'
    f:close()
    code, err = finish(start(export:format(shell_quote(cursor), shell_quote(out))))
    assert.equal(0, code, err)
    assert_exactly(60, ids_of(out), "resumed")
  end)

  it("refuses to resume an export into a file on stdout, where a redirection would lose it", function()
    sandbox.data { tasks = 30 }
    local code, err = finish(start(("planfix-rest get-task-list fields=id --all --max-items 10 --resume %s --output %s")
      :format(shell_quote(cursor), shell_quote(out))))
    assert.equal(0, code, err)
    code, err = finish(start(("planfix-rest get-task-list fields=id --all --resume %s"):format(shell_quote(cursor))))
    assert.equal(2, code)
    assert.matches("resume it with %-%-output", err)
  end)

  it("exits 6 with a one-line io error when the output cannot be written, and the cursor is not moved", function()
    sandbox.data { tasks = 30 }
    local missing = out .. ".d/missing/tasks.jsonl"
    local code, err = finish(start(("planfix-rest get-task-list fields=id --all --resume %s --output %s")
      :format(shell_quote(cursor), shell_quote(missing))))
    assert.equal(6, code, err)
    assert.matches("io error: cannot open [^\n]*missing/tasks%.jsonl: No such file or directory\n$", err)
    assert.is_nil(portable.read_file(cursor))
  end)
end)
