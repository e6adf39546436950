-- transport/haproxy.lua: the transport over HAProxy's own HTTP client
-- (core.httpclient, HAProxy 2.6 and later), for clients running inside
-- HAProxy's Lua (actions, services and tasks loaded by lua-load or
-- lua-load-per-thread).
--
--   local transport = require("planapi.transport.haproxy").new(client.core, { user_agent = ... })
--   local res, err = transport(req)   -- { status, headers, body } | nil, err, as the other transports
--
-- core.httpclient yields to HAProxy's scheduler while it waits, so the
-- thread keeps serving other requests while a call to Planfix or Planado
-- is in flight (libcurl would stall every stream of that thread). What it
-- keeps of the transport contract, and how (HAProxy's configuration
-- manual, "httpclient.*" global keywords, and its Lua API, "HTTPClient"):
--   - https, or http only to a loopback host with allow_http (core.check_url);
--   - TLS verified: HAProxy checks the certificate against
--     `httpclient.ssl.ca-file` (global section; @system-ca by default) with
--     `httpclient.ssl.verify required` (the default), and the host name of
--     the URL, which is also the SNI. A client's `ca_file` cannot be given
--     per request: mirror it in httpclient.ssl.ca-file. HAProxy matches host
--     names only, not IP addresses: use a host name in the URL;
--   - `timeout` for the whole exchange (the request's `timeout` field, in
--     milliseconds); connecting is bounded by HAProxy's httpclient itself;
--   - a body over max_body is an error, never a truncated result (HAProxy
--     holds the whole answer in memory before Lua sees it);
--   - redirects are returned, never followed, so no Authorization goes to
--     another host;
--   - every request on a new connection (the httpclient starts a stream per
--     request, and HAProxy's default "http-reuse safe" never puts the first
--     request of a stream on an idle connection), so a write is never sent
--     on a connection that may die under it;
--   - errors of the same kinds: HAProxy answers a failed exchange itself
--     with its own 502, 503 or 504 page, which this transport recognises and
--     turns into a transport or timeout error. A refused connection and a
--     certificate HAProxy did not trust both read "No server is available"
--     there: both are a transport error before anything was sent.
-- HAProxy 2.6's httpclient has GET, HEAD, PUT, POST and DELETE only: a
-- PATCH (Planado's update and upsert) is a config error here; the automatic
-- choice (client_base.lua) takes libcurl for it, which blocks the thread.
--
-- Yielding is allowed in actions, services and tasks, not while HAProxy
-- loads the Lua files (body and init, on the main coroutine), nor in sample
-- fetches and converters, where HAProxy aborts the function at the first
-- yield: call planapi from an action, a service or a task.
local core = require "planapi.core"
local config_error = require "planapi.config_error"
local Ngx = require "planapi.transport.ngx"

local M = {}

-- HAProxy 2.6's httpclient methods (its Lua API, "HTTPClient.get" and the
-- next ones).
local METHODS = { GET = "get", HEAD = "head", PUT = "put", POST = "post", DELETE = "delete" }
M.METHODS = METHODS

--- HAProxy's `core` when this code runs inside HAProxy's Lua, else nil.
-- (The global is named like planapi.core; the two are different things.)
function M.haproxy()
  local h = rawget(_G, "core")
  if type(h) == "table" and type(h.httpclient) == "function" and type(h.msleep) == "function"
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
  local _, main = coroutine.running()
  return not main
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

-- ------------------------------------------------------------------ request

-- The request's headers as httpclient takes them ({ name = { value } }),
-- with the same checks as the other transports; framing headers are
-- HAProxy's.
local function request_headers(st, req, u)
  local out, seen = {}, {}
  for name, value in pairs(req.headers or {}) do
    Ngx.check_header(name, value)
    seen[name:lower()] = true
    if value ~= false and not Ngx.FRAMING[name:lower()] then out[name] = { tostring(value) } end
  end
  if not seen.host then out.Host = { u.authority } end
  if not seen["user-agent"] then out["User-Agent"] = { st.user_agent } end
  return out
end

-- ------------------------------------------------------------------ answer

local function fail(st, kind, message, fields)
  local e = { kind = kind, message = message }
  for k, v in pairs(fields or {}) do e[k] = v end
  return nil, st.client:error(e)
end

-- HAProxy's own error pages (its configuration manual, "errorfile"): the
-- answer HAProxy makes up when the exchange with the server failed. They
-- carry no Date header, which every HTTP server's answer does (RFC 9110,
-- "Date": an origin server with a clock must send it).
local HAPROXY_ERRORS = {
  [502] = { kind = "transport", text = "invalid or incomplete response", sent = true },
  [503] = { kind = "transport", text = "No server is available", sent = false },
  [504] = { kind = "timeout", text = "didn't respond in time", sent = true },
}

local function haproxy_error(st, u, status, headers, body)
  local known = HAPROXY_ERRORS[status]
  if not known or headers.date or not body:find("^<html><body><h1>" .. status) then return nil end
  if not body:find(known.text, 1, true) then return nil end
  local where = ("%s:%d"):format(u.host, u.port)
  if status == 503 then
    return fail(st, "transport", ("connecting to %s failed: refused, unreachable, or its certificate not "
      .. "trusted by httpclient.ssl.ca-file or not for this host name"):format(where),
      { retryable = true, request_sent = false })
  end
  if status == 504 then
    return fail(st, "timeout", ("%s timed out"):format(where), { retryable = true, request_sent = true })
  end
  return fail(st, "transport", ("%s gave no valid HTTP answer"):format(where),
    { retryable = true, request_sent = known.sent })
end

-- httpclient's headers ({ name = { [0] = v, ... } }) lower-cased, repeated
-- ones joined with ", " as the C header parser does.
local function answer_headers(raw)
  local out = {}
  for name, values in pairs(raw or {}) do
    local list = {}
    if type(values) == "table" then
      for i = 0, #values do
        if values[i] ~= nil then list[#list + 1] = tostring(values[i]) end
      end
    else
      list[1] = tostring(values)
    end
    local lname = tostring(name):lower()
    out[lname] = out[lname] and (out[lname] .. ", " .. table.concat(list, ", ")) or table.concat(list, ", ")
  end
  return out
end

-- req.sink (XML file downloads): a 200 body goes to <sink>.part, renamed
-- into place once complete, as the other transports do.
local function to_sink(st, req, res)
  local sink = req.sink
  if type(sink) ~= "string" or sink == "" then config_error("request sink must be a file path", 3) end
  local part = sink .. ".part"
  local f = io.open(part, "wb")
  if not f then config_error("cannot write the download to " .. sink, 3) end
  local written = f:write(res.body)
  local closed = f:close()
  if not (written and closed and os.rename(part, sink)) then
    os.remove(part)
    return fail(st, "transport", "cannot write the download to its file", { request_sent = true })
  end
  res.file, res.size, res.body = sink, #res.body, ""
  return res
end

local function answer(st, req, u, raw)
  if type(raw) ~= "table" or type(raw.status) ~= "number" then
    return fail(st, "transport", ("%s:%d: HAProxy's httpclient gave no answer"):format(u.host, u.port),
      { retryable = true, request_sent = true })
  end
  local headers, body = answer_headers(raw.headers), raw.body or ""
  local herr, e = haproxy_error(st, u, raw.status, headers, body)
  if e then return herr, e end
  if #body > st.max_body then
    return fail(st, "transport", ("response body is larger than max_body (%d bytes)"):format(st.max_body),
      { request_sent = true })
  end
  local res = { status = raw.status, headers = headers, body = body }
  if req.sink ~= nil and raw.status == 200 then return to_sink(st, req, res) end
  return res
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
  if st.proxy then config_error("the haproxy transport cannot use a proxy (option 'proxy')", 3) end
  if type(req) ~= "table" then config_error("request must be a table", 3) end
  local method, url, body = req.method, req.url, req.body
  if type(method) ~= "string" or type(url) ~= "string" then config_error("request needs method and url", 3) end
  if body ~= nil and type(body) ~= "string" then config_error("request body must be a string", 3) end
  if not METHODS[method] then
    config_error(("HAProxy 2.6's httpclient cannot send %s: use transport = \"curl\" for it"):format(method), 3)
  end
end

-- The httpclient's arguments: the URL, the headers, the body, the
-- timeout, and where to connect when the host needs no resolver.
local function client_args(st, req, u)
  local timeout = st.timeout
  if type(req.timeout) == "number" and req.timeout > 0 then timeout = req.timeout end
  local args = { url = req.url, headers = request_headers(st, req, u), body = req.body,
    timeout = math.max(1, math.floor(timeout * 1000)) }
  if u.connect_host ~= u.host or u.name:find "^[%d.]+$" then
    args.dst = ("%s:%d"):format(u.connect_host, u.port)
  end
  return args
end

--- transport.new(client, opts) -> function(req) -> res | nil, err
-- client: the C client (client.core) whose options (allow_http, timeout,
-- max_body) apply and whose secrets are redacted from every error.
-- opts: user_agent, proxy (refused), haproxy (HAProxy's core; specs pass a fake).
function M.new(client, opts)
  opts = opts or {}
  local cfg = client:config()
  local st = {
    client = client, allow_http = cfg.allow_http, timeout = cfg.timeout, max_body = cfg.max_body,
    proxy = type(opts.proxy) == "string",
    user_agent = opts.user_agent or cfg.user_agent or ("planapi/%s HAProxy-httpclient"):format(core.version),
  }
  local fixed = opts.haproxy
  return function(req)
    local h = fixed or M.haproxy()
    check_request(st, req, h)
    local allowed, uerr = core.check_url(req.url, st.allow_http)
    if not allowed then error(uerr, 2) end
    local u, perr = Ngx.parse_url(req.url)
    if not u then config_error(perr .. ": " .. (st.client:redact(req.url)), 2) end
    local args = client_args(st, req, u)
    if req.confirm then
      local confirmed, cerr = req.confirm()
      if not confirmed then return nil, cerr end
    end
    local started = core.monotime()
    local hc = h.httpclient()
    local res, err = answer(st, req, u, hc[METHODS[req.method]](hc, args))
    if res then res.time = core.monotime() - started end
    return res, err
  end
end

return M
