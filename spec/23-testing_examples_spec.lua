-- The examples' own user-style specs (examples/spec/, on planapi.testing:
-- no sandbox, no network), run as a user runs them: busted on that folder,
-- under the interpreter running this spec. They must all pass; a failing
-- spec in the same run is seen as failing (the reader can fail).
local planapi = require "planapi"
local portable = require "portable"

-- busted on paths under this interpreter: its JSON report and exit code.
local function busted(paths)
  local run = ({ luajit = "--lua=luajit --run=luajit", ["lua5.3"] = "--lua=lua5.3 --run=lua53" })[portable.lua]
    or "--lua=lua5.4"
  local out, code = portable.run(("busted %s -o json %s 2>/dev/null"):format(run, paths))
  local report = planapi.json.decode(out:match "{.*}" or "")
  assert(type(report) == "table", "busted gave no JSON report: " .. out:sub(1, 400))
  return report, code
end

describe("examples/spec", function()
  it("passes, every test of it, without the sandbox", function()
    local report, code = busted "examples/spec"
    local failed = {}
    for _, kind in ipairs { "failures", "errors" } do
      for _, t in ipairs(report[kind] or {}) do failed[#failed + 1] = t.name .. ": " .. tostring(t.message) end
    end
    assert.same({}, failed)
    assert.equal(0, code)
    -- each example's tests ran: the bridge, the webhook receiver and the
    -- OpenResty gateway's logic (modules), the quick start, the export and
    -- the embedded plugin and the LÖVE board's worker (scripts, through testing.run)
    local ran = {}
    for _, t in ipairs(report.successes) do
      for _, name in ipairs { "the Planfix to Planado bridge", "the REST quick start", "the resumable export",
        "the Planado webhook receiver", "the embedded plugin", "the OpenResty gateway",
        "the LÖVE job board's worker" } do
        if t.name:sub(1, #name + 1) == name .. " " then ran[name] = (ran[name] or 0) + 1 end
      end
    end
    assert.is_true((ran["the Planfix to Planado bridge"] or 0) >= 6)
    assert.is_true((ran["the REST quick start"] or 0) >= 4)
    assert.is_true((ran["the resumable export"] or 0) >= 3)
    assert.is_true((ran["the Planado webhook receiver"] or 0) >= 4)
    assert.is_true((ran["the embedded plugin"] or 0) >= 3)
    assert.is_true((ran["the OpenResty gateway"] or 0) >= 5)
    assert.is_true((ran["the LÖVE job board's worker"] or 0) >= 4)
  end)

  it("a failing test in the same run is reported failed (the oracle can fail)", function()
    local dir = portable.tmpdir()
    local f = assert(io.open(dir .. "/broken_spec.lua", "wb"))
    f:write [[
local testing = require "planapi.testing"
local planapi = require "planapi"
describe("broken", function()
  it("expects a request that never comes", function()
    local fake = testing.fake { testing.rest.task_list {} }
    planapi.planfix_rest { account = "acme", token = "t", transport = fake }
    fake:assert_done()
  end)
end)
]]
    f:close()
    local report, code = busted(dir .. "/broken_spec.lua")
    portable.rmtree(dir)
    assert.not_equal(0, code)
    assert.equal(1, #report.errors + #report.failures)
    local t = report.errors[1] or report.failures[1]
    assert.matches("1 scripted answers were not asked for", tostring(t.message))
  end)
end)
