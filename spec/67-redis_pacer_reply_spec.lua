-- The libcurl transport's Redis pacer (src/tcp.c, pa_tcp_int_exchange) reads
-- one RESP integer reply inside libcurl's callback, where no Lua may run.
-- Against a server that answers whatever bytes it is given (not our Redis
-- code, not Redis): a well-formed reply of no wait lets the request go; every malformed
-- reply (letters after the digits, no digits, more digits than any integer
-- has, beyond 64 bits, an error reply) is a typed "rate limiter unavailable"
-- error with nothing sent: the HTTP server sees a connection and no byte.
-- The sanitizer suite runs this too: the reply line has no NUL after it in
-- the read buffer, which strtoll once read past.
local core = require "planapi.core"
local portable = require "portable"

-- A reply server (spec/helpers/redis_reply_server.lua) answering `reply`:
-- its two ports, the file its HTTP side logs to, and a stop function.
local function start(reply)
  local dir = portable.tmpdir()
  portable.write_file(dir .. "/reply", reply)
  assert(portable.execute(("lua5.4 spec/helpers/redis_reply_server.lua %s/reply %s/ports %s/http.log "
    .. "> %s/log 2>&1 & echo $! > %s/pid"):format(dir, dir, dir, dir, dir)))
  local redis_port, http_port
  for _ = 1, 500 do
    local text = portable.read_file(dir .. "/ports")
    if text then
      redis_port, http_port = text:match "^(%d+) (%d+)"
      break
    end
    core.sleep(0.01)
  end
  assert(redis_port, "the reply server did not start: " .. tostring(portable.read_file(dir .. "/log")))
  local pid = assert(tonumber(portable.read_file(dir .. "/pid")))
  return tonumber(redis_port), tonumber(http_port), dir .. "/http.log", function()
    portable.execute("kill " .. pid .. " 2>/dev/null")
    portable.rmtree(dir)
  end
end

-- The byte counts the HTTP side logged, one per connection, once n are there.
local function http_log(path, n)
  for _ = 1, 500 do
    local counts = {}
    for line in (portable.read_file(path) or ""):gmatch "%d+" do counts[#counts + 1] = tonumber(line) end
    if #counts >= n then return counts end
    core.sleep(0.01)
  end
  error("the HTTP side logged fewer than " .. n .. " connections")
end

-- One GET through libcurl with the Redis pacer on a fresh connection.
local function paced_get(redis_port, http_port)
  local base = ("http://127.0.0.1:%d/"):format(http_port)
  local client = core.client { base_url = base, allow_http = true, timeout = 5 }
  local sock = assert(core.tcp_connect("127.0.0.1", redis_port, 5))
  local req = client:prepare { method = "GET", path = "x" }
  req.pacer = { tcp = sock, command = "*1\r\n$4\r\nPING\r\n" }
  local res, err = client:perform(req)
  sock:close()
  client:close()
  return res, err
end

describe("the Redis pacer inside libcurl", function()
  -- ":0" and ":-3": no wait (a positive one would be slept and asked again)
  for _, reply in ipairs { ":0\r\n", ":0\n", ":-3\r\n" } do
    local shown = reply:gsub("\r", "\\r"):gsub("\n", "\\n")
    it("sends the request once the reply is a well-formed integer (" .. shown .. ")", function()
      local redis_port, http_port, log, stop = start(reply)
      local ok, failure = pcall(function()
        local res, err = paced_get(redis_port, http_port)
        assert.is_not_nil(res, tostring(err))
        assert.equal(200, res.status)
        assert.is_true(http_log(log, 1)[1] > 0)
      end)
      stop()
      assert(ok, failure)
    end)
  end

  local MALFORMED = {
    ["letters after the digits"] = ":12abc\r\n",
    ["no digits"] = ":\r\n",
    ["more digits than any integer has"] = ":" .. ("7"):rep(64) .. "\r\n",
    ["beyond 64 bits"] = ":99999999999999999999\r\n",
  }
  for what, reply in pairs(MALFORMED) do
    it("refuses a malformed integer reply (" .. what .. ") and sends nothing", function()
      local redis_port, http_port, log, stop = start(reply)
      local ok, failure = pcall(function()
        local res, err = paced_get(redis_port, http_port)
        assert.is_nil(res)
        assert.is_true(core.is_error(err))
        assert.equal("transport", err.kind)
        assert.is_true(err.pacer_failed)
        assert.is_false(err.request_sent)
        assert.matches("rate limiter unavailable: redis: a malformed integer reply", err.message, 1, true)
        assert.same({ 0 }, http_log(log, 1))
      end)
      stop()
      assert(ok, failure)
    end)
  end

  it("passes an error reply on as the limiter's error, nothing sent", function()
    local redis_port, http_port, log, stop = start "-NOSCRIPT No matching script\r\n"
    local ok, failure = pcall(function()
      local res, err = paced_get(redis_port, http_port)
      assert.is_nil(res)
      assert.is_true(err.pacer_failed)
      assert.matches("NOSCRIPT No matching script", err.message, 1, true)
      assert.same({ 0 }, http_log(log, 1))
    end)
    stop()
    assert(ok, failure)
  end)
end)
