-- core.catch_interrupt in this process (the CLI's use is spec/75): SIGINT
-- sets a flag, and a transfer held by the sandbox (its `slow` fault) is
-- aborted at once, a new one is not sent, a sleep returns; the default
-- comes back with catch_interrupt(false).
local core = require "planapi.core"
local sandbox = require "sandbox"

local function own_pid()
  local f = assert(io.open "/proc/self/stat")
  local pid = tonumber(f:read("*a"):match "^(%d+)")
  f:close()
  return pid
end

-- SIGINT to this process after `delay` seconds, from a background shell.
local function interrupt_in(delay)
  os.execute(("(sleep %.2f; kill -s INT %d) >/dev/null 2>&1 &"):format(delay, own_pid()))
end

describe("core.catch_interrupt", function()
  before_each(function() sandbox.reset() end)
  after_each(function() core.catch_interrupt(false) end)

  it("aborts a request the sandbox holds, at once, and does not retry it", function()
    local rest = sandbox.rest { rate = false } -- no pacing wait: the signal finds the request in flight
    assert(rest:call "ping")
    sandbox.fault { mode = "slow", delay = 20, path = "/ping" }
    core.catch_interrupt()
    interrupt_in(0.5)
    local t0 = core.monotime()
    local result, err = rest:call "ping"
    local took = core.monotime() - t0
    assert.is_nil(result)
    assert.is_true(err.interrupted)
    assert.equal("transport", err.kind)
    assert.is_false(err.retryable)
    assert.is_true(err.request_sent) -- it was on the wire, held by the sandbox
    assert.equal(1, err.attempts)
    assert.matches("interrupted %(Ctrl%-C%)", tostring(err))
    assert.is_true(took < 3, ("took %.2f s: the request was held 20 s"):format(took))
    assert.is_true(core.interrupted())
    rest:close()
  end)

  it("sends nothing and sleeps no more once interrupted", function()
    local rest = sandbox.rest()
    sandbox.clear_log()
    core.catch_interrupt()
    interrupt_in(0)
    local deadline = core.monotime() + 5
    while not core.interrupted() do
      assert(core.monotime() < deadline, "SIGINT never came")
      core.sleep(0.01)
    end
    local t0 = core.monotime()
    core.sleep(10)
    assert.is_true(core.monotime() - t0 < 1)
    local result, err = rest:call "ping"
    assert.is_nil(result)
    assert.is_true(err.interrupted)
    assert.is_false(err.request_sent)

    core.catch_interrupt(false) -- the default again: the flag is cleared
    assert.is_false(core.interrupted())
    assert.equal(0, #sandbox.log_of "rest") -- the sandbox never saw it
    assert(rest:call "ping")
    rest:close()
  end)
end)
