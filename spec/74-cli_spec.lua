-- The planapi command line against the sandbox: each API, --all with
-- resume, the output modes, the progress bar on a terminal (a real
-- pseudo-terminal through `script`) and not in a pipe, exit codes, secrets.
local portable = require "portable"
local core = require "planapi.core"
local sandbox = require "sandbox"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local env_vars = sandbox.cli_env

-- Run the CLI in a pipe: stdout, stderr, exit code.
local function cli(args, extra_env)
  local err_file = os.tmpname()
  local p = assert(portable.popen(("%s bin/planapi %s 2>%s"):format(env_vars(extra_env), args, err_file)))
  local out = p:read "a"
  local _, _, code = p:close()
  local f = io.open(err_file)
  local err = f:read "a"
  f:close()
  os.remove(err_file)
  return out, err, code
end

-- Run the CLI on a pseudo-terminal (util-linux `script`): all it showed.
local function cli_on_terminal(args)
  local cmd = ("%s bin/planapi %s"):format(env_vars(), args)
  local p = assert(portable.popen("script -qec " .. shell_quote(cmd) .. " /dev/null"))
  local out = p:read "a"
  local _, _, code = p:close()
  return out, code
end

local function lines(s)
  local out = {}
  for l in s:gmatch "[^\n]+" do out[#out + 1] = l end
  return out
end

describe("planapi command line", function()
  before_each(function() sandbox.reset() end)

  it("calls any REST operation and prints compact JSON in a pipe", function()
    local out, err, code = cli "planfix-rest get-task-by-id id=1 fields=id,name"
    assert.equal(0, code, err)
    assert.equal(1, #lines(out))
    local doc = core.json_decode(out)
    assert.equal(1, doc.task.id)
    assert.equal("", err)
  end)

  it("calls any XML method with dotted parameters", function()
    local out, err, code = cli "planfix-xml task.get task.id=6"
    assert.equal(0, code, err)
    assert.matches("Ромашка", out)
    assert.equal("6", sandbox.xml_log()[1].xml.task.id)
  end)

  it("reaches Planado resources and anything else through call", function()
    local out, err, code = cli "planado jobs get job-ext-1"
    assert.equal(0, code, err)
    assert.equal("job-ext-1", core.json_decode(out).external_id)
    out, err, code = cli "planado call GET job_types"
    assert.equal(0, code, err)
    assert.is_table(core.json_decode(out).job_types)
    out, err, code = cli "planado jobs update job-ext-1 description=Updated scheduled_at:=null"
    assert.equal(0, code, err)
    assert.equal('{"description":"Updated","scheduled_at":null}', sandbox.log_of("planado")[3].body)
  end)

  it("takes a JSON body from a file", function()
    local path = os.tmpname()
    local f = io.open(path, "w")
    f:write '{"name":"From a file","description":"x"}'
    f:close()
    local out, err, code = cli("planfix-rest post-task @" .. path)
    os.remove(path)
    assert.equal(0, code, err)
    assert.is_number(core.json_decode(out).id)
  end)

  it("--all writes JSON Lines, and --resume continues where it stopped, with no repeats", function()
    sandbox.data { tasks = 250 }
    local cursor = os.tmpname()
    os.remove(cursor)
    local out, err, code = cli("planfix-rest get-task-list fields=id --all --max-items 130 --resume " .. cursor)
    assert.equal(0, code, err)
    local first = lines(out)
    assert.equal(130, #first)
    out, err, code = cli("planfix-rest get-task-list fields=id --all --resume " .. cursor)
    assert.equal(0, code, err)
    local seen = {}
    for _, l in ipairs(first) do seen[core.json_decode(l).id] = true end
    local rest_lines = lines(out)
    assert.equal(120, #rest_lines)
    for _, l in ipairs(rest_lines) do
      local id = core.json_decode(l).id
      assert.is_nil(seen[id], "repeated " .. id)
      seen[id] = true
    end
    for i = 1, 250 do assert.is_true(seen[i], "lost " .. i) end
    os.remove(cursor)
  end)

  it("prints a table with chosen columns", function()
    local out, err, code = cli "planfix-rest get-task-list fields=id,name --all --format table --columns id,name --max-items 3"
    assert.equal(0, code, err)
    local l = lines(out)
    assert.matches("^id%s+name$", l[1])
    assert.matches("^%-+%s+%-+$", l[2])
    assert.equal(5, #l)
  end)

  -- One object is one row, whatever arrays it holds (pairs order must not
  -- pick one of them as the rows); a list in its envelope is its rows.
  it("prints one object as one row and a list's items as rows, for every API", function()
    local job_uuid = "00000001-0000-4000-8000-000000000001"
    local first_task = "^1%s+Prepare quarterly report$"
    local cases = { -- the command, its first row, how many rows
      { "planfix-rest get-task-by-id id=1 fields=id,name --format table --columns id,name", first_task, 1 },
      { "planado jobs get " .. job_uuid .. " --format table --columns uuid,status",
        "^" .. job_uuid:gsub("%-", "%%-") .. "%s+%a+$", 1 },
      { "planfix-xml task.get task.id=3 --format table --columns id,title", "^3%s+Call the supplier$", 1 },
      { "planfix-rest get-task-list fields=id,name pageSize=2 --format table --columns id,name", first_task, 2 },
      { "planfix-xml task.getList pageSize=2 --format table --columns id,title", first_task, 2 },
      { "planado call GET jobs --format table --columns uuid", "^%x+%-", 3 },
    }
    for _, case in ipairs(cases) do
      for _ = 1, 3 do -- pairs order differs from run to run
        local out, err, code = cli(case[1])
        assert.equal(0, code, err)
        local l = lines(out)
        assert.equal(2 + case[3], #l, case[1] .. "\n" .. out)
        assert.matches(case[2], l[3], nil, case[1] .. "\n" .. out)
      end
    end
  end)

  -- A table is written once every row is in (its columns' widths need them
  -- all), while --resume moves the cursor page by page: stopped midway, the
  -- cursor would vouch for rows that were never printed.
  it("refuses --format table with --resume (usage, exit 2), before sending anything", function()
    local cursor = os.tmpname()
    os.remove(cursor)
    for _, extra in ipairs { "", " --output " .. cursor .. ".out" } do
      local out, err, code = cli("planfix-rest get-task-list fields=id --all --format table --resume " .. cursor .. extra)
      assert.equal(2, code, err)
      assert.equal("", out)
      assert.matches("^planapi: [^\n]*%-%-format table[^\n]*%-%-resume", err)
    end
    assert.is_nil(io.open(cursor), "no cursor was written")
    assert.equal(0, #sandbox.log(), "nothing was sent")
  end)

  it("prints pretty JSON and a progress bar on a terminal, nothing extra in a pipe", function()
    if not portable.has_pty() then
      pending "no pseudo-terminal on this host (script(1) or /dev/pts missing)"
      return
    end
    local shown, code = cli_on_terminal "planfix-rest get-task-by-id id=1 fields=id,name"
    assert.equal(0, code)
    assert.matches('\n  "task": {', shown)
    sandbox.data { tasks = 150 }
    shown, code = cli_on_terminal "planfix-xml task.getList --all"
    assert.equal(0, code)
    assert.matches("\r150 items · 2 pages · [%d.]+ pages/s", shown)
    assert.matches("ETA", shown) -- the XML API gives a total
    local _, err = cli "planfix-xml task.getList --all"
    assert.equal("", err)
  end)

  it("exits 2 on a usage error, 3 on an API error, 4 on the quota, 5 on a transport failure", function()
    local _, err, code = cli "planfix-rest get-tsk-by-id"
    assert.equal(2, code)
    assert.matches("get%-task%-by%-id", err)
    _, _, code = cli "planfix-rest ping --colour"
    assert.equal(2, code)
    _, err, code = cli "planfix-rest get-task-by-id id=424242"
    assert.equal(3, code)
    assert.matches("task does not exist", err)
    assert.equal(1, #lines(err))
    sandbox.config { quota = { limit = 20000, remaining = 0 } }
    _, err, code = cli "planfix-rest ping"
    assert.equal(4, code)
    sandbox.config { quota = false }
    _, err, code = cli("planfix-rest ping", { PLANFIX_REST_URL = "https://127.0.0.1:9/rest/" })
    assert.equal(5, code)
    _, err, code = cli("planado jobs list", { PLANADO_API_KEY = false })
    assert.equal(2, code)
    assert.matches("PLANADO_API_KEY", err)
  end)

  -- /dev/full: every write fails with ENOSPC, as stdout redirected to a
  -- full disk would. stdio buffers, so only a checked flush sees it.
  it("a stdout it cannot write is an io error (exit 6), and --resume keeps the cursor where the lines stop", function()
    sandbox.data { tasks = 250 }
    local function run_into_full(args)
      local err_file = os.tmpname()
      local p = assert(portable.popen(("%s bin/planapi %s >/dev/full 2>%s; echo \"rc=$?\"")
        :format(env_vars(), args, err_file)))
      local out = p:read "a"
      p:close()
      local f = io.open(err_file)
      local err = f:read "a"
      f:close()
      os.remove(err_file)
      return tonumber(out:match "rc=(%d+)"), err
    end
    local code, err = run_into_full "planfix-rest get-task-by-id id=1 fields=id,name"
    assert.equal(6, code, err)
    assert.matches("^planapi: io error: ", err)
    assert.equal(1, #lines(err))
    local cursor = os.tmpname()
    os.remove(cursor)
    code, err = run_into_full("planfix-rest get-task-list fields=id --all --resume " .. cursor)
    assert.equal(6, code, err)
    assert.matches("^planapi: io error: ", err)
    -- Nothing reached stdout, so the cursor must not vouch for any item.
    local position = require("planapi").cursor.load(cursor)
    assert.is_true(position == nil or (type(position) == "table" and (position.offset or 0) == 0),
      "the cursor moved past lines that were never written")
    os.remove(cursor)
  end)

  it("a mistyped Planado resource is a usage error naming the resources", function()
    local out, err, code = cli "planado job list"
    assert.equal(2, code, err)
    assert.equal("", out)
    assert.matches("unknown planado resource 'job' %(did you mean jobs%?%)", err)
    assert.matches("clients", err)
  end)

  it("with PLANAPI_LIMITER at a Redis out of reach, exits 5 with the transport error, not an internal one", function()
    local pw = "redis-pw-" .. os.time()
    require("journal").secret(pw)
    for _, cmd in ipairs { "planfix-rest get-task-by-id id=1", "planfix-rest get-task-list --all --max-items 1" } do
      local out, err, code = cli(cmd, { PLANAPI_LIMITER = "redis://:" .. pw .. "@127.0.0.1:1/0" })
      assert.equal(5, code, err)
      assert.matches("^planapi: [^\n]*transport error: rate limiter unavailable", err)
      assert.equal(1, #lines(err))
      assert.is_nil((out .. err):find(pw, 1, true))
    end
  end)

  it("never echoes a credential, and takes none from the command line", function()
    local secret = "s3cret-cli-token-" .. os.time()
    require("journal").secret(secret)
    local out, err, code = cli("planfix-rest ping", { PLANFIX_TOKEN = secret })
    assert.equal(3, code)
    assert.is_nil((out .. err):find(secret, 1, true))
    _, err, code = cli("planfix-rest ping --token " .. secret)
    assert.equal(2, code)
    assert.matches("unknown option %-%-token", err)
  end)

  it("config check verifies each configured account and says what is wrong", function()
    local out, err, code = cli "config check"
    assert.equal(0, code, err)
    assert.matches("planfix%-rest%s+ok", out)
    assert.matches("planfix%-xml%s+ok", out)
    assert.matches("planado%s+ok", out)
    out, err, code = cli("config check", { PLANADO_API_KEY = "wrong-key-123" })
    assert.equal(3, code)
    assert.matches("planado%s+GET job_types: auth error", out)
    assert.is_nil(out:find("wrong-key-123", 1, true))
  end)

  it("reads credentials from a profile file", function()
    local path = os.tmpname()
    local f = io.open(path, "w")
    f:write(core.json_encode { work = { planfix_rest = { base_url = sandbox.https_url "rest/", token = sandbox.TOKEN } } })
    f:close()
    local out, err, code = cli("planfix-rest ping --profile work", { PLANFIX_TOKEN = false, PLANAPI_PROFILES = path })
    assert.equal(0, code, err)
    assert.matches("success", out)
    _, err, code = cli("planfix-rest ping --profile other", { PLANAPI_PROFILES = path })
    assert.equal(2, code)
    -- An API's section that is not an object: a usage error naming it, never an internal one.
    f = io.open(path, "w")
    f:write(core.json_encode { work = { planfix_rest = "a-token-by-mistake" } })
    f:close()
    _, err, code = cli("planfix-rest ping --profile work", { PLANFIX_TOKEN = false, PLANAPI_PROFILES = path })
    assert.equal(2, code, err)
    assert.matches("planfix_rest", err, 1, true)
    assert.is_nil(err:find("a-token-by-mistake", 1, true))
    os.remove(path)
  end)
end)
