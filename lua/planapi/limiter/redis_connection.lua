-- limiter/redis_connection.lua: one Redis connection for a planapi object
-- that keeps state in Redis (the limiter, limiter/redis.lua; the event
-- store, events/store_redis.lua): the redis:// url, AUTH, SELECT, the
-- reconnect and scripts run by EVALSHA with the EVAL fallback.
--
--   local connection = require "planapi.limiter.redis_connection"
--   connection.mixin(Class)        -- Class.SERVICE = "rate limiter" names it in errors
--   connection.init(self, url (nil: redis://127.0.0.1:6379/0), { label = "limiter", connect =, timeout = })
--   self:request { "GET", "k" }   -> reply | nil, err (a Redis error reply: kind "api")
--   self:run_script(TEXT, { keys... }, { args... }) -> reply | nil, err
--   self:close()
--
-- Failure: when Redis cannot be reached, refuses the password, or answers
-- with an error, the error has kind = "transport", retryable = false, a
-- message starting "<SERVICE> unavailable" and the underlying error in
-- err.cause. The password never appears in an error nor in a field of self.
--
-- Connections: one per object, opened on first use, with AUTH and SELECT.
-- A call on a connection that turns out to be dropped (Redis restarted, an
-- idle timeout, CLIENT KILL) reconnects and tries once more, unless the
-- reply timed out: the command may have run, and Redis is slow anyway.
--
-- connect(host, port, timeout_seconds, pool) returns a connected socket
-- with the luasocket / ngx.socket.tcp methods (send, receive, close) and
-- its timeout already set. The default, M.connect_by_phase, picks the
-- socket by where the code runs: inside nginx, in a phase with cosockets,
-- an ngx.socket.tcp cosocket (the worker serves other requests while Redis
-- answers); elsewhere, and in nginx's phases without cosockets (init_worker,
-- log, ...), core.tcp_connect, a blocking socket that nginx never keeps for
-- a later request. A socket with setkeepalive (a cosocket) goes back to
-- nginx's pool after every call, since a cosocket cannot outlive its
-- request, and is never kept in the object, which the requests of a worker
-- share (one waiting on Redis must not lend its socket to another); one
-- reused from the pool (getreusedtimes() > 0) skips AUTH and SELECT, which
-- it already did.
local core = require "planapi.core"
local ngx_transport = require "planapi.transport.ngx"
local resp = require "planapi.limiter.redis_protocol"
local config_error = require "planapi.config_error"

local M = {}

-- Passwords live here, not in the object, so that printing or serialising
-- one cannot show a password.
local passwords = setmetatable({}, { __mode = "k" })

-- Each script's SHA1, asked of the first server once per process (it is the
-- same on every server; only whether a server has the script cached differs).
local shas = {}

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function userinfo(target, info, label)
  local user, password = info:match "^([^:]*):(.*)$"
  if not user then config_error(label .. " url: a user name without a password (use redis://user:password@host)", 5) end
  if user ~= "" then target.user = unescape(user) end
  if password ~= "" then target.password = unescape(password) end
end

-- The port and database after the host: target filled in.
local function port_and_db(target, after, label)
  target.port = 6379
  local port, tail = after:match "^:(%d+)(.*)$"
  if port then
    target.port = tonumber(port)
    after = tail
  end
  if target.port < 1 or target.port > 65535 then config_error(label .. " url: port must be 1 to 65535", 5) end
  target.db = 0
  if after ~= "" and after ~= "/" then
    local db = after:match "^/(%d+)$"
    if not db then config_error(label .. " url: after the host only :port and /db (a number) may follow", 5) end
    target.db = tonumber(db)
  end
end

--- redis://[[user]:password@]host[:port][/db]; host may be [ipv6].
-- { host, port, db, ipv6, user, password }. Messages never quote the url:
-- it may carry the password. label names the option in them ("limiter").
function M.parse_url(url, label)
  local rest = url:match "^redis://(.*)$"
  if not rest then
    config_error(label .. " url must be redis://[[user]:password@]host[:port][/db] "
      .. "(rediss:// and others are not supported)", 4)
  end
  local target = {}
  local info, hostpart = rest:match "^(.*)@(.-)$" -- the last @: a password may hold one
  if info then
    userinfo(target, info, label)
  else
    hostpart = rest
  end
  local host, after = hostpart:match "^%[([%x:%.]+)%](.*)$"
  target.ipv6 = host ~= nil
  if not host then host, after = hostpart:match "^([^:/?#%[%]]*)(.*)$" end
  if not host then config_error(label .. " url: malformed host", 4) end
  target.host = host ~= "" and host or "127.0.0.1"
  port_and_db(target, after, label)
  return target
end

--- A class of objects with a Redis connection; service names them in errors.
function M.class(service)
  local class = { SERVICE = service }
  class.__index = class
  return M.mixin(class)
end

--- Check opts against options (name -> type name); the names in positive
-- must be numbers above 0. what names the object in messages ("redis limiter").
function M.check_options(opts, options, what, positive)
  if type(opts) ~= "table" then config_error(what .. " needs a table of options", 5) end
  for k, v in pairs(opts) do
    local want = options[k]
    if not want then
      local names = {}
      for name in pairs(options) do names[#names + 1] = name end
      table.sort(names)
      config_error(("unknown %s option '%s' (valid: %s)"):format(what, tostring(k), table.concat(names, ", ")), 5)
    end
    if type(v) ~= want then config_error(("%s option '%s' must be a %s"):format(what, k, want), 5) end
  end
  for _, k in ipairs(positive) do
    if opts[k] ~= nil and not (opts[k] > 0) then
      config_error(("%s option '%s' must be a positive number"):format(what, k), 5)
    end
  end
end

--- A connected socket for host:port: a cosocket from nginx's pool (named
-- pool) where nginx allows cosockets now, else a blocking socket.
function M.connect_by_phase(host, port, timeout, pool)
  local n = ngx_transport.ngx()
  if n and ngx_transport.cosockets(n) then
    local sock = n.socket.tcp()
    sock:settimeout(timeout * 1000)
    local ok, err = sock:connect(host, port, { pool = pool })
    if not ok then return nil, err end
    return sock
  end
  return core.tcp_connect(host, port, timeout)
end

--- Set up self's connection fields from url and opts { label, connect, timeout }.
-- The Redis of a url left out: the local default one.
local DEFAULT_URL = "redis://127.0.0.1:6379/0"

function M.init(self, url, opts)
  local target = M.parse_url(url or DEFAULT_URL, opts.label)
  local host_label = target.ipv6 and "[" .. target.host .. "]" or target.host
  self.server = ("%s:%d/%d"):format(host_label, target.port, target.db)
  self.host, self.port, self.db, self.user = target.host, target.port, target.db, target.user
  self.timeout = opts.timeout or 1
  self.by_phase = opts.connect == nil
  self.connect = opts.connect or M.connect_by_phase
  -- Connections in one nginx pool must share the database and the user.
  self.pool = ("planapi-redis:%s:%d:%d:%s"):format(target.host, target.port, target.db, target.user or "")
  passwords[self] = target.password
  return self
end

local Methods = {}

-- Text safe to show: the password, should any server echo it (whole, cut or
-- escaped), becomes *** (core.redact, the clients' routine).
function Methods:redact(text)
  local password = passwords[self]
  return core.redact(tostring(text), password and { password } or nil)
end

-- The error every method returns when Redis cannot serve it.
function Methods:unavailable(cause)
  local text = self:redact(cause.message or cause)
  return core.error {
    kind = "transport", retryable = false,
    message = ("%s unavailable: redis %s: %s"):format(self.SERVICE, self.server, text),
    cause = core.error { kind = cause.kind or "transport", message = text, code = cause.code },
  }
end

local function prefixed(prefix, err)
  return core.error { kind = err.kind, code = err.code, message = prefix .. ": " .. tostring(err.message) }
end

-- AUTH and SELECT on a new connection: true | nil, err (the socket closed).
local function handshake(self, sock)
  local password = passwords[self]
  if password then
    local args = self.user and { "AUTH", self.user, password } or { "AUTH", password }
    local ok, aerr = resp.call(sock, args)
    if ok == nil then
      sock:close()
      return nil, prefixed("AUTH failed", aerr)
    end
  end
  if self.db ~= 0 then
    local ok, serr = resp.call(sock, { "SELECT", self.db })
    if ok == nil then
      sock:close()
      return nil, prefixed("SELECT " .. self.db .. " failed", serr)
    end
  end
  return true
end

-- A blocking socket picked by phase inside nginx belongs to the phase
-- that opened it: never used where cosockets would do (it would hold the
-- worker), and not kept for a later request.
local function phase_bound(self, sock)
  return self.by_phase and not sock.setkeepalive and ngx_transport.ngx() ~= nil
end

-- The kept connection, or a new one after AUTH and SELECT: sock, fresh | nil, err.
function Methods:connection()
  local kept = self.sock
  if kept and phase_bound(self, kept) and ngx_transport.cosockets() then
    self:drop()
    kept = nil
  end
  if kept then return kept, false end
  local sock, err = self.connect(self.host, self.port, self.timeout, self.pool)
  if not sock then return resp.io_error(err) end
  local reused = sock.getreusedtimes and (sock:getreusedtimes() or 0) > 0
  if not reused then
    local ok, herr = handshake(self, sock)
    if not ok then return nil, herr end
  end
  -- A cosocket belongs to the request (or timer) that made it, and a worker
  -- runs many at once through one shared object: kept here, another
  -- request's operation would use it ("bad request"). It serves this
  -- exchange only, then goes back to nginx's pool.
  if not sock.setkeepalive then self.sock = sock end
  return sock, not reused
end

-- After a complete exchange: a cosocket goes back to nginx's pool.
function Methods:after_exchange(sock)
  if sock.setkeepalive then
    sock:setkeepalive()
  elseif phase_bound(self, sock) then
    self:discard(sock)
  end
end

-- Close sock, out of step or gone, and forget it if it is the kept one.
function Methods:discard(sock)
  if self.sock == sock then self.sock = nil end
  sock:close()
end

function Methods:drop()
  local sock = self.sock
  self.sock = nil
  if sock then sock:close() end
end

--- The connection as planapi's C socket, for C code that speaks on it
-- itself (the libcurl transport's pacer): sock | nil when it is, or would
-- be, a cosocket or any other socket, or Redis is out of reach.
function Methods:c_socket()
  if self.by_phase and ngx_transport.cosockets() then return nil end
  local sock = self:connection()
  if not sock then return nil end
  if not core.is_tcp(sock) then
    self:after_exchange(sock)
    return nil
  end
  return sock
end

-- One command: the reply | nil, err. A Redis error reply comes back as it
-- is (kind "api"); anything else is already the "unavailable" error.
function Methods:request(args)
  for attempt = 1, 2 do
    local sock, fresh_or_err = self:connection()
    if not sock then return nil, self:unavailable(fresh_or_err) end
    local fresh = fresh_or_err
    local value, err = resp.call(sock, args)
    if value ~= nil or err.kind == "api" then
      self:after_exchange(sock)
      return value, err
    end
    self:discard(sock) -- out of step or gone: never reuse it
    -- Only a connection that sat idle can have been closed under us; a new
    -- one failing, or a timeout (the command may have run), is the answer.
    if fresh or attempt == 2 or err.kind == "timeout" then return nil, self:unavailable(err) end
  end
end

function Methods:failed(err)
  if err.kind == "api" then return self:unavailable(err) end
  return err
end

--- The SHA1 of a script's text, loaded into the server once per process: sha | nil, err.
function Methods:script_sha(text)
  local sha = shas[text]
  if sha then return sha end
  local err
  sha, err = self:request { "SCRIPT", "LOAD", text }
  if sha == nil then return nil, self:failed(err) end
  shas[text] = sha
  return sha
end

--- Run a script's text with keys and args: its reply | nil, err.
function Methods:run_script(text, keys, args)
  local sha, serr = self:script_sha(text)
  if not sha then return nil, serr end
  local command = { "EVALSHA", sha, #keys }
  for _, k in ipairs(keys) do command[#command + 1] = k end
  for i = 1, args.n or #args do command[#command + 1] = args[i] end
  command.n = 3 + #keys + (args.n or #args)
  local value, err = self:request(command)
  if value == nil and err.kind == "api" and err.code == "NOSCRIPT" then
    -- The server lost its script cache (a restart, SCRIPT FLUSH, a failover):
    -- EVAL runs the text and caches it again.
    command[1], command[2] = "EVAL", text
    value, err = self:request(command)
  end
  if value == nil then return nil, self:failed(err) end
  return value
end

--- Close the connection. The object stays usable: a later call connects again.
function Methods:close()
  self:drop()
  return true
end

--- Give class the connection's methods (a method class already has wins).
function M.mixin(class)
  for name, fn in pairs(Methods) do
    if class[name] == nil then class[name] = fn end
  end
  return class
end

return M
