-- The sandbox sends Planfix scenario HTTP requests (Planfix's documentation,
-- "Scenarios": the action "HTTP request"): writes made with planapi's own
-- REST and XML clients fire the triggers, the template carries the secret
-- wherever the admin put it, requests go out one at a time per account, a
-- failure is retried on the documented schedule (compressed by `factor`) and
-- pauses the account. The oracle is the sandbox's delivery log and its test
-- receiver, which see the requests as they went over the wire.
local sandbox = require "sandbox"

local SECRET = "pf-scenario-secret-0123456789"
require("journal").secret(SECRET) -- the secret scan looks for it in every output

local function scenario(spec)
  return sandbox.control("POST", "planfix/scenarios", spec).scenario
end

local function flush(timeout)
  return sandbox.control("POST", "planfix/scenarios/flush", { timeout = timeout or 20 })
end

local function received(path)
  return sandbox.control("GET", "planfix/receiver" .. (path and ("?path=" .. path) or "")).requests
end

local function requests(query)
  return sandbox.control("GET", "planfix/requests" .. (query or "")).requests
end

local function receiver_url(name)
  return sandbox.env().planfix_receiver_url .. (name or "")
end

local function events_of(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.event end
  return out
end

describe("Planfix scenario requests from the sandbox", function()
  local rest, xml
  before_each(function()
    sandbox.reset()
    rest = sandbox.rest()
    xml = sandbox.xml()
  end)

  it("fires task created, task changed, status changed and comment added for REST and XML writes", function()
    scenario {
      url = receiver_url "/hook", headers = { ["X-Token"] = SECRET },
      body = { event = "{{event}}", task = "{{task.id}}", status = "{{task.status.id}}", name = "{{task.name}}",
        comment = "{{comment.text}}", at = "{{change_ts}}" },
    }
    local id = assert(rest.tasks:create { name = "Pump check" })
    assert(rest:call("post-task-by-id", { id = id, status = { id = 3 } }))
    assert(rest:call("post-task-add-comment", { id = id, description = "Called the client" }))
    assert(xml:call("task.changeStatus", { task = { id = id, status = 5 } }))
    assert.equal(0, flush().pending)

    local got = received "/hook"
    assert.same({ "task_created", "task_changed", "status_changed", "comment_added", "task_changed", "status_changed" },
      events_of(got))
    for _, r in ipairs(got) do
      assert.equal(id, r.json.task) -- a whole placeholder keeps the number's type
      assert.equal(SECRET, r.headers["x-token"])
      assert.is_nil(r.headers["x-planfix-signature"]) -- Planfix signs nothing
    end
    assert.same({ 1, 3, 3, 3, 5, 5 }, { got[1].json.status, got[2].json.status, got[3].json.status,
      got[4].json.status, got[5].json.status, got[6].json.status })
    assert.equal("Called the client", got[4].json.comment)
    assert.equal("Pump check", got[1].json.name)
    local now = os.time()
    assert.is_true(math.abs(got[1].json.at - now) < 120)
  end)

  it("puts the secret where the template says: a header, a body field, the query", function()
    scenario { url = receiver_url "/header", trigger = "task_created", headers = { ["X-Token"] = SECRET },
      body = { task = "{{task.id}}" } }
    scenario { url = receiver_url "/field", trigger = "task_created", encoding = "form",
      body = { task = "{{task.id}}", secret = SECRET } }
    scenario { url = receiver_url "/query?token=" .. SECRET, trigger = "task_created",
      body = { task = "{{task.id}}" } }
    local id = assert(rest.tasks:create { name = "Secret places" })
    assert.equal(0, flush().pending)

    local h, f, q = received("/header")[1], received("/field")[1], received("/query")[1]
    assert.equal(SECRET, h.headers["x-token"])
    assert.is_nil(h.json.secret)
    assert.equal("application/x-www-form-urlencoded; charset=utf-8", f.headers["content-type"])
    assert.same({ task = tostring(id), secret = SECRET }, f.fields)
    assert.is_nil(f.headers["x-token"])
    assert.equal(SECRET, q.query.token)
    assert.is_nil(q.headers["x-token"])
  end)

  it("sends one request at a time per account: a slow receiver holds the next one", function()
    scenario { url = receiver_url(), trigger = "task_created", body = { task = "{{task.id}}" } }
    sandbox.control("POST", "planfix/receiver", { delay = 0.2 })
    for i = 1, 4 do assert(rest.tasks:create { name = "serial " .. i }) end
    assert.equal(0, flush().pending)

    local log = requests()
    assert.equal(4, #log)
    for i = 2, #log do
      local prev_end = log[i - 1].time + log[i - 1].duration_ms / 1000
      assert.is_true(log[i].time >= prev_end - 0.002, ("request %d started before %d was answered"):format(i, i - 1))
      assert.is_true(log[i - 1].duration_ms >= 190)
    end
  end)

  it("retries a failure on the documented schedule, compressed, and pauses the account meanwhile", function()
    local factor = 0.002 -- 300 s -> 0.6 s, 900 s -> 1.8 s; the 180 s pause -> 0.36 s
    sandbox.config { scenarios = { factor = factor } }
    scenario { url = receiver_url(), trigger = "task_created", body = { task = "{{task.id}}" } }
    sandbox.control("POST", "planfix/receiver", { script = { 500, 503 } })
    local a = assert(rest.tasks:create { name = "fails twice" })
    local b = assert(rest.tasks:create { name = "held by the pause" })
    assert.equal(0, flush(30).pending)

    local log = requests()
    local seen = {}
    for i, r in ipairs(log) do seen[i] = ("%d#%d:%s"):format(r.task_id, r.attempt, tostring(r.status)) end
    -- a fails; b waits out the pause and fails too; a's retry (due 0.6 s after its
    -- failure) then waits out b's pause and succeeds; b's retry follows.
    assert.same({ a .. "#1:500", b .. "#1:503", a .. "#2:200", b .. "#2:200" }, seen)
    local function ended(r) return r.time + r.duration_ms / 1000 end
    local pause, first = 180 * factor, 300 * factor
    assert.is_true(log[2].time - ended(log[1]) >= pause - 0.01, "b went out during a's pause")
    assert.is_true(log[3].time - ended(log[1]) >= first - 0.01, "a's retry came before its delay")
    assert.is_true(log[3].time - ended(log[2]) >= pause - 0.01, "a's retry went out during b's pause")
    assert.is_true(log[4].time - ended(log[2]) >= first - 0.01, "b's retry came before its delay")
    -- and not much later than due (the machine is shared: a generous margin)
    assert.is_true(log[4].time - ended(log[2]) < first + 1.5)
  end)

  it("gives up after the first attempt and five retries", function()
    sandbox.config { scenarios = { factor = 0 } }
    scenario { url = receiver_url(), trigger = "task_created", body = { task = "{{task.id}}" } }
    sandbox.control("POST", "planfix/receiver", { status = 502 })
    assert(rest.tasks:create { name = "never accepted" })
    assert.equal(0, flush().pending)
    local log = requests()
    assert.equal(6, #log)
    for i, r in ipairs(log) do
      assert.equal(i, r.attempt)
      assert.equal("HTTP 502", r.error)
    end
  end)

  it("keeps accounts apart: one account's pause does not hold another's requests", function()
    sandbox.config { scenarios = { pause = 60, delays = { 60 } } }
    scenario { url = "http://127.0.0.1:1/closed", account = "down", trigger = "task_created" }
    scenario { url = receiver_url "/up", account = "up", trigger = "task_created", body = { t = "{{task.id}}" } }
    for i = 1, 3 do assert(rest.tasks:create { name = "accounts " .. i }) end
    local deadline = os.time() + 10
    while #received "/up" < 3 and os.time() < deadline do
      -- A short wait: the flush answers 504 while the "down" account holds requests.
      assert.equal(504, (sandbox.control_status("POST", "planfix/scenarios/flush", { timeout = 0.2 })))
    end
    assert.equal(3, #received "/up")
    local down = requests "?account=down"
    assert.equal(1, #down) -- the rest wait for the 60 s pause
    assert.equal("error", down[1].status)
  end)
end)

-- End to end into the receiver: the sandbox's sender against planapi.planfix_events
-- served by planapi.events.server in this process (one connection per step).
describe("Planfix scenario requests into planapi.planfix_events", function()
  local planapi = require "planapi"
  local server_mod = require "planapi.events.server"

  before_each(function() sandbox.reset() end)

  it("handles each event once through timeouts, retries and the pause (the README's template)", function()
    local handled = {}
    local pf = planapi.planfix_events { secret = SECRET, secret_in = "field:secret",
      id = { "event", "task_id", "changed_at" } }
    local server = server_mod.new { receiver = pf, listen = "127.0.0.1:0", read_timeout = 2, handler = function(ev)
      local k = ev.type .. "|" .. ev.task_id
      handled[k] = (handled[k] or 0) + 1
      return true
    end }
    local _, port = server:address()
    -- Retries 0.3 s, 0.9 s, ... apart; the pause 0.18 s; a request unanswered for 0.3 s failed.
    sandbox.config { scenarios = { factor = 0.001, timeout = 0.3 } }
    scenario { url = ("http://127.0.0.1:%d/hooks/planfix"):format(port), body = {
      event = "{{event}}", task_id = "{{task.id}}", changed_at = "{{change_time}}",
      status = "{{task.status.name}}", secret = SECRET } }
    local rest = sandbox.rest()
    for i = 1, 3 do
      local id = assert(rest.tasks:create { name = "end to end " .. i })
      assert(rest:call("post-task-by-id", { id = id, status = { id = 3 } }))
    end
    -- The receiver does not answer for a second: the sender's first requests time out
    -- (they wait in the listen queue, and are handled when it comes back).
    assert.equal(504, (sandbox.control_status("POST", "planfix/scenarios/flush", { timeout = 1 })))
    local deadline = os.time() + 30
    repeat
      server:step(0.05)
      local pending = sandbox.control("GET", "planfix/requests").pending
    until (pending == 0 and not server:step(0.2)) or os.time() > deadline
    server:close()

    local events = sandbox.control("GET", "planfix/events").events
    assert.equal(9, #events)
    for _, e in ipairs(events) do
      assert.equal(1, handled[e.event .. "|" .. e.task_id], e.event .. " of task " .. e.task_id)
    end
    local n = 0
    for _ in pairs(handled) do n = n + 1 end
    assert.equal(9, n)
    -- Retries did reach the receiver after their first try had been handled: the duplicates.
    local retried, first_failed = 0, 0
    for _, r in ipairs(requests()) do
      if r.attempt == 1 and r.status == "timeout" then first_failed = first_failed + 1 end
      if r.attempt > 1 and r.status == 200 then retried = retried + 1 end
    end
    assert.is_true(first_failed >= 1)
    assert.is_true(retried >= 1)
  end)
end)
