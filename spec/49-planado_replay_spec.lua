-- Planado missed deliveries: planapi.planado_replay reads a webhook's
-- delivery log (pd.webhooks:requests, the sandbox's record of what its sender
-- sent and what it was answered) and feeds the deliveries that never
-- succeeded through the receiver. Each event is handled once; a second
-- replay handles none; replaying everything is safe because the receiver's
-- store dedupes. The oracle is the sandbox's own event list and delivery log.
local planapi = require "planapi"
local sandbox = require "sandbox"
local portable = require "portable"

local SECRET = "whsec-replay-0123456789"
require("journal").secret(SECRET)

local function flush()
  assert.equal(0, sandbox.control("POST", "planado/webhooks/flush", { timeout = 20 }).pending)
end

-- The events the sandbox made for one webhook, by uuid.
local function sent_events(webhook_uuid)
  local out = {}
  for _, d in ipairs(sandbox.control("GET", "planado/deliveries?webhook_uuid=" .. webhook_uuid).deliveries) do
    out[d.event_uuid] = out[d.event_uuid] or { success = false }
    if d.success then out[d.event_uuid].success = true end
  end
  return out
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- A handler recording how often it ran for each event.
local function recorder()
  local seen = {}
  return seen, function(ev)
    seen[ev.uuid] = (seen[ev.uuid] or 0) + 1
    return true
  end
end

describe("Planado replay of missed deliveries", function()
  local pd, dir
  before_each(function()
    sandbox.reset()
    sandbox.config { planado = { webhook = { delays = { 0.05 }, timeout = 2, max_attempts = 2 } } }
    pd = sandbox.planado()
    dir = portable.tmpdir()
  end)
  after_each(function() portable.rmtree(dir) end)

  local function make_events()
    local job = assert(pd.jobs:create { external_id = "replay-1", description = "Fix the pump" })
    assert(pd.jobs:update(job, { description = "Fix the pump, bring a filter" }))
    assert(pd.clients:create { organization = true, organization_name = "Replay Ltd" })
    assert(pd.sites:create { name = "Replay site" })
    flush()
  end

  it("handles each delivery that failed while the receiver was down once; a second replay handles none", function()
    sandbox.control("POST", "planado/receiver", { status = 503 }) -- the receiver is down
    local wh = sandbox.control("POST", "planado/webhooks",
      { url = sandbox.env().planado_receiver_url, secret = SECRET }).webhook
    make_events()
    local sent = sent_events(wh.uuid)
    assert.equal(4, count(sent))
    for _, e in pairs(sent) do assert.is_false(e.success) end

    local hook = planapi.planado_webhook { secret = SECRET, store = planapi.events.file { dir = dir } }
    local seen, handler = recorder()
    local report = assert(planapi.planado_replay(pd, hook, wh.uuid, { handler = handler }))
    assert.equal(8, report.deliveries) -- 4 events, 2 attempts each
    assert.equal(4, report.replayed)
    assert.equal(4, report.fresh)
    assert.equal(4, report.handled)
    assert.same({}, report.errors)
    for uuid in pairs(sent) do assert.equal(1, seen[uuid], uuid) end
    assert.equal(4, count(seen))

    -- A second replay, even by a new receiver on the same store: all duplicates.
    local again = planapi.planado_webhook { secret = SECRET, store = planapi.events.file { dir = dir } }
    report = assert(planapi.planado_replay(pd, again, wh.uuid, { handler = handler }))
    assert.equal(4, report.replayed)
    assert.equal(0, report.fresh)
    assert.equal(4, report.duplicate)
    for uuid in pairs(sent) do assert.equal(1, seen[uuid]) end
  end)

  it("skips what was delivered; with all = true replays everything, and the store keeps it at once each", function()
    -- The first delivery gets through (and is handled live), the rest find the receiver down.
    sandbox.control("POST", "planado/receiver", { status = 503, script = { 200 } })
    local wh = sandbox.control("POST", "planado/webhooks",
      { url = sandbox.env().planado_receiver_url, secret = SECRET }).webhook
    make_events()
    local hook = planapi.planado_webhook { secret = SECRET }
    local seen, handler = recorder()
    local live = sandbox.control("GET", "planado/receiver").requests
    local delivered = 0
    for _, r in ipairs(live) do
      if r.status == 200 then
        local response, event = hook:receive { method = "POST", path = "/hook", headers = r.headers, body = r.body }
        assert.equal(200, response.status)
        assert(hook:handle(event, handler))
        delivered = delivered + 1
      end
    end
    assert.equal(1, delivered)

    local report = assert(planapi.planado_replay(pd, hook, wh.uuid, { handler = handler }))
    assert.equal(3, report.replayed) -- the delivered one is not fed again
    assert.equal(3, report.handled)
    report = assert(planapi.planado_replay(pd, hook, wh.uuid, { handler = handler, all = true }))
    assert.equal(4, report.replayed)
    assert.equal(0, report.fresh)
    assert.equal(4, report.duplicate)
    assert.equal(4, count(seen))
    for uuid, n in pairs(seen) do assert.equal(1, n, uuid) end
  end)

  it("without a handler hands the fresh events back; a failing handler leaves them to hook:pending", function()
    sandbox.control("POST", "planado/receiver", { status = 500 })
    local wh = sandbox.control("POST", "planado/webhooks",
      { url = sandbox.env().planado_receiver_url, secret = SECRET }).webhook
    make_events()
    local clock = sandbox.fake_time(1000)
    local hook = planapi.planado_webhook { secret = SECRET, clock = clock.clock, retry_delay = 30 }
    local report = assert(planapi.planado_replay(pd, hook, wh.uuid))
    assert.equal(4, #report.events)
    local seen, handler = recorder()
    local fails = 0
    for i, ev in ipairs(report.events) do
      if i == 1 then
        assert.is_nil(hook:handle(ev, function() fails = fails + 1 error("the database is down") end))
      else
        assert(hook:handle(ev, handler))
      end
    end
    assert.equal(1, fails)
    assert.equal(0, hook:pending(handler)) -- not due yet
    clock.now = clock.now + 31
    assert.equal(1, hook:pending(handler))
    assert.equal(4, count(seen))
    for _, n in pairs(seen) do assert.equal(1, n) end
  end)

  it("raises a config error for wrong arguments and returns nil, err when the log cannot be read", function()
    local hook = planapi.planado_webhook { secret = SECRET }
    local ok, err = pcall(planapi.planado_replay, pd, hook)
    assert.is_false(ok)
    assert.equal("config", err.kind)
    ok, err = pcall(planapi.planado_replay, pd, hook, "x", { handlr = print })
    assert.is_false(ok)
    assert.matches("handlr", err.message)
    sandbox.fault { mode = "status", status = 503, path = "/webhooks/", count = 10 }
    local report, rerr = planapi.planado_replay(sandbox.planado { retry = { attempts = 1 } }, hook,
      "00000000-0000-4000-8000-000000000001")
    assert.is_nil(report)
    assert.is_true(planapi.is_error(rerr))
    assert.is_nil(tostring(rerr):find(SECRET, 1, true))
  end)
end)
