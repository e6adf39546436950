-- Security: hostile XML, header injection, XML escaping, secrets kept out of
-- every error, and the webhook secret compared in constant time. The scan of
-- everything the whole suite printed is tools/scan-secrets (a step of make
-- test, fed by spec/helpers/journal.lua); its own behaviour is checked here.
local core = require "planapi.core"
local planapi = require "planapi"
local sandbox = require "sandbox"
local portable = require "portable"
local journal = require "journal"

local raises_config = require("expect").raises_config

describe("security", function()
  before_each(function() sandbox.reset() end)

  describe("hostile XML answers", function()
    -- External entities aimed at the sandbox's recorder: a fetch would show in its log.
    local function payloads()
      local rec = sandbox.http_url "record/xxe"
      local srec = sandbox.https_url "record/xxe-tls"
      return {
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
          .. '<response status="ok">&x;</response>',
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "' .. rec .. '">]><response status="ok">&x;</response>',
        '<!DOCTYPE r [<!ENTITY % p SYSTEM "' .. srec .. '"> %p;]><response status="ok"/>',
        '<!DOCTYPE r [<!ENTITY % p SYSTEM "' .. rec .. '"> <!ENTITY % q "<!ENTITY leak SYSTEM \'' .. rec
          .. '?%p;\'>"> %q;]><response status="ok">&leak;</response>',
        '<!DOCTYPE r SYSTEM "' .. rec .. '"><response status="ok"/>',
        '<?xml version="1.0"?><!DOCTYPE r PUBLIC "-//x//y" "' .. srec .. '"><response status="ok"/>',
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
          .. '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
          .. '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
          .. '<response status="ok"><t>&lol4;</t></response>',
        '<response status="ok" xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" '
          .. 'parse="text"/></response>',
      }
    end

    it("are refused by the decoder and by the XML client, and nothing is fetched", function()
      for _, p in ipairs(payloads()) do
        local v, err = core.xml_decode(p)
        if v ~= nil then
          -- Only XInclude parses (as a plain element): it must stay inert.
          assert.matches("XInclude", p)
          local text = core.json_encode(v)
          assert.is_nil(text:find("root:", 1, true))
        else
          assert.equal("decode", err.kind)
        end
        local xml = sandbox.xml { transport = function()
          return { status = 200, headers = { ["content-type"] = "application/xml" }, body = p }
        end }
        local r, cerr = xml.task:get { id = 1 }
        if r ~= nil then
          assert.is_nil(core.json_encode(r):find("root:", 1, true))
        else
          assert.equal("decode", cerr.kind)
          assert.is_nil(tostring(cerr):find("root:", 1, true))
        end
        xml:close()
      end
      assert.same({}, sandbox.log_of "record")
    end)
  end)

  describe("header injection", function()
    local BAD = { "a\rb", "a\nb", "a\r\nX-Injected: 1", "a\0b" }

    it("CR, LF or NUL in a credential, a user agent or a header refuses the client or the call", function()
      for _, bad in ipairs(BAD) do
        raises_config(function() sandbox.rest { token = bad } end)
        raises_config(function() sandbox.planado { api_key = bad } end)
        raises_config(function() sandbox.xml { token = bad } end)
        raises_config(function() sandbox.xml { api_key = bad } end)
        raises_config(function() sandbox.rest { user_agent = bad } end)
        raises_config(function() core.client { base_url = "https://a.example/", headers = { ["X-A"] = bad } } end)
        raises_config(function() core.client { base_url = "https://a.example/", user_agent = bad } end)
        local rest = sandbox.rest()
        raises_config(function() rest:call("get-task-by-id", { id = 1 }, { headers = { ["X-A"] = bad } }) end)
        raises_config(function() rest.core:prepare { method = "GET", path = "x", content_type = bad } end)
        raises_config(function()
          rest.core:perform { method = "GET", url = sandbox.https_url "rest/ping", headers = { ["X-A"] = bad } }
        end)
        -- a header name is no way around it either
        raises_config(function() rest.core:prepare { method = "GET", path = "x", headers = { [bad] = "v" } } end)
        -- nor is a multipart part header
        raises_config(function() rest.files:upload({ data = "x", name = bad }, { target = "task" }) end)
        raises_config(function()
          rest.files:upload({ data = "x", name = "a.txt", content_type = bad }, { target = "task" })
        end)
        rest:close()
        local pd = sandbox.planado()
        raises_config(function() pd:call("GET", "jobs", nil, { headers = { ["X-A"] = bad } }) end)
        pd:close()
      end
      assert.equal(0, #sandbox.log()) -- nothing was sent
    end)
  end)

  describe("the URL policy", function()
    -- prepare and perform answer a URL under base_url from the origin that
    -- was checked when the client was made; libcurl's own URL parser
    -- (core.check_url, the full check) is the oracle for every URL. (A NUL
    -- byte is refused before either, pa_opt_string.)
    local BASES = { "https://a.example/api/", "https://a.example:8443", "http://127.0.0.1:9/x/",
      "https://u@a.example/", "https://[::1]/v2/", "http://localhost/" }
    local PIECES = { "/", "a", "?", "#", "@", "%40", ":", "..", "\\", " ", "\t", "\127", "\255", "evil.example",
      "127.0.0.1", "//", "x=1&y=2", "\r\n" }

    it("agrees with the full check on random URLs under and beside base_url", function()
      math.randomseed(81)
      for _, base in ipairs(BASES) do
        for _, allow_http in ipairs { true, false } do
          local ok_base, c = pcall(core.client, { base_url = base, allow_http = allow_http })
          if ok_base then
            for _ = 1, 300 do
              local parts = { math.random(4) == 1 and base:gsub("a%.example", "b.example") or base }
              for _ = 1, math.random(0, 5) do parts[#parts + 1] = PIECES[math.random(#PIECES)] end
              local url = table.concat(parts)
              local full = core.check_url(url, allow_http) == true
              local prepared = pcall(c.prepare, c, { method = "GET", url = url })
              assert.equal(full, prepared, ("%q"):format(url))
              -- perform refuses it before any I/O (an accepted one is not sent: no network here)
              if not full then assert.is_false(pcall(c.perform, c, { method = "GET", url = url }), url) end
            end
            c:close()
          end
        end
      end
    end)
  end)

  describe("XML special characters", function()
    it("round-trip through the XML API exactly", function()
      local xml = sandbox.xml()
      local samples = {
        '<tag attr="v">&amp; &lt;not a tag&gt; & < > " \' ]]> <![CDATA[x]]> &#38; &unknown;',
        "<response status=\"error\"><code>0001</code></response>",
        "Заявка № 5 — «срочно» ✓ 𝄞 \t tab, two  spaces,\nnew line",
        "  leading and trailing spaces  ",
        "line one\r\nline two\rline three",
      }
      for _, s in ipairs(samples) do
        local task = assert(xml.task:add { title = "special", description = s })
        local got = assert(xml.task:get { id = task.id })
        assert.equal(s, got.description)
      end
      xml:close()
    end)

    it("characters XML 1.0 cannot carry are refused, not sent mangled", function()
      local xml = sandbox.xml()
      for _, bad in ipairs { "a\0b", "bell\7", "\27[31m", "\239\191\190" } do
        raises_config(function() xml.task:add { title = bad } end)
      end
      assert.equal(0, #sandbox.log())
      xml:close()
    end)
  end)

  describe("secrets", function()
    -- Everything a user could see of an error: its line, its fields, and a
    -- traceback of it raised.
    local function exposed(err)
      local parts = { tostring(err) }
      for k, v in pairs(err) do
        if type(v) == "string" then parts[#parts + 1] = k .. "=" .. v end
      end
      local _, tb = xpcall(function() error(err) end, debug.traceback)
      parts[#parts + 1] = tostring(tb)
      parts[#parts + 1] = debug.traceback(tostring(err))
      return table.concat(parts, "\n")
    end

    local function assert_clean(text, secrets)
      for _, s in ipairs(secrets) do
        assert.is_nil(text:find(s, 1, true), "a secret leaked into: " .. text:gsub(s, "<SECRET>"))
      end
    end

    it("never appear in an error, even when the server echoes them back", function()
      local stamp = tostring(os.time())
      local token, key = "rest-secret-" .. stamp, "planado-secret-" .. stamp
      local xml_token, api_key = "xml-secret-" .. stamp, "xml-apikey-" .. stamp
      -- Each client with the secrets it was given (a client redacts its own).
      local cases = {
        { client = sandbox.rest { token = token, retry = { attempts = 1 } }, secrets = { token } },
        { client = sandbox.planado { api_key = key, retry = { attempts = 1 } }, secrets = { key } },
        { client = sandbox.xml { token = xml_token, api_key = api_key, retry = { attempts = 1 } },
          secrets = { xml_token, api_key } },
        { client = sandbox.xml { login = true, private_key = sandbox.XML.private_key, retry = { attempts = 1 } },
          secrets = { sandbox.XML.password, sandbox.XML.private_key, sandbox.XML.api_key } },
      }
      local function read(c) -- by the client's kind (a resource it lacks is a config error)
        local kind = tostring(c)
        if kind:find("planapi.planado", 1, true) then return c.jobs:get "job-ext-1" end
        if kind:find("planapi.planfix_xml", 1, true) then return c.task:get { id = 1 } end
        return c:call("get-task-by-id", { id = 1 })
      end
      local checked = 0
      local function check(err, secrets, what)
        assert.is_true(core.is_error(err), tostring(what) .. ": not an error: " .. tostring(err))
        assert_clean(exposed(err), secrets)
        checked = checked + 1
      end
      for _, case in ipairs(cases) do
        local c, secrets = case.client, case.secrets
        local echo = "bad credentials: " .. table.concat(secrets, " ") -- the server echoes them back
        local r, err = read(c)
        if r == nil then check(err, secrets, "unknown credentials") end -- (the login client's are right)
        for _, fault in ipairs {
          { mode = "status", status = 500, error = echo },
          { mode = "status", status = 401, error = echo },
          { mode = "code", code = 1, error = echo },
          { mode = "html", status = 200 },
          { mode = "malformed" },
          { mode = "reset" },
          { mode = "truncate" },
        } do
          sandbox.fault(fault)
          r, err = read(c)
          -- (a reset on a kept-alive connection may be retried by libcurl at once: then no error)
          if r == nil or fault.mode ~= "reset" then check(err, secrets, tostring(c) .. " " .. fault.mode) end
        end
        assert_clean(tostring(c) .. tostring(c.core), secrets) -- nor in the clients' own string forms
      end
      -- a session id is a secret too: echoed by the server after a login
      local login = cases[4]
      sandbox.reset()
      assert(login.client.task:get { id = 1 })
      local sessions = sandbox.control("GET", "xml/sessions").sessions
      assert.is_true(#sessions > 0)
      local sid = sessions[1].sid
      sandbox.fault { mode = "status", status = 503, error = "session " .. sid .. " broken" }
      local _, err = login.client.task:get { id = 1 }
      check(err, { sid })
      sandbox.fault { mode = "code", code = "0005", error = "session " .. sid .. " expired" }
      sandbox.fault { mode = "code", code = "0005", error = "session " .. sid .. " expired" }
      _, err = login.client.task:get { id = 1 }
      check(err, { sid })
      -- TLS and argument errors name no secret either
      local tls = sandbox.rest { token = token, base_url = sandbox.https_url("rest/", sandbox.env().untrusted_port) }
      _, err = tls:call "ping"
      check(err, { token })
      local ok, cerr = pcall(planapi.planfix_rest, { account = "acme", token = token, timout = 1 })
      assert.is_false(ok)
      check(cerr, { token })
      assert.is_true(checked >= 30, "errors checked: " .. checked)
      for _, case in ipairs(cases) do case.client:close() end
      tls:close()
    end)

    it("the suite's scan finds a secret planted in any output, and never prints it", function()
      local dir = portable.tmpdir()
      local secret = "planted-secret-" .. os.time()
      assert(portable.execute(("mkdir -p %s/journal %s/step"):format(dir, dir)))
      local write = portable.write_file
      write(dir .. "/journal/secrets-1.txt", secret .. "\n")
      write(dir .. "/busted.tap", "ok 1 - fine\n")
      local out, code = portable.run("lua5.4 tools/scan-secrets " .. dir)
      assert.equal(0, code, out)
      assert.matches("^ok %- no secret", out)
      write(dir .. "/step/step-x.log", "line 1\nerror: token " .. secret .. " refused\n")
      out, code = portable.run("lua5.4 tools/scan-secrets " .. dir)
      assert.equal(1, code, out)
      assert.matches("step%-x%.log:2", out)
      assert.is_nil(out:find(secret, 1, true))
      portable.rmtree(dir)
    end)

    it("the scan finds a fragment of a random secret, and skips the words a test secret is made of", function()
      local dir = portable.tmpdir()
      local chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
      local random = {}
      for i = 1, 32 do
        local k = math.random(1, #chars)
        random[i] = chars:sub(k, k)
      end
      random[9], random[10] = "Q", "7" -- the piece below is of mixed classes
      random = table.concat(random)
      -- A hex session id with a letter in every fourth place: a random one
      -- may hold a run of 9 digits (read as a time stamp, no bits) or a
      -- 12-digit window, which the scan rightly does not count as secret.
      local hex = {}
      for i = 1, 32 do
        local k = i % 4 == 0 and math.random(11, 16) or math.random(1, 16)
        hex[i] = ("0123456789abcdef"):sub(k, k)
      end
      local sid = table.concat(hex)
      local worded = "planted-secret-" .. os.time()
      assert(portable.execute(("mkdir -p %s/journal %s/step"):format(dir, dir)))
      local write = portable.write_file
      write(dir .. "/journal/secrets-1.txt", random .. "\n" .. sid .. "\n" .. worded .. "\n")
      -- words of the test secret ("planted-secret-" is in this file) are no finding
      write(dir .. "/step/step-x.log", "the planted-secret- prefix, " .. sid:sub(1, 11) .. "\n")
      local out, code = portable.run("lua5.4 tools/scan-secrets " .. dir)
      assert.equal(0, code, out)
      -- 10 characters of the random token (8 or 9 carry 48 bits, by its classes), 12 of the
      -- session id: findings, never printed
      for _, piece in ipairs { random:sub(9, 18), sid:sub(20, 31) } do
        write(dir .. "/step/step-x.log", "line 1\nupstream said: Bearer ..." .. piece .. "\n")
        out, code = portable.run("lua5.4 tools/scan-secrets " .. dir)
        assert.equal(1, code, out)
        assert.matches("fragment of secret .*step%-x%.log:2", out)
        assert.is_nil(out:find(piece, 1, true))
      end
      portable.rmtree(dir)
    end)

    it("the journal of this run holds the suite's configured secrets", function()
      journal.secret("journal-probe-" .. os.time())
      -- read directly: through portable.run the secrets would land in the journal's output
      local out = {}
      local names = io.popen "ls build/journal/secrets-*.txt"
      for name in names:lines() do out[#out + 1] = assert(portable.read_file(name)) end
      names:close()
      out = table.concat(out)
      assert.truthy(out:find(sandbox.TOKEN, 1, true))
      assert.truthy(out:find(sandbox.PLANADO_KEY, 1, true))
      assert.truthy(out:find("journal-probe-", 1, true))
    end)
  end)

  describe("webhook secret", function()
    it("is checked with secure_equals, whose instruction count does not depend on the bytes", function()
      -- Instructions counted by callgrind inside secure_equals only: the same
      -- for every input of a length, whichever byte differs. Counts, not time.
      local n = 256
      local expected = ("s"):rep(n)
      local cases = {
        equal = expected,
        first_differs = "x" .. ("s"):rep(n - 1),
        last_differs = ("s"):rep(n - 1) .. "x",
        shorter = ("s"):rep(10),
      }
      local counts = {}
      for name, given in pairs(cases) do
        local dir = portable.tmpdir()
        local script = dir .. "/ct.lua"
        portable.write_file(script, ("package.cpath = './?.so;' .. package.cpath\nlocal core = require 'planapi.core'\n"
          .. "local g, e = %q, %q\nlocal r\nfor _ = 1, 50 do r = core.secure_equals(g, e) end\nprint(r)\n")
          :format(given, expected))
        local out, code = portable.run(("valgrind --tool=callgrind --callgrind-out-file=%s/cg.out "
          .. "--toggle-collect='*secure_equals*' lua5.4 %s && callgrind_annotate %s/cg.out"):format(dir, script, dir))
        assert.equal(0, code, out)
        assert.equal(name == "equal", out:find("\ntrue\n", 1, true) ~= nil or out:find("^true\n") ~= nil, out)
        local total = out:match "([%d,]+)%s+%(?[%d.%%]*%)?%s*PROGRAM TOTALS" or out:match "([%d,]+)%s+PROGRAM TOTALS"
        assert.is_string(total, out)
        counts[name] = tonumber((total:gsub(",", "")))
        portable.rmtree(dir)
      end
      assert.is_true(counts.equal > 0)
      assert.equal(counts.equal, counts.first_differs)
      assert.equal(counts.equal, counts.last_differs)
      -- A wrong length still costs a full comparison (against the expected
      -- value itself): within a branch of the equal-length count, where
      -- skipping the comparison would save about half of it.
      assert.is_true(math.abs(counts.shorter - counts.equal) < counts.equal * 0.01,
        ("shorter %d, equal %d"):format(counts.shorter, counts.equal))
    end)

    it("a receiver refuses a wrong secret of any length, and a missing one", function()
      local hook = planapi.planado_webhook { secret = "whsec-0123456789abcdef" }
      local body = '{"event_type":"job.created","event_uuid":"e1","version":1,"job":{"uuid":"u1"}}'
      for _, given in ipairs { "whsec-0123456789abcdeX", "Xhsec-0123456789abcdef", "w", "", false } do
        local headers = { ["X-Planado-Secret"] = given or nil }
        local ev, err = hook:handle(headers, body)
        assert.is_nil(ev)
        assert.equal(401, err.answer)
        assert.is_nil(tostring(err):find("whsec-0123456789abcdef", 1, true))
      end
    end)
  end)
end)
