-- examples/export_tasks.lua, the resumable export, run in the test's process
-- with testing.run against a fake: a run stopped by the daily quota resumes
-- where it stopped, and the file ends up with every task exactly once.
--
--   busted --lua=lua5.4 examples/spec   (from a checkout, after `make`; see README, "Testing your scripts")
local planapi = require "planapi"
local testing = require "planapi.testing"

local SCRIPT = "examples/export_tasks.lua"
local ENV = { PLANFIX_ACCOUNT = "acme", PLANFIX_TOKEN = "example-token" }

local function tasks(from, to)
  local out = {}
  for i = from, to do out[#out + 1] = { id = i, name = "Task " .. i, status = { id = 1, name = "New" } } end
  return out
end

local function lines(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = planapi.json.decode(line) end
  return out
end

describe("the resumable export", function()
  local out_path
  before_each(function() out_path = os.tmpname() end)
  after_each(function()
    os.remove(out_path)
    os.remove(out_path .. ".cursor")
  end)

  it("stops at the quota with the pages so far saved, resumes there, and has each task once", function()
    local first = testing.fake {
      testing.rest.task_list(tasks(1, 100)),
      testing.rest.error { status = 403, code = 22, message = "Daily request limit exceeded" },
    }
    local run = testing.run(SCRIPT, { args = { out_path }, env = ENV, transport = first })
    assert.equal(4, run.code, run.stderr .. tostring(run.error))
    assert.matches("run again after the reset", run.stderr)
    assert.equal(100, #lines(out_path))

    local second = testing.fake { testing.rest.task_list(tasks(101, 200)), testing.rest.task_list(tasks(201, 250)) }
    run = testing.run(SCRIPT, { args = { out_path }, env = ENV, transport = second })
    assert.equal(0, run.code, run.stderr .. tostring(run.error))
    assert.equal(100, second.requests[1].params.offset)
    assert.equal("id,name,status", second.requests[1].params.fields)
    local exported = lines(out_path)
    assert.equal(250, #exported)
    for i, task in ipairs(exported) do assert.equal(i, task.id) end

    -- complete: another run sends nothing and says so
    local third = testing.fake {}
    run = testing.run(SCRIPT, { args = { out_path }, env = ENV, transport = third })
    assert.equal(0, run.code)
    assert.matches("is complete", run.stdout)
    assert.equal(0, #third.requests)
  end)

  it("retries a failed page in the fake's time and exports the fields asked for", function()
    local fake = testing.fake {
      testing.rest.error { status = 503, message = "Service Unavailable" },
      testing.rest.task_list { { id = 1, name = "One" } },
    }
    local env = { PLANFIX_ACCOUNT = "acme", PLANFIX_TOKEN = "example-token", PLANFIX_FIELDS = "id,name" }
    local run = testing.run(SCRIPT, { args = { out_path }, env = env, transport = fake })
    assert.equal(0, run.code, run.stderr .. tostring(run.error))
    assert.equal(2, #fake.requests)
    assert.is_true(fake.slept > 0)
    assert.same({ { id = 1, name = "One" } }, lines(out_path))
  end)

  it("wants an output file", function()
    local run = testing.run(SCRIPT, { args = {}, env = ENV, transport = testing.fake {} })
    assert.equal(2, run.code)
    assert.matches("usage:", run.stderr)
  end)
end)
