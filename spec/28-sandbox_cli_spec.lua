-- `planapi sandbox start|status|stop` from a `luarocks make --tree` install,
-- run as a user runs it (spec/helpers/user_rock.lua): its exports are the
-- variables the CLI reads, the installed library reaches all three APIs with
-- them (the sandbox's own request log says so), and it stops. Also: the
-- errors it gives, its default folder, and `make env` for a checkout.
local portable = require "portable"
local core = require "planapi.core"
local rock = require "user_rock"

local q = rock.shell_quote

-- The sandbox's request log through its control API (the oracle: what the
-- server received, not what the client thinks it sent).
local function sandbox_log(control_url)
  local c = core.client { base_url = control_url, allow_http = true, timeout = 30 }
  local res = assert(c:perform(c:prepare { method = "GET", path = "log" }))
  c:close()
  assert.equal(200, res.status)
  return core.json_decode(res.body)
end

-- Whether a process runs: it exists and is no zombie (nginx's master,
-- a daemon, is reaped by init whenever init gets to it).
local function running(pid)
  local stat = portable.read_file("/proc/" .. tonumber(pid) .. "/stat")
  return stat ~= nil and stat:match "^.*%) (%a)" ~= "Z"
end

describe("planapi sandbox, installed by luarocks make --tree", function()
  local home, env, tree, started
  setup(function()
    home = portable.tmpdir()
    tree = rock.tree()
    env = rock.env(home)
  end)
  teardown(function()
    if started then rock.run(env, home, "planapi sandbox stop --dir " .. q(home .. "/run")) end
    portable.rmtree(home)
  end)

  it("starts from the tree, serves all three APIs to the installed library, says its status and stops", function()
    local out, err, code = rock.run(env, home, "planapi sandbox start --dir " .. q(home .. "/run"))
    started = true
    assert.equal(0, code, err)
    local vars = rock.exports(out)
    -- The installed sandbox runs: its nginx reads the tree's copy of the emulator.
    local conf = assert(portable.read_file(home .. "/run/nginx.conf"))
    assert.truthy(conf:find(tree .. "/share/lua/5.4/planapi/sandbox/lua/?.lua", 1, true))
    assert.equal(home .. "/run", vars.PLANAPI_SANDBOX_DIR)
    assert.equal(home .. "/run/ca.pem", vars.PLANAPI_CA_FILE)
    for _, name in ipairs { "PLANFIX_REST_URL", "PLANFIX_TOKEN", "PLANFIX_ACCOUNT", "PLANFIX_API_KEY",
        "PLANFIX_XML_TOKEN", "PLANFIX_XML_URL", "PLANADO_URL", "PLANADO_API_KEY" } do
      assert.truthy(vars[name] and vars[name] ~= "", name)
    end

    -- What a user's shell does next: eval, then any planapi command or script.
    local eval = ("eval \"$(cat %s)\" && "):format(q(home .. "/exports.sh"))
    portable.write_file(home .. "/exports.sh", out)
    local check, cerr, ccode = rock.run(env, home, eval .. "planapi config check")
    assert.equal(0, ccode, cerr)
    assert.same({ "planfix-rest   ok", "planfix-xml    ok", "planado        ok" }, portable.lines(check))
    -- A script on the installed library, its modules and core from the tree.
    portable.write_file(home .. "/script.lua", [[
      local planapi = require "planapi"
      local ca = os.getenv "PLANAPI_CA_FILE"
      local rest = planapi.planfix_rest { base_url = os.getenv "PLANFIX_REST_URL",
        token = os.getenv "PLANFIX_TOKEN", ca_file = ca, rate = false }
      local xml = planapi.planfix_xml { url = os.getenv "PLANFIX_XML_URL", account = os.getenv "PLANFIX_ACCOUNT",
        api_key = os.getenv "PLANFIX_API_KEY", token = os.getenv "PLANFIX_XML_TOKEN", ca_file = ca, rate = false }
      local pd = planapi.planado { url = os.getenv "PLANADO_URL", api_key = os.getenv "PLANADO_API_KEY",
        ca_file = ca, rate = false }
      print(package.searchpath("planapi", package.path), package.searchpath("planapi.core", package.cpath))
      print(assert(rest:call("get-task-by-id", { id = 1, fields = "id,name" })).task.name)
      print(assert(xml:call("task.get", { task = { id = 1 } })).task.title)
      print(assert(pd.jobs:get "job-ext-1").external_id)
    ]])
    local before = #sandbox_log(vars.PLANAPI_SANDBOX_CONTROL_URL)
    local said, serr, scode = rock.run(env, home, eval .. "lua5.4 script.lua")
    assert.equal(0, scode, serr)
    local lines = portable.lines(said)
    assert.equal(tree .. "/share/lua/5.4/planapi/init.lua\t" .. tree .. "/lib/lua/5.4/planapi/core.so", lines[1])
    assert.equal(lines[2], lines[3]) -- one store behind REST and XML
    assert.equal("job-ext-1", lines[4])
    local log = sandbox_log(vars.PLANAPI_SANDBOX_CONTROL_URL)
    local kinds = {}
    for i = before + 1, #log do kinds[#kinds + 1] = log[i].kind .. " " .. log[i].status end
    assert.same({ "rest 200", "xml 200", "planado 200" }, kinds)

    local status, sterr, stcode = rock.run(env, home, "planapi sandbox status --dir " .. q(home .. "/run"))
    assert.equal(0, stcode, sterr)
    assert.same(vars, rock.exports(status))
    local _, perr, pcode = rock.run(env, home, "planapi sandbox stop --dir " .. q(home .. "/run"))
    assert.equal(0, pcode, perr)
    started = false
    assert.is_false(running(vars.PLANAPI_SANDBOX_PID))
    local none, nerr, ncode = rock.run(env, home, "planapi sandbox status --dir " .. q(home .. "/run"))
    assert.equal(3, ncode)
    assert.equal("", none)
    assert.matches("not running", nerr)
  end)

  it("says what to install when nginx is missing", function()
    local _, err, code = rock.run(rock.env(home, { PLANAPI_SANDBOX_NGINX = home .. "/no-nginx" }), home,
      "planapi sandbox start --dir " .. q(home .. "/broken"))
    assert.equal(1, code)
    assert.matches("nginx not found", err, 1, true)
    assert.matches("libnginx-mod-http-lua", err, 1, true)
  end)

  it("keeps its folder in the user's runtime dir, private to the user", function()
    assert(core.mkdir(home .. "/xdg"))
    local xdg = rock.env(home, { XDG_RUNTIME_DIR = home .. "/xdg" })
    local _, _, code = rock.run(xdg, home, "planapi sandbox status")
    assert.equal(3, code)
    local mode = portable.run("stat -c %a " .. q(home .. "/xdg/planapi-sandbox"))
    assert.equal("700", mode:match "%d+")
    -- A folder others can open would let them plant the CA the tests trust.
    assert(core.mkdir(home .. "/open"))
    assert(portable.execute("chmod 755 " .. q(home .. "/open")))
    local _, err, ocode = rock.run(env, home, "planapi sandbox start --dir " .. q(home .. "/open"))
    assert.equal(2, ocode)
    assert.matches("open to other users", err, 1, true)
  end)
end)

describe("planapi sandbox from a checkout", function()
  it("finds the checkout's sandbox/ (bin/planapi, no install)", function()
    local dir = portable.tmpdir()
    local out, code = portable.run(("env -i PATH=\"$PATH\" HOME=%s bin/planapi sandbox status --dir %s")
      :format(q(dir), q(dir .. "/run")))
    portable.rmtree(dir)
    assert.equal(3, code, out) -- not running; without its files it would be 1, saying they are not installed
    assert.matches("sandbox: not running", out, 1, true)
  end)
end)

describe("make env, for scripts run from a checkout", function()
  it("prints the paths that find the checkout's modules and core for this interpreter", function()
    local lua, so = portable.lua, "/" .. portable.cpath:gsub("^%./", ""):gsub("%?", "planapi/core")
    local dir = portable.tmpdir()
    local probe = ("cd %s && %s -e 'print(package.searchpath(\"planapi\", package.path), "
      .. "package.searchpath(\"planapi.core\", package.cpath), require(\"planapi\").version)'"):format(q(dir), lua)
    local _, bare = portable.run("env -i PATH=\"$PATH\" sh -c " .. q(probe))
    assert.is_not.equal(0, bare) -- without it, `module 'planapi' not found`
    local root = assert(os.getenv "PWD")
    local out, code = portable.run("env -i PATH=\"$PATH\" sh -c "
      .. q("eval \"$(make -s --no-print-directory -C " .. q(root) .. " env)\" && " .. probe))
    portable.rmtree(dir)
    assert.equal(0, code, out)
    assert.equal(root .. "/lua/planapi/init.lua\t" .. root .. so .. "\t" .. require("planapi").version,
      out:match "[^\n]+")
  end)
end)
