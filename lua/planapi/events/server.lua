-- events/server.lua: a small HTTP server for an events receiver in plain Lua,
-- on luasocket (Debian: lua-socket). One connection at a time: a sender
-- waits a few seconds at most (Planado's API documentation, webhooks: 10 s),
-- and the receiver answers before any work, so one at a time is quick.
--
--   local server = require("planapi.events.server").new {
--     receiver = planapi.planfix_events{ ... }, handler = function(event) ... end,
--     listen = "127.0.0.1:8090",
--   }
--   server:run()
--
-- or several receivers on one port, by path (any other path is a 404):
--   routes = { ["/planfix"] = { receiver = pf, handler = on_task },
--              ["/planado"] = { receiver = hook, handler = on_job } }
--
-- Each request is read with one deadline for the whole of it (read_timeout,
-- default 5 s: a slow or stalled sender cannot hold the server past the
-- time the next sender waits), its body capped at the receiver's max_body + 1
-- bytes, answered with the receiver's response, the connection closed, and
-- only then is the event handled. Between connections the receiver's
-- pending events (a handler that failed, a lease that expired) are taken
-- again every pending_every seconds (default 1: a store's take is cheap).
local core = require "planapi.core"
local config_error = require "planapi.config_error"
local decode_form = require("planapi.events.receiver").decode_form

local M = {}
local Server = {}
Server.__index = Server

local DEFAULT_MAX_BODY = 1048576
local MAX_HEAD = 65536 -- request line and headers, in bytes
local MAX_HEADERS = 100
local CHUNK = 16384

local REASONS = {
  [200] = "OK", [202] = "Accepted", [204] = "No Content", [400] = "Bad Request", [401] = "Unauthorized",
  [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed", [408] = "Request Timeout",
  [411] = "Length Required", [413] = "Payload Too Large", [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented", [503] = "Service Unavailable",
}

-- ------------------------------------------------------------------ reading

-- A buffered reader over a non-blocking luasocket connection, every wait
-- bounded by one deadline.
local function reader(socket, conn, deadline, clock)
  local r = { buf = "" }
  conn:settimeout(0)
  -- More bytes into r.buf: true | nil, "timeout" | "closed" | error.
  function r.fill()
    local remaining = deadline - clock()
    if remaining <= 0 then return nil, "timeout" end
    local readable = socket.select({ conn }, nil, remaining)
    if not readable or #readable == 0 then return nil, "timeout" end
    local data, err, partial = conn:receive(CHUNK)
    data = data or partial
    if data and #data > 0 then
      r.buf = r.buf .. data
      return true
    end
    return nil, err or "closed"
  end
  -- Exactly n bytes (fewer only if the connection ends): text | nil, why.
  function r.take(n)
    while #r.buf < n do
      local ok, why = r.fill()
      if not ok then return nil, why end
    end
    local out = r.buf:sub(1, n)
    r.buf = r.buf:sub(n + 1)
    return out
  end
  -- One CRLF-terminated line, at most max bytes: text | nil, why.
  function r.line(max)
    while true do
      local i = r.buf:find("\r\n", 1, true)
      if i then
        local out = r.buf:sub(1, i - 1)
        r.buf = r.buf:sub(i + 2)
        return out
      end
      if #r.buf > max then return nil, "too long" end
      local ok, why = r.fill()
      if not ok then return nil, why end
    end
  end
  return r
end

-- s without its leading and trailing blanks (spaces, tabs). Not a pattern
-- such as "^[ \t]*(.-)[ \t]*$": that takes quadratic time on a value of
-- blanks with a letter after them, and one such header held the server
-- (and every sender after it) for seconds.
local function trim_blanks(s)
  local i, j = 1, #s
  while i <= j and (s:byte(i) == 32 or s:byte(i) == 9) do i = i + 1 end
  while j >= i and (s:byte(j) == 32 or s:byte(j) == 9) do j = j - 1 end
  return s:sub(i, j)
end

-- The request line and headers: request | nil, status (what to answer), why.
local function read_head(r)
  local line, why = r.line(MAX_HEAD)
  if not line then return nil, why == "too long" and 431 or nil, why end
  local method, target, version = line:match "^(%u+) (%S+) HTTP/(1%.[01])$"
  if not method then return nil, 400, "bad request line" end
  local path, query = target:match "^([^?]*)%??(.*)$"
  local req = { method = method, path = path, query = query ~= "" and decode_form(query) or nil,
    headers = {}, http10 = version == "1.0" }
  local size, count = #line, 0
  while true do
    local h
    h, why = r.line(MAX_HEAD - size)
    if not h then return nil, why == "too long" and 431 or nil, why end
    if h == "" then return req end
    size, count = size + #h + 2, count + 1
    if count > MAX_HEADERS then return nil, 431, "too many headers" end
    local name, value = h:match "^([^:%s]+):(.*)$"
    if not name then return nil, 400, "bad header line" end
    value = trim_blanks(value)
    local lower = name:lower()
    if req.headers[lower] == nil then req.headers[lower] = value end
  end
end

-- A chunked body, at most cap bytes kept: text | nil, status, why.
local function read_chunked(r, cap)
  local parts, size = {}, 0
  while true do
    local line, why = r.line(1024)
    if not line then return nil, nil, why end
    local n = tonumber(line:match "^(%x+)", 16)
    if not n then return nil, 400, "bad chunk size" end
    if n == 0 then return table.concat(parts) end -- trailers are not read: the connection closes
    if size + n > cap then
      parts[#parts + 1] = r.take(cap - size) or ""
      return table.concat(parts)
    end
    local data
    data, why = r.take(n)
    if not data then return nil, nil, why end
    parts[#parts + 1], size = data, size + n
    if not r.take(2) then return nil, nil, "chunk cut short" end
  end
end

-- The body, capped at cap bytes (the receiver sees an oversized one as
-- cap bytes and refuses it): text | nil, status, why.
local function read_body(r, req, cap)
  local te = req.headers["transfer-encoding"]
  if te and te:lower() ~= "identity" then
    if te:lower() ~= "chunked" then return nil, 501, "unsupported transfer encoding" end
    return read_chunked(r, cap)
  end
  local length = req.headers["content-length"]
  if length == nil then return "" end
  local n = length:match "^%d+$" and tonumber(length)
  if not n then return nil, 400, "bad Content-Length" end
  local body, why = r.take(math.min(n, cap))
  if not body then return nil, nil, why end
  return body
end

-- ------------------------------------------------------------------ answering

local function send_all(socket, conn, text, deadline, clock)
  conn:settimeout(0)
  local i = 1
  while i <= #text do
    local remaining = deadline - clock()
    if remaining <= 0 then return nil, "timeout" end
    local _, writable = socket.select(nil, { conn }, remaining)
    if not writable or #writable == 0 then return nil, "timeout" end
    local last, err, partial = conn:send(text, i)
    last = last or partial
    if err and err ~= "timeout" then return nil, err end
    i = (last or i - 1) + 1
  end
  return true
end

local function response_text(response)
  local status = tonumber(response.status) or 500
  local body = response.body or ""
  local lines = { ("HTTP/1.1 %d %s"):format(status, REASONS[status] or "Status") }
  for name, value in pairs(response.headers or {}) do
    local lower = name:lower()
    if lower ~= "content-length" and lower ~= "connection" and lower ~= "transfer-encoding" then
      lines[#lines + 1] = name .. ": " .. tostring(value)
    end
  end
  lines[#lines + 1] = "Content-Length: " .. #body
  lines[#lines + 1] = "Connection: close"
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
end

local function plain(status, text)
  return { status = status, headers = { ["Content-Type"] = "text/plain" }, body = text .. "\n" }
end

-- ------------------------------------------------------------------ the server

local function check_route(route, where)
  local r = type(route) == "table" and route.receiver
  if type(r) ~= "table" or type(r.receive) ~= "function" or type(r.handle) ~= "function" then
    config_error(("events server %s: 'receiver' must be an events receiver (receive, handle, pending)")
      :format(where), 4)
  end
  if type(route.handler) ~= "function" then
    config_error(("events server %s: 'handler' must be a function(event) -> truthy | nil, err"):format(where), 4)
  end
end

-- The routes of the options: { [path] = route }, and the route of any other path.
local function routes_of(opts)
  local routes, default = {}, nil
  if opts.receiver ~= nil or opts.handler ~= nil then
    default = { receiver = opts.receiver, handler = opts.handler }
    check_route(default, "option")
  end
  if opts.routes ~= nil and type(opts.routes) ~= "table" then
    config_error("events server option 'routes' must map paths to { receiver =, handler = }", 3)
  end
  for path, route in pairs(opts.routes or {}) do
    if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
      config_error("events server option 'routes': each key must be a path starting with /", 3)
    end
    check_route(route, "route " .. path)
    routes[path] = { receiver = route.receiver, handler = route.handler }
  end
  if not default and next(routes) == nil then
    config_error("events server needs a receiver and a handler (or routes)", 3)
  end
  return routes, default
end

local function check_options(opts)
  for k in pairs(opts) do
    if k ~= "receiver" and k ~= "handler" and k ~= "routes" and k ~= "listen" and k ~= "read_timeout"
        and k ~= "pending_every" and k ~= "log" and k ~= "socket" and k ~= "clock" then
      config_error(("unknown events server option '%s' (valid: receiver, handler, routes, listen, read_timeout, "
        .. "pending_every, log, socket, clock)"):format(tostring(k)), 3)
    end
  end
  for _, name in ipairs { "read_timeout", "pending_every" } do
    if opts[name] ~= nil and (type(opts[name]) ~= "number" or not (opts[name] > 0)) then
      config_error(("events server option '%s' must be a number of seconds > 0"):format(name), 3)
    end
  end
end

--- "host:port" -> host, port (a config error otherwise).
function M.parse_listen(listen)
  local host, port = tostring(listen or "127.0.0.1:0"):match "^%[?([^%]]*)%]?:(%d+)$"
  port = tonumber(port)
  if not host or host == "" or not port or port > 65535 then
    config_error(("listen must be host:port, such as 127.0.0.1:8090 (got %s)"):format(tostring(listen)), 3)
  end
  return host, port
end

--- events.server.new{ receiver =, handler =, listen = "127.0.0.1:0", read_timeout = 5,
--   pending_every = 1, log = function(line) end }
-- Binds at once (a port in use is an error here, not at the first request).
function M.new(opts)
  opts = opts or {}
  check_options(opts)
  local routes, default = routes_of(opts)
  local host, port = M.parse_listen(opts.listen)
  local socket = opts.socket or require "socket"
  local listener, err = socket.bind(host, port)
  if not listener then
    error(core.error { kind = "io", message = ("cannot listen on %s:%d: %s"):format(host, port, tostring(err)) }, 2)
  end
  local clock = opts.clock or core.monotime
  return setmetatable({
    routes = routes, default = default, listener = listener, socket = socket, clock = clock,
    read_timeout = opts.read_timeout or 5, pending_every = opts.pending_every or 1,
    log = opts.log or function() end, next_pending = clock(), served = 0, queue = {},
  }, Server)
end

--- server:address() -> host, port (the port the system chose for port 0).
function Server:address()
  local host, port = self.listener:getsockname()
  return host, tonumber(port)
end

local NOT_FOUND = { status = 404, headers = { ["Content-Type"] = "text/plain" }, body = "no receiver here\n" }

-- The receiver's response to a request read in full, and the event.
local function respond(self, route, req)
  local ok, res, ev = pcall(route.receiver.receive, route.receiver, req)
  if ok then return res, ev end
  self.log("receiver failed: " .. tostring(res))
  return plain(500, "internal error")
end

-- Read one request from conn and answer it: the route and event to handle, or nil.
function Server:answer(conn)
  local deadline = self.clock() + self.read_timeout
  local r = reader(self.socket, conn, deadline, self.clock)
  local req, status, why = read_head(r)
  local route = req and (self.routes[req.path] or self.default)
  local response, event
  if req and not route then
    response = NOT_FOUND
  elseif req then
    if (req.headers.expect or ""):lower() == "100-continue" then
      send_all(self.socket, conn, "HTTP/1.1 100 Continue\r\n\r\n", deadline, self.clock)
    end
    req.body, status, why = read_body(r, req, (route.receiver.max_body or DEFAULT_MAX_BODY) + 1)
    if req.body then response, event = respond(self, route, req) end
  end
  if not response and status then response = plain(status, why) end
  if response then
    local sent, serr = send_all(self.socket, conn, response_text(response), deadline, self.clock)
    if not sent then self.log("answer not sent: " .. tostring(serr)) end
  end
  self.log(("%s %s %s%s"):format(req and req.method or "-", req and req.path or "-",
    response and tostring(response.status) or "no answer (" .. tostring(why) .. ")", event and " event" or ""))
  return event and route, event
end

-- Hand an event to its handler through the receiver (it records the outcome).
function Server:handle(route, event)
  local ok, err = pcall(route.receiver.handle, route.receiver, event, route.handler)
  if not ok then self.log("handling failed: " .. tostring(err)) end
end

-- Every receiver's pending events, when they are due.
function Server:sweep()
  if self.clock() < self.next_pending then return end
  self.next_pending = self.clock() + self.pending_every
  local all = { self.default }
  for _, route in pairs(self.routes) do all[#all + 1] = route end
  for _, route in ipairs(all) do
    -- Before each of up to 100 handlers, the senders waiting are answered
    -- (their events queued), so none waits for the whole sweep.
    local function answer_first(event)
      while self:accept_one(0) do end
      return route.handler(event)
    end
    local ok, n = pcall(route.receiver.pending, route.receiver, answer_first, { limit = 100 })
    if not ok then
      self.log("pending failed: " .. tostring(n))
    elseif n and n > 0 then
      self.log(("pending: %d handled again"):format(n))
    end
  end
end

-- Accept one connection within wait seconds, answer it, and queue its
-- event: true when there was one.
function Server:accept_one(wait)
  self.listener:settimeout(wait)
  local conn = self.listener:accept()
  if not conn then return false end
  local route, event = self:answer(conn)
  conn:close()
  self.served = self.served + 1
  if event then self.queue[#self.queue + 1] = { route, event } end
  return true
end

--- server:step(wait) -> true when a connection was served: waits up to
-- wait seconds for one (and at most until the next sweep), answers it,
-- then handles the queued events, answering first any sender that
-- connects meanwhile (a burst is answered at once, its work done after).
function Server:step(wait)
  local until_sweep = math.max(0, self.next_pending - self.clock())
  local served = self:accept_one(math.min(wait or until_sweep, until_sweep))
  while #self.queue > 0 do
    if not self:accept_one(0) then
      local item = table.remove(self.queue, 1)
      self:handle(item[1], item[2])
    end
  end
  self:sweep()
  return served
end

--- server:run{ max_requests = n, stop = function() -> true to stop } -- until stopped.
function Server:run(opts)
  opts = opts or {}
  while not (opts.max_requests and self.served >= opts.max_requests) do
    if opts.stop and opts.stop() then break end
    self:step(opts.poll or 0.5)
  end
end

function Server:close()
  self.listener:close()
end

M.Server = Server
return M
