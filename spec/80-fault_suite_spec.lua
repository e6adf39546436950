-- The fault suite: every way a connection or a server can fail, against the
-- three API clients on the sandbox. Each case must end in a typed error or
-- in a correct retry, a write (a create: not idempotent) must never reach
-- the server twice, and the host process (this one) must survive it all.
--
--   reset before the request is sent   spec/helpers/flaky_proxy.lua (RST on accept)
--   reset after it is sent             fault "reset" (received, never answered)
--   carried out, then reset            fault "reset_after" (applied, never answered)
--   5xx storms, slow past the timeout, truncated, malformed, oversized,
--   wrong content type, redirects      the sandbox's other fault modes
--   untrusted CA, wrong host name      the sandbox's extra TLS ports
local core = require "planapi.core"
local sandbox = require "sandbox"
local portable = require "portable"

-- One adapter per API: how to make a client, read, and write one record
-- whose body carries a unique tag (so the log shows every copy of it).
local APIS = {
  rest = {
    make = sandbox.rest, url_key = "base_url", prefix = "rest/",
    read = function(c) return c:call("get-task-by-id", { id = 1 }) end,
    write = function(c, tag) return c:call("post-task", { name = tag }) end,
  },
  xml = {
    make = sandbox.xml, url_key = "url", prefix = "xml/",
    read = function(c) return c.task:get { id = 1 } end,
    write = function(c, tag) return c.task:add { title = tag } end,
  },
  planado = {
    make = sandbox.planado, url_key = "url", prefix = "planado/v2/",
    read = function(c) return c.jobs:get "job-ext-1" end,
    write = function(c, tag) return c.jobs:create { description = tag } end,
  },
}
local ORDER = { "rest", "xml", "planado" }

local API_KINDS = { rest = true, xml = true, planado = true }
local tags = 0
local function new_tag()
  tags = tags + 1
  return ("fault-suite-write-%d-%d"):format(os.time(), tags)
end

-- Log entries of API requests whose body carries tag: every attempt that
-- reached the sandbox, and those its handler carried out (a fault other
-- than slow or reset_after answers before the handler runs).
local function attempts_of(tag)
  local sent, handled = 0, 0
  for _, e in ipairs(sandbox.log()) do
    if API_KINDS[e.kind] and type(e.body) == "string" and e.body:find(tag, 1, true) then
      sent = sent + 1
      if e.fault == nil or e.fault == "slow" or e.fault == "reset_after" then handled = handled + 1 end
    end
  end
  return sent, handled
end

local function api_requests()
  local n = 0
  for _, e in ipairs(sandbox.log()) do
    if API_KINDS[e.kind] then n = n + 1 end
  end
  return n
end

-- A slow request is logged when the sandbox finishes it, after the client
-- has given up: wait (bounded) for the server's side to be over.
local function wait_for_log(pred)
  local deadline = core.monotime() + 10
  while core.monotime() < deadline do
    if pred() then return true end
    core.sleep(0.05)
  end
  return false
end

local function typed(err, kind)
  assert.is_true(core.is_error(err), "expected a planapi error, got " .. tostring(err))
  if kind then assert.equal(kind, err.kind, tostring(err)) end
  -- one line, and it says what happened
  assert.is_nil(tostring(err):find("\n", 1, true))
  return err
end

-- The flaky proxy: resets its first `resets` connections, relays the rest.
local function start_proxy(resets)
  local dir = portable.tmpdir()
  local port_file, pid_file = dir .. "/port", dir .. "/pid"
  assert(portable.execute(("lua5.4 spec/helpers/flaky_proxy.lua %d %d %s > %s/log 2>&1 & echo $! > %s")
    :format(sandbox.env().https_port, resets, port_file, dir, pid_file)))
  local port
  assert.is_true(wait_for_log(function()
    port = tonumber(portable.read_file(port_file) or "")
    return port ~= nil
  end), "the flaky proxy did not start")
  local pid = assert(tonumber(portable.read_file(pid_file)))
  return port, function()
    portable.execute("kill " .. pid .. " 2>/dev/null")
    portable.rmtree(dir)
  end
end

describe("fault suite", function()
  before_each(function() sandbox.reset() end)
  after_each(function() sandbox.reset() end)

  for _, name in ipairs(ORDER) do
    local api = APIS[name]

    describe(name, function()
      it("reset before the request is sent: retried, even a write, which lands once", function()
        local port, stop = start_proxy(1)
        local ok, failure = pcall(function()
          local c = api.make { [api.url_key] = sandbox.https_url(api.prefix, port) }
          local tag = new_tag()
          local v, meta = api.write(c, tag)
          assert.is_not_nil(v, tostring(meta))
          local sent, handled = attempts_of(tag)
          assert.equal(1, sent) -- the reset attempt never reached the server
          assert.equal(1, handled)
          c:close()
          -- with no retries left, the same reset is a typed, retryable error
          stop()
          port, stop = start_proxy(1)
          c = api.make { [api.url_key] = sandbox.https_url(api.prefix, port), retry = { attempts = 1 } }
          local r, err = api.read(c)
          assert.is_nil(r)
          typed(err, "transport")
          assert.is_true(err.retryable)
          assert.is_false(err.request_sent)
          c:close()
        end)
        stop()
        assert(ok, failure)
      end)

      it("reset after the request is sent: a read is retried, a write is not", function()
        local c = api.make()
        sandbox.fault { mode = "reset", count = 1 }
        assert(api.read(c))
        assert.equal(2, api_requests())

        sandbox.reset()
        sandbox.fault { mode = "reset", count = 1 }
        local tag = new_tag()
        local v, err = api.write(c, tag)
        assert.is_nil(v)
        typed(err, "transport")
        assert.is_true(err.request_sent)
        local sent, handled = attempts_of(tag)
        assert.equal(1, sent)
        assert.equal(0, handled)
        c:close()
      end)

      it("carried out, then the connection drops: the write is not repeated", function()
        local c = api.make()
        sandbox.fault { mode = "reset_after", count = 1 }
        local tag = new_tag()
        local v, err = api.write(c, tag)
        assert.is_nil(v)
        typed(err, "transport")
        local sent, handled = attempts_of(tag)
        assert.equal(1, sent)
        assert.equal(1, handled) -- it did happen, exactly once
        -- a read in the same situation is simply asked again
        sandbox.fault { mode = "reset_after", count = 1 }
        assert(api.read(c))
        c:close()
      end)

      it("a 5xx storm: reads retry until the attempts run out, writes are sent once", function()
        local c = api.make()
        sandbox.fault { mode = "status", status = 503, count = 50 }
        local r, err = api.read(c)
        assert.is_nil(r)
        typed(err, "http")
        assert.equal(503, err.status)
        assert.is_true(err.retryable)
        assert.equal(3, err.attempts)
        assert.equal(3, api_requests())
        local tag = new_tag()
        local v
        v, err = api.write(c, tag)
        assert.is_nil(v)
        typed(err, "http")
        assert.equal(1, (attempts_of(tag)))
        -- a storm that ends within the attempts is ridden out
        sandbox.reset()
        sandbox.fault { mode = "status", status = 502, count = 2 }
        assert(api.read(c))
        assert.equal(3, api_requests())
        c:close()
      end)

      it("slow past the timeout: a read is retried, a write times out once and lands once", function()
        local c = api.make { timeout = 0.3 }
        sandbox.fault { mode = "slow", delay = 0.8, count = 1 }
        assert(api.read(c))
        sandbox.fault { mode = "slow", delay = 0.8, count = 1 }
        local tag = new_tag()
        local v, err = api.write(c, tag)
        assert.is_nil(v)
        typed(err, "timeout")
        assert.is_true(wait_for_log(function() return select(2, attempts_of(tag)) > 0 end))
        local sent, handled = attempts_of(tag)
        assert.equal(1, sent)
        assert.equal(1, handled)
        c:close()
      end)

      it("a truncated body: a read is retried, a write is a transport error sent once", function()
        local c = api.make()
        sandbox.fault { mode = "truncate", count = 1 }
        assert(api.read(c))
        assert.equal(2, api_requests())
        sandbox.fault { mode = "truncate", count = 1 }
        local tag = new_tag()
        local v, err = api.write(c, tag)
        assert.is_nil(v)
        typed(err, "transport")
        assert.equal(1, (attempts_of(tag)))
        c:close()
      end)

      it("a malformed body is a decode error, for a read and a write alike", function()
        local c = api.make()
        sandbox.fault { mode = "malformed", count = 1 }
        local r, err = api.read(c)
        assert.is_nil(r)
        typed(err, "decode")
        sandbox.fault { mode = "malformed", count = 1 }
        local tag = new_tag()
        r, err = api.write(c, tag)
        assert.is_nil(r)
        typed(err, "decode")
        assert.equal(1, (attempts_of(tag)))
        c:close()
      end)

      it("an oversized body is refused at max_body, not retried, and the client goes on", function()
        local c = api.make { max_body = 64 * 1024 }
        sandbox.fault { mode = "oversize", size = 1024 * 1024, count = 1 }
        local r, err = api.read(c)
        assert.is_nil(r)
        typed(err, "transport")
        assert.matches("max_body", err.message)
        assert.equal(1, api_requests())
        assert(api.read(c))
        c:close()
      end)

      it("HTML where JSON or XML was due: a 200 is a decode error, a 502 is retried", function()
        local c = api.make()
        sandbox.fault { mode = "html", status = 200, count = 1 }
        local r, err = api.read(c)
        assert.is_nil(r)
        typed(err, "decode")
        assert.matches("text/html", tostring(err))
        sandbox.reset()
        sandbox.fault { mode = "html", count = 1 }
        assert(api.read(c))
        assert.equal(2, api_requests())
        c:close()
      end)

      it("a redirect the API does not document is an error, never followed", function()
        local c = api.make()
        local targets = {
          ("https://localhost:%d/record/stolen"):format(sandbox.env().https_port), -- another host name
          ("http://127.0.0.1:%d/record/plain"):format(sandbox.env().http_port),    -- plain http
        }
        for _, location in ipairs(targets) do
          sandbox.reset()
          sandbox.fault { mode = "redirect", status = 302, location = location, count = 1 }
          local r, err = api.read(c)
          assert.is_nil(r)
          typed(err, "http")
          assert.equal(302, err.status)
          assert.is_false(err.retryable)
          assert.matches("redirect", err.message)
          sandbox.fault { mode = "redirect", status = 307, location = location, count = 1 }
          local tag = new_tag()
          r, err = api.write(c, tag)
          assert.is_nil(r)
          typed(err, "http")
          assert.equal(1, (attempts_of(tag)))
          assert.same({}, sandbox.log_of "record") -- nothing went where it pointed
        end
        c:close()
      end)

      it("a server with an untrusted CA or a wrong host name is refused, never retried", function()
        for _, port in ipairs { sandbox.env().untrusted_port, sandbox.env().wrong_host_port } do
          local c = api.make { [api.url_key] = sandbox.https_url(api.prefix, port) }
          local tag = new_tag()
          local v, err = api.write(c, tag)
          assert.is_nil(v)
          typed(err, "tls")
          assert.is_false(err.retryable)
          assert.equal(1, err.attempts)
          c:close()
        end
        assert.equal(0, api_requests())
      end)
    end)
  end

  describe("a Planado create with an external_id", function()
    it("carried out, then the connection drops: recovered by a lookup, never posted twice", function()
      local pd = APIS.planado.make()
      local tag = new_tag()
      sandbox.fault { mode = "reset_after", count = 1, path = "/planado/v2/jobs" }
      local uuid, meta = pd.jobs:create { external_id = tag, description = tag }
      assert.is_string(uuid, tostring(meta))
      assert.is_true(meta.recovered)
      local sent, handled = attempts_of(tag)
      assert.equal(1, sent)
      assert.equal(1, handled)
      assert.equal(uuid, assert(pd.jobs:get(tag)).uuid)
      pd:close()
    end)
  end)

  describe("documented redirects (file downloads)", function()
    local function other_host(port) return ("https://localhost:%d"):format(port) end

    it("REST follows the download's 302 to another host without the Authorization header", function()
      sandbox.config { download_origin = other_host(sandbox.env().https_port) }
      local rest = sandbox.rest()
      local bytes = assert(rest:download(1))
      assert.is_true(#bytes > 0)
      local fetched = sandbox.log_of "download"
      assert.equal(1, #fetched)
      assert.equal("localhost:" .. sandbox.env().https_port, fetched[1].headers.host)
      assert.is_nil(fetched[1].headers.authorization)
      assert.is_not_nil(sandbox.log_of("rest")[1].headers.authorization)
      rest:close()
    end)

    it("XML follows file.download's 302 (with follow) without the credentials", function()
      sandbox.config { download_origin = other_host(sandbox.env().https_port) }
      local xml = sandbox.xml()
      local bytes = assert(xml.file:download(3, { follow = true })) -- file 3 answers with a 302
      assert.is_true(#bytes > 0)
      local fetched = sandbox.log_of "download"
      assert.equal(1, #fetched)
      assert.is_nil(fetched[1].headers.authorization)
      xml:close()
    end)

    it("never follows a download redirect to plain http://", function()
      sandbox.config { download_origin = ("http://127.0.0.1:%d"):format(sandbox.env().http_port) }
      local rest, xml = sandbox.rest(), sandbox.xml()
      local v, err = rest:download(1)
      assert.is_nil(v)
      typed(err, "http")
      assert.matches("refused to follow", err.message)
      v, err = xml.file:download(3, { follow = true })
      assert.is_nil(v)
      typed(err, "http")
      assert.same({}, sandbox.log_of "download")
      rest:close()
      xml:close()
    end)
  end)
end)
