-- The libcurl transport keeps, per client, the last request's header lines,
-- the last response's header lines and the last request's limiter, and
-- reuses what is the same as last time (src/transport_curl.c,
-- src/headers.c). Against a server that answers with the header lines each
-- request names and echoes the request head it received
-- (spec/helpers/header_server.lua, not our code), over random runs where
-- headers repeat, change, repeat a name or turn invalid: every response's
-- headers are what the uncached parser (core.parse_headers) and a plain
-- model of RFC 9112 field lines make of the same lines, and every request
-- arrives with exactly its own header lines; a header that fails the checks
-- is refused whatever line was kept. Over random runs of pacers, each send
-- is recorded by the request's own limiter (its send_tat moves) and by no
-- other.
local core = require "planapi.core"
local portable = require "portable"

-- The server: its base URL and a stop function.
local function start()
  local dir = portable.tmpdir()
  assert(portable.execute(("lua5.4 spec/helpers/header_server.lua %s/port > %s/log 2>&1 & echo $! > %s/pid")
    :format(dir, dir, dir)))
  local port
  for _ = 1, 500 do
    port = (portable.read_file(dir .. "/port") or ""):match "^(%d+)"
    if port then break end
    core.sleep(0.01)
  end
  assert(port, "the header server did not start: " .. tostring(portable.read_file(dir .. "/log")))
  local pid = assert(tonumber(portable.read_file(dir .. "/pid")))
  return ("http://127.0.0.1:%s/"):format(port), function()
    portable.execute("kill " .. pid .. " 2>/dev/null")
    portable.rmtree(dir)
  end
end

local function hex(s)
  return (s:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
end

-- RFC 9112 field lines as the transport promises them: names lower-cased,
-- values trimmed, a repeated name's values joined with ", ", a folded line
-- appended to the value before it with one space (libcurl refuses those).
local function model(lines)
  local t = {}
  for _, line in ipairs(lines) do
    local name, value = line:match "^([^:]+):[ \t]*(.-)[ \t]*$"
    name = name:lower()
    t[name] = t[name] and (t[name] .. ", " .. value) or value
  end
  return t
end

local NAMES = { "X-A", "x-a", "X-Rate", "ETag", "Vary", "X-Long-Header-Name", "Content-Type", "Server" }
local VALUES = { "a", "b, c", "", "  spaced\t ", "application/json; charset=utf-8", "W/\"1\"" }

local function random_line()
  local value = math.random(3) == 1 and ("v" .. math.random(1000)) or VALUES[math.random(#VALUES)]
  return NAMES[math.random(#NAMES)] .. ":" .. (math.random(2) == 1 and " " or "") .. value
end

-- The next block: most lines kept at their place, some new, some added or
-- dropped. (No folded line: libcurl refuses them before any parser of ours.)
local function next_lines(prev)
  local lines = {}
  for _, line in ipairs(prev) do
    local r = math.random(10)
    if r <= 6 then lines[#lines + 1] = line
    elseif r <= 8 then lines[#lines + 1] = random_line()
    elseif r == 10 then
      lines[#lines + 1] = random_line()
      lines[#lines + 1] = line
    end
  end
  if #lines == 0 or math.random(4) == 1 then lines[#lines + 1] = random_line() end
  return lines
end

-- The header lines of a request head as the server received it.
local function received(head)
  local got = {}
  for name, value in head:gmatch "\n([^:\r\n]+):[ ]?([^\r\n]*)" do got[#got + 1] = { name:lower(), value } end
  return got
end

describe("the libcurl transport's kept state", function()
  local base, stop
  setup(function() base, stop = start() end)
  teardown(function() stop() end)

  it("gives every response the headers the uncached parser and the model give its lines", function()
    local seed = os.time()
    math.randomseed(seed)
    local c = core.client { base_url = base, allow_http = true, timeout = 10 }
    local lines = { "Server: nginx", "Content-Type: application/json", "X-Rate: 9" }
    for i = 1, 300 do
      if i > 1 then lines = next_lines(lines) end
      local block = table.concat(lines, "\r\n")
      local res = assert(c:perform { method = "GET", url = base .. hex(block) })
      local at = ("response %d (seed %d): %q"):format(i, seed, block)
      local want = model(lines)
      want["content-length"] = tostring(#res.body)
      assert.same(want, res.headers, at)
      assert.same(core.parse_headers("HTTP/1.1 200 OK\r\n" .. block .. "\r\nContent-Length: " .. #res.body
        .. "\r\n\r\n"), res.headers, at)
      res.headers["x-a"] = "changed by the caller" -- each response's table is its own
    end
    c:close()
  end)

  it("sends every request exactly its own header lines, and refuses a bad one after a kept line", function()
    local seed = os.time()
    math.randomseed(seed)
    local c = core.client { base_url = base, allow_http = true, timeout = 10 }
    local REQ_NAMES = { "X-A", "X-B", "Accept", "User-Agent" }
    local REQ_VALUES = { "v", "v", "w", "", 42, false }
    local BAD = { { "X-A", "v\r\nX-Evil: 1" }, { "X-A", "v\0" }, { "X A", "v" }, { "X-B", "w\n" } }
    local headers = {}
    for i = 1, 200 do
      -- the same table's entries mostly kept, one changed at a time
      local name = REQ_NAMES[math.random(#REQ_NAMES)]
      if math.random(3) == 1 then headers[name] = REQ_VALUES[math.random(#REQ_VALUES)] end
      if math.random(4) == 1 then headers[name] = nil end
      local at = ("request %d (seed %d)"):format(i, seed)
      if math.random(10) == 1 then
        local bad = BAD[math.random(#BAD)]
        local sent = {}
        for k, v in pairs(headers) do sent[k] = v end
        sent[bad[1]] = bad[2]
        local ok, err = pcall(c.perform, c, { method = "GET", url = base, headers = sent })
        assert.is_false(ok, at)
        assert.equal("config", err.kind, at)
      else
        local res = assert(c:perform { method = "GET", url = base, headers = headers })
        local got, want = received(res.body), {}
        for _, n in ipairs(REQ_NAMES) do
          local v = headers[n]
          if v ~= nil and v ~= false then want[n:lower()] = tostring(v) end
        end
        if headers.Accept == nil then want.accept = "*/*" end -- libcurl's own, unless false drops it
        local seen = {}
        for _, pair in ipairs(got) do
          assert.is_nil(seen[pair[1]], at .. ": " .. pair[1] .. " twice")
          seen[pair[1]] = pair[2]
        end
        for _, n in ipairs { "x-a", "x-b", "accept" } do assert.equal(want[n], seen[n], at .. ": " .. n) end
        if headers["User-Agent"] == nil then
          assert.matches("^planapi/", seen["user-agent"], at)
        else
          assert.equal(want["user-agent"], seen["user-agent"], at)
        end
      end
    end
    c:close()
  end)

  it("confirms each send with the request's own pacer, whatever the request before had", function()
    local seed = os.time()
    math.randomseed(seed)
    local dir = portable.tmpdir()
    local c = core.client { base_url = base, allow_http = true, timeout = 10 }
    local rate = { rate = 1000, per = 1, burst = 1, margin = 0 }
    local a, b = core.limiter(rate), core.limiter(rate)
    local s = assert(core.shm_limiter { path = dir .. "/shm", key = "k", rate = 1000, per = 1, burst = 1, margin = 0 })
    local limiters, pacers = { a, b, s }, { a, a, b, s, false, "none" }
    for i = 1, 150 do
      local p = pacers[math.random(#pacers)]
      local before = {}
      for j, l in ipairs(limiters) do before[j] = l:info().send_tat end
      local req = { method = "GET", url = base }
      if p ~= "none" then req.pacer = p end
      assert(c:perform(req))
      for j, l in ipairs(limiters) do
        assert.equal(l == p, l:info().send_tat > before[j], ("request %d (seed %d): limiter %d"):format(i, seed, j))
      end
    end
    -- closed after it paced the last request: the next goes as with no pacer
    assert(c:perform { method = "GET", url = base, pacer = s })
    s:close()
    assert.equal(200, assert(c:perform { method = "GET", url = base, pacer = s }).status)
    c:close()
    portable.rmtree(dir)
  end)
end)
