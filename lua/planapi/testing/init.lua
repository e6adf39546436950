-- planapi.testing: what a user's tests of a planapi script need, with no
-- network and no account (README, "Testing your scripts").
-- record, replay: cassettes (testing/cassette.lua), loaded on first use.
-- A shared package: it requires no API package (spec/06).
local testing = {}

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
