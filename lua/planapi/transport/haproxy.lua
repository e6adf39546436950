-- transport/haproxy.lua: the transport for clients running inside HAProxy's
-- Lua (2.6 and later: actions, services and tasks loaded by lua-load or
-- lua-load-per-thread), over HAProxy's non-blocking sockets (core.tcp).
--
--   local Haproxy = require "planapi.transport.haproxy"
--   Haproxy.route("https://acme.planfix.com", "127.0.0.1:9443")  -- HAProxy's TLS to that origin
--   local transport = Haproxy.new(client.core, { user_agent = ... })
--   local res, err = transport(req)   -- { status, headers, body } | nil, err, as the other transports
--
-- A core.tcp socket yields to HAProxy's scheduler while it waits, so the
-- thread keeps serving other requests while a call to Planfix or Planado is
-- in flight (libcurl would stall every stream of that thread). The HTTP/1.1
-- exchange is the cosocket transport's (transport/ngx.lua: framing,
-- timeouts as a deadline, max_body while reading, typed errors, redirects
-- returned and never followed), run over core.tcp through a small `ngx`
-- stand-in, so both transports keep one contract.
--
-- TLS: HAProxy's Lua sockets do not verify a certificate (HAProxy's Lua API,
-- "Socket.connect_ssl"), and HAProxy 2.6's core.httpclient, which does,
-- replays a request after a response timeout or an empty response (its
-- proxy retries on conn-failure, empty-response and response-timeout), so
-- a write could land twice. Instead each https origin is reached through a
-- `listen` section of the HAProxy configuration, in http mode, bound on
-- loopback, whose `server` line carries `ssl verify required ca-file ...
-- sni str(<host>) verifyhost <host>` and `http-reuse never` (see
-- examples/haproxy/haproxy.cfg): HAProxy verifies the certificate and the
-- host name, every request gets a new connection to the origin, and the
-- default `retry-on conn-failure` only retries a connection over which
-- nothing was sent. Haproxy.route(origin, address) names that section's
-- address; an https URL without a route is a config error. When HAProxy
-- refuses the certificate or cannot connect, the listen section answers
-- with its own 503 page, which this transport turns into a transport error
-- before anything was sent (as it does HAProxy's 502 and 504 pages).
-- A client's `ca_file` does not reach HAProxy: put it on the server line.
--
-- Yielding is allowed in actions, services and tasks, not while HAProxy
-- loads the Lua files (body and init, on the main coroutine), nor in sample
-- fetches and converters, where HAProxy aborts the function at the first
-- yield: call planapi from an action, a service or a task.
local core = require "planapi.core"
local config_error = require "planapi.config_error"
local Ngx = require "planapi.transport.ngx"

local M = {}

--- HAProxy's `core` when this code runs inside HAProxy's Lua, else nil.
-- (The global is named like planapi.core; the two are different things.)
function M.haproxy()
  local h = rawget(_G, "core")
  if type(h) == "table" and type(h.tcp) == "function" and type(h.msleep) == "function"
      and type(h.register_service) == "function" then
    return h
  end
  return nil
end

--- True when a yield is possible right now: inside HAProxy, off the main
-- coroutine (the body and init contexts run there and may not do I/O).
function M.yieldable(h)
  h = h or M.haproxy()
  if h == nil then return false end
  -- Lua 5.3 says (thread, true) on the main coroutine; LuaJIT, nil.
  local co, main = coroutine.running()
  return co ~= nil and not main
end

--- Sleep without blocking the thread where HAProxy allows it.
function M.sleep(seconds)
  local h = M.haproxy()
  if h and M.yieldable(h) then
    local ms = math.floor(seconds * 1000 + 0.5)
    if ms > 0 then h.msleep(ms) end
    return
  end
  return core.sleep(seconds)
end

-- ------------------------------------------------------------------ routes

-- "host:port" of an https origin -> { host =, port = } or { address = } (abns@, unix@).
M.routes = {}

--- Haproxy.route("https://host[:port]", "127.0.0.1:9443" | "abns@name" | "unix@/path"):
-- requests to that origin go to HAProxy's listen section at that address,
-- which makes the verified TLS connection. Call it where the file loads.
function M.route(origin, address)
  if type(origin) ~= "string" or type(address) ~= "string" then
    config_error("Haproxy.route(origin, address) takes two strings", 2)
  end
  local u = Ngx.parse_url(origin)
  if not u or u.scheme ~= "https" then config_error("a route is for an https origin: " .. origin, 2) end
  local host, port = address:match "^([^@]+):(%d+)$"
  local route = host and { host = host, port = tonumber(port) } or { address = address }
  M.routes[("%s:%d"):format(u.host, u.port)] = route
end

-- ------------------------------------------------------------------ core.tcp as a cosocket

-- HAProxy's socket says "connection closed." for a read timeout too: a
-- read that ended at its timeout was one.
local function read_error(started, timeout, err)
  if core.monotime() - started >= timeout - 0.005 then return "timeout" end
  if err == nil or tostring(err):find("closed", 1, true) then return "closed" end
  return tostring(err)
end

-- The cosocket methods the cosocket transport uses, over a core.tcp socket.
-- route: where an https request goes (HAProxy's TLS section); nil for
-- plain http, which connects to the URL's host itself.
local function socket_shim(h, route)
  local sock, timeout = h.tcp(), 60
  local s = {}
  function s.settimeouts(_, _, _, read_ms)
    timeout = read_ms / 1000
    sock:settimeout(timeout)
  end
  function s.connect(_, host, port)
    local ok, err
    if route and route.address then
      ok, err = sock:connect(route.address)
    else
      ok, err = sock:connect(route and route.host or host, route and route.port or port)
    end
    if ok then return 1 end
    return nil, tostring(err or "connection refused")
  end
  function s.getreusedtimes() return 0 end -- a new connection every time
  function s.sslhandshake() return true end -- HAProxy's listen section verified it
  function s.send(_, data)
    if type(data) == "table" then data = table.concat(data) end
    local sent, err = sock:send(data)
    if sent then return sent end
    return nil, tostring(err or "closed")
  end
  s.receiveuntil, s.receiveany = M.readers(sock, function() return timeout end)
  function s.setkeepalive() sock:close(); return 1 end
  function s.close() sock:close(); return 1 end
  return s
end

-- One line, without its CRLF: line | nil, err.
local function read_line(sock, get_timeout)
  local started = core.monotime()
  local line, err = sock:receive "*l"
  if line then return line end
  return nil, read_error(started, get_timeout(), err)
end

--- receiveuntil and receiveany over a socket with HAProxy's receive (a
-- line, or a byte count). The cosocket transport looks only for "\r\n"
-- (chunk lines) and "\r\n\r\n" (the end of a head), both whole lines.
function M.readers(sock, get_timeout)
  local function receiveuntil(_, pattern)
    local done = false
    return function()
      if done then
        done = false
        return nil
      end
      local lines = {}
      repeat
        local line, err = read_line(sock, get_timeout)
        if not line then return nil, err, table.concat(lines, "\r\n") end
        if line == "" then break end
        lines[#lines + 1] = line
      until pattern == "\r\n"
      if #lines == 0 then return nil end
      done = true
      return table.concat(lines, "\r\n")
    end
  end
  local closed = false
  local function receiveany(_, size)
    if closed then return nil, "closed" end
    local started = core.monotime()
    local data, err = sock:receive(size)
    if data and #data > 0 then
      closed = #data < size -- HAProxy hands over what came before the close
      return data
    end
    return nil, read_error(started, get_timeout(), err)
  end
  return receiveuntil, receiveany
end

-- The part of nginx's lua API the cosocket transport calls.
local function ngx_shim(h, route)
  return {
    get_phase = function() return "content" end,
    update_time = function() end,
    now = core.monotime,
    socket = { tcp = function() return socket_shim(h, route) end },
  }
end

-- ------------------------------------------------------------------ answer

local fail = Ngx.fail -- (st, kind, message, fields) -> nil, the client's typed error

-- HAProxy's own error pages (its configuration manual, "errorfile"): the
-- answer the listen section makes up when the exchange with the origin
-- failed. They carry no Date header, which an origin server's answer does
-- (RFC 9110, "Date": an origin server with a clock must send it).
local HAPROXY_ERRORS = {
  [502] = "invalid or incomplete response",
  [503] = "No server is available",
  [504] = "didn't respond in time",
}

local function haproxy_error(st, u, res)
  local text, status, body = HAPROXY_ERRORS[res.status], res.status, res.body or ""
  if not text or res.headers.date or not body:find("^<html><body><h1>" .. status) then return nil end
  if not body:find(text, 1, true) then return nil end
  local where = ("%s:%d"):format(u.host, u.port)
  if status == 503 then
    return fail(st, "transport", ("connecting to %s failed: refused, unreachable, or its certificate not "
      .. "trusted by the route's ca-file or not for this host name"):format(where),
      { retryable = true, request_sent = false })
  end
  if status == 504 then
    return fail(st, "timeout", ("%s timed out"):format(where), { retryable = true, request_sent = true })
  end
  return fail(st, "transport", ("%s gave no valid HTTP answer"):format(where),
    { retryable = true, request_sent = true })
end

-- ------------------------------------------------------------------ call

local function check_request(st, req, h)
  if h == nil then
    config_error("the haproxy transport runs only inside HAProxy's Lua (use transport = \"curl\")", 3)
  end
  if not M.yieldable(h) then
    config_error("HAProxy allows no I/O while it loads the Lua files: call from an action, a service "
      .. "or a task (core.register_task), or use transport = \"curl\"", 3)
  end
  if type(req) ~= "table" or type(req.url) ~= "string" then config_error("request needs method and url", 3) end
  local u, perr = Ngx.parse_url(req.url)
  if not u then config_error(perr .. ": " .. (st.client:redact(req.url)), 3) end
  if u.scheme ~= "https" then return u, nil end
  local route = M.routes[("%s:%d"):format(u.host, u.port)]
  if not route then
    config_error(("no route to https://%s: HAProxy's Lua sockets cannot verify a certificate, so name the "
      .. "listen section that does (Haproxy.route, examples/haproxy/haproxy.cfg)"):format(u.authority), 3)
  end
  return u, route
end

--- transport.new(client, opts) -> function(req) -> res | nil, err
-- client: the C client (client.core) whose options (allow_http, timeouts,
-- max_body) apply and whose secrets are redacted from every error.
-- opts: user_agent, proxy (refused, as by the cosocket transport),
--       haproxy (HAProxy's core; specs pass a fake).
function M.new(client, opts)
  opts = opts or {}
  local fixed = opts.haproxy
  local st = { client = client }
  local user_agent = opts.user_agent or client:config().user_agent
    or ("planapi/%s HAProxy"):format(core.version)
  return function(req)
    local h = fixed or M.haproxy()
    local u, route = check_request(st, req, h)
    -- One exchange per call: the route belongs to this request alone (the
    -- streams of a thread share this function).
    local exchange = Ngx.new(client, { user_agent = user_agent, proxy = opts.proxy, ngx = ngx_shim(h, route),
      pool_size = 1 })
    local res, err = exchange(req)
    if not res then return nil, err end
    local herr, e = haproxy_error(st, u, res)
    if e then return herr, e end
    return res
  end
end

return M
