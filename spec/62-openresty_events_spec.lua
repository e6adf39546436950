-- Events in, inside nginx: two instances of the OpenResty gateway example
-- (examples/openresty, two workers each) on one host share the file stores
-- of one state folder. A burst of Planado deliveries and Planfix scenario
-- requests, each delivered twice in random order through both instances:
-- every event is answered "new" exactly once, handled exactly once, none
-- lost (the oracle: the log file the handlers append to, one line per
-- handling). Then the same with one instance stopped in the middle of the
-- burst and started again: its unhandled events are taken by the other, or
-- by itself after the restart; nothing lost, nothing handled twice. And the
-- burst again with the two instances as two hosts: a state folder each, one
-- Redis store (talked to over cosockets inside nginx).
local planapi = require "planapi"
local socket = require "socket"
local sandbox = require "sandbox"
local portable = require "portable"
local http_many = require "http_many"

local PLANADO_SECRET = "whsec-events-gw-0123456789"
local PLANFIX_SECRET = "pfsec-events-gw-0123456789"
require("journal").secret(PLANADO_SECRET)
require("journal").secret(PLANFIX_SECRET)

-- How many events of each API (each delivered twice).
local PER_API = tonumber(os.getenv "PLANAPI_SPEC62_EVENTS" or "") or 500

local free_port = portable.free_port

-- One gateway instance's `run` command line (the state folder and the log
-- shared); extra: more settings.
local function instance(shared, extra)
  local gw = { dir = portable.tmpdir(), port = free_port() }
  local env = sandbox.env()
  local vars = {
    GATEWAY_DIR = gw.dir, GATEWAY_PORT = gw.port, GATEWAY_WORKERS = 2, GATEWAY_CA_FILE = env.ca_file,
    GATEWAY_STATE_DIR = shared .. "/state", GATEWAY_EVENTS_LOG = shared .. "/handled.jsonl",
    GATEWAY_EVENTS_SWEEP = 0.5, GATEWAY_EVENTS_RETRY_DELAY = 0.2,
    PLANFIX_BASE_URL = ("https://localhost:%d/rest/"):format(env.https_port), PLANFIX_TOKEN = sandbox.TOKEN,
    PLANADO_URL = ("https://localhost:%d/planado/v2/"):format(env.https_port),
    PLANADO_API_KEY = sandbox.PLANADO_KEY, PLANADO_WEBHOOK_SECRET = PLANADO_SECRET,
    PLANFIX_EVENTS_SECRET = PLANFIX_SECRET,
  }
  for k, v in pairs(extra or {}) do vars[k] = v end
  local words = {}
  for k, v in pairs(vars) do words[#words + 1] = ("%s='%s'"):format(k, tostring(v)) end
  gw.env = "env " .. table.concat(words, " ")
  return gw
end

local function run(gw, what)
  local ok = portable.execute(("%s examples/openresty/run %s > %s/run.log 2>&1"):format(gw.env, what, gw.dir))
  assert(ok, ("run %s: %s %s"):format(what, tostring(portable.read_file(gw.dir .. "/run.log")),
    tostring(portable.read_file(gw.dir .. "/error.log"))))
end

local function remove(gw)
  portable.execute(("%s examples/openresty/run stop > /dev/null 2>&1"):format(gw.env))
  require("journal").output(portable.read_file(gw.dir .. "/error.log"))
  portable.rmtree(gw.dir)
end

-- The burst: every event twice, shuffled, each delivery to either instance.
local function burst(ports)
  local list = {}
  for i = 1, PER_API do
    local planado = planapi.json.encode { event_uuid = ("pd-%05d"):format(i), event_type = "job_updated",
      job = { uuid = ("job-%05d"):format(i), version = 1 } }
    local planfix = planapi.json.encode { event = "task.changed", change = ("pf-%05d"):format(i),
      secret = PLANFIX_SECRET }
    for _ = 1, 2 do
      list[#list + 1] = { method = "POST", path = "/planado/webhook", body = planado, id = ("pd-%05d"):format(i),
        headers = { ["Content-Type"] = "application/json", ["X-Planado-Secret"] = PLANADO_SECRET } }
      list[#list + 1] = { method = "POST", path = "/planfix/events", body = planfix, id = ("pf-%05d"):format(i),
        headers = { ["Content-Type"] = "application/json" } }
    end
  end
  for i = #list, 2, -1 do
    local j = math.random(i)
    list[i], list[j] = list[j], list[i]
  end
  for _, r in ipairs(list) do r.port = ports[math.random(#ports)] end
  return list
end

-- Deliver a list in batches of 40 connections at once; a delivery refused
-- (an instance stopped) goes to the other port, as a balancer would send it.
-- on_batch(n) runs after each batch. Returns the answers, one per delivery.
local function deliver(list, ports, on_batch)
  local answers = {}
  local i, batch = 1, 0
  while i <= #list do
    local chunk = {}
    for k = i, math.min(i + 39, #list) do chunk[#chunk + 1] = list[k] end
    for n, it in ipairs(http_many(ports[1], chunk)) do
      if it.connect_error then
        local r = chunk[n]
        r.port = r.port == ports[1] and ports[2] or ports[1]
        list[#list + 1] = r -- again, later, to the other instance
      else
        answers[#answers + 1] = { id = chunk[n].id, status = it.status, claim = it.json and it.json.status,
          body = it.body }
      end
    end
    i, batch = i + #chunk, batch + 1
    if on_batch then on_batch(batch) end
  end
  return answers
end

local function handled_lines(path)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for line in f:lines() do out[#out + 1] = planapi.json.decode(line) end
  f:close()
  return out
end

-- Wait until n events were handled (or 60 s), then a little longer: a
-- second handling would show up then. Returns the lines.
local function settle(path, n)
  local deadline = socket.gettime() + 60
  while #handled_lines(path) < n and socket.gettime() < deadline do socket.sleep(0.1) end
  socket.sleep(1.5)
  return handled_lines(path)
end

-- Each id answered "new" once and "duplicate" otherwise, and handled once.
local function check_exactly_once(answers, lines)
  local new, seen = {}, {}
  for _, a in ipairs(answers) do
    assert.equal(200, a.status, a.id .. ": " .. tostring(a.body))
    seen[a.id] = (seen[a.id] or 0) + 1
    if a.claim == "new" then
      assert.is_nil(new[a.id], a.id .. " answered new twice")
      new[a.id] = true
    else
      assert.equal("duplicate", a.claim, a.id)
    end
  end
  -- Planado's id is the event_uuid; Planfix's the MD5 of the body (the template has no id).
  local handled, ids = {}, 0
  for _, l in ipairs(lines) do
    local key = l.api .. ":" .. l.id
    handled[key] = (handled[key] or 0) + 1
  end
  for key, n in pairs(handled) do
    assert.equal(1, n, key .. " handled " .. n .. " times")
    ids = ids + 1
  end
  local planado = 0
  for _, l in ipairs(lines) do
    if l.api == "planado" then
      planado = planado + 1
      assert.truthy(new[l.id], l.id .. " handled but never answered new")
    end
  end
  assert.equal(2 * PER_API, ids) -- none lost
  assert.equal(PER_API, planado)
  for id in pairs(seen) do assert.truthy(new[id], id .. " was never answered new") end
end

local runnable = portable.execute "test -x /usr/sbin/nginx -a -f /usr/lib/nginx/modules/ngx_http_lua_module.so"
local describe_nginx = runnable and describe or pending

-- Two instances started before each test and removed after it; settings(shared)
-- gives each one's extra settings. The table's shared, a and b are the current ones.
local function two_instances(settings)
  local t = {}
  setup(function()
    assert(portable.execute "make --no-print-directory -s LUA=luajit > /dev/null", "make LUA=luajit failed")
  end)
  before_each(function()
    t.shared = portable.tmpdir()
    local sa, sb = settings(t.shared)
    t.a, t.b = instance(t.shared, sa), instance(t.shared, sb)
    run(t.a, "start")
    run(t.b, "start")
  end)
  after_each(function()
    remove(t.a)
    remove(t.b)
    portable.rmtree(t.shared)
  end)
  return t
end

local function burst_through_both(t)
  it("a burst delivered twice in random order through both: every event handled exactly once", function()
    local ports = { t.a.port, t.b.port }
    local answers = deliver(burst(ports), ports)
    check_exactly_once(answers, settle(t.shared .. "/handled.jsonl", 2 * PER_API))
  end)
end

describe_nginx("events through two nginx instances on one host's file stores", function()
  local t = two_instances(function() return nil, nil end)
  burst_through_both(t)

  it("reads back a body nginx spooled to a file, and refuses one over the cap", function()
    local big = planapi.json.encode { event = "task.changed", note = ("x"):rep(200000), secret = PLANFIX_SECRET }
    local over = planapi.json.encode { event = "task.changed", note = ("x"):rep(1100000), secret = PLANFIX_SECRET }
    local r = http_many(t.a.port, {
      { method = "POST", path = "/planfix/events", body = big, headers = { ["Content-Type"] = "application/json" } },
      { method = "POST", path = "/planfix/events", body = over, headers = { ["Content-Type"] = "application/json" } },
    })
    assert.equal(200, r[1].status, r[1].body)
    assert.equal("new", r[1].json.status)
    assert.equal(413, r[2].status)
    local lines = settle(t.shared .. "/handled.jsonl", 1)
    assert.equal(1, #lines)
    assert.equal("planfix", lines[1].api)
    assert.equal("md5:" .. planapi.core.md5_hex(big), lines[1].id) -- the whole body, read back from the file
  end)

  it("a handling that fails is taken again by the sweeper, never by the sender: the job made once", function()
    sandbox.reset()
    local id = assert(sandbox.rest().tasks:create { name = "Swept", status = { id = 1 } })
    -- Planado refuses the first create (a 400 the client does not retry): the handler fails.
    sandbox.fault { mode = "status", status = 400, count = 1, method = "POST", path = "/planado/v2/jobs" }
    local body = planapi.json.encode { event = "task.changed", task_id = id, secret = PLANFIX_SECRET }
    local r = http_many(t.a.port, { { method = "POST", path = "/planfix/events", body = body,
      headers = { ["Content-Type"] = "application/json" } } })[1]
    assert.equal(200, r.status, r.body)
    assert.equal("new", r.json.status)
    local pd, job = sandbox.planado(), nil
    local deadline = socket.gettime() + 20
    repeat
      job = pd.jobs:get("planfix-" .. id)
      if not job then socket.sleep(0.2) end
    until job or socket.gettime() > deadline
    assert.truthy(job, "the swept event made no job")
    local lines = settle(t.shared .. "/handled.jsonl", 2)
    assert.equal(2, #lines) -- the failed run and the swept one, of one event
    assert.equal(lines[1].id, lines[2].id)
    assert.same({ 1, 2 }, { lines[1].attempts, lines[2].attempts })
    local posts = {}
    for _, e in ipairs(sandbox.log_of "planado") do
      if e.method == "POST" and e.path == "/jobs" then posts[#posts + 1] = e.status end
    end
    assert.same({ 400, 201 }, posts)
  end)

  it("an instance stopped and started again in the middle of the burst loses nothing, repeats nothing", function()
    local ports = { t.a.port, t.b.port }
    local list = burst(ports)
    local batches = math.ceil(#list / 40)
    local answers = deliver(list, ports, function(n)
      if n == math.floor(batches / 3) then run(t.a, "stop") end
      if n == math.floor(2 * batches / 3) then run(t.a, "start") end
    end)
    check_exactly_once(answers, settle(t.shared .. "/handled.jsonl", 2 * PER_API))
  end)
end)

local has_redis = portable.execute "command -v redis-server > /dev/null 2>&1"
local describe_redis = (runnable and has_redis) and describe or pending

describe_redis("events through two nginx instances as two hosts on one Redis", function()
  local redis = {}
  setup(function() redis.server = require("redis_server").start() end)
  teardown(function() if redis.server then redis.server.stop() end end)
  -- Each its own state folder: only Redis is shared.
  burst_through_both(two_instances(function(shared)
    local url = redis.server.url
    return { GATEWAY_EVENTS_STORE = url, GATEWAY_STATE_DIR = shared .. "/state-a" },
      { GATEWAY_EVENTS_STORE = url, GATEWAY_STATE_DIR = shared .. "/state-b" }
  end))
end)

-- A secret sent in the query (secret_in = "query:token") is checked, and the
-- gateway's access log keeps the path without it (nginx's default $request
-- would write it there).
describe_nginx("a Planfix secret in the query", function()
  it("is accepted, refused when wrong, and never written to the access log", function()
    local shared = portable.tmpdir()
    local gw = instance(shared, { PLANFIX_EVENTS_SECRET_IN = "query:token" })
    run(gw, "start")
    local body = planapi.json.encode { event = "task_changed", task_id = 7, changed_at = "2026-12-06 10:00" }
    local headers = { ["Content-Type"] = "application/json" }
    local answers = http_many(gw.port, {
      { method = "POST", path = "/planfix/events?token=" .. PLANFIX_SECRET, headers = headers, body = body },
      { method = "POST", path = "/planfix/events?token=wrong-" .. PLANFIX_SECRET:sub(1, 4), headers = headers,
        body = body, at = 0.2 },
    })
    local ok_status, bad_status = answers[1].status, answers[2].status
    local log = portable.read_file(gw.dir .. "/access.log") or ""
    remove(gw)
    portable.rmtree(shared)
    assert.equal(200, ok_status)
    assert.equal(401, bad_status)
    assert.truthy(log:find("POST /planfix/events HTTP/1.0", 1, true), "the request is logged by its path")
    assert.is_nil(log:find("token=", 1, true), "the query reached the access log")
  end)
end)
