-- Call events (lua/planapi/hooks.lua) and their JSON Lines sink
-- (lua/planapi/log.lua) on the three clients against the sandbox: every
-- event fires with its documented fields for a success, an API error, a
-- retry and a timeout; a hook that raises does not break the call; no
-- secret is in any event or log line (asserted here, and every line is
-- written under build/journal/, which the secret scan of make test reads).
-- Under nginx: the same cases on cosockets, in a test server of the
-- gateway example's nginx (spec/helpers/gateway.lua); spec/85 has the
-- gateway's own events and /metrics.
local planapi = require "planapi"
local sandbox = require "sandbox"
local journal = require "journal"
local portable = require "portable"
local gateway = require "gateway"

local LOG_PATH = journal.log_path "call-events"

-- Every secret the sandbox's clients are given.
local SECRETS = { sandbox.TOKEN, sandbox.PLANADO_KEY, sandbox.XML.api_key, sandbox.XML.token,
  sandbox.XML.password }

local APIS = {
  rest = {
    make = sandbox.rest, api = "planfix_rest",
    read = function(c) return c:call("get-task-by-id", { id = 1 }) end, read_op = "get-task-by-id",
    write = function(c, tag) return c:call("post-task", { name = tag }) end,
  },
  xml = {
    make = sandbox.xml, api = "planfix_xml",
    read = function(c) return c.task:get { id = 1 } end, read_op = "task.get",
    write = function(c, tag) return c.task:add { title = tag } end,
  },
  planado = {
    make = sandbox.planado, api = "planado",
    read = function(c) return c.jobs:get "job-ext-1" end, read_op = "GET jobs/job-ext-1",
    write = function(c, tag) return c.jobs:create { description = tag } end,
  },
}
local ORDER = { "rest", "xml", "planado" }

-- A recorder: hooks that keep every event, and the same events as JSON
-- Lines in the journal's log (and in rec.lines).
local function recorder(opts)
  local rec = { events = {}, lines = {} }
  local file = assert(io.open(LOG_PATH, "a"))
  local sink = planapi.log.jsonl(function(line)
    rec.lines[#rec.lines + 1] = line
    file:write(line, "\n")
    file:flush()
  end, opts)
  local function keep(ev) rec.events[#rec.events + 1] = ev end
  rec.hooks = { { request = keep, response = keep, retry = keep, error = keep, dry_run = keep,
    bodies = opts and opts.bodies }, sink }
  function rec.names()
    local out = {}
    for i, ev in ipairs(rec.events) do out[i] = ev.event end
    return table.concat(out, " ")
  end
  return rec
end

local function assert_no_secret(text)
  for _, s in ipairs(SECRETS) do
    assert.is_nil(text:find(s, 1, true), "a secret in: " .. text)
  end
end

local function assert_common(ev, api, attempt)
  assert.equal(api.api, ev.api)
  assert.equal("string", type(ev.account))
  assert.equal("string", type(ev.operation))
  assert.equal("string", type(ev.method))
  assert.equal(attempt, ev.attempt)
  assert.equal("number", type(ev.elapsed))
  assert.is_true(ev.elapsed >= 0)
  assert.is_nil(ev.body) -- only when asked for
  for _, v in pairs(ev) do
    if type(v) == "string" then assert_no_secret(v) end
  end
end

local function tag()
  return ("call-events-%d-%d"):format(os.time(), math.random(1, 1e9))
end

describe("call events", function()
  before_each(function() sandbox.reset() end)
  after_each(function() sandbox.reset() end)

  for _, name in ipairs(ORDER) do
    local api = APIS[name]
    describe(name, function()
      it("a success: request, then response with status, bytes and no error", function()
        local rec = recorder()
        local c = api.make { hooks = rec.hooks }
        assert(api.read(c))
        assert.equal("request response", rec.names())
        local req, res = rec.events[1], rec.events[2]
        assert_common(req, api, 1)
        assert_common(res, api, 1)
        assert.equal(api.read_op, req.operation)
        assert.equal(0, req.wait)
        if name == "xml" then -- XML posts its request; the others GET
          assert.is_true(req.bytes > 0)
        else
          assert.equal(0, req.bytes)
        end
        assert.equal(200, res.status)
        assert.is_true(res.bytes > 0)
        assert.is_nil(res.kind)
        assert.equal(2, #rec.lines)
        c:close()
      end)

      it("an API error: request, response, error with the returned error's kind and status", function()
        local rec = recorder()
        local c = api.make { hooks = rec.hooks }
        sandbox.fault { mode = "status", status = 404, count = 1 }
        local r, err = api.read(c)
        assert.is_nil(r)
        assert.equal("request response error", rec.names())
        local ev = rec.events[3]
        assert_common(ev, api, 1)
        assert.equal(err.kind, ev.kind)
        assert.equal(404, ev.status)
        assert.equal(404, rec.events[2].status)
        assert.equal(false, ev.retryable)
        assert.equal(tostring(err), ev.message)
        c:close()
      end)

      it("a retry: its wait, then the next attempt after it on the client's clock", function()
        local rec = recorder()
        local t = sandbox.fake_time()
        local c = api.make { hooks = rec.hooks, clock = t.clock, sleep = t.sleep,
          retry = { attempts = 3, base = 0.5, random = function() return 1 end } }
        sandbox.fault { mode = "status", status = 503, count = 1 }
        assert(api.read(c))
        assert.equal("request response retry request response", rec.names())
        local retry, again = rec.events[3], rec.events[4]
        assert_common(retry, api, 1)
        assert.equal("http", retry.kind)
        assert.equal(503, retry.status)
        assert.is_true(retry.retryable)
        assert.is_true(retry.wait > 0)
        assert_common(again, api, 2)
        assert.near(retry.wait, again.elapsed - retry.elapsed, 1e-9)
        assert.equal(200, rec.events[5].status)
        c:close()
      end)

      it("a timeout: a read retries with kind timeout, a write ends in one error event", function()
        local rec = recorder()
        local c = api.make { hooks = rec.hooks, timeout = 0.3 }
        sandbox.fault { mode = "slow", delay = 0.8, count = 1 }
        assert(api.read(c))
        assert.equal("request retry request response", rec.names())
        assert.equal("timeout", rec.events[2].kind)
        rec.events = {}
        sandbox.fault { mode = "slow", delay = 0.8, count = 1 }
        local v, err = api.write(c, tag())
        assert.is_nil(v)
        assert.equal("request error", rec.names())
        local ev = rec.events[2]
        assert_common(ev, api, 1)
        assert.equal("timeout", ev.kind)
        assert.equal(err.request_sent, ev.request_sent)
        c:close()
      end)

      it("a dry run: one dry_run event, nothing sent; reads still send theirs", function()
        local rec = recorder()
        local c = api.make { hooks = rec.hooks, dry_run = true }
        local marker = tag()
        assert(api.write(c, marker))
        assert.equal("dry_run", rec.names())
        local ev = rec.events[1]
        assert_common(ev, api, 0)
        assert.equal("POST", ev.method)
        assert.is_true(ev.bytes > 0)
        for _, e in ipairs(sandbox.log()) do -- the sandbox's log: the write never reached it
          assert.is_nil(type(e.body) == "string" and e.body:find(marker, 1, true) or nil)
        end
        rec.events = {}
        assert(api.read(c))
        assert.equal("request response", rec.names())
        c:close()
      end)

      it("a hook that raises: the call goes on, hook_error gets a redacted line", function()
        local reported = {}
        local c = api.make { hooks = {
          request = function() error("hook failed near " .. sandbox.TOKEN .. " " .. sandbox.PLANADO_KEY) end,
          hook_error = function(message, ev) reported[#reported + 1] = { message, ev.event } end,
        } }
        assert(api.read(c))
        assert(api.read(c))
        assert.equal(2, #reported)
        assert.equal("request", reported[1][2])
        assert.matches("hook failed near", reported[1][1], 1, true)
        if name ~= "xml" then assert_no_secret(reported[1][1]) end -- a secret of this client is masked
        c:close()
      end)
    end)
  end

  it("bodies only when asked for, redacted: no secret of any client in any event or line", function()
    local rec = recorder { bodies = true }
    local clients = { sandbox.rest { hooks = rec.hooks }, sandbox.xml { hooks = rec.hooks, login = true },
      sandbox.planado { hooks = rec.hooks } }
    for i, name in ipairs(ORDER) do
      assert(APIS[name].write(clients[i], tag()))
      assert(APIS[name].read(clients[i]))
    end
    -- XML's login mode: the session id it learnt is a secret too
    local sid = assert(clients[2].sid)
    local bodies = 0
    for _, ev in ipairs(rec.events) do
      if ev.body then bodies = bodies + 1 end
      for _, v in pairs(ev) do
        if type(v) == "string" then
          assert_no_secret(v)
          assert.is_nil(v:find(sid, 1, true), "the session id in: " .. v)
        end
      end
    end
    assert.is_true(bodies >= 9) -- every answer, and every request that has a body
    for _, line in ipairs(rec.lines) do
      assert_no_secret(line)
      assert.is_nil(line:find(sid, 1, true))
      assert.equal("table", type(planapi.json.decode(line)))
    end
    for _, c in ipairs(clients) do c:close() end
  end)

  it("on_request, the older option, still sees every attempt with the prepared request", function()
    local seen = {}
    local c = sandbox.rest { on_request = function(req, attempt) seen[#seen + 1] = req.method .. attempt end }
    sandbox.fault { mode = "status", status = 503, count = 1 }
    assert(APIS.rest.read(c))
    assert.same({ "GET1", "GET2" }, seen)
    c:close()
  end)

  it("the limiter's wait and the quota's remaining reach the events", function()
    local rec = recorder()
    local t = sandbox.fake_time()
    sandbox.config { quota = { limit = 50 } }
    local c = sandbox.rest { hooks = rec.hooks, clock = t.clock, sleep = t.sleep, limiter = "local",
      rate = { rate = 1, per = 2, burst = 1 } }
    assert(APIS.rest.read(c))
    assert(APIS.rest.read(c))
    local requests, responses = {}, {}
    for _, ev in ipairs(rec.events) do
      if ev.event == "request" then requests[#requests + 1] = ev end
      if ev.event == "response" then responses[#responses + 1] = ev end
    end
    assert.equal(0, requests[1].wait)
    assert.is_true(requests[2].wait > 1.5, tostring(requests[2].wait))
    assert.equal(49, responses[1].remaining)
    assert.equal(48, responses[2].remaining)
    c:close()
  end)

  it("a wrong hooks option is a config error naming the hooks", function()
    local ok, err = pcall(sandbox.planado, { hooks = { requst = print } })
    assert.is_false(ok)
    assert.equal("config", err.kind)
    assert.matches("unknown hook 'requst'", err.message, 1, true)
    ok, err = pcall(sandbox.planado, { hooks = { request = "print" } })
    assert.is_false(ok)
    assert.matches("hook 'request' must be a function", err.message, 1, true)
  end)

  it("without hook_error a raising hook is one line on stderr, once per client", function()
    local lua, cpath = portable.lua, portable.cpath .. ";;"
    local script = [[
      package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;spec/helpers/?.lua;" .. package.path
      local sandbox = require "sandbox"
      local c = sandbox.planado { hooks = { response = function() error "boom" end } }
      assert(c.jobs:get "job-ext-1")
      assert(c.jobs:get "job-ext-1")
      io.stdout:write("calls done\n")
    ]]
    local path = os.tmpname()
    portable.write_file(path, script)
    local out = portable.run(("LUA_CPATH='%s' %s %s 2>&1"):format(cpath, lua, path))
    os.remove(path)
    assert.matches("calls done", out, 1, true)
    local _, lines = out:gsub("a response hook of a planado client raised: [^\n]*boom", "")
    assert.equal(1, lines, out)
  end)
end)

-- ------------------------------------------------------------------ nginx

-- The test server's handler (content phase, cosockets): GET /events?api=&op=read|write&timeout=
-- makes a client of that API with hooks, runs the call, answers its events as JSON.
local HANDLER = [==[
local planapi = require "planapi"
local E = ...
local args = ngx.req.get_uri_args()
local events = {}
local function keep(ev) events[#events + 1] = ev end
local base = "https://localhost:" .. E.https_port .. "/"
local o = { ca_file = E.ca_file, rate = false, retry = { attempts = 3, random = function() return 0 end },
  timeout = tonumber(args.timeout) or 10, hooks = { request = keep, response = keep, retry = keep, error = keep } }
local c, v, err
if args.api == "rest" then
  o.base_url, o.token = base .. "rest/", E.token
  c = planapi.planfix_rest(o)
  if args.op == "read" then v, err = c:call("get-task-by-id", { id = 1 })
  else v, err = c:call("post-task", { name = "call-events-nginx" }) end
elseif args.api == "xml" then
  o.url, o.account, o.api_key, o.token = base .. "xml/", E.xml.account, E.xml.api_key, E.xml.token
  c = planapi.planfix_xml(o)
  if args.op == "read" then v, err = c.task:get { id = 1 }
  else v, err = c.task:add { title = "call-events-nginx" } end
else
  o.url, o.api_key, o.strict = base .. "planado/v2/", E.planado_key, true
  c = planapi.planado(o)
  if args.op == "read" then v, err = c.jobs:get "job-ext-1"
  else v, err = c.jobs:create { description = "call-events-nginx" } end
end
ngx.say(planapi.json.encode { ok = v ~= nil, kind = err and err.kind or "", transport = c.transport_kind,
  cosockets = ngx.get_phase() == "content", events = events })
c:close()
]==]

local function lua_literal(v)
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = ("[%q] = %s"):format(k, lua_literal(x)) end
    return "{ " .. table.concat(parts, ", ") .. " }"
  end
  return type(v) == "string" and ("%q"):format(v) or tostring(v)
end

local describe_nginx = gateway.available and describe or pending

describe_nginx("call events under nginx (cosockets)", function()
  local gw, port

  setup(function()
    local env = sandbox.env()
    port = gateway.free_port()
    local values = { https_port = env.https_port, ca_file = env.ca_file, token = sandbox.TOKEN,
      planado_key = sandbox.PLANADO_KEY, xml = sandbox.XML }
    -- the test server and its handler, in the gateway's dir (gone with it)
    local function include(g)
      portable.write_file(g.dir .. "/events.lua", (HANDLER:gsub("local E = %.%.%.\n",
        function() return "local E = " .. lua_literal(values) .. "\n" end)))
      local server = "server {\n  listen 127.0.0.1:%d;\n  location = /events { content_by_lua_file %s; }\n}\n"
      portable.write_file(g.dir .. "/events.conf", server:format(port, g.dir .. "/events.lua"))
      return g.dir .. "/events.conf"
    end
    gw = gateway.start(gateway.new { include = include })
  end)

  teardown(function()
    gateway.stop(gw)
    sandbox.reset()
  end)

  before_each(function() sandbox.reset() end)

  local function run(name, op, timeout)
    local r = gateway.http(port, "GET", ("/events?api=%s&op=%s&timeout=%s"):format(name, op, timeout or 10))
    local status, body = r.status, r.body
    assert.equal(200, status, body)
    assert_no_secret(body)
    local file = assert(io.open(LOG_PATH, "a")) -- the events as they came, for the secret scan
    file:write(body, "\n")
    file:close()
    local out = assert(planapi.json.decode(body))
    local names = {}
    for i, ev in ipairs(out.events) do
      names[i] = ev.event
      assert_common(ev, APIS[name], ev.attempt)
    end
    out.names = table.concat(names, " ")
    return out
  end

  for _, name in ipairs(ORDER) do
    it(name .. ": success, API error, retry and timeout fire their events on cosockets", function()
      local out = run(name, "read")
      assert.is_true(out.ok)
      assert.is_true(out.cosockets)
      assert.equal("auto", out.transport) -- cosockets in the content phase
      assert.equal("request response", out.names)
      assert.equal(200, out.events[2].status)

      sandbox.fault { mode = "status", status = 404, count = 1 }
      out = run(name, "read")
      assert.is_false(out.ok)
      assert.equal("request response error", out.names)
      assert.equal(out.kind, out.events[3].kind)
      assert.equal(404, out.events[3].status)

      sandbox.fault { mode = "status", status = 503, count = 1 }
      out = run(name, "read")
      assert.is_true(out.ok)
      assert.equal("request response retry request response", out.names)
      assert.equal(2, out.events[4].attempt)

      sandbox.fault { mode = "slow", delay = 0.8, count = 1 }
      out = run(name, "write", 0.3)
      assert.is_false(out.ok)
      assert.equal("timeout", out.kind)
      assert.equal("request error", out.names)
      assert.equal("timeout", out.events[2].kind)
    end)
  end
end)
