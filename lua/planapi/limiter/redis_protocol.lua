-- limiter/redis_protocol.lua: the Redis wire protocol, RESP2: a command out, one reply in.
--
--   resp.encode { "SET", "k", 42 }  -> "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n42\r\n"
--   resp.read(sock)                 -> value | nil, err
--   resp.call(sock, { "GET", "k" }) -> value | nil, err   (encode, send, read)
--
-- sock is anything with the luasocket / ngx.socket.tcp shape: send(data),
-- receive("*l") and receive(n); planapi's core.tcp_connect, luasocket and
-- OpenResty cosockets all fit, which is why this file does no I/O itself.
--
-- Replies: a simple string or bulk string is a Lua string, an integer a
-- Lua integer, an array a table (nested arrays nest), and a null bulk or
-- null array is planapi.null (core.null), so that nil always means failure
-- and an array never has holes. An error reply is nil, err with err.kind =
-- "api", err.message = the Redis text and err.code = its first word
-- ("NOSCRIPT", "WRONGPASS", "ERR"); inside an array it stays in its place
-- as that error object, as in the results of a transaction.
-- Other failures leave the connection out of step and so unusable: "transport"
-- or "timeout" (the socket's own error) and "decode" (not RESP2).
local core = require "planapi.core"
local config_error = require "planapi.config_error"

local M = {}

-- Redis refuses bulk strings above 512 MiB; a larger length is garbage.
local MAX_BULK = 512 * 1024 * 1024
-- Deeper arrays than this are not something Redis sends us.
local MAX_DEPTH = 32

local function decode_error(msg)
  return nil, core.error { kind = "decode", message = "redis protocol error: " .. msg }
end

-- A socket error as a planapi error: core sockets already return one,
-- luasocket and cosockets return a string ("timeout", "closed", ...).
local function io_error(err)
  if core.is_error(err) then return nil, err end
  local text = tostring(err or "connection failed")
  return nil, core.error { kind = text == "timeout" and "timeout" or "transport", message = "redis: " .. text }
end
M.io_error = io_error

-- One argument as a bulk string. Integral numbers go out without a
-- fraction (Redis parses "3.0" as no integer), others exactly.
local function arg_string(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if math.type and math.type(v) == "integer" then return tostring(v) end
    if v == math.floor(v) and v > -2 ^ 63 and v < 2 ^ 63 then return ("%.0f"):format(v) end
    if v ~= v or v == math.huge or v == -math.huge then
      config_error("redis command argument is not a finite number", 3)
    end
    return ("%.17g"):format(v)
  end
  config_error("redis command arguments must be strings or numbers, got " .. t, 3)
end

--- The RESP2 form of a command: an array of bulk strings.
-- args: a list of strings and numbers; args.n, when set, is its length.
function M.encode(args)
  local n = args.n or #args
  local parts = { ("*%d\r\n"):format(n) }
  for i = 1, n do
    local s = arg_string(args[i])
    parts[#parts + 1] = "$" .. #s .. "\r\n"
    parts[#parts + 1] = s
    parts[#parts + 1] = "\r\n"
  end
  return table.concat(parts)
end

-- The length on a "$" or "*" line: -1 (null) or more, digits only.
local function length(text)
  if text == "-1" then return -1 end
  if not text:match "^%d+$" then return nil end
  return tonumber(text)
end

local read_value

-- One reply; errors are values here (read() turns a top-level one into nil, err).
function read_value(sock, depth)
  local line, err = sock:receive "*l"
  if line == nil then return io_error(err) end
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then
    return rest
  elseif kind == "-" then
    return core.error { kind = "api", message = rest, code = rest:match "^(%S+)" }
  elseif kind == ":" then
    local n = rest:match "^%-?%d+$" and tonumber(rest)
    if not n then return decode_error("bad integer reply " .. ("%q"):format(rest:sub(1, 40))) end
    return n
  elseif kind == "$" then
    local n = length(rest)
    if not n or n > MAX_BULK then return decode_error("bad bulk length " .. ("%q"):format(rest:sub(1, 40))) end
    if n < 0 then return core.null end
    local data, rerr = sock:receive(n + 2)
    if data == nil then return io_error(rerr) end
    if data:sub(-2) ~= "\r\n" then return decode_error("bulk string not followed by CRLF") end
    return data:sub(1, n)
  elseif kind == "*" then
    local n = length(rest)
    if not n then return decode_error("bad array length " .. ("%q"):format(rest:sub(1, 40))) end
    if n < 0 then return core.null end
    if depth >= MAX_DEPTH then return decode_error("arrays nested deeper than " .. MAX_DEPTH) end
    local list = {}
    for i = 1, n do
      local v, verr = read_value(sock, depth + 1)
      if v == nil then return nil, verr end
      list[i] = v
    end
    return list
  end
  return decode_error("unknown reply type " .. ("%q"):format(line:sub(1, 40)))
end

--- Read one reply from sock: value | nil, err.
function M.read(sock)
  local v, err = read_value(sock, 0)
  if v == nil then return nil, err end
  if core.is_error(v) then return nil, v end
  return v
end

--- Send one command and read its reply: value | nil, err.
function M.call(sock, args)
  local ok, err = sock:send(M.encode(args))
  if not ok then return io_error(err) end
  return M.read(sock)
end

return M
