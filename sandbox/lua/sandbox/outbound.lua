-- What the sandbox's two senders share (the Planado webhook sender,
-- sandbox.planado_hooks, and the Planfix scenario sender,
-- sandbox.planfix_scenarios): the loopback URL check, a minimal HTTP/1.1
-- client over ngx.socket.tcp, sleeping in a timer that a reset can stop,
-- waiting until nothing is pending, and the scripted test receiver.
local json = require("sandbox.json")
local util = require("sandbox.util")

local M = {}
local null = json.null

---------------------------------------------------------------- URLs

-- Only plain-http loopback URLs: http://127.x.x.x[:port]/path or localhost.
function M.parse_url(url)
  if type(url) ~= "string" then return nil end
  local host, port, path = url:match("^[Hh][Tt][Tt][Pp]://([^/:?#]+):?(%d*)([^#]*)$")
  if not host then return nil end
  host = host:lower()
  if host == "localhost" then host = "127.0.0.1" end
  if not host:match("^127%.%d+%.%d+%.%d+$") then return nil end
  port = tonumber(port ~= "" and port or "80")
  if not port or port < 1 or port > 65535 then return nil end
  if path == "" then path = "/" end
  if path:sub(1, 1) == "?" then path = "/" .. path end
  if path:sub(1, 1) ~= "/" then return nil end
  return { host = host, port = port, path = path, host_header = url:match("^[^/]+//([^/?#]+)") }
end

---------------------------------------------------------------- HTTP client

local function failed(sock, err, what)
  sock:close()
  return nil, err == "timeout" and "timeout" or "error", what .. ": " .. tostring(err)
end

-- Reads the status line and headers, and the body when a Content-Length is
-- given, each step within the deadline. Returns the status or nil, kind, text.
local function read_answer(sock, left_ms)
  sock:settimeouts(left_ms(), left_ms(), left_ms())
  local line, rerr = sock:receive("*l")
  if not line then return failed(sock, rerr, "receive") end
  local status = tonumber(line:match("^HTTP/%d%.%d%s+(%d%d%d)"))
  if not status then
    sock:close()
    return nil, "error", "not an HTTP answer: " .. line:sub(1, 80)
  end
  local length
  while true do
    sock:settimeout(left_ms())
    local h, herr = sock:receive("*l")
    if not h then return failed(sock, herr, "receive headers") end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name and name:lower() == "content-length" then length = tonumber(value) end
  end
  if length and length > 0 then
    sock:settimeout(left_ms())
    local _, berr = sock:receive(length)
    if berr then return failed(sock, berr, "receive body") end
  end
  sock:close()
  return status
end

-- Sends one request (opts: method, url, headers = {{name, value}, ...}, body,
-- timeout, agent) with Connection: close. Returns the HTTP status (number) or
-- nil, the error kind ("timeout" or "error") and a description.
function M.request(opts)
  local u = M.parse_url(opts.url)
  if not u then return nil, "error", "bad url" end
  ngx.update_time()
  local deadline = ngx.now() + opts.timeout
  local function left_ms()
    ngx.update_time()
    return math.max(1, math.floor((deadline - ngx.now()) * 1000))
  end
  local sock = ngx.socket.tcp()
  sock:settimeouts(left_ms(), left_ms(), left_ms())
  local ok, err = sock:connect(u.host, u.port)
  if not ok then return failed(sock, err, "connect") end
  local body = opts.body or ""
  local lines = {
    (opts.method or "POST") .. " " .. u.path .. " HTTP/1.1",
    "Host: " .. u.host_header,
    "User-Agent: " .. opts.agent,
    "Content-Length: " .. #body,
    "Connection: close",
  }
  for _, h in ipairs(opts.headers or {}) do lines[#lines + 1] = h[1] .. ": " .. h[2] end
  local sent, serr = sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body)
  if not sent then return failed(sock, serr, "send") end
  return read_answer(sock, left_ms)
end

---------------------------------------------------------------- timers

-- Sleeps `seconds` in short slices while alive() holds; false when it stopped
-- holding (a reset replaced the sender's state, or nginx is exiting).
function M.wait(alive, seconds)
  ngx.update_time()
  local deadline = ngx.now() + seconds
  while true do
    if not alive() then return false end
    ngx.update_time()
    local left = deadline - ngx.now()
    -- ngx.sleep has millisecond resolution (0 would just yield).
    if left < 0.001 then return true end
    ngx.sleep(math.min(left, 0.1))
  end
end

-- Starts queue's worker, fn(premature, ...) in an ngx.timer, unless it
-- runs already (queue.busy; the worker clears it when the queue is empty).
function M.start_worker(queue, who, fn, ...)
  if queue.busy then return end
  queue.busy = true
  local ok, err = ngx.timer.at(0, fn, ...)
  if not ok then
    queue.busy = false
    ngx.log(ngx.WARN, who, ": cannot start a timer: ", tostring(err))
  end
end

-- Waits until the sender's state (sender.state, which a reset replaces)
-- has nothing pending, or `timeout` seconds passed, or a reset came; returns
-- the number pending then.
function M.flush(sender, timeout)
  local S = sender.state
  ngx.update_time()
  local deadline = ngx.now() + timeout
  while S.pending > 0 and sender.state == S do
    ngx.update_time()
    if ngx.now() >= deadline then break end
    ngx.sleep(0.01)
  end
  return sender.state.pending
end

---------------------------------------------------------------- control helpers

function M.reply(status, value)
  return util.send_json(status, value)
end

function M.bad(msg, status)
  return M.reply(status or 400, { result = "fail", error = msg })
end

-- The request's JSON object (an empty body is {}); nil when it is not one.
M.body_object = util.json_object

-- The flush endpoint's answer: {"timeout":S} (default 5, at most 120).
function M.flush_endpoint(req, sender)
  local b = M.body_object(req) or {}
  local timeout = b.timeout == nil and 5 or b.timeout
  if type(timeout) ~= "number" or timeout < 0 or timeout > 120 then return M.bad("timeout must be 0..120") end
  local left = M.flush(sender, timeout)
  if left > 0 then
    return M.reply(504, { result = "fail", error = "deliveries still pending", pending = left })
  end
  return M.reply(200, { result = "success", pending = 0 })
end

-- The items of list whose fields named in keys equal the query's values
-- (compared as text), each through view if given, as a JSON array.
function M.filtered(list, req, view, keys)
  local out = json.array()
  for _, x in ipairs(list) do
    local keep = true
    for _, k in ipairs(keys) do
      local want = util.query_value(req.query, k)
      if type(want) == "string" and tostring(x[k]) ~= want then keep = false end
    end
    if keep then out[#out + 1] = view and view(x) or x end
  end
  return out
end

---------------------------------------------------------------- test receiver

-- A test receiver records every request and answers the next scripted answer,
-- else the configured default. annotate(entry, headers, decoded_json) adds the
-- API's own fields to a recorded request.
local Receiver = {}
Receiver.__index = Receiver

local function receiver_defaults()
  return { status = 200, delay = 0, body = '{"ok":true}', script = {}, requests = {} }
end

function M.receiver(annotate)
  return setmetatable({ annotate = annotate, state = receiver_defaults() }, Receiver)
end

function Receiver:reset()
  self.state = receiver_defaults()
end

local function answer_spec(v, what)
  if type(v) == "number" then v = { status = v } end
  if type(v) ~= "table" then return nil, what .. " must be a status or {status,delay,body}" end
  local a = {}
  if v.status ~= nil then
    a.status = util.to_int(v.status)
    if not a.status or a.status < 100 or a.status > 599 then return nil, what .. ".status must be 100..599" end
  end
  if v.delay ~= nil then
    if type(v.delay) ~= "number" or v.delay < 0 or v.delay > 300 then return nil, what .. ".delay must be 0..300" end
    a.delay = v.delay
  end
  if v.body ~= nil then
    if type(v.body) ~= "string" then return nil, what .. ".body must be a string" end
    a.body = v.body
  end
  return a
end

local function script_spec(list)
  if type(list) ~= "table" then return nil, "script must be an array" end
  local script = {}
  for i, v in ipairs(list) do
    local a, e = answer_spec(v, "script[" .. i .. "]")
    if not a then return nil, e end
    script[#script + 1] = a
  end
  return script
end

-- {"status":200,"delay":0,"body":"…","script":[500,{"delay":2}]}
function Receiver:configure(spec)
  if type(spec) ~= "table" then return nil, "body must be a JSON object" end
  local known = { status = true, delay = true, body = true, script = true }
  for k in pairs(spec) do
    if not known[k] then return nil, "unknown receiver key '" .. tostring(k) .. "'" end
  end
  local base, err = answer_spec({ status = spec.status, delay = spec.delay, body = spec.body }, "receiver")
  if not base then return nil, err end
  local script
  if spec.script ~= nil then
    script, err = script_spec(spec.script)
    if not script then return nil, err end
  end
  local R = self.state
  R.status = base.status or R.status
  R.delay = base.delay or R.delay
  R.body = base.body or R.body
  R.script = script or R.script
  return true
end

function Receiver:describe()
  local R = self.state
  local script = json.array()
  for i, a in ipairs(R.script) do script[i] = a end
  return { status = R.status, delay = R.delay, body = R.body, script = script, received = #R.requests }
end

-- The first value of a header that may have come several times.
function M.one(v)
  if type(v) == "table" then return v[1] end
  return v
end

function Receiver:receive(req, name)
  local R = self.state
  local a = table.remove(R.script, 1) or {}
  local status, delay, body = a.status or R.status, a.delay or R.delay, a.body or R.body
  local j = json.decode(req.body)
  local entry = {
    method = req.method, path = name, query = req.query, headers = req.headers, body = req.body,
    json = j ~= nil and json.raw(req.body) or null, time = req.time, status = status, delay = delay,
  }
  if self.annotate then self.annotate(entry, req.headers, j) end
  R.requests[#R.requests + 1] = entry
  if delay > 0 then ngx.sleep(delay) end
  -- A reset during the delay: still answer, the sender has been stopped.
  return util.send(status, body, { ["Content-Type"] = "application/json" })
end

-- GET (its requests, ?path=/<name> for one name), POST (its answers), DELETE
-- (forget the requests, keep the script) of the receiver's control endpoint.
-- Returns true when it answered.
function Receiver:control(req)
  local m = req.method
  if m == "GET" then
    local list = json.array()
    local want = util.query_value(req.query, "path")
    for _, r in ipairs(self.state.requests) do
      if type(want) ~= "string" or r.path == want then list[#list + 1] = r end
    end
    local d = self:describe()
    d.result, d.requests = "success", list
    return M.reply(200, d) or true
  elseif m == "DELETE" then
    self.state.requests = {}
    return M.reply(200, { result = "success" }) or true
  elseif m == "POST" then
    local ok, err = self:configure(M.body_object(req))
    if not ok then return M.bad(err) or true end
    local d = self:describe()
    d.result = "success"
    return M.reply(200, d) or true
  end
  return nil
end

-- Serves "<prefix>/test-receiver[/<name>]" and "<prefix>/receiver"; true
-- when the path was one of them.
function Receiver:dispatch(req, path, prefix)
  local name = path == prefix .. "/test-receiver" and ""
    or path:match("^" .. prefix:gsub("%p", "%%%0") .. "/test%-receiver(/.+)$")
  if name then
    self:receive(req, name)
    return true
  end
  if path == prefix .. "/receiver" then return self:control(req) end
  return nil
end

return M
