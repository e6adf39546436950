-- Webhooks end to end: the sandbox's Planado sender delivers job events,
-- with retries, duplicates and a replay, to examples/planado_webhook_receiver.lua
-- running as its own process. Every event is queued once; duplicates and
-- stale versions are answered 2xx and reported; a wrong secret is refused.
local planapi = require "planapi"
local sandbox = require "sandbox"

local SECRET = "whsec-e2e-0123456789"
require("journal").secret(SECRET) -- handed to the receiver process: the secret scan looks for it

local portable = require "portable"
local tmpdir, rmtree = portable.tmpdir, portable.rmtree

-- Start the example receiver on a free port; returns { pid, port, out }.
local function start_receiver(queue, store)
  local cmd = ("exec sh -c 'echo $$; exec env PLANADO_WEBHOOK_SECRET=%s LUA_PATH=\"lua/?.lua;lua/?/init.lua;;\" "
    .. "LUA_CPATH=\"./?.so;;\" lua5.4 examples/planado_webhook_receiver.lua 0 %s %s'"):format(SECRET, queue, store)
  local out = assert(io.popen(cmd))
  local pid = assert(tonumber(out:read "l"))
  local port = assert(tonumber((out:read "l"):match "listening on 127%.0%.0%.1:(%d+)"))
  return { pid = pid, port = port, out = out }
end

local function stop_receiver(r)
  os.execute("kill " .. r.pid .. " 2>/dev/null")
  local text = r.out:read "a"
  r.out:close()
  require("journal").output(text) -- the receiver's log lines, for the secret scan
  return text
end

local function read_queue(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = planapi.json.decode(line) end
  return out
end

describe("Planado webhooks end to end", function()
  local dir, receiver
  before_each(function()
    sandbox.reset()
    dir = tmpdir()
    receiver = start_receiver(dir .. "/queue.jsonl", dir .. "/store")
    sandbox.config { planado = { webhook = { delays = { 0.1, 0.2 }, timeout = 2, max_attempts = 4 } } }
  end)
  after_each(function()
    if receiver then stop_receiver(receiver) end
    rmtree(dir)
  end)

  it("queues every event once, answers duplicates and stale versions, refuses a wrong secret", function()
    local url = ("http://127.0.0.1:%d/hook"):format(receiver.port)
    local good = sandbox.control("POST", "planado/webhooks", { url = url, secret = SECRET }).webhook
    local bad = sandbox.control("POST", "planado/webhooks", { url = url, secret = "not-the-secret",
      event_types = { "job_created" } }).webhook
    sandbox.config { planado = { webhook = { duplicate = true } } }

    local pd = sandbox.planado()
    local uuid = assert(pd.jobs:create { external_id = "pf-1", description = "Fix the pump" })
    assert(pd.jobs:update(uuid, { description = "Fix the pump, bring a filter" }))
    assert(pd.jobs:update(uuid, { scheduled_duration = { minutes = 90 } }))
    sandbox.control("POST", "planado/jobs/" .. uuid .. "/finish", { comment = "Done on site" })
    assert.equal(0, sandbox.control("POST", "planado/webhooks/flush", { timeout = 20 }).pending)

    -- Every event of the good webhook was queued exactly once, in version order.
    local events = sandbox.control("GET", "planado/events?entity_uuid=" .. uuid).events
    assert.equal(4, #events)
    local queued = read_queue(dir .. "/queue.jsonl")
    assert.equal(#events, #queued)
    for i, e in ipairs(events) do
      assert.equal(e.event_uuid, queued[i].event_uuid)
      assert.equal(e.version, queued[i].version)
    end
    assert.same({ "job_created", "job_updated", "job_updated", "job_finished" },
      { queued[1].type, queued[2].type, queued[3].type, queued[4].type })

    -- Each event was delivered twice; both answers were 2xx, so nothing was retried.
    local good_deliveries = sandbox.control("GET", "planado/deliveries?webhook_uuid=" .. good.uuid).deliveries
    assert.equal(8, #good_deliveries)
    for _, d in ipairs(good_deliveries) do assert.equal(200, d.status) end
    -- The wrong secret was refused, and Planado kept retrying it.
    local bad_deliveries = sandbox.control("GET", "planado/deliveries?webhook_uuid=" .. bad.uuid).deliveries
    assert.is_true(#bad_deliveries >= 2)
    for _, d in ipairs(bad_deliveries) do assert.equal(401, d.status) end

    -- A replay of an old event: the same event_uuid, answered and not queued again.
    sandbox.control("POST", "planado/webhooks/replay", { event_uuid = events[2].event_uuid, webhook_uuid = good.uuid })
    sandbox.control("POST", "planado/webhooks/flush", { timeout = 20 })
    -- Weeks later the store has forgotten the event, but not the version: stale.
    rmtree(dir .. "/store/events")
    planapi.core.mkdir(dir .. "/store/events")
    sandbox.control("POST", "planado/webhooks/replay", { event_uuid = events[3].event_uuid, webhook_uuid = good.uuid })
    sandbox.control("POST", "planado/webhooks/flush", { timeout = 20 })
    assert.equal(#events, #read_queue(dir .. "/queue.jsonl"))

    local out = stop_receiver(receiver)
    receiver = nil
    local fresh = select(2, out:gsub("\nfresh ", "\n")) + (out:match "^fresh " and 1 or 0)
    assert.equal(4, fresh)
    assert.matches("duplicate " .. events[1].event_uuid, out, 1, true)
    assert.matches("duplicate " .. events[2].event_uuid, out, 1, true)
    assert.matches("stale " .. events[3].event_uuid, out, 1, true)
    assert.matches("rejected X%-Planado%-Secret is missing or wrong", out)
  end)
end)
