-- The C core's pure parts: JSON, errors, URL policy, query strings,
-- header parsing, request preparation, the GCRA limiter.
local core = require "planapi.core"
local planapi = require "planapi"
local portable = require "portable"

local raises_config = require("expect").raises_config

describe("JSON encode", function()
  it("sorts object keys so the bytes sent are deterministic", function()
    assert.equal('{"a":1,"b":2,"c":{"x":true,"y":false}}',
      core.json_encode { c = { y = false, x = true }, b = 2, a = 1 })
  end)

  it("sends planapi.null as null at any depth, and it is cjson.null", function()
    assert.equal(require("cjson").null, planapi.null)
    assert.equal('{"a":null,"b":[1,null,2],"c":{"d":null}}',
      core.json_encode { a = planapi.null, b = { 1, planapi.null, 2 }, c = { d = planapi.null } })
  end)

  it("encodes planapi.array as [] even when empty, and plain empty tables as {}", function()
    assert.equal('{"files":[],"meta":{}}', core.json_encode { files = planapi.array(), meta = {} })
    assert.equal("[1,2]", core.json_encode(planapi.array { 1, 2 }))
    assert.is_true(planapi.is_array(planapi.array()))
    assert.is_false(planapi.is_array({}))
  end)

  it("keeps 64-bit integers exact and floats round-trippable", function()
    if math.type then
      -- 2^53 + 1 exists only as a 5.3+ integer: LuaJIT reads the literal as a float
      assert.equal("9007199254740993", core.json_encode(9007199254740993))
    end
    assert.equal("9007199254740992", core.json_encode(2 ^ 53)) -- digits, not 9.007e+15
    assert.equal("-42", core.json_encode(-42))
    assert.equal("0.1", core.json_encode(0.1))
    assert.equal(1 / 3, core.json_decode(core.json_encode(1 / 3)))
    assert.equal("42", core.json_encode(42.0))
  end)

  it("escapes control characters, quotes and backslashes, and keeps UTF-8", function()
    assert.equal('"a\\"b\\\\c\\n\\t\\u0001 Привет"', core.json_encode('a"b\\c\n\t\1 Привет'))
  end)

  it("rejects what has no JSON form, naming where it is", function()
    raises_config(function() core.json_encode { a = { b = function() end } } end, "body%.a%.b")
    raises_config(function() core.json_encode { list = { 1, nil, 3 } } end, "hole")
    raises_config(function() core.json_encode { 1, 2, x = 3 } end, "mixes")
    raises_config(function() core.json_encode { [0.5] = 1 } end, "key")
    raises_config(function() core.json_encode(0 / 0) end, "NaN")
    raises_config(function() core.json_encode(math.huge) end, "infinity")
    raises_config(function() core.json_encode { name = "\xff\xfe" } end, "UTF%-8")
    raises_config(function() core.json_encode { "\xed\xa0\x80" } end, "UTF%-8") -- a lone surrogate
  end)

  it("refuses a table that contains itself instead of looping", function()
    local t = {}
    t.self = t
    raises_config(function() core.json_encode(t) end, "deep")
  end)
end)

describe("JSON decode", function()
  -- Under LuaJIT every number is a float (number_type says "integer" for an
  -- integral one): what holds on both is that 42 prints as 42.
  it("gives integers for integral numbers, so ids print as 42, not 42.0", function()
    local v = core.json_decode '{"id":42,"list":[1,2.5,-3],"nested":{"n":100}}'
    assert.equal("integer", portable.number_type(v.id))
    assert.equal("42", tostring(v.id))
    assert.equal("-3", tostring(v.list[3]))
    assert.equal(2.5, v.list[2])
    assert.equal("float", portable.number_type(v.list[2]))
    assert.equal("integer", portable.number_type(v.list[3]))
    assert.equal("integer", portable.number_type(v.nested.n))
  end)

  it("leaves a null member of an object out, keeps it as planapi.null with nulls = \"keep\"", function()
    local v = core.json_decode('{"a":null,"b":1,"list":[null,2]}')
    assert.is_nil(v.a)
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({ "b", "list" }, keys)
    assert.equal(planapi.null, v.list[1]) -- positions in an array matter
    assert.equal(planapi.null, core.json_decode('{"a":null}', "keep").a)
    assert.equal(planapi.null, planapi.json.decode('{"a":null}', { nulls = "keep" }).a)
    assert.equal(planapi.null, core.json_decode("null"))
  end)

  it("returns a decode error for invalid JSON, NaN or hex numbers", function()
    for _, bad in ipairs { "{bad", '{"a":NaN}', "[0x10]", '{"a":1', "" } do
      local v, err = core.json_decode(bad)
      assert.is_nil(v, bad)
      assert.equal("decode", err.kind)
    end
  end)

  it("leaves the global cjson settings alone", function()
    local cjson = require "cjson"
    assert.equal(10, cjson.decode "[10]"[1]) -- untouched module still works as before
    assert.has_no.errors(function() cjson.decode "[NaN]" end) -- its default: NaN accepted
  end)
end)

describe("errors", function()
  it("have every documented field and a one-line tostring", function()
    local e = core.error { kind = "api", message = "Task\r\ndoes not exist", status = 404, code = 1000,
      operation = "get-task-by-id", retryable = false }
    assert.equal("api", e.kind)
    assert.equal(1000, e.code)
    local s = tostring(e)
    assert.equal("get-task-by-id: api error: Task  does not exist (HTTP 404, code 1000)", s)
    assert.is_nil(s:find "\n")
  end)

  it("render any code, even a float no integer type holds (found by fuzzing)", function()
    for _, code in ipairs { 1e300, -1e300, 2^63, 0.5 } do
      local s = tostring(core.error { kind = "api", message = "m", code = code })
      assert.matches("code", s)
    end
  end)

  it("show retry_after and cut very long messages", function()
    local e = core.error { kind = "rate_limit", message = ("x"):rep(5000), retry_after = 2.5, retryable = true }
    local s = tostring(e)
    assert.matches("retry after 2%.5s", s)
    assert.is_true(#s < 600)
  end)

  it("only come in the documented kinds", function()
    raises_config(function() core.error { kind = "oops", message = "m" } end, "kind")
    for _, k in ipairs(planapi.error_kinds) do
      assert.equal(k, core.error { kind = k, message = "m" }.kind)
    end
    assert.same({ "config", "transport", "timeout", "tls", "http", "api", "decode", "auth",
      "rate_limit", "quota", "io" }, planapi.error_kinds)
  end)

  it("are recognised by is_error", function()
    assert.is_true(planapi.is_error(core.error { kind = "api", message = "m" }))
    assert.is_false(planapi.is_error { kind = "api", message = "m" })
    assert.is_false(planapi.is_error "api")
  end)
end)

describe("URL policy", function()
  it("accepts https anywhere", function()
    assert.is_true(core.check_url("https://acme.planfix.com/rest/"))
  end)

  it("refuses http off loopback, even with allow_http", function()
    local ok, err = core.check_url("http://acme.planfix.com/rest/", true)
    assert.is_nil(ok)
    assert.equal("config", err.kind)
    assert.is_nil(core.check_url("http://127.0.0.1.evil.example/", true))
    assert.is_nil(core.check_url("http://10.0.0.1/", true))
  end)

  it("accepts http to loopback only with allow_http", function()
    assert.is_nil(core.check_url("http://127.0.0.1:8080/", false))
    for _, url in ipairs { "http://127.0.0.1:8080/", "http://localhost/", "http://[::1]:80/", "http://127.9.8.7/" } do
      assert.is_true(core.check_url(url, true), url)
    end
  end)

  it("refuses other schemes and malformed URLs", function()
    assert.is_nil(core.check_url("ftp://127.0.0.1/", true))
    assert.is_nil(core.check_url("file:///etc/passwd", true))
    assert.is_nil(core.check_url("not a url", true))
  end)
end)

describe("query strings", function()
  it("sort keys, percent-encode, repeat lists and spell booleans", function()
    assert.equal("a=1&fields=id%2Cname&silent=true&status%5B%5D=x&status%5B%5D=y%20z",
      core.encode_query { silent = true, fields = "id,name", a = 1, ["status[]"] = { "x", "y z" } })
  end)

  it("reject nested tables and non-string names", function()
    raises_config(function() core.encode_query { a = { { 1 } } } end, "query parameter 'a'")
    raises_config(function() core.encode_query { [1] = "x" } end, "names")
  end)

  -- RFC 3986's rule written out in Lua, independent of the C escaper and of
  -- its shortcut for a string that needs no escaping (ids, uuids).
  local function reference_escape(s)
    return (s:gsub("[^A-Za-z0-9%-_%.~]", function(c) return ("%%%02X"):format(c:byte()) end))
  end

  it("url_escape: every byte as RFC 3986 says, over random strings with and without reserved bytes", function()
    local unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    math.randomseed(1507)
    for round = 1, 2000 do
      local parts = {}
      for i = 1, math.random(0, 40) do
        if round % 2 == 0 or math.random(10) > 1 then
          local k = math.random(#unreserved)
          parts[i] = unreserved:sub(k, k)
        else
          parts[i] = string.char(math.random(0, 255))
        end
      end
      local s = table.concat(parts)
      assert.equal(reference_escape(s), core.url_escape(s))
    end
    assert.equal("42", core.url_escape(42))
    assert.equal("true", core.url_escape(true))
  end)

  it("url_join: the path, '/' and the escaped ref in one string, over random refs; nil for what is no ref", function()
    math.randomseed(1508)
    for round = 1, 2000 do
      local bytes = {}
      for i = 1, math.random(0, round % 10 == 0 and 300 or 40) do
        bytes[i] = round % 2 == 0 and string.char(math.random(0, 255)) or ("0123456789abcdef-"):sub(i % 17 + 1, i % 17 + 1)
      end
      local ref, path = table.concat(bytes), ("jobs"):rep(math.random(0, 3))
      assert.equal(path .. "/" .. reference_escape(ref), core.url_join(path, ref))
    end
    assert.equal("jobs/42", core.url_join("jobs", 42))
    assert.equal("jobs/-1.5", core.url_join("jobs", -1.5))
    for _, no in ipairs { true, false, {}, print } do assert.is_nil(core.url_join("jobs", no)) end
    assert.is_nil(core.url_join("jobs"))
    raises_config(function() core.url_join("jobs", 0 / 0) end, "NaN")
  end)
end)

describe("response headers", function()
  it("lower-case names, join repeats, unfold lines, keep only the last response", function()
    local h = core.parse_headers(table.concat({
      "HTTP/1.1 100 Continue", "", "HTTP/1.1 200 OK", "Content-Type: application/json",
      "X-RateLimit-Remaining:  17 ", "Set-Cookie: a=1", "set-cookie: b=2", "X-Long: one",
      "  two", "Retry-After: 3", "", "" }, "\r\n"))
    assert.equal("application/json", h["content-type"])
    assert.equal("17", h["x-ratelimit-remaining"])
    assert.equal("a=1, b=2", h["set-cookie"])
    assert.equal("one two", h["x-long"])
    assert.equal("3", h["retry-after"])
    assert.is_nil(h["Content-Type"])
  end)

  it("survive garbage", function()
    for _, raw in ipairs { ":", "\r\n\r\n", "no colon here", ("x"):rep(1000) .. ":v", "  folded first" } do
      assert.is_table(core.parse_headers(raw))
    end
  end)

  it("skip a line whose name holds a control character, and keep NULs in joined values (found by fuzzing)", function()
    local h = core.parse_headers("HTTP/1.1 200 OK\r\nX-A\rX-B: v\r\nX-C: a\0b\r\nX-C: c\r\n\r\n")
    assert.is_nil(h["x-a\rx-b"])
    assert.is_nil(h["x-b"])
    assert.equal("a\0b, c", h["x-c"])
  end)
end)

describe("client:prepare", function()
  local c
  before_each(function()
    c = core.client { base_url = "https://acme.planfix.com/rest", headers = { Authorization = "Bearer T0KEN-abc" },
      secrets = { "T0KEN-abc" } }
  end)
  after_each(function() c:close() end)

  it("joins the path under base_url and encodes query and JSON body", function()
    local req = c:prepare { method = "POST", path = "/task/list", query = { fields = "id" }, body = { pageSize = 100 } }
    assert.equal("POST", req.method)
    assert.equal("https://acme.planfix.com/rest/task/list?fields=id", req.url)
    assert.equal('{"pageSize":100}', req.body)
    assert.equal("application/json; charset=utf-8", req.headers["Content-Type"])
    assert.equal("Bearer T0KEN-abc", req.headers.Authorization)
    assert.is_nil(req.headers["User-Agent"]) -- the transport that sends it names itself
  end)

  it("lets a request header replace a default one whatever its case, or drop it with false", function()
    local req = c:prepare { method = "GET", path = "x", headers = { authorization = "Bearer other" } }
    assert.equal("Bearer other", req.headers.authorization)
    assert.is_nil(req.headers.Authorization)
    req = c:prepare { method = "GET", path = "x", headers = { Authorization = false } }
    assert.is_nil(req.headers.Authorization)
  end)

  it("never sends the default headers (the token) to another host", function()
    local req = c:prepare { method = "GET", url = "https://storage.example.com/file?sig=1" }
    assert.is_nil(req.headers.Authorization)
  end)

  it("refuses header injection anywhere", function()
    raises_config(function() c:prepare { method = "GET", path = "x", headers = { ["X-A"] = "v\r\nX-B: 1" } } end, "CR")
    raises_config(function() c:prepare { method = "GET", path = "x", headers = { ["Bad Name"] = "v" } } end, "header name")
    raises_config(function() core.client { base_url = "https://a.example/", headers = { X = "a\0b" } } end, "NUL")
    raises_config(function() c:perform { method = "GET", url = "https://a.example/", headers = { X = "a\nb" } } end)
  end)

  it("checks its arguments", function()
    raises_config(function() c:prepare { path = "x" } end, "method")
    raises_config(function() c:prepare { method = "get", path = "x" } end, "upper")
    raises_config(function() c:prepare { method = "GET" } end, "path or url")
    raises_config(function() c:prepare { method = "GET", path = "https://evil.example/" } end, "relative")
    raises_config(function() c:prepare { method = "GET", url = "http://evil.example/" } end, "http")
    raises_config(function() c:prepare { method = "POST", path = "x", body = true } end, "body")
  end)

  -- The keys of t in the order next() gives them: the order the transports
  -- write header lines in.
  local function next_order(t)
    local keys, k = {}, next(t)
    while k ~= nil do
      keys[#keys + 1] = k
      k = next(t, k)
    end
    return keys
  end

  -- A random path: mostly URL bytes, sometimes any byte (a space, a control
  -- byte, DEL, NUL, UTF-8), sometimes leading slashes, now and then longer
  -- than the 512 bytes joined on the C stack.
  local function random_path()
    local plain = "abcdefghijklmnopqrstuvwxyz0123456789-_.~/%?=&"
    local parts = {}
    for i = 1, math.random(0, math.random(5) == 1 and 700 or 60) do
      if math.random(30) == 1 then
        parts[i] = string.char(math.random(0, 255))
      else
        local k = math.random(#plain)
        parts[i] = plain:sub(k, k)
      end
    end
    return ("/"):rep(math.random(0, 4) == 0 and math.random(1, 3) or 0) .. table.concat(parts)
  end

  local METHODS = { "GET", "DELETE", "PATCH", "POST", "get", "", "G ET", "ABCDEFGHIJKLMNOPQ" }
  local DEFAULTS = {
    {}, { Authorization = "Bearer T0KEN-abc" }, { ["X-Planado-API-Key"] = "k3y-value" },
    { Authorization = "Bearer x", Accept = "text/xml" }, { accept = "*/*", ["X-Num"] = 42, ["X-Off"] = false },
    { ["X-A"] = "1", ["X-B"] = "2", ["X-C"] = "3", ["X-D"] = "4", ["X-E"] = "5" },
  }

  it("prepare(method, path): the request prepare{ method =, path = } makes, named, over random paths", function()
    math.randomseed(1915)
    for round = 1, 3000 do
      local base = ({ "https://acme.planfix.com/rest", "https://api.example.test/v2/", "http://127.0.0.1:8080/" })
        [round % 3 + 1]
      local client = core.client { base_url = base, headers = DEFAULTS[round % #DEFAULTS + 1], allow_http = true }
      local method, path = METHODS[math.random(#METHODS)], random_path()
      local ok, req = pcall(client.prepare, client, method, path)
      local sok, sreq = pcall(client.prepare, client, { method = method, path = path })
      -- the oracle: the method and URL rules, and libcurl's refused bytes
      local valid = #method <= 16 and method:match "^%u+$" ~= nil and not path:find("\0", 1, true)
        and not path:find "^https?://" and not path:find "[%c \127]"
      assert.equal(valid, ok, ("%q %q"):format(method, path))
      assert.equal(valid, sok, path)
      if ok then
        assert.equal((base:sub(-1) == "/" and base or base .. "/") .. path:gsub("^/+", ""), req.url)
        assert.equal(method .. " " .. path:gsub("^/", ""), req.operation)
        req.operation = nil
        assert.same(sreq, req)
        assert.same(next_order(sreq.headers), next_order(req.headers))
        assert.same(next_order(sreq), next_order(req))
      else
        assert.equal("config", req.kind)
        assert.equal("config", sreq.kind)
      end
      client:close()
    end
    raises_config(function() c:prepare("GET", 42) end, "path")
    raises_config(function() c:prepare("GET") end, "path")
    c:close()
    raises_config(function() c:prepare("GET", "x") end, "closed")
  end)

  it("redacts secrets from messages and errors", function()
    assert.equal("bad token *** here", c:redact "bad token T0KEN-abc here")
    local e = c:error { kind = "api", message = "echo T0KEN-abc" }
    assert.equal("echo ***", e.message)
    assert.is_nil(tostring(e):find("T0KEN", 1, true))
  end)

  it("decodes JSON bodies, treats an empty body as {}, and reports what is not JSON", function()
    assert.same({ a = 1 }, c:decode { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"a":1}' })
    assert.same({}, c:decode { status = 200, headers = {}, body = "  " })
    local v, err = c:decode { status = 502, headers = { ["content-type"] = "text/html" }, body = "<html>Bad gateway T0KEN-abc</html>" }
    assert.is_nil(v)
    assert.equal("decode", err.kind)
    assert.equal(502, err.status)
    assert.matches("text/html", err.message)
    assert.is_nil(err.message:find("T0KEN", 1, true))
  end)
end)

describe("client options", function()
  it("are checked", function()
    raises_config(function() core.client {} end, "base_url")
    raises_config(function() core.client { base_url = "http://api.example.com/" } end, "http")
    raises_config(function() core.client { base_url = "https://a.example/", timeout = -1 } end, "timeout")
    raises_config(function() core.client { base_url = "https://a.example/", max_body = 0 } end, "max_body")
    raises_config(function() core.client { base_url = "https://a.example/", ca_file = "/nonexistent/ca.pem" } end, "ca_file")
    raises_config(function() core.client { base_url = "https://a.example/", proxy = 3 } end, "proxy")
  end)

  it("close is idempotent and a closed client refuses work", function()
    local c = core.client { base_url = "https://a.example/" }
    c:close()
    c:close()
    assert.is_true(c:config().closed)
    raises_config(function() c:prepare { method = "GET", path = "x" } end, "closed")
    raises_config(function() c:perform { method = "GET", url = "https://a.example/" } end, "closed")
  end)

  -- `<close>` is Lua 5.4 syntax: the chunk is compiled with load() so that
  -- this file still parses under LuaJIT, where the test is pending.
  if _VERSION == "Lua 5.4" then
    it("closes with a to-be-closed variable", function()
      local scope = assert(load([[
        local core = ...
        local c
        do
          local cc <close> = core.client { base_url = "https://a.example/" }
          c = cc
        end
        return c
      ]], "=to-be-closed"))
      local c = scope(core)
      assert.is_true(c:config().closed)
    end)
  else
    pending("closes with a to-be-closed variable (Lua 5.4 only: no <close> before 5.4)")
  end
end)

describe("GCRA limiter", function()
  it("spaces requests at the rate after the burst is spent", function()
    local lim = core.limiter { rate = 1, per = 1, burst = 1 }
    assert.equal(0, lim:reserve(100))
    assert.equal(1, lim:reserve(100))
    assert.equal(2, lim:reserve(100))
    assert.equal(0, lim:reserve(110)) -- idle time is not banked beyond the burst
    assert.equal(1, lim:reserve(110))
  end)

  it("lets a burst through at once, then paces", function()
    local lim = core.limiter { rate = 60, per = 60, burst = 3 }
    assert.equal(0, lim:reserve(0))
    assert.equal(0, lim:reserve(0))
    assert.equal(0, lim:reserve(0))
    assert.equal(1, lim:reserve(0))    -- 4th: one interval after the burst
    assert.equal(0, lim:reserve(2.5))  -- its slot (t=1) plus the burst window has passed
    assert.near(0.5, lim:reserve(2.5), 1e-9)
  end)

  it("adds the margin to every interval", function()
    local lim = core.limiter { rate = 1, per = 1, margin = 0.25 }
    assert.equal(0, lim:reserve(0))
    assert.equal(1.25, lim:reserve(0))
    assert.equal(2.5, lim:reserve(0))
  end)

  it("settles the next slot one interval after a response, however late it came", function()
    local lim = core.limiter { rate = 1, per = 1 }
    assert.equal(0, lim:reserve(0))
    lim:settle(0.75)                       -- the answer took 0.75 s
    assert.equal(1, lim:reserve(0.75))     -- next leaves at 1.75, not at 1.0
    lim:settle(1.80)
    assert.near(0.95, lim:reserve(1.85), 1e-9)
    local burst = core.limiter { rate = 1, per = 1, burst = 3 }
    assert.equal(0, burst:reserve(0))
    burst:settle(0.5)
    assert.equal(0, burst:reserve(0.5))    -- a burst allowance still applies
  end)

  it("gives back a slot that was not used", function()
    local lim = core.limiter { rate = 1, per = 1 }
    assert.equal(0, lim:reserve(5))
    lim:release(5)
    assert.equal(0, lim:reserve(5))
  end)

  it("checks its options", function()
    raises_config(function() core.limiter { rate = 0 } end, "rate")
    raises_config(function() core.limiter { burst = 0.5 } end, "burst")
    raises_config(function() core.limiter { margin = -1 } end, "margin")
  end)
end)
