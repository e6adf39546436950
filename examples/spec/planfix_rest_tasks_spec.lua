-- examples/planfix_rest_tasks.lua, the REST quick start, run in the test's
-- process with testing.run: its environment is the one given, its client
-- answers from a fake, its output is kept. No account, no network.
--
--   busted --lua=lua5.4 examples/spec   (from a checkout, after `make`; see README, "Testing your scripts")
local testing = require "planapi.testing"

local SCRIPT = "examples/planfix_rest_tasks.lua"
local ENV = { PLANFIX_ACCOUNT = "acme", PLANFIX_TOKEN = "example-token" }

-- n tasks as the list answers them.
local function tasks(n)
  local out = {}
  for i = 1, n do out[i] = { id = i, name = "Task " .. i } end
  return out
end

describe("the REST quick start", function()
  it("lists every task, creates one and comments on it", function()
    local fake = testing.fake {
      testing.rest.task_list(tasks(7)),
      testing.rest.created(8),
      testing.rest.created(31),
    }
    local run = testing.run(SCRIPT, { env = ENV, transport = fake })
    assert.equal(0, run.code, run.stderr .. tostring(run.error))
    assert.matches("task 1: Task 1\n", run.stdout)
    assert.matches("7 tasks in all", run.stdout)
    assert.matches("created task 8\ncommented: 31", run.stdout)
    assert.same({ "get-task-list", "post-task", "post-task-add-comment" }, fake:operations())
    assert.same({ name = "Call the client back", description = "Created by planapi" }, fake.requests[2].params)
    assert.same({ id = 8, description = "Called, no answer yet" }, fake.requests[3].params)
    -- 1 request a second: the three took two seconds of the fake's time, none of ours
    assert.is_true(fake:now() - fake.start >= 2)
  end)

  it("pages through a long list, 100 tasks a request", function()
    local fake = testing.fake {
      testing.rest.task_list(tasks(100)), testing.rest.task_list(tasks(30)),
      testing.rest.created(200), testing.rest.created(1),
    }
    local run = testing.run(SCRIPT, { env = ENV, transport = fake })
    assert.equal(0, run.code)
    assert.matches("130 tasks in all", run.stdout)
    assert.equal(100, fake.requests[2].params.offset)
  end)

  it("says what failed and exits 1 when the create is refused", function()
    local fake = testing.fake {
      testing.rest.task_list {},
      testing.rest.error { code = 41, message = "Status not find by id 2" },
    }
    local run = testing.run(SCRIPT, { env = ENV, transport = fake })
    assert.equal(1, run.code)
    assert.matches("Status not find by id 2", run.stderr)
    assert.not_matches("example%-token", run.stderr)
  end)

  it("asks for the token when there is none, and sends nothing", function()
    local fake = testing.fake {}
    local run = testing.run(SCRIPT, { env = {}, transport = fake })
    assert.equal(2, run.code)
    assert.matches("set PLANFIX_TOKEN", run.stderr)
    assert.equal(0, #fake.requests)
  end)
end)
