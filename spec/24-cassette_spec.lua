-- Cassettes (lua/planapi/testing/cassette.lua) end to end: a script's
-- session with the three APIs (a Planfix REST export of several pages, a
-- Planfix XML task update in the login mode, with auth.login, a sid and a
-- signature, and a Planado create) recorded against the sandbox, then
-- replayed by clients pointed at a port that refuses connections. The oracle
-- is the sandbox itself: the replayed answers must be the bytes it sent, the
-- results those the recording saw, and the file must hold none of the
-- secrets the sandbox's clients use (checked here and by tools/scan-secrets,
-- which make test also runs over this cassette in build/journal).
local planapi = require "planapi"
local core = require "planapi.core"
local cassette = require "planapi.testing.cassette"
local sandbox = require "sandbox"
local journal = require "journal"
local portable = require "portable"

-- A refusing endpoint: nothing listens on port 1 of the loopback.
local NOWHERE = "https://127.0.0.1:1/"

-- A resumable export of tasks to JSON Lines (README, Resumable exports),
-- three pages of two: the file it wrote.
local function export(rest)
  local dir = portable.tmpdir()
  local ex = assert(planapi.cursor.export { output = dir .. "/tasks.jsonl", cursor = dir .. "/tasks.cursor" })
  local pager = rest:pager("get-task-list", { fields = "id,name" }, { cursor = ex.position, page_size = 2,
    max_pages = 3 })
  assert(ex:run(pager))
  local text = portable.read_file(dir .. "/tasks.jsonl")
  portable.rmtree(dir)
  return text
end

-- The session a user's script would run.
local function script(rest, xml, pd, external_id)
  local out = {}
  out.tasks = export(rest)
  out.update = assert(xml:call("task.update", { task = { id = 1, title = "Title from the cassette spec" } }))
  out.client = assert(pd.clients:create { external_id = external_id, first_name = "Cassette" })
  return out
end

-- What the client sees of each answer (outside the cassette's wrapper).
local function spy(client, seen)
  local transport = client.transport
  client.transport = function(req)
    local res, err = transport(req)
    seen[#seen + 1] = { operation = req.operation, status = res and res.status, body = res and res.body,
      error = err and tostring(err) }
    return res, err
  end
  return client
end

-- Sends counted: the transport a client had before the cassette wrapped it.
local function counting(client, counter)
  local transport = client.transport
  client.transport = function(req)
    counter.sent = counter.sent + 1
    return transport(req)
  end
  return client
end

local function secrets_of(sid)
  return { sandbox.TOKEN, sandbox.PLANADO_KEY, sandbox.XML.api_key, sandbox.XML.token, sandbox.XML.password,
    sandbox.XML.private_key, core.base64(sandbox.XML.api_key .. ":"), sid }
end

describe("a cassette recorded against the sandbox", function()
  local path = journal.cassette_path "three-apis"
  local recorded, recorded_seen, replayed, replayed_seen, sid, sent
  local external_id = ("cassette-%d-%d"):format(os.time(), math.random(1, 1e6))

  setup(function()
    local rec = cassette.record(path)
    recorded_seen = {}
    local xml = sandbox.xml { login = true, private_key = sandbox.XML.private_key }
    recorded = script(spy(rec:wrap(sandbox.rest()), recorded_seen), spy(rec:wrap(xml), recorded_seen),
      spy(rec:wrap(sandbox.planado()), recorded_seen), external_id)
    sid = xml.sid
    assert(rec:save())

    -- The same script again, the sandbox out of reach.
    local tape = cassette.replay(path)
    replayed_seen, sent = {}, { sent = 0 }
    local function replaying(client) return spy(tape:wrap(counting(client, sent)), replayed_seen) end
    replayed = script(replaying(sandbox.rest { base_url = NOWHERE .. "rest/" }),
      replaying(sandbox.xml { url = NOWHERE .. "xml/", login = true, private_key = sandbox.XML.private_key }),
      replaying(sandbox.planado { url = NOWHERE .. "planado/v2/" }), external_id)
    assert(tape:done())
  end)

  it("replays byte-exact: the same answers and results, and nothing is sent", function()
    assert.equal(0, sent.sent)
    local operations = {}
    for i, e in ipairs(recorded_seen) do operations[i] = e.operation end
    assert.same({ "get-task-list", "get-task-list", "get-task-list", "auth.login", "task.update", "POST clients" },
      operations)
    assert.equal(#recorded_seen, #replayed_seen)
    for i, e in ipairs(recorded_seen) do
      local r = replayed_seen[i]
      assert.equal(e.operation, r.operation)
      assert.equal(e.status, r.status)
      assert.is_nil(r.error)
      -- auth.login's answer is the session id: masked on write, so the
      -- replayed client logs in with the mask (and sends it, which matches).
      if e.operation ~= "auth.login" then assert.equal(e.body, r.body, e.operation) end
    end
    assert.same(recorded, replayed)
    assert.equal(6, #portable.lines(replayed.tasks))
    assert.is_string(replayed.client)
  end)

  it("holds no secret: none of the sandbox's credentials, the sid, the login or the signature", function()
    local text = assert(portable.read_file(path))
    assert.is_string(sid)
    for _, secret in ipairs(secrets_of(sid)) do
      assert.is_nil(text:find(secret, 1, true), "a secret of " .. #secret .. " characters is in the cassette")
    end
    assert.is_nil(text:find(sid:sub(9, 20), 1, true), "a piece of the session id is in the cassette")
    assert.is_nil(text:find("<login>" .. sandbox.XML.login, 1, true))
    -- every sid and signature element is masked, and there are some
    local masked = 0
    for name, value in text:gmatch "<(%a+)>([^<]*)</%1>" do
      if name == "sid" or name == "signature" then
        assert.equal("***", value)
        masked = masked + 1
      end
    end
    assert.equal(4, masked) -- a signature in both requests, the sid in task.update and in login's answer
    assert.truthy(text:find('"Authorization": "Bearer ***"', 1, true))
    assert.truthy(text:find('"Authorization": "Basic ***"', 1, true))
  end)

  it("passes tools/scan-secrets, which finds the same session recorded without masking", function()
    local root = portable.tmpdir()
    finally(function() portable.rmtree(root) end)
    assert(core.mkdir(root .. "/journal"))
    portable.write_file(root .. "/journal/secrets-spec.txt", table.concat(secrets_of(sid), "\n") .. "\n")
    portable.write_file(root .. "/masked.cassette.json", assert(portable.read_file(path)))
    -- the negative control: one REST call recorded with mask = false
    local raw = cassette.record(root .. "/raw.cassette.json", { mask = false })
    assert(raw:wrap(sandbox.rest()):call("get-task-by-id", { id = 1 }))
    local out, code = portable.run("tools/scan-secrets '" .. root .. "'")
    assert.equal(1, code, out)
    assert.truthy(out:find("raw.cassette.json", 1, true), out)
    assert.is_nil(out:find("masked.cassette.json", 1, true), out)
  end)

  it("answers an unexpected request with a config error naming it and the closest recorded one", function()
    local tape = cassette.replay(path)
    local counter = { sent = 0 }
    local rest = tape:wrap(counting(sandbox.rest { base_url = NOWHERE .. "rest/" }, counter))
    assert(rest:call("get-task-list", { fields = "id,name", offset = 0, pageSize = 2 }))
    local result, err = rest:call("get-task-list", { fields = "id,name", offset = 6, pageSize = 2 })
    assert.is_nil(result)
    assert.equal("config", err.kind)
    assert.equal(false, err.request_sent)
    assert.equal(1, err.attempts) -- not retried
    local message = tostring(err)
    assert.truthy(message:find("unexpected request 2 to cassette", 1, true), message)
    assert.truthy(message:find("get-task-list (POST /rest/task/list)", 1, true), message)
    assert.truthy(message:find("closest recorded is exchange 2", 1, true), message)
    assert.truthy(message:find("differs in body.offset (recorded 2, sent 6)", 1, true), message)
    -- a page recorded, but not the next one
    result, err = rest:call("get-task-list", { fields = "id,name", offset = 4, pageSize = 2 })
    assert.is_nil(result)
    assert.truthy(tostring(err):find("it matches exchange 3, get-task-list (POST /rest/task/list), but exchange 2 "
      .. "comes first", 1, true), tostring(err))
    -- an operation the cassette never saw
    result, err = rest:call("get-task-by-id", { id = 7 })
    assert.is_nil(result)
    assert.equal("config", err.kind)
    assert.truthy(tostring(err):find("get-task-by-id (GET /rest/task/7)", 1, true), tostring(err))
    assert.equal(0, counter.sent)
    local done, left = tape:done()
    assert.is_nil(done)
    assert.truthy(tostring(left):find("5 recorded exchange(s) never requested", 1, true), tostring(left))
  end)
end)
