-- The webhook receiver (examples/planado_webhook_receiver.lua) tested as a
-- user tests a receiver: its logic required as a module and handed the
-- deliveries planapi.testing builds, as Planado sends them. No socket, no
-- sandbox, no network; each test runs in milliseconds.
-- (spec/42 runs the same file as a script against the sandbox's sender.)
--
--   busted --lua=lua5.4 examples/spec   (from a checkout, after `make`; see README, "Testing your scripts")
local planapi = require "planapi"
local testing = require "planapi.testing"
package.path = "examples/?.lua;" .. package.path
local Receiver = require "planado_webhook_receiver" -- its logic: the socket loop runs only as a script

local SECRET = "example-webhook-secret"

-- A receiver whose queue is a list the test reads.
local function receiver(opts)
  local queued = {}
  opts = opts or {}
  local r = Receiver.new { secret = SECRET, store_dir = opts.store_dir,
    enqueue = opts.enqueue or function(record)
      queued[#queued + 1] = record
      return true
    end }
  return r, queued
end

local function job_event(fields)
  local d = { secret = SECRET, event_type = "job_updated", job = { uuid = "job-1", version = 2 } }
  for k, v in pairs(fields or {}) do d[k] = v end
  return testing.planado_delivery(d)
end

describe("the Planado webhook receiver", function()
  it("queues a valid delivery once, with what a worker needs, and answers 200", function()
    local r, queued = receiver()
    local d = job_event { attempt = 1 }
    local status, text, event = r:deliver(d)
    assert.equal(200, status)
    assert.equal("queued", text)
    local body = planapi.json.decode(d.body)
    assert.same({ { event_uuid = body.event_uuid, type = "job_updated", kind = "job", uuid = "job-1",
      version = 2, attempt = 1 } }, queued)
    assert.equal("fresh " .. body.event_uuid, Receiver.log_line(text, event))
  end)

  it("answers a retry of the same event 200 and does not queue it again", function()
    local r, queued = receiver()
    local first = job_event { event_uuid = "ev-1", attempt = 1 }
    local retry = job_event { event_uuid = "ev-1", attempt = 2 }
    assert.equal(200, (r:deliver(first)))
    local status, text, event = r:deliver(retry)
    assert.equal(200, status)
    assert.equal("duplicate", text)
    assert.equal(1, #queued)
    assert.equal("duplicate ev-1", Receiver.log_line(text, event))
  end)

  it("answers an older version that arrives late 200 as stale, and does not queue it", function()
    local r, queued = receiver()
    assert.equal(200, (r:deliver(job_event { job = { uuid = "job-1", version = 3 } })))
    local status, text = r:deliver(job_event { job = { uuid = "job-1", version = 2 } })
    assert.same({ 200, "stale" }, { status, text })
    assert.same({ 3 }, { queued[1].version, queued[2] })
  end)

  it("refuses a wrong or missing secret with 401, and queues nothing", function()
    local r, queued = receiver()
    for _, d in ipairs { job_event { secret = "not-the-secret" }, testing.planado_delivery { job = { uuid = "j" } } } do
      local status, text, event = r:deliver(d)
      assert.equal(401, status)
      assert.matches("X%-Planado%-Secret is missing or wrong", text)
      assert.is_nil(event)
      assert.equal("rejected " .. text, Receiver.log_line(text, event))
      assert.is_nil(text:find(SECRET, 1, true))
    end
    assert.same({}, queued)
  end)

  it("refuses a malformed body, a body that is no event, and a GET, and queues nothing", function()
    local r, queued = receiver()
    local cases = {
      { 400, job_event { body = "{\"event_uuid\": " } },
      { 400, job_event { body = { hello = "world" } } },
    }
    local get = job_event {}
    get.method = "GET"
    cases[#cases + 1] = { 405, get }
    for _, case in ipairs(cases) do
      local status, text, event = r:deliver(case[2])
      assert.equal(case[1], status, text)
      assert.is_nil(event)
    end
    assert.same({}, queued)
  end)

  it("answers 503 when the queue fails, so Planado's next attempt is queued", function()
    local fail = true
    local queued = {}
    local r = receiver { enqueue = function(record)
      if fail then return nil, "disk full" end
      queued[#queued + 1] = record
      return true
    end }
    local status, text = r:deliver(job_event { event_uuid = "ev-9", attempt = 1 })
    assert.equal(503, status)
    assert.matches("disk full", text)
    fail = false
    status, text = r:deliver(job_event { event_uuid = "ev-9", attempt = 2 })
    assert.same({ 200, "queued" }, { status, text })
    assert.equal("ev-9", queued[1].event_uuid)
  end)

  it("remembers events across a restart through its store directory", function()
    local dir = os.tmpname()
    os.remove(dir)
    local d = job_event { event_uuid = "ev-5" }
    local first, queued1 = receiver { store_dir = dir }
    assert.equal("queued", select(2, first:deliver(d)))
    local again, queued2 = receiver { store_dir = dir } -- another process, or the same one restarted
    assert.equal("duplicate", select(2, again:deliver(d)))
    assert.same({ 1, 0 }, { #queued1, #queued2 })
    os.execute(("rm -rf '%s'"):format(dir))
  end)

  it("appends each queued event to its JSON Lines file", function()
    local path = os.tmpname()
    local r = Receiver.new { secret = SECRET, enqueue = Receiver.file_queue(path) }
    r:deliver(job_event { event_uuid = "ev-a" })
    r:deliver(job_event { event_uuid = "ev-a" })
    r:deliver(job_event { event_uuid = "ev-b", job = { uuid = "job-2" } })
    local lines = {}
    for line in io.lines(path) do lines[#lines + 1] = planapi.json.decode(line).event_uuid end
    os.remove(path)
    assert.same({ "ev-a", "ev-b" }, lines)
  end)
end)
