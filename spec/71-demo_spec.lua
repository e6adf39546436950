-- make demo's script end to end, twice: the story (a Planfix task change
-- reaching the bridge through the scenario receiver among it), and no
-- duplicates. The demo checks each step against the sandbox and exits
-- non-zero when one did not happen.
-- tools/run-demo runs its own sandbox (build/demo-sandbox), like make demo.
local portable = require "portable"
local function run_demo()
  local p = assert(portable.popen "tools/run-demo 2>&1")
  local out = p:read "a"
  local _, _, code = p:close()
  return out, code
end

describe("make demo", function()
  it("tells the story of a task becoming a job and coming back, twice without duplicates", function()
    for _ = 1, 2 do
      local out, code = run_demo()
      assert.equal(0, code, out)
      local created = tonumber(out:match "the bridge made (%d+) Planado jobs")
      assert.is_true(created >= 3)
      assert.matches("Sync again: 0 created, " .. created .. " already there", out)
      -- A task added after the syncs became a job through the scenario receiver, not a sync.
      local added = out:match "A dispatcher adds task (%d+) in Planfix%. Its scenario request reaches the bridge"
      assert.truthy(added, out)
      assert.matches("then makes Planado job planfix%-" .. added .. ": no sync run", out)
      assert.matches("Planfix task %d+ now says: \"Planado: job %d+ finished%. Resolution: Done%. Pump replaced", out)
      assert.matches("its status is 3 %(Completed%)", out)
    end
  end)
end)
