-- The examples run as a user would run them, against the sandbox.
local sandbox = require "sandbox"
local portable = require "portable"

local function run_example(name, env)
  local vars = { LUA_PATH = "lua/?.lua;lua/?/init.lua;;", LUA_CPATH = "./?.so;;" }
  for k, v in pairs(env) do vars[k] = v end
  local prefix = {}
  for k, v in pairs(vars) do prefix[#prefix + 1] = ("%s='%s'"):format(k, v) end
  -- The example runs under lua5.4 whatever runs the spec; portable.run gives
  -- its exit code under LuaJIT too (whose popen close does not).
  return portable.run(table.concat(prefix, " ") .. " lua5.4 examples/" .. name)
end

describe("examples", function()
  before_each(function() sandbox.reset() end)

  it("planfix_rest_tasks.lua lists, creates and comments", function()
    sandbox.data { tasks = 7 }
    local out, code = run_example("planfix_rest_tasks.lua", {
      PLANFIX_REST_URL = sandbox.https_url "rest/", PLANFIX_TOKEN = sandbox.TOKEN,
      PLANAPI_CA_FILE = sandbox.env().ca_file,
    })
    assert.equal(0, code, out)
    assert.matches("7 tasks in all", out)
    local id = assert(tonumber(out:match "created task (%d+)"))
    assert.matches("commented: %d+", out)
    local created, commented = false, false
    for _, e in ipairs(sandbox.log()) do
      if e.method == "POST" and e.path == "/task/" then created = true end
      if e.method == "POST" and e.path == ("/task/%d/comments/"):format(id) then commented = true end
    end
    assert.is_true(created and commented)
  end)

  it("planfix_rest_tasks.lua says what is missing without a token", function()
    local out, code = run_example("planfix_rest_tasks.lua", {})
    assert.equal(2, code)
    assert.matches("PLANFIX_TOKEN", out)
  end)
end)
