-- examples/embed/plugin.lua, the plugin the C host runs, tested as a script
-- with testing.run: what it does with the tasks (count them, name the first
-- few) against a fake. What only the host can show, that the core was
-- preloaded and no core.so read from disk, is spec/72's, which runs the
-- real host (build/embed/planapi-host) against the sandbox.
--
--   busted --lua=lua5.4 examples/spec   (from a checkout, after `make`; see README, "Testing your scripts")
local testing = require "planapi.testing"

local PLUGIN = "examples/embed/plugin.lua"
local ENV = { PLANFIX_REST_URL = "https://planfix.test/rest/", PLANFIX_TOKEN = "example-token" }

-- A page of tasks named "Job <id>", ids from first to last.
local function page(first, last)
  local list = {}
  for id = first, last do list[#list + 1] = { id = id, name = "Job " .. id } end
  return testing.rest.task_list(list)
end

describe("the embedded plugin", function()
  it("counts every task across the pages and names the first ones", function()
    local fake = testing.fake { page(1, 100), page(101, 142) }
    local run = testing.run(PLUGIN, { args = { "2" }, env = ENV, transport = fake })
    assert.equal(0, run.code, run.stderr .. tostring(run.error))
    assert.matches("tasks: 142\n  1%. Job 1\n  2%. Job 2\n$", run.stdout)
    assert.same({ "get-task-list", "get-task-list" }, fake:operations())
    assert.equal("id,name", fake.requests[1].params.fields)
    assert.equal(100, fake.requests[2].params.offset)
    assert.equal("https://planfix.test/rest/task/list", fake.requests[1].url)
  end)

  it("raises the error of a failed page for the host to print", function()
    local fake = testing.fake { testing.rest.error { status = 401, code = 1, message = "Unauthorized" } }
    local run = testing.run(PLUGIN, { env = ENV, transport = fake })
    assert.equal(1, run.code)
    assert.matches("Unauthorized", run.error)
    assert.is_nil(run.error:find(ENV.PLANFIX_TOKEN, 1, true))
  end)

  it("wants its URL besides the token, and sends nothing without it", function()
    local fake = testing.fake {}
    local run = testing.run(PLUGIN, { env = { PLANFIX_TOKEN = ENV.PLANFIX_TOKEN }, transport = fake })
    assert.same({ 1, 0 }, { run.code, #fake.requests })
    assert.matches("set PLANFIX_REST_URL and PLANFIX_TOKEN", run.error)
  end)
end)
