-- planapi.testing: what a user's tests of a planapi script need, with no
-- network and no account (README, "Testing your scripts").
--
--   local testing = require "planapi.testing"
--   local fake = testing.fake { testing.rest.task_list { { id = 1, name = "Fix the tap" } } }
--   local rest = planapi.planfix_rest { account = "acme", token = "t", transport = fake }
--   for task in rest.tasks:each() do ... end
--   assert.equal("get-task-list", fake.requests[1].operation)
--
-- fake: the transport (testing/fake.lua); rest, xml, planado, failure,
-- answer: the answers it gives (testing/answers.lua); planado_delivery,
-- planfix_request: the events a receiver gets (testing/payloads.lua); run:
-- a command-line script in this process, its clients on fakes (testing/script.lua);
-- record, replay: cassettes (testing/cassette.lua), loaded on first use.
-- A shared package: it knows the APIs' formats as data, and requires no
-- API package (spec/06).
local Fake = require "planapi.testing.fake"
local answers = require "planapi.testing.answers"
local payloads = require "planapi.testing.payloads"
local script = require "planapi.testing.script"

local testing = { fake = Fake.new, run = script.run }
for _, name in ipairs { "rest", "xml", "planado", "failure", "answer", "json" } do testing[name] = answers[name] end
for _, name in ipairs { "planado_delivery", "planfix_request" } do testing[name] = payloads[name] end

-- The cassettes load when first asked for.
local LAZY = { record = true, replay = true, cassette = true }

return setmetatable(testing, {
  __index = function(_, key)
    if not LAZY[key] then return nil end
    local cassette = require "planapi.testing.cassette"
    if key == "cassette" then return cassette end
    return cassette[key]
  end,
})
