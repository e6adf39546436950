-- Cassettes' rules without a server (spec/24 records against the sandbox):
-- masking by name and position whatever the secrets' values (random ones,
-- which the cassette is never told), the client's own secrets wherever they
-- appear, matching in API terms (member order, signatures and masked values
-- do not count), the order and reuse options, bytes that are not UTF-8,
-- recorded failures, a stable file, and the mistakes that raise.
local planapi = require "planapi"
local core = require "planapi.core"
local cassette = require "planapi.testing.cassette"
local testing = require "planapi.testing"
local journal = require "journal"
local portable = require "portable"

local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local function random_secret(n)
  local out = {}
  for i = 1, n or 24 do
    local k = math.random(1, #ALNUM)
    out[i] = ALNUM:sub(k, k)
  end
  return table.concat(out)
end

-- Whether text holds secret or any 8 characters of it.
local function leaks(text, secret)
  for i = 1, #secret - 7 do
    if text:find(secret:sub(i, i + 7), 1, true) then return true end
  end
  return false
end

local BASE = "https://acme.example/"

-- A transport that answers every request with answer(req) and counts.
local function server(answer)
  local s = { requests = {} }
  s.transport = function(req)
    s.requests[#s.requests + 1] = req
    return answer(req)
  end
  return s
end

local function json_answer(body, headers)
  local h = { ["Content-Type"] = "application/json; charset=utf-8" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return { status = 200, headers = h, body = body }
end

local function xml_answer(inner)
  return { status = 200, headers = { ["content-type"] = "application/xml" },
    body = '<?xml version="1.0" encoding="UTF-8"?><response status="ok">' .. inner .. "</response>" }
end

local function client_opts(extra)
  local o = { rate = false, retry = { attempts = 1 } }
  for k, v in pairs(extra) do o[k] = v end
  return o
end

describe("cassette masking", function()
  it("masks credentials by name and position, never told their values (25 random sessions)", function()
    for _ = 1, 25 do
      local s = { token = random_secret(), api_key = random_secret(), password = random_secret(),
        private_key = random_secret(), sid = random_secret(32), planado = random_secret(),
        webhook = random_secret(), cookie = random_secret(), url_token = random_secret(), login = random_secret(12) }
      local path = journal.cassette_path "masking"
      local rec = cassette.record(path)
      local srv = server(function(req)
        if req.operation == "auth.login" then return xml_answer("<sid>" .. s.sid .. "</sid>") end
        if req.operation:match "^%l+%." then return xml_answer("<task><id>1</id></task>") end
        return json_answer(('{"uuid":"u-1","secret":"%s","headers":{"X-Planado-Secret":"%s"}}')
          :format(s.webhook, s.webhook), { ["Set-Cookie"] = "session=" .. s.cookie .. "; HttpOnly" })
      end)
      -- the option form: the cassette knows nothing of these clients
      local rest = planapi.planfix_rest(client_opts { base_url = BASE .. "rest/", token = s.token,
        transport = rec:transport(srv.transport) })
      local xml = planapi.planfix_xml(client_opts { url = BASE .. "xml/", account = "acme", api_key = s.api_key,
        login = s.login, password = s.password, private_key = s.private_key, transport = rec:transport(srv.transport) })
      local pd = planapi.planado(client_opts { url = BASE .. "planado/v2/", api_key = s.planado,
        auth_header = "X-Planado-API-Key", transport = rec:transport(srv.transport) })
      assert(rest:call("get-task-by-id", { id = 1 }))
      assert(xml:call("task.get", { task = { id = 1 } }))
      assert(pd:call("POST", "webhooks", { url = "https://hooks.example/in", secret = s.webhook },
        { query = { api_token = s.url_token, key = s.url_token } }))
      local text = assert(portable.read_file(path))
      for name, secret in pairs(s) do
        assert.is_false(leaks(text, secret), name .. " leaked into the cassette")
      end
      -- what was masked is still there to read
      assert.truthy(text:find('"Authorization": "Bearer ***"', 1, true))
      assert.truthy(text:find("api_token=***&key=***", 1, true) or text:find("key=***&api_token=***", 1, true))
      os.remove(path)
    end
  end)

  it("masks the client's own secrets wherever they appear, and the cassette's secrets option", function()
    local token, extra = random_secret(), random_secret()
    local path = journal.cassette_path "client-secrets"
    local rec = cassette.record(path, { secrets = { extra } })
    local srv = server(function()
      return json_answer('{"result":"success","task":{"id":9,"name":"' .. token .. '","note":"' .. extra .. '"}}')
    end)
    local rest = rec:wrap(planapi.planfix_rest(client_opts { base_url = BASE .. "rest/", token = token,
      transport = srv.transport }))
    assert(rest:call("post-task", { name = "pasted " .. token .. " by mistake" }))
    local text = assert(portable.read_file(path))
    assert.is_false(leaks(text, token))
    assert.is_false(leaks(text, extra))
  end)

  it("masks XML login only in auth.login, and a URL's user:password@", function()
    local mask = require "planapi.testing.cassette_mask"
    local user_add = '<request method="user.add"><user><login>ann</login><password>p4ss-word</password></user>'
      .. "</request>"
    assert.equal("<request method=\"user.add\"><user><login>ann</login><password>***</password></user></request>",
      mask.xml(user_add, "user.add"))
    assert.equal("<login>***</login>", mask.xml("<login>ann</login>", "auth.login"))
    assert.equal("https://***@host/x?a=1&token=***#f", mask.url("https://u:pw@host/x?a=1&token=abc#f"))
    assert.equal('{"a":"x","client_secret":"***","n":{"Password":"***"},"s":"\\"token\\""}',
      mask.json('{"a":"x","client_secret":"s\\"3","n":{"Password":"p"},"s":"\\"token\\""}'))
    -- JSON inside a string (Planado's delivery log keeps each request body so)
    assert.equal('{"http_request_body":"{\\"event\\":\\"job.created\\",\\"secret\\":\\"***\\"}","n":1}',
      mask.json('{"http_request_body":"{\\"event\\":\\"job.created\\",\\"secret\\":\\"s3cr3t\\"}","n":1}'))
  end)
end)

describe("cassette replay", function()
  local REST = client_opts { base_url = BASE .. "rest/", token = "replay-token-1" }

  local function rest_with(transport)
    local o = {}
    for k, v in pairs(REST) do o[k] = v end
    o.transport = transport
    return planapi.planfix_rest(o)
  end

  -- A cassette of three reads of tasks 1, 2, 3.
  local function three_reads(path)
    local rec = cassette.record(path)
    local rest = rest_with(rec:transport(server(function(req)
      local id = req.url:match "(%d+)$"
      return json_answer('{"result":"success","task":{"id":' .. id .. '}}')
    end).transport))
    for id = 1, 3 do assert(rest:call("get-task-by-id", { id = id })) end
  end

  local function task_id(rest, id)
    local r, err = rest:call("get-task-by-id", { id = id })
    return r and r.task.id, err
  end

  it("is strict by default: the next request must be the next one recorded", function()
    local path = journal.cassette_path "order"
    three_reads(path)
    local rest = rest_with(cassette.replay(path):transport())
    assert.equal(1, task_id(rest, 1))
    local id, err = task_id(rest, 7)
    assert.is_nil(id)
    assert.equal("config", err.kind)
    assert.truthy(tostring(err):find("closest recorded is exchange 2", 1, true), tostring(err))
    assert.truthy(tostring(err):find("differs in path (recorded /rest/task/2, sent /rest/task/7)", 1, true),
      tostring(err))
    id, err = task_id(rest, 3)
    assert.is_nil(id)
    assert.truthy(tostring(err):find("it matches exchange 3", 1, true), tostring(err))
    assert.equal(2, task_id(rest, 2))
  end)

  it("order = \"any\" plays each exchange once in any order; reuse plays them again", function()
    local path = journal.cassette_path "order-any"
    three_reads(path)
    local tape = cassette.replay(path, { order = "any" })
    local rest = rest_with(tape:transport())
    assert.equal(3, task_id(rest, 3))
    assert.equal(1, task_id(rest, 1))
    local id, err = task_id(rest, 3)
    assert.is_nil(id)
    assert.truthy(tostring(err):find("it matches exchange 3, get-task-by-id (GET /rest/task/3), played already", 1,
      true), tostring(err))
    assert.is_nil((tape:done()))
    assert.equal(2, task_id(rest, 2))
    assert.is_true(tape:done())
    local again = rest_with(cassette.replay(path, { order = "any", reuse = true }):transport())
    for _ = 1, 3 do assert.equal(2, task_id(again, 2)) end
  end)

  it("matches in API terms: member order, the signature and a new session do not count", function()
    local path = journal.cassette_path "xml-terms"
    local rec = cassette.record(path)
    local function xml(transport, key)
      return planapi.planfix_xml(client_opts { url = BASE .. "xml/", account = "acme", api_key = "xml-api-key-1",
        login = "robot", password = "robot-secret-1", private_key = key, transport = transport })
    end
    local sid = random_secret(32)
    local recorded = xml(rec:transport(server(function(req)
      if req.operation == "auth.login" then return xml_answer("<sid>" .. sid .. "</sid>") end
      return xml_answer("<task><id>1</id><title>Тест</title></task>")
    end).transport), "private-key-one")
    local before = assert(recorded:call("task.update", { task = { id = 1, title = "a", description = "b" } }))
    -- another private key (another signature), the masked sid, the same data
    local tape = cassette.replay(path)
    local replayed = xml(tape:transport(), "private-key-two")
    local after = assert(replayed:call("task.update", { task = { description = "b", title = "a", id = 1 } }))
    assert.same(before, after)
    assert.is_true(tape:done())
    local _, err = replayed:call("task.update", { task = { id = 1, title = "c" } })
    assert.equal("config", err.kind)
  end)

  it("gives back bytes that are not UTF-8 as they were, and a recorded failure as it was", function()
    local path = journal.cassette_path "bytes"
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    bytes = table.concat(bytes) .. "\255\254"
    local rec = cassette.record(path)
    local calls = 0
    local rest = rest_with(rec:transport(function()
      calls = calls + 1
      if calls == 1 then return { status = 200, headers = { ["content-type"] = "application/octet-stream" },
        body = bytes } end
      return nil, core.error { kind = "timeout", message = "the request took longer than 1 s", retryable = true }
    end))
    local res = assert(rest:perform(rest:prepare("get-task-by-id", { id = 1 })))
    local _, err1 = rest:call("get-task-by-id", { id = 2 })
    assert.equal("timeout", err1.kind)
    assert.truthy(portable.read_file(path):find('"body_base64"', 1, true))
    local replayed = rest_with(cassette.replay(path):transport())
    local again = assert(replayed:perform(replayed:prepare("get-task-by-id", { id = 1 })))
    assert.equal(res.body, again.body)
    local _, err2 = replayed:call("get-task-by-id", { id = 2 })
    assert.equal(err1.kind, err2.kind)
    assert.equal(err1.message, err2.message)
    assert.equal(err1.retryable, err2.retryable)
  end)

  it("as the transport itself, lends the client its time: a paced, retried session replays at once", function()
    local path = journal.cassette_path "paced"
    local rec = cassette.record(path)
    local fake = testing.fake { testing.answer { status = 503, body = "busy" },
      testing.rest.ok { task = { id = 1 } }, testing.rest.ok { task = { id = 2 } } }
    local recorded = planapi.planfix_rest { base_url = BASE .. "rest/", token = "paced-token-1",
      transport = rec:transport(fake), clock = fake.clock, sleep = fake.sleep }
    assert.equal(1, task_id(recorded, 1))
    assert.equal(2, task_id(recorded, 2))
    -- the client's own pacing (1 a second) and retry policy, on the cassette's clock
    local tape = cassette.replay(path)
    local rest = planapi.planfix_rest { base_url = BASE .. "rest/", token = "paced-token-1", transport = tape }
    assert.equal(1, task_id(rest, 1))
    assert.equal(2, task_id(rest, 2))
    assert.is_true(tape:done())
    -- three requests (the 503, its retry, the second call) paced 1.02 s
    -- apart, waited on the cassette's clock: no second of real time
    assert.is_true(#tape.time.sleeps >= 2)
    assert.is_true(tape.time.slept >= 2 * 1.02 - 1e-9, tostring(tape.time.slept))
  end)

  it("refuses to replay a download that went into a file, whose bytes it never kept", function()
    local path = journal.cassette_path "download"
    local rec = cassette.record(path)
    local rest = rest_with(rec:transport(function()
      return { status = 200, headers = {}, file = "/nonexistent/report.pdf", size = 3 }
    end))
    assert(rest:perform(rest:prepare("get-task-by-id", { id = 1 })))
    local replayed = rest_with(cassette.replay(path):transport())
    local res, err = replayed:perform(replayed:prepare("get-task-by-id", { id = 1 }))
    assert.is_nil(res)
    assert.equal("config", err.kind)
    assert.truthy(tostring(err):find("exchange 1 was a download into a file", 1, true), tostring(err))
  end)

  it("writes the same session as the same text, keys sorted", function()
    local a, b = journal.cassette_path "stable-a", journal.cassette_path "stable-b"
    three_reads(a)
    three_reads(b)
    local text = assert(portable.read_file(a))
    assert.equal(text, portable.read_file(b))
    assert.truthy(text:find('^{\n  "exchanges": %[\n    {\n      "operation": "get%-task%-by%-id",\n'
      .. '      "request": {'))
    assert.truthy(text:find('\n  "planapi_cassette": 1\n}\n$'))
    -- laid out exactly as the whole document encoded at once
    assert.equal(require "planapi.pretty_json"(core.json_decode(text)), text)
  end)

  it("raises a config error for a missing or foreign file and for bad options", function()
    local missing = journal.cassette_path "missing"
    local ok, err = pcall(cassette.replay, missing)
    assert.is_false(ok)
    assert.equal("config", err.kind)
    assert.truthy(tostring(err):find("cannot be read", 1, true))
    local foreign = journal.cassette_path "foreign"
    portable.write_file(foreign, '{"hello":"world"}')
    ok, err = pcall(cassette.replay, foreign)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("is not a planapi cassette", 1, true))
    ok, err = pcall(cassette.replay, foreign, { order = "random" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("'order' must be", 1, true))
    ok, err = pcall(cassette.record, foreign, { masks = false })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("unknown cassette.record option 'masks'", 1, true))
    ok, err = pcall(cassette.record(foreign).wrap, cassette.record(foreign), {})
    assert.is_false(ok)
    assert.equal("config", err.kind)
  end)
end)
