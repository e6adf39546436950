-- transport/ngx.lua: the HTTP/1.1 transport over nginx cosockets
-- (ngx.socket.tcp), for clients running inside nginx's lua module
-- (OpenResty, or Debian's nginx with libnginx-mod-http-lua).
--
--   local transport = require("planapi.transport.ngx").new(client.core, { user_agent = ... })
--   local res, err = transport(req)   -- the lua-resty-http contract: { status, headers, body } | nil, err
--
-- A cosocket yields to nginx's event loop while it waits, so one worker keeps
-- serving other requests while a call to Planfix or Planado is in flight.
-- It behaves like the libcurl transport (src/transport_curl.c):
--   - https, or http only to a loopback host with allow_http (core.check_url);
--   - TLS verified against the host name; the trusted CAs are nginx's
--     `lua_ssl_trusted_certificate` (lua-nginx-module cannot take a CA per
--     socket, so a client's `ca_file` must be mirrored there);
--   - connect_timeout for connecting and the handshake, `timeout` for the
--     whole exchange (a deadline, not a per-read inactivity timer);
--   - response header names lower-cased, repeated headers joined with ", "
--     (the C header parser itself, core.parse_headers);
--   - a body over max_body is an error, never a truncated result;
--   - redirects are returned, never followed;
--   - errors of the same kinds: timeout, transport (with request_sent), tls,
--     config; messages never contain a header value, so never a secret;
--   - keep-alive through setkeepalive, one pool per scheme, host and port;
--     a pooled connection the server closed meanwhile is replaced by a new
--     one, as libcurl does.
-- `req.sink` (XML file downloads) streams a 200 body to <sink>.part and
-- renames it into place once complete, as the C transport does.
--
-- Nothing here touches `ngx` at load time: the module loads in plain Lua
-- (specs drive it with a fake `ngx`), and the phase is checked per call.
local core = require "planapi.core"

local M = {}

-- Phases of lua-nginx-module (and the stream module's preread) in which
-- cosockets and ngx.sleep exist. Elsewhere (init, init_worker, set,
-- header_filter, body_filter, log, balancer, exit_worker, ssl_session_store)
-- nginx refuses them, and planapi falls back to libcurl and a blocking sleep.
M.COSOCKET_PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

local MAX_HEADER_BYTES = 256 * 1024 -- as the C transport: headers beyond this are not an API
local READ_CHUNK = 64 * 1024
local MAX_INTERIM = 8 -- 1xx answers skipped before the real one
local DEFAULT_POOL_SIZE = 16
local DEFAULT_KEEPALIVE = 30 -- seconds a connection may idle in the pool

--- The nginx lua API when this code runs inside nginx, else nil.
function M.ngx()
  local n = rawget(_G, "ngx")
  if type(n) == "table" and type(n.get_phase) == "function" and type(n.socket) == "table" then return n end
  return nil
end

--- The current nginx phase, or nil outside nginx.
function M.phase(n)
  n = n or M.ngx()
  return n and n.get_phase() or nil
end

--- True when cosockets (and ngx.sleep) can be used right now.
function M.cosockets(n)
  n = n or M.ngx()
  return n ~= nil and M.COSOCKET_PHASES[n.get_phase()] == true
end

--- Seconds on nginx's clock, refreshed (ngx.now() alone is cached per event loop turn).
function M.now()
  local n = M.ngx()
  n.update_time()
  return n.now()
end

--- Sleep without blocking the worker where nginx allows it; in the phases
-- without cosockets (init_worker, log, ...) only a blocking sleep exists.
function M.sleep(seconds)
  local n = M.ngx()
  if n and M.COSOCKET_PHASES[n.get_phase()] then
    return n.sleep(seconds)
  end
  return core.sleep(seconds)
end

local config_error = require "planapi.config_error"

local function lua_module_version(n)
  local v = n and n.config and n.config.ngx_lua_version
  if type(v) ~= "number" then return nil end
  return ("%d.%d.%d"):format(math.floor(v / 1000000), math.floor(v / 1000) % 1000, v % 1000)
end

-- ------------------------------------------------------------------ URLs

-- Split an absolute URL the URL policy (core.check_url) has accepted:
-- { scheme, host (as written, "[::1]" bracketed), name (for SNI and the
-- certificate), port, authority (the Host header), target (path?query) }.
local function parse_url(url)
  local scheme, rest = url:match "^(%a[%w+.-]*)://(.*)$"
  if not scheme then return nil, "not a valid absolute URL" end
  scheme = scheme:lower()
  local authority = rest:match "^[^/?#]*"
  local target = rest:sub(#authority + 1):gsub("#.*$", "")
  if target == "" then
    target = "/"
  elseif target:sub(1, 1) == "?" then
    target = "/" .. target
  end
  if authority:find("@", 1, true) then return nil, "credentials in a URL are refused" end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match "^(%[[%x:.]+%])(.*)$"
  else
    host, port = authority:match "^([^:]+)(.*)$"
  end
  if not host then return nil, "the URL has no host" end
  if port ~= "" then
    port = port:match "^:(%d+)$"
    if not port then return nil, "the URL's port is not a number" end
    port = tonumber(port)
    if port < 1 or port > 65535 then return nil, "the URL's port is out of range" end
  else
    port = scheme == "https" and 443 or 80
  end
  host = host:lower()
  local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  return {
    scheme = scheme, host = host, port = port, target = target,
    name = host:gsub("^%[(.*)%]$", "%1"),
    authority = default_port and host or (host .. ":" .. port),
    -- "localhost" is loopback by definition (RFC 6761): no resolver needed.
    connect_host = host == "localhost" and "127.0.0.1" or host,
  }
end

-- ------------------------------------------------------------------ request

-- The same rules as the C client: a header name is a token, a value has no
-- CR, LF or NUL (no request splitting from data a caller passed).
local function check_header(name, value)
  if type(name) ~= "string" or name == "" or name:find "[^%w!#$%%&'*+%-.^_`|~]" then
    config_error(("header name '%s' has a character not allowed in a header name"):format(tostring(name)), 4)
  end
  if value ~= false and type(value) ~= "string" and type(value) ~= "number" then
    config_error(("header '%s' must be a string (or false to drop it)"):format(name), 4)
  end
  if type(value) == "string" and value:find "[\r\n%z]" then
    config_error(("header '%s' has CR, LF or NUL in its value"):format(name), 4)
  end
end

-- Headers the transport itself sets from the request's framing.
local FRAMING = { ["content-length"] = true, ["transfer-encoding"] = true, connection = true,
  expect = true, te = true, upgrade = true }

local function request_bytes(st, req, u, body)
  local method = req.method
  local parts = { method, " ", u.target, " HTTP/1.1\r\n" }
  local seen = {}
  local names = {}
  for name, value in pairs(req.headers or {}) do
    check_header(name, value)
    names[#names + 1] = name
    seen[name:lower()] = true
  end
  table.sort(names)
  local function add(name, value)
    parts[#parts + 1] = name
    parts[#parts + 1] = ": "
    parts[#parts + 1] = value
    parts[#parts + 1] = "\r\n"
  end
  if not seen.host then add("Host", u.authority) end
  for _, name in ipairs(names) do
    local lname = name:lower()
    local value = req.headers[name]
    if value ~= false and not FRAMING[lname] then add(name, tostring(value)) end
  end
  if not seen["user-agent"] then add("User-Agent", st.user_agent()) end
  if body ~= nil or method == "POST" then add("Content-Length", tostring(#(body or ""))) end
  parts[#parts + 1] = "\r\n"
  if body ~= nil and body ~= "" then parts[#parts + 1] = body end
  return parts
end

-- ------------------------------------------------------------------ errors

local function fail(st, kind, message, fields)
  local e = { kind = kind, message = message }
  for k, v in pairs(fields or {}) do e[k] = v end
  return nil, st.client:error(e)
end

-- A cosocket error while talking to host:port, as the C transport reports it.
local function io_error(st, u, what, err, sent)
  if err == "timeout" then
    return fail(st, "timeout", ("%s %s:%d timed out"):format(what, u.host, u.port),
      { retryable = true, request_sent = sent })
  end
  return fail(st, "transport", ("%s %s:%d failed: %s"):format(what, u.host, u.port, tostring(err)),
    { retryable = true, request_sent = sent })
end

-- ------------------------------------------------------------------ exchange

-- One attempt is a row of small steps over one state table, x:
--   st, n, req, u, deadline   what exchange was given
--   sock, cms, reused         the connection, its connect timeout, whether it came from the pool
--   status, minor, headers    the answer's head
--   out, out_size, sink_file, sink_part, keepalive   the body as it is read
-- Each step returns true | nil, err[, stale].

-- req.idempotent, set by the call loop; without it the method decides.
local function idempotent(req)
  if type(req.idempotent) == "boolean" then return req.idempotent end
  return req.method ~= "POST" and req.method ~= "PATCH"
end

local function left_ms(x)
  x.n.update_time()
  return math.floor((x.deadline - x.n.now()) * 1000)
end

-- Give the next socket operation what is left of the deadline (timeout,
-- not an inactivity timer); false once nothing is left.
local function arm(x)
  local ms = left_ms(x)
  if ms <= 0 then return false end
  x.sock:settimeouts(x.cms, ms, ms)
  return true
end

local function was_reused(sock)
  return (sock:getreusedtimes() or 0) > 0
end

local function connect_socket(x, ms)
  x.sock:settimeouts(x.cms, ms, ms)
  return x.sock:connect(x.u.connect_host, x.u.port, { pool = x.u.pool, pool_size = x.st.pool_size })
end

-- A write goes on a new connection: on a pooled one that died with it in
-- flight, nobody could tell whether the server carried it out, and the
-- stale-connection retry would send it a second time.
local function fresh_for_write(x, ms)
  local ok, err
  for _ = 1, x.st.pool_size do
    x.sock:close() -- drops this idle connection from the pool
    x.sock = x.n.socket.tcp()
    ok, err = connect_socket(x, ms)
    if not ok or not was_reused(x.sock) then break end
  end
  return ok, err
end

local function connect_error(x, err)
  x.sock:close()
  err = tostring(err)
  if err:find("no resolver defined", 1, true) then
    return fail(x.st, "config", ("cannot resolve %s: nginx needs a `resolver` directive to look host "
      .. "names up from Lua"):format(x.u.host), { request_sent = false })
  end
  return io_error(x.st, x.u, "connecting to", err, false)
end

local function connect(x)
  local ms = left_ms(x)
  if ms <= 0 then return fail(x.st, "timeout", "the request timed out before connecting", {
    retryable = true, request_sent = false }) end
  local sock, serr = x.n.socket.tcp()
  if not sock then return fail(x.st, "transport", "cannot create a socket: " .. tostring(serr),
    { retryable = true, request_sent = false }) end
  x.sock, x.cms = sock, math.max(1, math.min(ms, x.st.connect_timeout_ms))
  local ok, err = connect_socket(x, ms)
  if ok and not idempotent(x.req) and was_reused(x.sock) then ok, err = fresh_for_write(x, ms) end
  if not ok then return connect_error(x, err) end
  x.reused = was_reused(x.sock)
  return true
end

-- called, herr: what pcall(sslhandshake) gave back (see handshake).
local function handshake_error(x, called, herr)
  local u = x.u
  if called and herr == "timeout" then
    return fail(x.st, "timeout", ("TLS handshake with %s:%d timed out"):format(u.host, u.port),
      { retryable = true, request_sent = false })
  end
  -- The connection died during the handshake: a network failure before
  -- anything was sent, as retryable as a refused connect (not a TLS fault).
  if called and herr and (herr:find("closed", 1, true) or herr:find("reset", 1, true)
      or herr:find("broken pipe", 1, true)) then
    return fail(x.st, "transport", ("connection to %s:%d lost during the TLS handshake: %s")
      :format(u.host, u.port, herr), { retryable = true, request_sent = false })
  end
  local why = called and tostring(herr) or
    "certificate verification failed (not trusted by lua_ssl_trusted_certificate, or not for this host name)"
  if u.name:find "^[%d.]+$" or u.name:find ":" then
    why = why .. "; nginx checks host names only, not IP addresses: use a host name in the URL"
  elseif called and not why:find("host", 1, true) then
    why = why .. "; nginx verifies against lua_ssl_trusted_certificate"
  end
  return fail(x.st, "tls", ("TLS handshake with %s:%d failed: %s"):format(u.host, u.port, why),
    { request_sent = false })
end

-- TLS on a new https connection (a pooled one is already verified).
local function handshake(x)
  if x.u.scheme ~= "https" or x.reused then return true end
  -- reused_session = nil, inside pcall: lua-nginx-module 0.10.23 with
  -- lua-resty-core 0.1.25 reports a verification failure of a handshake
  -- that completed at once by tripping an assertion (with `false` it would
  -- even return true); a raised error here is always a failed verification.
  local called, sess, herr = pcall(x.sock.sslhandshake, x.sock, nil, x.u.name, true)
  if called and sess then return true end
  x.sock:close()
  return handshake_error(x, called, herr)
end

-- The connection is up: the moment of sending is now, so this is where
-- the limiter confirms the spacing from the last request any sharer
-- wrote (the call loop's req.confirm; it may ngx.sleep).
local function confirm_send(x)
  if not x.req.confirm then return true end
  local confirmed, cerr = x.req.confirm()
  if confirmed then return true end
  if not x.sock:setkeepalive(x.st.keepalive_ms) then x.sock:close() end -- nothing was sent on it
  return nil, cerr
end

local function send(x)
  if not arm(x) then
    x.sock:close()
    return fail(x.st, "timeout", "the request timed out before it was sent", { retryable = true, request_sent = false })
  end
  local sent, werr = x.sock:send(x.req.__wire)
  if sent then return true end
  x.sock:close()
  if x.reused and werr ~= "timeout" then return nil, nil, true end
  return io_error(x.st, x.u, "sending to", werr, true)
end

-- A head that could not be read to its end (the socket is closed).
local function head_error(x, rerr, partial, got_bytes)
  local u = x.u
  if not got_bytes and (partial == nil or partial == "") and x.reused and rerr ~= "timeout" then
    return nil, nil, true
  end
  if rerr == "closed" then
    return fail(x.st, "transport", (got_bytes or (partial and partial ~= "")) and
      ("%s:%d closed the connection in the middle of the response headers"):format(u.host, u.port) or
      ("%s:%d closed the connection without answering (empty reply)"):format(u.host, u.port),
      { retryable = true, request_sent = true })
  end
  return io_error(x.st, x.u, "reading from", rerr, true)
end

-- The bytes of one head (status line and headers) up to its empty line:
-- text | nil, err, stale. got_bytes: an earlier (1xx) head was read.
local function read_head_block(x, got_bytes)
  local reader = x.sock:receiveuntil "\r\n\r\n"
  local block, size = {}, 0
  while true do
    if not arm(x) then
      x.sock:close()
      return fail(x.st, "timeout", ("waiting for %s:%d timed out"):format(x.u.host, x.u.port),
        { retryable = true, request_sent = true })
    end
    local data, rerr, partial = reader(8192)
    if not data then
      if not rerr then return table.concat(block) end
      x.sock:close()
      return head_error(x, rerr, partial, got_bytes)
    end
    if data ~= "" then got_bytes = true end
    size = size + #data
    if size > MAX_HEADER_BYTES then
      x.sock:close()
      return fail(x.st, "transport", ("response headers are larger than %d bytes"):format(MAX_HEADER_BYTES),
        { request_sent = true })
    end
    block[#block + 1] = data
  end
end

-- "HTTP/1.1 200 OK..." -> status, minor version | nil when not HTTP/1.x.
local function status_line(text)
  local line = text:match "^[^\r\n]*"
  local major, minor, code = line:match "^HTTP/(%d)%.(%d) (%d%d%d)"
  if not major then
    major, code = line:match "^HTTP/(%d) (%d%d%d)"
    minor = "0"
  end
  if major ~= "1" then return nil end
  return tonumber(code), tonumber(minor)
end

-- The status line and headers, skipping interim (1xx) answers.
local function read_head(x)
  for i = 1, MAX_INTERIM do
    local text, err, stale = read_head_block(x, i > 1)
    if not text then return nil, err, stale end
    local status, minor = status_line(text)
    if not status then
      x.sock:close()
      return fail(x.st, "transport", ("%s:%d did not answer HTTP/1.x"):format(x.u.host, x.u.port),
        { request_sent = true })
    end
    if status >= 200 or status == 101 then
      x.status, x.minor, x.headers = status, minor, core.parse_headers(text)
      return true
    end
  end
  x.sock:close()
  return fail(x.st, "transport", "too many interim (1xx) answers", { request_sent = true })
end

-- ------------------------------------------------------------------ body

-- req.sink: a 200 body goes to <sink>.part, renamed into place by finish.
local function open_sink(x)
  local sink = x.req.sink
  if sink == nil or x.status ~= 200 then return end
  if type(sink) ~= "string" or sink == "" then config_error("request sink must be a file path", 4) end
  x.sink_part = sink .. ".part"
  x.sink_file = io.open(x.sink_part, "wb")
  if not x.sink_file then
    x.sock:close()
    config_error("cannot write the download to " .. sink, 4)
  end
end

local function drop_sink(x)
  if x.sink_file then
    x.sink_file:close()
    os.remove(x.sink_part)
    x.sink_file = nil
  end
end

local function over_cap(x)
  drop_sink(x)
  x.sock:close()
  return fail(x.st, "transport", ("response body is larger than max_body (%d bytes)"):format(x.st.max_body),
    { request_sent = true })
end

-- Take a piece of the body: true | false (over max_body) | nil (the sink failed).
local function emit(x, data)
  x.out_size = x.out_size + #data
  if x.out_size > x.st.max_body then return false end
  if x.sink_file then
    if not x.sink_file:write(data) then return nil end
  else
    x.out[#x.out + 1] = data
  end
  return true
end

-- A body that could not be read to its end. remaining: the bytes a
-- Content-Length still promised.
local function body_error(x, rerr, remaining)
  if rerr == "over_cap" then return over_cap(x) end
  drop_sink(x)
  x.sock:close()
  if rerr == "sink" then
    return fail(x.st, "transport", "cannot write the download to its file", { request_sent = true })
  end
  if rerr == "closed" then
    return fail(x.st, "transport", remaining and
      ("transfer closed with %d bytes remaining to read"):format(remaining) or
      "transfer closed in the middle of a chunked body", { retryable = true, request_sent = true })
  end
  return io_error(x.st, x.u, "reading the body from", rerr, true)
end

-- Read exactly `count` bytes into emit: true | nil, reason for body_error.
local function read_exact(x, count)
  while count > 0 do
    if not arm(x) then return nil, "timeout" end
    local data, rerr = x.sock:receiveany(math.min(count, READ_CHUNK))
    if not data then return nil, rerr end
    count = count - #data
    local ok_emit = emit(x, data)
    if ok_emit == false then return nil, "over_cap" end
    if ok_emit == nil then return nil, "sink" end
  end
  return true
end

-- One line of a chunked body's framing, without its CRLF.
local function read_line(x, line_reader)
  local buf, len = {}, 0
  while true do
    if not arm(x) then return nil, "timeout" end
    local data, rerr = line_reader(1024)
    if not data then
      if rerr then return nil, rerr end
      return table.concat(buf)
    end
    len = len + #data
    if len > 8192 then return nil, "a chunk line is too long" end
    buf[#buf + 1] = data
  end
end

-- Trailers up to the empty line, then the answer is complete.
local function read_trailers(x, line_reader)
  repeat
    local line, rerr = read_line(x, line_reader)
    if not line then return body_error(x, rerr) end
  until line == ""
  return true
end

local function read_chunked(x, te)
  if not te:find "chunked%s*$" then
    x.sock:close()
    return fail(x.st, "transport", "unsupported transfer encoding: " .. te, { request_sent = true })
  end
  local line_reader = x.sock:receiveuntil "\r\n"
  while true do
    local line, rerr = read_line(x, line_reader)
    if not line then return body_error(x, rerr) end
    local hex = line:match "^%s*(%x+)"
    if not hex or #hex > 15 then
      drop_sink(x)
      x.sock:close()
      return fail(x.st, "transport", "malformed chunked body", { request_sent = true })
    end
    local size = tonumber(hex, 16)
    if size == 0 then return read_trailers(x, line_reader) end
    if x.out_size + size > x.st.max_body then return over_cap(x) end
    local done, berr = read_exact(x, size)
    if not done then return body_error(x, berr) end
    line, rerr = read_line(x, line_reader)
    if not line then return body_error(x, rerr) end
  end
end

-- Repeated identical values ("10, 10") are one length; different ones are not.
local function content_length(cl)
  local first = cl:match "^%s*(%d+)"
  for v in cl:gmatch "[^,]+" do
    if v:match "^%s*(%d+)%s*$" ~= first then return nil end
  end
  return first and tonumber(first)
end

local function read_length(x)
  local length = content_length(x.headers["content-length"])
  if not length then
    x.sock:close()
    return fail(x.st, "transport", "invalid Content-Length in the response", { request_sent = true })
  end
  if length > x.st.max_body then return over_cap(x) end
  local done, berr = read_exact(x, length)
  if not done then return body_error(x, berr, length - x.out_size) end
  return true
end

-- No length: the body ends when the server closes the connection.
local function read_to_close(x)
  x.keepalive = false
  while true do
    if not arm(x) then return body_error(x, "timeout") end
    local data, rerr = x.sock:receiveany(READ_CHUNK)
    if not data then
      if rerr == "closed" then return true end
      return body_error(x, rerr)
    end
    local ok_emit = emit(x, data)
    if ok_emit == false then return over_cap(x) end
    if ok_emit == nil then return body_error(x, "sink") end
  end
end

-- The body: none, chunked, by Content-Length, or until the server closes.
local function read_body(x)
  local status, headers = x.status, x.headers
  if x.req.method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200) then
    return true
  end
  local te = (headers["transfer-encoding"] or ""):lower()
  if te ~= "" and te ~= "identity" then return read_chunked(x, te) end
  if headers["content-length"] then return read_length(x) end
  return read_to_close(x)
end

-- ------------------------------------------------------------------ keep-alive

local function keepalive_allowed(x)
  local conn = (x.headers.connection or ""):lower()
  if conn:find "%f[%w]close%f[^%w]" then return false end
  return not (x.minor == 0 and not conn:find "keep%-alive")
end

-- Back to the pool when the server keeps it, else closed.
local function release(x)
  if x.keepalive and x.status ~= 101 then
    local kept = x.sock:setkeepalive(x.st.keepalive_ms)
    if not kept then x.sock:close() end
  else
    x.sock:close()
  end
end

-- The result; a sink's download is renamed into place only now, complete.
local function finish(x)
  local res = { status = x.status, headers = x.headers, body = table.concat(x.out) }
  if x.sink_file then
    local closed = x.sink_file:close()
    x.sink_file = nil
    if not closed or not os.rename(x.sink_part, x.req.sink) then
      os.remove(x.sink_part)
      return fail(x.st, "transport", "cannot write the download to its file", { request_sent = true })
    end
    res.body, res.file, res.size = "", x.req.sink, x.out_size
  end
  return res
end

-- Up to the answer's head; what follows depends on the head.
local HEAD_STEPS = { connect, handshake, confirm_send, send, read_head }

-- One attempt over one connection. Returns res | nil, err, stale where stale
-- says the connection came from the pool and died before a single byte of
-- the answer: the server dropped an idle connection, and a new one may be
-- tried (the request never reached it).
local function exchange(st, n, req, u, deadline)
  local x = { st = st, n = n, req = req, u = u, deadline = deadline, out = {}, out_size = 0 }
  for i = 1, #HEAD_STEPS do
    local ok, err, stale = HEAD_STEPS[i](x)
    if not ok then return nil, err, stale end
  end
  open_sink(x)
  x.keepalive = keepalive_allowed(x)
  local ok, err = read_body(x)
  if not ok then return nil, err end
  release(x)
  return finish(x)
end

--- transport.new(client, opts) -> function(req) -> res | nil, err
-- client: the C client (client.core) whose options (allow_http, timeouts,
-- max_body) apply and whose secrets are redacted from every error.
-- opts: user_agent (the client's own option, when the user set one),
--       pool_size (per host and port in each worker, default 16),
--       keepalive (seconds a pooled connection may idle, default 30),
--       proxy (a proxy URL: refused, the cosocket transport connects directly),
--       ngx (an nginx API table; specs pass a fake).
function M.new(client, opts)
  opts = opts or {}
  local cfg = client:config()
  local st = {
    client = client,
    allow_http = cfg.allow_http,
    connect_timeout_ms = math.max(1, math.floor(cfg.connect_timeout * 1000)),
    timeout = cfg.timeout,
    max_body = cfg.max_body,
    pool_size = opts.pool_size or DEFAULT_POOL_SIZE,
    keepalive_ms = math.floor((opts.keepalive or DEFAULT_KEEPALIVE) * 1000),
  }
  local fixed_ngx = opts.ngx
  -- The prepared request names no transport: without the user's
  -- user_agent this transport names itself.
  local user_agent = opts.user_agent or cfg.user_agent
  function st.user_agent()
    if user_agent then return user_agent end
    local v = lua_module_version(fixed_ngx or M.ngx())
    user_agent = ("planapi/%s lua-nginx-module%s"):format(core.version, v and ("/" .. v) or "")
    return user_agent
  end
  local proxy = opts.proxy

  return function(req)
    local n = fixed_ngx or M.ngx()
    if n == nil then
      config_error("the ngx transport runs only inside nginx's lua module (use transport = \"curl\")", 2)
    end
    local phase = n.get_phase()
    if not M.COSOCKET_PHASES[phase] then
      config_error(("nginx has no cosockets in the %s phase: call from rewrite, access, content or a timer "
        .. "(ngx.timer.at), or use transport = \"curl\" there"):format(tostring(phase)), 2)
    end
    if type(proxy) == "string" then
      config_error("the ngx transport cannot use a proxy (option 'proxy'): use transport = \"curl\" or no proxy", 2)
    end
    if type(req) ~= "table" then config_error("request must be a table", 2) end
    local method, url, body = req.method, req.url, req.body
    if type(method) ~= "string" or type(url) ~= "string" then config_error("request needs method and url", 2) end
    if body ~= nil and type(body) ~= "string" then config_error("request body must be a string", 2) end
    -- The URL policy holds for every request, as in the C transport.
    local allowed, uerr = core.check_url(url, st.allow_http)
    if not allowed then error(uerr, 2) end
    local u, perr = parse_url(url)
    if not u then config_error(perr .. ": " .. (st.client:redact(url)), 2) end
    u.pool = ("planapi:%s:%s:%d"):format(u.scheme, u.host, u.port)
    local timeout = st.timeout
    if type(req.timeout) == "number" and req.timeout > 0 then timeout = req.timeout end
    n.update_time()
    local started = n.now()
    local deadline = started + timeout
    -- The bytes once, reused if a stale pooled connection forces a new one.
    local wire_req = setmetatable({ __wire = request_bytes(st, req, u, body) }, { __index = req })
    local res, err, stale
    for _ = 1, st.pool_size + 1 do
      res, err, stale = exchange(st, n, wire_req, u, deadline)
      if not stale then break end
    end
    if stale then
      return fail(st, "transport", ("%s:%d closed every pooled connection without answering"):format(u.host, u.port),
        { retryable = true, request_sent = true })
    end
    if res then
      n.update_time()
      res.time = n.now() - started
    end
    return res, err
  end
end

M._parse_url = parse_url -- for specs
-- Shared with the HAProxy transport (transport/haproxy.lua): the same URL
-- split and the same errors.
M.parse_url, M.fail = parse_url, fail

return M
