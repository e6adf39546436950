-- The Planado client against the sandbox: exact bytes for absent, null
-- and nested null; strict keys; upsert reporting; after-paging; the rate
-- quirks; no repeated POST without an external_id.
local planapi = require "planapi"
local sandbox = require "sandbox"

local seen_errors = {}
local function keep(err)
  if err ~= nil then seen_errors[#seen_errors + 1] = err end
  return err
end

local function last(kind)
  local log = sandbox.log_of(kind or "planado")
  return log[#log]
end

describe("Planado client", function()
  local pd
  before_each(function()
    sandbox.reset()
    pd = sandbox.planado()
  end)

  it("sends the key as a Bearer header, or in the legacy header", function()
    assert(pd.job_types:all())
    assert.equal("Bearer " .. sandbox.PLANADO_KEY, last().headers.authorization)
    local legacy = sandbox.planado { auth_header = "X-Planado-API-Key" }
    assert(legacy.job_types:all())
    local e = last()
    assert.equal(sandbox.PLANADO_KEY, e.headers["x-planado-api-key"])
    assert.is_nil(e.headers.authorization)
    local v, err = sandbox.planado({ api_key = "wrong-key-123" }).job_types:all()
    assert.is_nil(v)
    assert.equal("auth", keep(err).kind)
    assert.equal(401, err.status)
  end)

  describe("missing key vs null", function()
    it("sends exactly the keys given: absent, null and nested null", function()
      local uuid = assert(pd.jobs:create { external_id = "ext-bytes", description = "Fix",
        address = { formatted = "Main st. 1", apartment = "12" } })
      assert.equal('{"address":{"apartment":"12","formatted":"Main st. 1"},"description":"Fix",'
        .. '"external_id":"ext-bytes"}', last().body)
      assert(pd.jobs:update(uuid, { description = planapi.null, address = { apartment = planapi.null } }))
      local e = last()
      assert.equal("PATCH", e.method)
      assert.equal('{"address":{"apartment":null},"description":null}', e.body)
      assert.same({ "address.apartment", "description" }, e.changes.nulled)
      local job = assert(pd.jobs:get(uuid))
      assert.is_nil(job.description) -- a null member reads as absent by default
      assert.equal("Main st. 1", job.address.formatted) -- nested absent: kept
    end)

    it("leaves absent keys unchanged on the server", function()
      local uuid = assert(pd.jobs:create { description = "Keep me", scheduled_duration = { minutes = 60 } })
      assert(pd.jobs:update(uuid, { scheduled_duration = { minutes = 90 } }))
      local job = assert(pd.jobs:get(uuid))
      assert.equal("Keep me", job.description)
      assert.equal(90, job.scheduled_duration.minutes)
    end)

    it("strict: an unknown key or a refused null raises before anything is sent", function()
      for _, fields in ipairs { { descripton = "typo" }, { type_uuid = "x" }, { assignees = planapi.null } } do
        local ok, err = pcall(pd.jobs.update, pd.jobs, "job-ext-1", fields)
        assert.is_false(ok)
        assert.equal("config", keep(err).kind)
      end
      local ok, err = pcall(pd.jobs.create, pd.jobs, { descripton = "typo" })
      assert.is_false(ok)
      assert.matches("description", err.message) -- names the valid ones
      assert.equal(0, #sandbox.log_of "planado")
      local loose = sandbox.planado { strict = false }
      assert(loose.jobs:update("job-ext-1", { some_new_field = 1 }))
    end)

    it("sends the notify-assignees header when asked", function()
      assert(pd.jobs:update("job-ext-1", { description = "Quiet" }, { notify_assignees = false }))
      assert.equal("false", last().notify_assignees)
    end)
  end)

  describe("clients and sites", function()
    it("upsert says whether it created or updated", function()
      local r = assert(pd.clients:upsert("crm-1", { organization = true, organization_name = "Acme 2" }))
      assert.is_true(r.created)
      local again = assert(pd.clients:upsert("crm-1", { organization_name = "Acme Two" }))
      assert.is_false(again.created)
      assert.equal(r.uuid, again.uuid)
      assert.equal("Acme Two", assert(pd.clients:get("crm-1")).organization_name)
      local site = assert(pd.sites:upsert("site-9", { name = "Depot" }))
      assert.is_true(site.created)
    end)

    it("reports created or updated from the version when the status does not say", function()
      local fake = sandbox.planado { transport = function(req)
        if req.method == "PATCH" then
          return { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"client_uuid":"c-1"}' }
        end
        return { status = 200, headers = { ["content-type"] = "application/json" },
          body = '{"client":{"uuid":"c-1","version":1}}' }
      end }
      local r = assert(fake.clients:upsert("crm-x", { organization_name = "X" }))
      assert.is_true(r.created)
      assert.equal(1, r.version)
    end)
  end)

  describe("paging", function()
    for _, n in ipairs { 0, 1, 50, 101 } do
      it(("walks %d jobs newest first by after=<uuid>, ending on an empty page"):format(n), function()
        sandbox.data { planado_jobs = n }
        local seen, count = {}, 0
        for job in pd.jobs:each() do
          assert.is_nil(seen[job.uuid])
          seen[job.uuid] = true
          count = count + 1
        end
        assert.equal(n, count)
        local log = sandbox.log_of "planado"
        assert.equal(math.floor(n / 50) + (n % 50 > 0 and 1 or 0) + 1, #log)
        assert.is_nil(log[1].query.after)
        for i = 2, #log do assert.is_string(log[i].query.after) end
      end)
    end

    it("encodes filters the way Planado reads them", function()
      assert(pd.jobs:all { status = { "posted", "scheduled" }, scheduled_at = { after = "2024-01-01T00:00:00Z" } })
      local q = sandbox.log_of("planado")[1].query
      assert.same({ "posted", "scheduled" }, q["status[]"])
      assert.equal("2024-01-01T00:00:00Z", q["scheduled_at[after]"])
    end)

    it("reports a cap that cut the list", function()
      sandbox.data { planado_jobs = 120 }
      local pager = pd.jobs:pager(nil, { max_pages = 1 })
      local n = 0
      for _ in pager:each() do n = n + 1 end
      assert.equal(50, n)
      assert.is_true(pager.truncated)
    end)

    it("pages skills by 20 and job history by version", function()
      assert.equal(25, #assert(pd.skills:all()))
      local uuid = assert(pd.jobs:create { description = "v1" })
      for i = 2, 25 do assert(pd.jobs:update(uuid, { description = "v" .. i })) end
      local versions = {}
      for event in pd.jobs:history(uuid) do versions[#versions + 1] = event.version end
      assert.is_true(#versions >= 25)
      for i = 2, #versions do assert.is_true(versions[i] > versions[i - 1]) end
    end)
  end)

  describe("rate limits and retries", function()
    it("recovers from a 429 and from the 200 text/plain quirk", function()
      local t = sandbox.fake_time()
      local r = sandbox.planado { clock = t.clock, sleep = t.sleep }
      sandbox.fault { mode = "status", status = 429, count = 1 }
      assert(r.jobs:get "job-ext-1")
      sandbox.fault { mode = "rate_text", count = 1 }
      local job = assert(r.jobs:get "job-ext-1")
      assert.equal("job-ext-1", job.external_id)
      assert.same({ 2, 2 }, t.sleeps) -- rate_limit_wait, no Retry-After sent
      assert.equal(4, #sandbox.log_of "planado")
    end)

    it("the text quirk is never decoded as data", function()
      local r = sandbox.planado { retry = { attempts = 1 } }
      sandbox.fault { mode = "rate_text", count = 1 }
      local v, err = r.jobs:get "job-ext-1"
      assert.is_nil(v)
      assert.equal("rate_limit", keep(err).kind)
      assert.equal(200, err.status)
    end)

    it("tells the text quirk from a JSON answer by its opening, whatever the case and spacing", function()
      local req = { operation = "GET jobs" }
      local function parse(body)
        return pd:parse(req, { status = 200, headers = {}, body = body })
      end
      for _, body in ipairs { "Rate Limit Exceeded", "rate limit exceeded", " \n\tRATE LIMIT", "Rate limit" } do
        local v, err = parse(body)
        assert.is_nil(v, body)
        assert.equal("rate_limit", keep(err).kind)
      end
      assert.same({ message = "Rate Limit Exceeded" }, parse '{"message":"Rate Limit Exceeded"}')
      assert.same({ "rate limit" }, parse '["rate limit"]')
      assert.same({ message = "rate limit" }, parse ' {"message":"rate limit"}')
    end)

    -- The rule stated on its own, against parse over random answers: an
    -- answer below 300 whose text opens (after spaces) with "rate limit" in
    -- any case is the quirk; anything else is what its status and body say.
    it("takes an answer for the text quirk exactly when the rule says so, over random answers", function()
      math.randomseed(os.time())
      local openings = { "", " ", "\n\t ", "  \r\n" }
      local texts = { "Rate Limit Exceeded", "RATE LIMIT", "rate limited", "rate  limit", "Rate-limit", "ok",
        '{"message":"Rate Limit Exceeded"}', '["rate limit"]', '"rate limit"', "null", "42", "" }
      local statuses = { 0, 100, 200, 201, 204, 299, 301, 400, 404, 429, 500, 503 }
      local types = { "application/json", "text/plain", nil }
      for _ = 1, 400 do
        local body = openings[math.random(#openings)] .. texts[math.random(#texts)]
        local status = statuses[math.random(#statuses)]
        local ctype = types[math.random(3)]
        local v, err = pd:parse({ operation = "GET jobs" },
          { status = status, headers = { ["content-type"] = ctype }, body = body })
        local quirk = status < 300 and body:lower():match "^%s*rate limit" ~= nil
        local what = ("%d %q %s"):format(status, body, tostring(ctype))
        if status == 429 or quirk then
          assert.is_nil(v, what)
          assert.equal("rate_limit", err.kind, what)
          assert.equal(status == 429 and "too many requests" or "rate limit exceeded (HTTP 200 text quirk)",
            err.message, what)
        else
          assert.is_false(err ~= nil and err.kind == "rate_limit", what)
        end
      end
    end)

    it("paces at 60 a minute with a burst of 5 by default", function()
      local t = sandbox.fake_time()
      local r = sandbox.planado { rate = "nil", clock = t.clock, sleep = t.sleep }
      for _ = 1, 7 do assert(r:call("GET", "job_types")) end
      assert.same({ 1, 1 }, t.sleeps) -- 5 at once, then one a second
    end)

    it("retries a GET and a PATCH through 5xx", function()
      sandbox.fault { mode = "status", status = 503, count = 2 }
      assert(pd.jobs:update("job-ext-1", { description = "after 503s" }))
      assert.equal(3, #sandbox.log_of "planado")
    end)

    it("never repeats a POST without an external_id", function()
      sandbox.fault { mode = "status", status = 500, count = 3 }
      local v, err = pd.jobs:create { description = "once" }
      assert.is_nil(v)
      assert.equal("http", keep(err).kind)
      assert.equal(1, #sandbox.log_of "planado")
    end)

    it("with an external_id, looks the job up after a pause instead of sending the POST again", function()
      -- The POST is handled, but its answer comes after the client gave up.
      local r = sandbox.planado { timeout = 0.3, real_time = true,
        retry = { attempts = 3, base = 0.6, random = function() return 1 end } }
      sandbox.fault { mode = "slow", delay = 0.5, count = 1, path = "/planado/v2/jobs" }
      local uuid, meta = r.jobs:create { external_id = "ext-once", description = "exactly once" }
      assert.is_string(uuid)
      assert.is_true(meta.recovered)
      local posts, lookups = 0, 0
      for _, e in ipairs(sandbox.log_of "planado") do
        if e.method == "POST" and e.path == "/jobs" then posts = posts + 1 end
        if e.method == "GET" and e.path == "/jobs/ext-once" then lookups = lookups + 1 end
      end
      assert.equal(1, posts)
      assert.equal(1, lookups)
      assert.equal(uuid, assert(r.jobs:get "ext-once").uuid)
    end)
  end)

  -- A GET without options takes core:prepare's two-argument form; any
  -- option takes the general one, a spec table. The oracle of the request
  -- sent is the server's: the request line and headers as nginx received them.
  it("a GET without options prepares and sends what the general path does", function()
    local escape = require("planapi.core").url_escape
    math.randomseed(4040)
    local refs = { "00000000-0000-4000-8000-000000000001", "job-ext-1", "a b/c?d#e", "\u{fc}n\u{ef}", 42, "" }
    for _ = 1, 40 do
      local bytes = {}
      for i = 1, math.random(0, 50) do bytes[i] = string.char(math.random(32, 255)) end
      refs[#refs + 1] = table.concat(bytes)
    end
    local legacy = sandbox.planado { auth_header = "X-Planado-API-Key" }
    for _, client in ipairs { pd, legacy } do
      for i, ref in ipairs(refs) do
        local path = (i % 2 == 0 and "/jobs/" or "jobs/") .. escape(ref)
        local plain = client:prepare("GET", path)
        local general = client:prepare("GET", path, nil, { headers = {} })
        assert.same(general, plain)
        for _, t in ipairs { "headers", false } do -- the order next() gives: the header lines' order
          local a, b = t and general[t] or general, t and plain[t] or plain
          local ka, kb = next(a), next(b)
          while ka ~= nil or kb ~= nil do
            assert.equal(ka, kb)
            ka, kb = next(a, ka), next(b, kb)
          end
        end
      end
      for _, ref in ipairs { refs[1], refs[3], refs[#refs] } do
        sandbox.fault { mode = "echo", status = 400, format = "text", count = 2 }
        local _, plain = client.jobs:get(ref)
        local _, general = client.jobs:get(ref, { headers = {} })
        assert.matches("^GET /.*/jobs/.* HTTP/1%.1\r\n.*Accept: application/json\r\n", keep(plain).body)
        assert.equal(keep(general).body, plain.body)
        assert.equal(general.operation, plain.operation)
      end
    end
    -- a ref that is neither a string nor a number is the caller's mistake
    for _, no in ipairs { true, {}, false } do
      local err = require("expect").raises_config(function() pd.jobs:get(no) end, "^jobs: a uuid or external_id")
      assert.matches("40%-planado_spec%.lua:%d+$", err.where)
    end
  end)

  it("keeps the raw error body and never the key", function()
    local v, err = pd.jobs:get "no-such-job"
    assert.is_nil(v)
    assert.equal("api", keep(err).kind)
    assert.equal(404, err.status)
    assert.is_string(err.body)
    local all = {}
    for _, e in ipairs(seen_errors) do all[#all + 1] = tostring(e) .. (e.body or "") end
    assert.is_nil(table.concat(all):find(sandbox.PLANADO_KEY, 1, true))
    assert.is_nil(tostring(pd):find(sandbox.PLANADO_KEY, 1, true))
  end)
end)
