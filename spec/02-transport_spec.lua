-- The libcurl transport against the sandbox: TLS verification, the http
-- policy, keep-alive, response capture, the size cap, timeouts.
local core = require "planapi.core"
local sandbox = require "sandbox"
local portable = require "portable"

local function client(opts)
  local o = { base_url = sandbox.https_url "rest/", ca_file = sandbox.env().ca_file,
    headers = { Authorization = "Bearer " .. sandbox.TOKEN } }
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.ca_file == "none" then o.ca_file = nil end -- trust the system CAs only
  return core.client(o)
end

local function get(c, path, extra)
  local spec = { method = "GET", path = path }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return c:perform(c:prepare(spec))
end

describe("libcurl transport", function()
  before_each(function() sandbox.reset() end)

  describe("TLS", function()
    it("works with the sandbox CA added through ca_file", function()
      local c = client()
      local res = assert(get(c, "ping"))
      assert.equal(200, res.status)
      assert.same({ result = "success" }, c:decode(res))
      c:close()
    end)

    it("refuses a server whose CA is not trusted", function()
      local c = client { base_url = sandbox.https_url("rest/", sandbox.env().untrusted_port) }
      local res, err = get(c, "ping")
      assert.is_nil(res)
      assert.equal("tls", err.kind)
      assert.is_false(err.retryable)
      assert.is_false(err.request_sent)
      c:close()
    end)

    it("refuses a certificate for another host name", function()
      local c = client { base_url = sandbox.https_url("rest/", sandbox.env().wrong_host_port) }
      local res, err = get(c, "ping")
      assert.is_nil(res)
      assert.equal("tls", err.kind)
      c:close()
    end)

    it("does not trust the sandbox CA without ca_file", function()
      -- Reading the whole system CA store takes seconds under valgrind on a
      -- loaded machine: a generous connect timeout keeps this about trust.
      local c = client { ca_file = "none", connect_timeout = 60 }
      local res, err = get(c, "ping")
      assert.is_nil(res)
      assert.equal("tls", err.kind)
      c:close()
    end)
  end)

  describe("plain http", function()
    it("is allowed to loopback only with allow_http", function()
      local c = core.client { base_url = sandbox.http_url "rest/", allow_http = true,
        headers = { Authorization = "Bearer " .. sandbox.TOKEN } }
      assert.equal(200, assert(get(c, "ping")).status)
      c:close()
      local ok, err = pcall(core.client, { base_url = sandbox.http_url "rest/" })
      assert.is_false(ok)
      assert.equal("config", err.kind)
    end)

    it("is refused off loopback even when the request was built by hand", function()
      local c = client()
      local ok, err = pcall(c.perform, c, { method = "GET", url = "http://example.com/", headers = {} })
      assert.is_false(ok)
      assert.equal("config", err.kind)
      c:close()
    end)
  end)

  it("sends requests through the proxy option", function()
    -- Nothing listens on 127.0.0.2:9; only the proxy (the sandbox, which serves
    -- absolute-URI requests) can answer.
    local c = core.client { base_url = "http://127.0.0.2:9/rest/", allow_http = true,
      proxy = sandbox.http_url(), headers = { Authorization = "Bearer " .. sandbox.TOKEN } }
    assert.equal(200, assert(get(c, "ping")).status)
    c:close()
    local direct = core.client { base_url = "http://127.0.0.2:9/rest/", allow_http = true, proxy = false }
    local res, err = get(direct, "ping")
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    direct:close()
  end)

  -- Without the proxy option the transport reads the environment once, when
  -- its handle is made (libcurl would read six variables for every request):
  -- libcurl's own reading of http_proxy and no_proxy is the oracle.
  it("sends requests through the environment's proxy when no option says otherwise", function()
    -- By name, from PATH: make sanitize puts its lua5.4 and lua5.3 (the ASan runtime preloaded) first there.
    local lua, cpath = portable.lua, portable.cpath
    local script = ([[package.cpath = %q .. ';' .. package.cpath
      local c = require("planapi.core").client { base_url = "http://127.0.0.2:9/rest/", allow_http = true,
        headers = { Authorization = "Bearer %s" } }
      for _ = 1, 2 do
        local res, err = c:perform(c:prepare { method = "GET", path = "ping" })
        io.write(res and res.status or err.kind, " ")
      end]]):format(cpath, sandbox.TOKEN)
    local function statuses(env)
      local out, code = portable.run(("env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy "
        .. "-u ALL_PROXY -u no_proxy -u NO_PROXY %s %s -e %q"):format(env, lua, script))
      assert.equal(0, code, out)
      return out
    end
    -- Nothing listens on 127.0.0.2:9: only the proxy (the sandbox) answers.
    assert.equal("200 200 ", statuses("http_proxy=" .. sandbox.http_url()))
    assert.equal("transport transport ", statuses("http_proxy=" .. sandbox.http_url() .. " no_proxy=127.0.0.2"))
    assert.equal("transport transport ", statuses(""))
  end)

  it("keeps the connection alive between requests", function()
    local c = client()
    for _ = 1, 3 do assert(get(c, "ping")) end
    local log = sandbox.log()
    assert.equal(3, #log)
    assert.is_number(log[1].connection)
    assert.equal(log[1].connection, log[3].connection)
    c:close()
  end)

  it("captures status, headers (case-insensitive) and body", function()
    sandbox.config { quota = { limit = 100, remaining = 10 } }
    local c = client()
    local res = assert(get(c, "task/1", { query = { fields = "id,name" } }))
    assert.equal(200, res.status)
    assert.equal("9", res.headers["x-ratelimit-remaining"])
    assert.matches("application/json", res.headers["content-type"])
    assert.equal(1, c:decode(res).task.id)
    assert.is_number(res.time)
    c:close()
  end)

  it("sends the method, body and headers it was given", function()
    local c = client { base_url = sandbox.https_url "record/" }
    local req = c:prepare { method = "DELETE", path = "x/1", body = { a = 1 }, headers = { ["X-Planado-Notify-Assignees"] = "false" } }
    assert.equal(200, assert(c:perform(req)).status)
    local e = sandbox.log()[1]
    assert.equal("DELETE", e.method)
    assert.equal("/x/1", e.path)
    assert.equal('{"a":1}', e.body)
    assert.equal("false", e.headers["x-planado-notify-assignees"])
    assert.is_nil(e.headers.expect)
    c:close()
  end)

  it("sets each request's method, body and headers afresh on the kept-alive handle", function()
    -- One handle serves every request: nothing of one (a body, a custom
    -- method, HEAD's no-body, a header) may reach the next.
    local c = client { base_url = sandbox.https_url "record/" }
    local steps = {
      { method = "POST", path = "a", body = { n = 1 }, headers = { ["X-One"] = "1" } },
      { method = "GET", path = "b" },
      { method = "GET", path = "b2" }, -- the handle is a plain GET already: nothing set again
      { method = "DELETE", path = "c" },
      { method = "HEAD", path = "d" },
      { method = "GET", path = "d2" },
      { method = "PUT", path = "e", body = "raw", content_type = "text/plain" },
      { method = "PATCH", path = "f", body = { n = 2 } },
      { method = "GET", path = "g" },
      { method = "POST", path = "h" },
    }
    for _, step in ipairs(steps) do assert.equal(200, assert(c:perform(c:prepare(step))).status) end
    local log = sandbox.log()
    assert.equal(#steps, #log)
    local want = {
      { "POST", "/a", '{"n":1}', "application/json; charset=utf-8" }, { "GET", "/b", "", nil },
      { "GET", "/b2", "", nil }, { "DELETE", "/c", "", nil }, { "HEAD", "/d", "", nil }, { "GET", "/d2", "", nil },
      { "PUT", "/e", "raw", "text/plain" },
      { "PATCH", "/f", '{"n":2}', "application/json; charset=utf-8" }, { "GET", "/g", "", nil },
      { "POST", "/h", "", nil },
    }
    for i, w in ipairs(want) do
      local e = log[i]
      assert.same(w, { e.method, e.path, e.body or "", e.headers["content-type"] }, "request " .. i)
      assert.is_nil(e.headers.expect, "request " .. i)
      if i > 1 then assert.is_nil(e.headers["x-one"], "request " .. i) end
    end
    assert.equal(log[1].connection, log[2].connection) -- a read after a write reuses the connection
    c:close()
  end)

  -- The handle keeps the last request's header lines and reuses those that
  -- are the same: random runs of requests whose headers grow, shrink, change
  -- value or repeat, each checked against what the server received.
  it("sends each request exactly its own headers when they change from one request to the next", function()
    local seed = os.time()
    math.randomseed(seed)
    local c = client { base_url = sandbox.https_url "record/" }
    local NAMES = { "X-P1", "X-P2", "X-P3", "X-P4", "X-P5" }
    local asked = {}
    for i = 1, 40 do
      local headers = {}
      for _, name in ipairs(NAMES) do
        -- the same value often (a line kept), sometimes a new one or none
        local r = math.random(4)
        if r <= 2 then headers[name] = "v" elseif r == 3 then headers[name] = "v" .. math.random(3) end
      end
      if math.random(5) == 1 then headers["User-Agent"] = "ua-" .. math.random(2) end
      asked[i] = headers
      local method = math.random(3) == 1 and "POST" or "GET"
      assert(c:perform(c:prepare { method = method, path = tostring(i), headers = headers }))
    end
    local log = sandbox.log()
    assert.equal(#asked, #log)
    for i, e in ipairs(log) do
      local got, want = {}, {}
      for _, name in ipairs(NAMES) do
        got[name] = e.headers[name:lower()]
        want[name] = asked[i][name]
      end
      assert.same(want, got, ("request %d (seed %d)"):format(i, seed))
      if asked[i]["User-Agent"] then
        assert.equal(asked[i]["User-Agent"], e.headers["user-agent"], ("request %d (seed %d)"):format(i, seed))
      else
        assert.matches("^planapi/", e.headers["user-agent"], ("request %d (seed %d)"):format(i, seed))
      end
      assert.equal("Bearer " .. sandbox.TOKEN, e.headers.authorization)
    end
    c:close()
  end)

  it("names itself in User-Agent: the user_agent option, else planapi and libcurl; a request's header wins", function()
    local plain, named = client { base_url = sandbox.https_url "record/" },
      client { base_url = sandbox.https_url "record/", user_agent = "acme-sync/2.1" }
    assert(plain:perform(plain:prepare { method = "GET", path = "1" }))
    assert(named:perform(named:prepare { method = "GET", path = "2" }))
    assert(named:perform(named:prepare { method = "GET", path = "3", headers = { ["user-agent"] = "one-off/1" } }))
    assert(plain:perform { method = "GET", url = sandbox.https_url "record/4" }) -- a request built by hand
    assert(plain:perform { method = "GET", url = sandbox.https_url "record/5", headers = { ["User-Agent"] = false } })
    local agents = {}
    for _, e in ipairs(sandbox.log()) do agents[e.path] = e.headers["user-agent"] or "(none)" end
    local libcurl = "^planapi/%d+%.%d+%.%d+ libcurl/%d"
    assert.matches(libcurl, agents["/1"])
    assert.equal("acme-sync/2.1", agents["/2"])
    assert.equal("one-off/1", agents["/3"])
    assert.matches(libcurl, agents["/4"])
    assert.equal("(none)", agents["/5"])
    plain:close()
    named:close()
  end)

  -- spec/helpers/encoded_answer.lua: a server that gzips its answers (the
  -- gzip tool compresses them) and notes each request's Accept-Encoding.
  local function start_encoded_answer(json)
    local dir = portable.tmpdir()
    portable.write_file(dir .. "/answer.json", json)
    assert(portable.execute(("lua5.4 spec/helpers/encoded_answer.lua %s > %s/log 2>&1 & echo $! > %s/pid")
      :format(dir, dir, dir)))
    local port
    local deadline = core.monotime() + 10
    repeat
      port = tonumber(portable.read_file(dir .. "/port") or "")
      if not port then core.sleep(0.05) end
    until port or core.monotime() > deadline
    assert(port, "the encoded-answer server did not start")
    local function accepted()
      local lines = {}
      for line in (portable.read_file(dir .. "/accept-encoding") or ""):gmatch "[^\n]+" do lines[#lines + 1] = line end
      return lines
    end
    return "http://127.0.0.1:" .. port .. "/", accepted, function()
      portable.execute("kill " .. assert(tonumber(portable.read_file(dir .. "/pid"))) .. " 2>/dev/null")
      portable.rmtree(dir)
    end
  end

  it("asks for every encoding libcurl's own tool asks for, once, and decodes a gzip answer", function()
    local json = '{"job":{"uuid":"u-1","notes":"' .. ("compressible "):rep(50) .. '"}}'
    local url, accepted, stop = start_encoded_answer(json)
    -- The oracle: the curl tool's --compressed, the same libcurl's own list.
    assert(portable.execute("curl -s --compressed -o /dev/null " .. url))
    local c = client { base_url = url, allow_http = true }
    local res = assert(get(c, "jobs/u-1"))
    assert.equal(json, res.body)
    assert.equal("u-1", c:decode(res).job.uuid)
    assert(get(c, "jobs/u-1", { headers = { ["Accept-Encoding"] = "identity" } })) -- the caller's wins, alone
    local lines = accepted()
    stop()
    c:close()
    assert.equal(3, #lines)
    assert.matches("gzip", lines[1])
    assert.equal(lines[1], lines[2])
    assert.equal("identity", lines[3])
  end)

  it("refuses a body over max_body with an error, never a truncated result", function()
    local c = client { max_body = 4096 }
    sandbox.fault { mode = "oversize", size = 100000, count = 1 }
    local res, err = get(c, "ping")
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.matches("max_body", err.message)
    assert.is_false(err.retryable)
    assert.equal(200, assert(get(c, "ping")).status) -- the client still works
    c:close()
  end)

  it("reports a timeout as its own kind, and a reset as retryable transport", function()
    local c = client { timeout = 0.3 }
    sandbox.fault { mode = "slow", delay = 2, count = 1 }
    local res, err = get(c, "ping")
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.is_true(err.retryable)
    sandbox.fault { mode = "reset", count = 1 }
    res, err = get(c, "ping")
    assert.equal("transport", err.kind)
    assert.is_true(err.retryable)
    assert.is_true(err.request_sent)
    c:close()
  end)

  -- The handle keeps the options of the last request and sets only those
  -- that change: a request's own timeout must not outlive it.
  it("holds a request's own timeout for that request alone", function()
    local c = client { timeout = 0.3 }
    sandbox.fault { mode = "slow", delay = 0.6, count = 1 }
    assert.equal(200, assert(get(c, "ping", { timeout = 5 })).status)
    sandbox.fault { mode = "slow", delay = 0.6, count = 1 }
    local res, err = get(c, "ping")
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    c:close()
  end)

  it("says a request never left when nothing listens", function()
    local c = core.client { base_url = "http://127.0.0.1:9/", allow_http = true }
    local res, err = get(c, "x")
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.is_false(err.request_sent)
    assert.is_true(err.retryable)
    c:close()
  end)

  it("is collected without close, and a closed client refuses to perform", function()
    do
      local c = client()
      assert(get(c, "ping"))
    end
    collectgarbage()
    collectgarbage()
    local c = client()
    c:close()
    assert.has_error(function() get(c, "ping") end)
  end)
end)
