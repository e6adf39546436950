-- A receiver without writing HTTP: planapi.events.server (plain Lua on
-- luasocket) and the `planapi receive` command that runs a handler script.
--   1. the server in this process, with the real receiver core: requests read
--      with one deadline (a stalled sender does not hold the next one), bodies
--      capped, chunked and 100-continue bodies, a burst answered before any
--      handling;
--   2. the command against the sandbox's Planado sender (every event sent
--      twice): each event handled once by the script, a failing handler
--      handled again by the pending sweep, secrets never on the command line.
local planapi = require "planapi"
local core = require "planapi.core"
local socket = require "socket"
local sandbox = require "sandbox"
local portable = require "portable"
local events_server = require "planapi.events.server"

local SECRET = "whsec-receive-cli-0123456789"
require("journal").secret(SECRET) -- handed to the receiver process: the secret scan looks for it

-- ------------------------------------------------------------------ helpers

-- A raw HTTP request written on a fresh connection (not read yet).
local function send_raw(port, text)
  local c = assert(socket.connect("127.0.0.1", port))
  assert(c:send(text))
  return c
end

local function post_text(path, body, headers)
  local lines = { ("POST %s HTTP/1.1"):format(path), "Host: 127.0.0.1" }
  for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

-- The answer on c: status, body (the server closes the connection).
local function answer_of(c, timeout)
  c:settimeout(timeout or 5)
  local text, _, partial = c:receive "*a"
  c:close()
  text = text or partial or ""
  return tonumber(text:match "^HTTP/1%.1 (%d+)"), text:match "\r\n\r\n(.*)$", text
end

-- Whether c has bytes to read right now.
local function readable(c)
  local r = socket.select({ c }, nil, 0)
  return r and #r > 0
end

local function event_body(id, extra)
  return planapi.json.encode { id = id, note = extra or "x" }
end

-- The real receiver core with a small parse: the event id is the body's id.
local function receiver(opts)
  local o = { secret = SECRET, secret_in = "header:X-Token", lease = 60, retry_delay = 0.05,
    parse = function(_, fields)
      if type(fields) ~= "table" or type(fields.id) ~= "string" then return nil, "no id" end
      return { id = fields.id, note = fields.note }
    end }
  for k, v in pairs(opts or {}) do o[k] = v end
  return planapi.events.receiver(o)
end

-- ------------------------------------------------------------------ 1. the server

describe("events.server in this process", function()
  local server, handled
  local function new_server(opts)
    handled = {}
    local o = { receiver = receiver(opts and opts.receiver), listen = "127.0.0.1:0", read_timeout = 0.5,
      handler = function(ev) handled[#handled + 1] = ev.id return true end }
    for k, v in pairs(opts or {}) do if k ~= "receiver" then o[k] = v end end
    server = events_server.new(o)
    return select(2, server:address())
  end
  after_each(function() if server then server:close() server = nil end end)

  -- A first request as raw text, then an event "next_id" on a second
  -- connection, two steps of the server: both connections, seconds taken.
  local function first_then_next(port, first_text, next_id)
    local first = send_raw(port, first_text)
    local next_one = send_raw(port, post_text("/hook", event_body(next_id), { ["X-Token"] = SECRET }))
    local t0 = core.monotime()
    server:step(1)
    server:step(1)
    return first, next_one, core.monotime() - t0
  end

  it("answers at once, then handles; a wrong secret is refused and never handled", function()
    local port = new_server()
    local good = send_raw(port, post_text("/hook", event_body "e1", { ["X-Token"] = SECRET }))
    local bad = send_raw(port, post_text("/hook", event_body "e2", { ["X-Token"] = "wrong" }))
    server:step(1) -- serves both: the second connection waits while the first event is queued
    local status, body = answer_of(good)
    assert.equal(200, status)
    assert.equal("new", planapi.json.decode(body).status)
    assert.equal(401, (answer_of(bad)))
    assert.same({ "e1" }, handled)
  end)

  it("a stalled sender holds the server for read_timeout, not the next sender's whole wait", function()
    local port = new_server()
    local stalled, next_one, took = first_then_next(port,
      "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"id\":", "e3")
    assert.equal(200, (answer_of(next_one)))
    assert.is_true(took >= 0.45 and took < 3, "served both in " .. took .. " s")
    assert.same({ "e3" }, handled)
    stalled:close()
  end)

  -- One connection at a time: a head that is slow to parse (a header value
  -- of blanks with a letter after them, within the 64 KB head) would hold
  -- every other sender, unauthenticated, for as long as the parse takes.
  it("parses a head of blank-padded headers in linear time: the next sender is answered at once", function()
    local port = new_server()
    local pad = "a" .. (" "):rep(60000) .. "b"
    local padded, next_one, took = first_then_next(port,
      post_text("/hook", event_body "p1", { ["X-Token"] = SECRET, ["X-Pad"] = pad }), "p2")
    assert.equal(200, (answer_of(padded)))
    assert.equal(200, (answer_of(next_one)))
    assert.is_true(took < 1.5, "both served in " .. took .. " s")
    table.sort(handled)
    assert.same({ "p1", "p2" }, handled)
  end)

  it("caps the body at max_body + 1 bytes: an oversized one is 413, never read whole", function()
    local port = new_server { receiver = { max_body = 1000 } }
    -- Declares 10 MB and sends 2 KB: the server reads 1001 bytes and answers.
    local c = send_raw(port, "POST /hook HTTP/1.1\r\nHost: x\r\nX-Token: " .. SECRET
      .. "\r\nContent-Length: 10000000\r\n\r\n" .. ("a"):rep(2000))
    server:step(1)
    assert.equal(413, (answer_of(c)))
    assert.same({}, handled)
  end)

  it("reads a chunked body, answers Expect: 100-continue, and decodes the query", function()
    local port = new_server { receiver = { secret_in = "query:token" } }
    local body = event_body "e4"
    local c = send_raw(port, ("POST /hook?token=%s&x=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      .. "Expect: 100-continue\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"):format(core.url_escape(SECRET),
      5, body:sub(1, 5), #body - 5, body:sub(6)))
    server:step(1)
    local first, _, text = answer_of(c)
    assert.equal(100, first)
    assert.matches("^HTTP/1%.1 100 Continue\r\n\r\n", text)
    assert.equal(200, tonumber(text:match "\r\n\r\nHTTP/1%.1 (%d+)"), text) -- the final status follows
    assert.same({ "e4" }, handled)
  end)

  it("answers every sender of a burst before handling any event", function()
    local conns, answered_before = {}, {}
    local port = new_server { handler = function(ev)
      local n = 0
      for _, c in ipairs(conns) do if readable(c) then n = n + 1 end end
      answered_before[#answered_before + 1] = n
      handled[#handled + 1] = ev.id
      return true
    end }
    for i = 1, 8 do
      conns[i] = send_raw(port, post_text("/hook", event_body("b" .. i), { ["X-Token"] = SECRET }))
    end
    -- Let the kernel queue all eight connections before the server looks.
    socket.sleep(0.1)
    server:step(1)
    assert.equal(8, #handled)
    for _, n in ipairs(answered_before) do assert.equal(8, n) end
    for _, c in ipairs(conns) do assert.equal(200, (answer_of(c))) end
  end)

  it("a handler that fails is handled again by the sweep between connections, then once only", function()
    local calls = 0
    local port = new_server { pending_every = 0.05, handler = function(ev)
      calls = calls + 1
      if calls == 1 then return nil, "try later" end
      handled[#handled + 1] = ev.id
      return true
    end }
    local c = send_raw(port, post_text("/hook", event_body "f1", { ["X-Token"] = SECRET }))
    server:step(1)
    assert.equal(200, (answer_of(c)))
    local deadline = core.monotime() + 5
    while #handled == 0 and core.monotime() < deadline do server:step(0.05) end
    for _ = 1, 5 do server:step(0.05) end
    assert.same({ "f1" }, handled)
    assert.equal(2, calls)
  end)

  -- The sweep runs up to 100 handlers; a sender that connects meanwhile
  -- must not wait for all of them (Planado gives up after 10 s).
  it("answers a sender that connects during the sweep before the sweep's next handler", function()
    local now = 1700000000
    local late, answered_at_run, runs = nil, {}, 0
    local port
    port = new_server { pending_every = 0.05, receiver = { clock = function() return now end }, handler = function(ev)
      if ev.id == "late" or ev.attempts == 1 then
        if ev.id ~= "late" then return nil, "try later" end
        handled[#handled + 1] = ev.id
        return true
      end
      runs = runs + 1
      if not late then
        late = send_raw(port, post_text("/hook", event_body "late", { ["X-Token"] = SECRET }))
      else
        answered_at_run[#answered_at_run + 1] = readable(late)
      end
      socket.sleep(0.05)
      handled[#handled + 1] = ev.id
      return true
    end }
    local conns = {}
    for i = 1, 6 do conns[i] = send_raw(port, post_text("/hook", event_body("s" .. i), { ["X-Token"] = SECRET })) end
    socket.sleep(0.1)
    server:step(1) -- answers the six, each handler fails once
    for _, c in ipairs(conns) do assert.equal(200, (answer_of(c))) end
    now = now + 100 -- all six due at once: one sweep takes them all
    local deadline = core.monotime() + 10
    while #handled < 7 and core.monotime() < deadline do server:step(0.05) end
    assert.equal(6, runs)
    assert.same({ true, true, true, true, true }, answered_at_run)
    assert.equal(200, (answer_of(late)))
  end)

  it("serves several receivers on one port by path, and answers 404 elsewhere", function()
    local a, b = {}, {}
    server = events_server.new { listen = "127.0.0.1:0", read_timeout = 0.5, routes = {
      ["/a"] = { receiver = receiver(), handler = function(ev) a[#a + 1] = ev.id return true end },
      ["/b"] = { receiver = receiver { secret_in = "query:token" },
        handler = function(ev) b[#b + 1] = ev.id return true end },
    } }
    local port = select(2, server:address())
    local to_a = send_raw(port, post_text("/a", event_body "ra", { ["X-Token"] = SECRET }))
    local to_b = send_raw(port, post_text("/b?token=" .. SECRET, event_body "rb"))
    local elsewhere = send_raw(port, post_text("/c", event_body "rc", { ["X-Token"] = SECRET }))
    for _ = 1, 3 do server:step(0.2) end
    assert.equal(200, (answer_of(to_a)))
    assert.equal(200, (answer_of(to_b)))
    assert.equal(404, (answer_of(elsewhere)))
    assert.same({ "ra" }, a)
    assert.same({ "rb" }, b)
  end)

  it("refuses bad options and a port in use with errors that say so", function()
    assert.has_error(function() events_server.new { receiver = receiver(), handler = print, lisen = "x" } end)
    local ok, err = pcall(events_server.new, { receiver = receiver(), handler = print, listen = "localhost" })
    assert.is_false(ok)
    assert.equal("config", err.kind)
    local port = new_server()
    ok, err = pcall(events_server.new, { receiver = receiver(), handler = print, listen = "127.0.0.1:" .. port })
    assert.is_false(ok)
    assert.matches("cannot listen on 127%.0%.0%.1:" .. port, tostring(err))
  end)
end)

-- ------------------------------------------------------------------ 2. the command

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Start `planapi receive ...` on a free port: { pid, port, out, err_file }.
local function start_cli(words, extra_env)
  local err_file = os.tmpname()
  local cmd = ("exec sh -c %s"):format(shell_quote(("echo $$; exec %s bin/planapi receive %s 2>%s")
    :format(sandbox.cli_env(extra_env), words, err_file)))
  local out = assert(portable.popen(cmd))
  local pid = assert(tonumber(out:read "*l"))
  local line = out:read "*l"
  local port = line and tonumber(line:match "listening on http://127%.0%.0%.1:(%d+)/")
  return { pid = pid, port = port, out = out, err_file = err_file, first = line }
end

-- Ctrl-C, then its exit code and its log (stderr).
local function stop_cli(r)
  os.execute("kill -INT " .. r.pid .. " 2>/dev/null")
  local rest = r.out:read "*a"
  local _, _, code = r.out:close()
  local log = portable.read_file(r.err_file) or ""
  os.remove(r.err_file)
  require("journal").output((r.first or "") .. rest .. log)
  return code, log
end

local function lines_of(path)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end

-- A handler script appending each event's id to log; fails the first
-- fail_first calls (retryable), counting them in log .. ".failed".
local function handler_script(dir, fail_first)
  local path = dir .. "/on_event.lua"
  portable.write_file(path, ([[
local log, fail_first = %q, %d
local function count(p)
  local n = 0
  local f = io.open(p)
  if f then for _ in f:lines() do n = n + 1 end f:close() end
  return n
end
return function(event)
  if count(log .. ".failed") < fail_first then
    local f = assert(io.open(log .. ".failed", "a")) f:write(event.id, "\n") f:close()
    return nil, "not yet"
  end
  local f = assert(io.open(log, "a"))
  f:write(event.id, "\n")
  f:close()
  return true
end
]]):format(dir .. "/handled.log", fail_first or 0))
  return path
end

describe("planapi receive", function()
  local dir, cli
  before_each(function()
    sandbox.reset()
    dir = portable.tmpdir()
  end)
  after_each(function()
    if cli then stop_cli(cli) cli = nil end
    portable.rmtree(dir)
  end)

  it("takes the sandbox's Planado deliveries (each sent twice): every event handled once", function()
    cli = start_cli(("planado --listen 127.0.0.1:0 --handler %s --store file:%s/store")
      :format(handler_script(dir), dir), { PLANADO_WEBHOOK_SECRET = SECRET })
    assert.is_number(cli.port, cli.first)
    sandbox.config { planado = { webhook = { delays = { 0.2, 0.4 }, timeout = 2, max_attempts = 4, duplicate = true } } }
    sandbox.control("POST", "planado/webhooks", { url = ("http://127.0.0.1:%d/hook"):format(cli.port), secret = SECRET })
    local pd = sandbox.planado()
    local uuids = {}
    for i = 1, 3 do
      uuids[i] = assert(pd.jobs:create { external_id = "rcv-" .. i, description = "job " .. i })
      assert(pd.jobs:update(uuids[i], { description = "job " .. i .. ", updated" }))
    end
    assert.equal(0, sandbox.control("POST", "planado/webhooks/flush", { timeout = 20 }).pending)
    local deliveries = sandbox.control("GET", "planado/deliveries").deliveries
    local sent = {}
    for _, d in ipairs(deliveries) do
      assert.equal(200, d.status)
      assert.is_true(d.duration_ms < 2000, "answered in " .. d.duration_ms .. " ms")
      sent[d.event_uuid] = (sent[d.event_uuid] or 0) + 1
    end
    local want = {}
    for id, n in pairs(sent) do
      assert.equal(2, n) -- each event delivered twice
      want[#want + 1] = id
    end
    assert.equal(6, #want) -- three jobs created and updated
    -- The last answer may be out before its handler ran: wait for it.
    local deadline = core.monotime() + 10
    while #lines_of(dir .. "/handled.log") < #want and core.monotime() < deadline do socket.sleep(0.05) end
    local got = lines_of(dir .. "/handled.log")
    table.sort(want)
    table.sort(got)
    assert.same(want, got)
    local code = stop_cli(cli)
    cli = nil
    assert.equal(130, code)
  end)

  it("a failing handler is handled again by the lease, never by the sender: once in the end", function()
    local profiles = dir .. "/profiles.json"
    portable.write_file(profiles, planapi.json.encode { hooks = { planado_webhook = { secret = SECRET,
      retry_delay = 0.2 } } })
    cli = start_cli(("planado --profile hooks --listen 127.0.0.1:0 --handler %s --store file:%s/store")
      :format(handler_script(dir, 2), dir), { PLANAPI_PROFILES = profiles })
    assert.is_number(cli.port, cli.first)
    sandbox.control("POST", "planado/webhooks", { url = ("http://127.0.0.1:%d/hook"):format(cli.port), secret = SECRET })
    local uuid = assert(sandbox.planado().jobs:create { external_id = "rcv-fail", description = "job" })
    assert.equal(0, sandbox.control("POST", "planado/webhooks/flush", { timeout = 20 }).pending)
    local deadline = core.monotime() + 10
    while #lines_of(dir .. "/handled.log") == 0 and core.monotime() < deadline do socket.sleep(0.1) end
    local events = sandbox.control("GET", "planado/events?entity_uuid=" .. uuid).events
    assert.same({ events[1].event_uuid }, lines_of(dir .. "/handled.log"))
    assert.equal(2, #lines_of(dir .. "/handled.log.failed"))
    -- Planado delivered once: the failures were the receiver's to retry.
    assert.equal(1, #sandbox.control("GET", "planado/deliveries").deliveries)
    socket.sleep(1.5) -- a few more sweeps: nothing handled twice
    assert.equal(1, #lines_of(dir .. "/handled.log"))
  end)

  it("takes the sandbox's Planfix scenario requests: right secret handled once, wrong secret refused", function()
    cli = start_cli(("planfix --listen 127.0.0.1:0 --handler %s --store file:%s/store")
      :format(handler_script(dir), dir), { PLANFIX_EVENTS_SECRET = SECRET })
    assert.is_number(cli.port, cli.first)
    sandbox.config { scenarios = { factor = 0.001, delays = { 100 } } } -- one retry, 0.1 s later
    local url = ("http://127.0.0.1:%d/hooks/planfix"):format(cli.port)
    local body = { event = "{{event}}", task_id = "{{task.id}}", at = "{{change_time}}", secret = SECRET }
    sandbox.control("POST", "planfix/scenarios", { url = url, triggers = { "task_created" }, body = body })
    local wrong = { event = "{{event}}", task_id = "{{task.id}}", secret = "not-the-secret" }
    sandbox.control("POST", "planfix/scenarios", { url = url, triggers = { "task_created" }, body = wrong,
      account = "other" })
    local rest = sandbox.rest()
    local ids = {}
    for i = 1, 3 do ids[i] = assert(rest.tasks:create { name = "receive " .. i }) end
    sandbox.control_status("POST", "planfix/scenarios/flush", { timeout = 20 })
    local requests = sandbox.control("GET", "planfix/requests").requests
    local good, refused = 0, 0
    for _, r in ipairs(requests) do
      if r.account == "main" then
        assert.equal(200, r.status)
        good = good + 1
      else
        assert.equal(401, r.status)
        refused = refused + 1
      end
    end
    assert.equal(3, good) -- answered at once: never retried
    assert.equal(6, refused) -- and the one retry of each
    local deadline = core.monotime() + 10
    while #lines_of(dir .. "/handled.log") < 3 and core.monotime() < deadline do socket.sleep(0.05) end
    socket.sleep(0.5)
    local handled = lines_of(dir .. "/handled.log")
    assert.equal(3, #handled)
    table.sort(handled)
    for i = 2, 3 do assert.are_not.equal(handled[i - 1], handled[i]) end
  end)

  it("takes the secret from the environment or a profile, never from the command line", function()
    local function run(words, env)
      local p = assert(portable.popen(("%s bin/planapi receive %s 2>&1"):format(sandbox.cli_env(env), words)))
      local out = p:read "a"
      local _, _, code = p:close()
      return out, code
    end
    local script = handler_script(dir)
    local out, code = run("planado --secret " .. SECRET .. " --handler " .. script)
    assert.equal(2, code)
    assert.matches("unknown option %-%-secret", out)
    -- The value glued on with "=" is not echoed back (to a terminal, a log, CI's output).
    out, code = run("planado --secret=" .. SECRET .. " --handler " .. script)
    assert.equal(2, code)
    assert.matches("unknown option %-%-secret", out)
    for i = 1, #SECRET - 5 do
      assert.is_nil(out:find(SECRET:sub(i, i + 5), 1, true), "a fragment of the secret in: " .. out)
    end
    out, code = run("planfix --handler " .. script)
    assert.equal(2, code)
    assert.matches("PLANFIX_EVENTS_SECRET", out)
    out, code = run("planado --handler " .. dir .. "/missing.lua", { PLANADO_WEBHOOK_SECRET = SECRET })
    assert.equal(2, code)
    assert.matches("cannot load the handler", out)
    out, code = run("planado --handler " .. script .. " --store mongo://x", { PLANADO_WEBHOOK_SECRET = SECRET })
    assert.equal(2, code)
    assert.matches("%-%-store takes memory, file:DIR or redis://", out)
    -- A Redis password neither (ps shows the command line): PLANAPI_EVENTS_STORE holds such a URL.
    local password = "redis-pw-" .. SECRET
    out, code = run(("planado --max-requests 0 --handler %s --store redis://:%s@127.0.0.1:1/0"):format(script, password),
      { PLANADO_WEBHOOK_SECRET = SECRET })
    assert.equal(2, code)
    assert.matches("PLANAPI_EVENTS_STORE", out)
    assert.is_nil(out:find(password:sub(1, 9), 1, true), out)
    out, code = run("planado --handler " .. script .. " --max-requests 0 --listen 127.0.0.1:0",
      { PLANADO_WEBHOOK_SECRET = SECRET, PLANAPI_EVENTS_STORE = "file:" .. dir .. "/env-store" })
    assert.equal(0, code, out)
    assert.truthy(portable.read_file(dir .. "/env-store/lock") or core.list_dir(dir .. "/env-store"),
      "the store of PLANAPI_EVENTS_STORE was not opened")
  end)
end)
