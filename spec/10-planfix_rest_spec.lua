-- The Planfix REST client against the sandbox: calls, statuses, paging,
-- every error kind, retries, pacing, quota, and secrets kept out of errors.
local planapi = require "planapi"
local sandbox = require "sandbox"
local portable = require "portable"

-- Every error a spec here produced, for the secret scan at the end.
local seen_errors = {}
local function keep(err)
  if err ~= nil then seen_errors[#seen_errors + 1] = err end
  return err
end

local function count_requests(method, path)
  local n = 0
  for _, e in ipairs(sandbox.log()) do
    if e.kind == "rest" and e.method == method and e.path == path then n = n + 1 end
  end
  return n
end

describe("Planfix REST client", function()
  local rest
  before_each(function()
    sandbox.reset()
    rest = sandbox.rest()
  end)
  after_each(function() rest:close() end)

  it("pings", function()
    local r, meta = rest:call "ping"
    assert.equal("success", r.result)
    assert.equal(200, meta.status)
  end)

  it("sends the token as a Bearer header and names itself in User-Agent", function()
    rest:call "ping"
    local e = sandbox.log()[1]
    assert.equal("Bearer " .. sandbox.TOKEN, e.headers.authorization)
    assert.matches("^planapi/", e.headers["user-agent"])
    assert.is_nil(e.uri:find("access_token", 1, true))
  end)

  it("gets a task with integer ids and the requested fields", function()
    local r = assert(rest:call("get-task-by-id", { id = 1, fields = "id,name,status" }))
    assert.equal(1, r.task.id)
    assert.equal("integer", portable.number_type(r.task.id))
    assert.equal("1", tostring(r.task.id))
    assert.is_string(r.task.name)
    local e = sandbox.log()[1]
    assert.equal("GET", e.method)
    assert.equal("/task/1", e.path)
    assert.equal("id,name,status", e.query.fields)
  end)

  it("creates with 201 and returns the new id; the body bytes are exact", function()
    local r, meta = rest:call("post-task", { name = "Call back", description = planapi.null })
    assert.equal(201, meta.status)
    assert.is_number(r.id)
    local e = sandbox.log()[1]
    assert.equal("POST", e.method)
    assert.equal("/task/", e.path)
    assert.equal('{"description":null,"name":"Call back"}', e.body)
    local got = assert(rest:call("get-task-by-id", { id = r.id, fields = "id,name" }))
    assert.equal("Call back", got.task.name)
  end)

  it("updates silently when asked", function()
    local r, meta = assert(rest:call("post-task-by-id", { id = 1, name = "Renamed", silent = true }))
    assert.equal(200, meta.status)
    assert.is_nil(r.queued)
    local e = sandbox.log()[1]
    assert.equal("true", e.query.silent)
    assert.equal('{"name":"Renamed"}', e.body)
  end)

  it("reports a 202 update as queued", function()
    sandbox.config { queue_updates = { 2 } }
    local r, meta = assert(rest:call("post-task-by-id", { id = 2, name = "Later" }))
    assert.equal(202, meta.status)
    assert.is_true(r.queued)
  end)

  it("returns the failures of a partial update instead of dropping them", function()
    local r = assert(rest:call("post-task-by-id", { id = 1, name = "Partly",
      customFieldData = { { field = { id = 999999 }, value = "x" } } }))
    assert.is_table(r.failures)
    assert.is_true(#r.failures >= 1)
    assert.is_string(r.failures[1].field or r.failures[1].error)
    local t = assert(rest:call("get-task-by-id", { id = 1, fields = "name" }))
    assert.equal("Partly", t.task.name) -- the rest of the update was applied
  end)

  describe("paging", function()
    for _, n in ipairs { 0, 1, 100, 101, 250 } do
      it(("walks %d items with each(), one request per page"):format(n), function()
        sandbox.data { tasks = n }
        sandbox.clear_log()
        local ids = {}
        for task in rest:each("get-task-list", { fields = "id,name" }) do ids[#ids + 1] = task.id end
        assert.equal(n, #ids)
        local seen = {}
        for _, id in ipairs(ids) do
          assert.is_nil(seen[id])
          seen[id] = true
        end
        local log = sandbox.log()
        assert.equal(math.floor(n / 100) + 1, #log)
        for i, e in ipairs(log) do
          assert.equal((i - 1) * 100, e.json.offset)
          assert.equal(100, e.json.pageSize)
          assert.equal("id,name", e.json.fields)
        end
      end)
    end

    it("yields whole pages with pages() and honours page_size", function()
      sandbox.data { tasks = 25 }
      local sizes = {}
      for page in rest:pages("get-task-list", {}, { page_size = 10 }) do sizes[#sizes + 1] = #page end
      assert.same({ 10, 10, 5 }, sizes)
    end)

    it("stops cleanly on break and resumes from the saved cursor", function()
      sandbox.data { tasks = 250 }
      local pager = rest:pager("get-task-list", { fields = "id" })
      local first = {}
      for task in pager:each() do
        first[#first + 1] = task.id
        if #first == 150 then break end
      end
      local cursor = pager:position()
      sandbox.clear_log()
      local rest_ids = {}
      for task in rest:each("get-task-list", { fields = "id" }, { cursor = cursor }) do
        rest_ids[#rest_ids + 1] = task.id
      end
      assert.equal(100, #rest_ids)
      assert.equal(first[150] + 1, rest_ids[1])
      assert.equal(100, sandbox.log()[1].json.offset) -- restarts at the page it stopped in
    end)

    it("all() collects without raising, and refuses what is not a paged list", function()
      sandbox.data { tasks = 7 }
      assert.equal(7, #assert(rest:all("get-task-list", {})))
      local ok, err = pcall(rest.each, rest, "get-task-by-id", { id = 1 })
      assert.is_false(ok)
      assert.equal("config", err.kind)
    end)

    it("raises a typed error from a for loop when a page fails", function()
      sandbox.data { tasks = 250 }
      local r = sandbox.rest { retry = { attempts = 1 } }
      sandbox.fault { mode = "status", status = 500, count = 1, path = "/task/list" }
      local ok, err = pcall(function() for _ in r:each("get-task-list", {}) do end end)
      assert.is_false(ok)
      assert.equal("http", keep(err).kind)
      assert.equal(500, err.status)
    end)
  end)

  describe("errors", function()
    it("config: unknown operations and parameters name the valid ones", function()
      local ok, err = pcall(rest.call, rest, "get-tsk-by-id", {})
      assert.is_false(ok)
      assert.equal("config", keep(err).kind)
      assert.matches("get%-task%-by%-id", err.message)
      assert.equal(114, #err.valid)
      ok, err = pcall(rest.call, rest, "get-task-by-id", { id = 1, fieldz = "id" })
      assert.equal("config", keep(err).kind)
      assert.matches("fieldz", err.message)
      assert.matches("fields, id", err.message)
      ok, err = pcall(rest.call, rest, "get-task-by-id", {})
      assert.matches("'id'", keep(err).message)
    end)

    it("auth: unknown token (code 1), inactive token (code 2), scope (405, code 5)", function()
      for token, code in pairs { ["no-such-token-1234"] = 1, ["inactive-token"] = 2 } do
        local r = sandbox.rest { token = token }
        local v, err = r:call "ping"
        assert.is_nil(v)
        assert.equal("auth", keep(err).kind)
        assert.equal(code, err.code)
        assert.equal(401, err.status)
        assert.is_false(err.retryable)
      end
      local ro = sandbox.rest { token = "readonly-token" }
      local v, err = ro:call("post-task", { name = "x" })
      assert.is_nil(v)
      assert.equal("auth", keep(err).kind)
      assert.equal(5, err.code)
      assert.equal(405, err.status)
      assert.matches("scope", err.message)
    end)

    it("api: a documented code gets its meaning, whatever the HTTP status", function()
      local v, err = rest:call("get-task-by-id", { id = 424242 })
      assert.is_nil(v)
      assert.equal("api", keep(err).kind)
      assert.equal(1000, err.code)
      assert.equal(404, err.status)
      assert.matches("task does not exist", err.message)
      assert.equal("get-task-by-id", err.operation)
    end)

    it("api: a logical failure inside a 2xx is still an error", function()
      sandbox.fault { mode = "code", code = 1002, count = 1 }
      local v, err = rest:call("post-task-by-id", { id = 1, name = "x" })
      assert.is_nil(v)
      assert.equal("api", keep(err).kind)
      assert.equal(1002, err.code)
      assert.equal(200, err.status)
    end)

    it("quota: code 22 stops at once and shows the remaining budget", function()
      sandbox.config { quota = { limit = 20000, remaining = 0 } }
      local v, err = rest:call "ping"
      assert.is_nil(v)
      assert.equal("quota", keep(err).kind)
      assert.equal(22, err.code)
      assert.is_false(err.retryable)
      assert.equal(1, #sandbox.log()) -- not retried
    end)

    it("rate_limit: a 429 carries Retry-After", function()
      sandbox.config { rate = { enabled = true, interval = 30 } }
      local r = sandbox.rest { retry = { attempts = 1 } }
      assert(r:call "ping")
      local v, err = r:call "ping"
      assert.is_nil(v)
      assert.equal("rate_limit", keep(err).kind)
      assert.equal(429, err.status)
      assert.is_true(err.retryable)
      assert.is_true(err.retry_after > 0)
    end)

    it("http: a 5xx without a code, and a proxy's HTML page", function()
      local r = sandbox.rest { retry = { attempts = 1 } }
      sandbox.fault { mode = "status", status = 503, count = 1 }
      local v, err = r:call "ping"
      assert.is_nil(v)
      assert.equal("http", keep(err).kind)
      assert.equal(503, err.status)
      assert.is_true(err.retryable)
      sandbox.fault { mode = "html", count = 1 }
      v, err = r:call "ping"
      assert.equal("http", keep(err).kind)
      assert.equal(502, err.status)
      assert.matches("text/html", err.message)
    end)

    it("decode: malformed JSON in a 200", function()
      sandbox.fault { mode = "malformed", count = 1 }
      local v, err = rest:call "ping"
      assert.is_nil(v)
      assert.equal("decode", keep(err).kind)
      assert.equal(200, err.status)
    end)

    it("transport and timeout: reset, truncated body, too slow", function()
      local r = sandbox.rest { retry = { attempts = 1 }, timeout = 0.5 }
      sandbox.fault { mode = "reset", count = 1 }
      local v, err = r:call "ping"
      assert.is_nil(v)
      assert.equal("transport", keep(err).kind)
      assert.is_true(err.retryable)
      sandbox.fault { mode = "truncate", count = 1 }
      v, err = r:call "ping"
      assert.equal("transport", keep(err).kind)
      sandbox.fault { mode = "slow", delay = 2, count = 1 }
      v, err = r:call "ping"
      assert.equal("timeout", keep(err).kind)
      assert.is_true(err.retryable)
    end)
  end)

  describe("retries", function()
    it("retry an idempotent call through a 5xx storm, waiting on the injected clock", function()
      local t = sandbox.fake_time()
      local r = sandbox.rest { clock = t.clock, sleep = t.sleep, retry = { attempts = 4, random = function() return 1 end } }
      sandbox.fault { mode = "status", status = 503, count = 3 }
      local v, meta = r:call("get-task-by-id", { id = 1 })
      assert.is_table(v)
      assert.equal(4, meta.attempts)
      assert.same({ 0.5, 1, 2 }, t.sleeps)
    end)

    it("never repeat a create after a 5xx: the log shows one POST", function()
      local r = sandbox.rest { retry = { attempts = 5 } }
      sandbox.fault { mode = "status", status = 500, count = 2 }
      local v, err = r:call("post-task", { name = "Once" })
      assert.is_nil(v)
      assert.equal(1, keep(err).attempts)
      assert.equal(1, count_requests("POST", "/task/"))
    end)

    it("repeat even a create after a 429, which the server refused", function()
      sandbox.fault { mode = "status", status = 429, count = 1 }
      local t = sandbox.fake_time()
      local r = sandbox.rest { clock = t.clock, sleep = t.sleep }
      local v = assert(r:call("post-task", { name = "After 429" }))
      assert.is_number(v.id)
      assert.equal(2, count_requests("POST", "/task/"))
    end)

    it("retry 'object is being modified' (code 3)", function()
      sandbox.fault { mode = "code", code = 3, count = 1 }
      local v, meta = rest:call("post-task-by-id", { id = 1, name = "Busy" })
      assert.is_table(v)
      assert.equal(2, meta.attempts)
    end)
  end)

  describe("pacing and quota", function()
    it("the default limiter keeps to the sandbox's enforced rate: zero violations", function()
      sandbox.config { rate = { enabled = true, interval = 0.2 } }
      local r = sandbox.rest { rate = { rate = 5, per = 1 }, real_time = true,
        retry = { attempts = 1 } }
      for _ = 1, 4 do assert(r:call "ping") end
      local stats = sandbox.stats()
      assert.equal(0, stats.rate_violations)
      r:close()
    end)

    it("without pacing the same burst is refused: the check above can fail", function()
      sandbox.config { rate = { enabled = true, interval = 0.2 } }
      local r = sandbox.rest { retry = { attempts = 1 } }
      r:call "ping"
      r:call "ping"
      assert.is_true(sandbox.stats().rate_violations >= 1)
    end)

    it("paces on the injected clock at 1 request per second by default", function()
      local t = sandbox.fake_time()
      local r = sandbox.rest { rate = "nil", clock = t.clock, sleep = t.sleep }
      for _ = 1, 3 do assert(r:call "ping") end
      assert.equal(2, #t.sleeps) -- 1 request/s plus the default 20 ms margin
      assert.near(1.02, t.sleeps[1], 1e-9)
      assert.near(1.02, t.sleeps[2], 1e-9)
    end)

    it("reads X-RateLimit-Remaining into meta and the client", function()
      sandbox.config { quota = { limit = 20000, remaining = 50 } }
      local _, meta = assert(rest:call "ping")
      assert.equal(49, meta.remaining)
      assert.equal(49, rest.remaining)
    end)
  end)

  describe("options", function()
    it("build the base URL from the account and accept other domains", function()
      local a = planapi.planfix_rest { account = "acme", token = "t0ken-x" }
      assert.equal("https://acme.planfix.com/rest/", a.base_url)
      local b = planapi.planfix_rest { base_url = "https://acme.planfix.ru/rest", token = "t0ken-x" }
      assert.equal("https://acme.planfix.ru/rest/", b.base_url)
      local c = planapi.planfix_rest { base_url = "https://crm.example.org/rest/", token = "t0ken-x" }
      assert.equal("https://crm.example.org/rest/", c.base_url)
    end)

    it("reject typos, missing tokens and bad values", function()
      for _, bad in ipairs {
        { account = "acme" },
        { account = "acme", token = "t", timout = 3 },
        { account = "ac me", token = "t" },
        { token = "t" },
        { account = "acme", token = "t", page_size = 101 },
        { account = "acme", token = "t", rate = { rate = 1, burts = 2 } },
        { base_url = "http://acme.planfix.com/rest/", token = "t" },
      } do
        local ok, err = pcall(planapi.planfix_rest, bad)
        assert.is_false(ok)
        assert.equal("config", err.kind)
      end
    end)

    it("take any transport with the lua-resty-http contract", function()
      local seen
      local r = sandbox.rest { transport = function(req)
        seen = req
        return { status = 200, headers = { ["Content-Type"] = "application/json" }, body = '{"result":"success"}' }
      end }
      assert.equal("success", r:call("ping").result)
      assert.equal("GET", seen.method)
      assert.matches("/rest/ping$", seen.url)
      local r2 = sandbox.rest { transport = function() return nil, "connection refused" end, retry = { attempts = 1 } }
      local v, err = r2:call "ping"
      assert.is_nil(v)
      assert.equal("transport", err.kind)
    end)
  end)

  describe("secrets", function()
    it("never appear in an error string, even when the server echoes them", function()
      local secret = "sekret-token-" .. tostring(os.time())
      local r = sandbox.rest { token = secret, retry = { attempts = 1 } }
      local _, err = r:call "ping" -- unknown token
      assert.equal("auth", keep(err).kind)
      sandbox.fault { mode = "code", code = 0, error = "bad request from Bearer " .. secret, count = 1 }
      _, err = r:call "ping"
      assert.matches("Bearer %*%*%*", keep(err).message) -- the echo is there, redacted
      sandbox.fault { mode = "html", count = 1 }
      _, err = r:call "ping"
      keep(err)
      local errors_text = {}
      for _, e in ipairs(seen_errors) do errors_text[#errors_text + 1] = tostring(e) .. " " .. tostring(e.message) end
      local all = table.concat(errors_text, "\n")
      assert.is_true(#seen_errors > 10)
      assert.is_nil(all:find(secret, 1, true))
      assert.is_nil(all:find(sandbox.TOKEN, 1, true))
      assert.is_nil(tostring(r):find(secret, 1, true))
    end)
  end)
end)
