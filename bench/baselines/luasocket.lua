-- luasocket.lua: baseline (c) of bench/percall.lua. What a Lua user writes
-- with luasocket, luasec and lua-expat: one TLS connection kept alive
-- (socket.http and ssl.https close it after every request, so the HTTP/1.1
-- exchange is written here: request line, headers, Content-Length or
-- chunked body), the certificate chain verified against the sandbox's CA,
-- and the body parsed whole by lxp.lom (XML) or cjson (JSON).
--   lua5.4 luasocket.lua PARSE METHOD URL CAFILE CALLS BODYFILE|- [HEADER...]
-- Prints "cpu_us <CPU microseconds per call> wall_us <...> bytes <answer size>".
local socket = require "socket"
local ssl = require "ssl"
local lom = require "lxp.lom"
local cjson = require "cjson"

local parse, method, url, cafile, calls, bodyfile = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5]), arg[6]
local WARMUP = 3
local host, port, path = url:match "^https://([^:/]+):(%d+)(/.*)$"
local body
if bodyfile ~= "-" then
  local f = assert(io.open(bodyfile, "rb"))
  body = f:read "a"
  f:close()
end
local head = { ("%s %s HTTP/1.1"):format(method, path), ("Host: %s:%s"):format(host, port) }
for i = 7, #arg do head[#head + 1] = arg[i] end
if body then head[#head + 1] = "Content-Length: " .. #body end
local request = table.concat(head, "\r\n") .. "\r\n\r\n" .. (body or "")

local conn
local function connect()
  local tcp = assert(socket.tcp())
  assert(tcp:connect(host, tonumber(port)))
  conn = assert(ssl.wrap(tcp, { mode = "client", protocol = "any", verify = "peer", cafile = cafile,
    options = "all" }))
  conn:sni(host)
  assert(conn:dohandshake())
end

local function request_once()
  if not conn then connect() end
  assert(conn:send(request))
  local status_line = assert(conn:receive "*l")
  local status = tonumber(status_line:match "^HTTP/1%.%d (%d%d%d)")
  local headers = {}
  while true do
    local line = assert(conn:receive "*l")
    if line == "" then break end
    local k, v = line:match "^([^:]+):%s*(.-)%s*$"
    headers[k:lower()] = v
  end
  local data
  if headers["content-length"] then
    data = assert(conn:receive(tonumber(headers["content-length"])))
  elseif (headers["transfer-encoding"] or ""):lower():find "chunked" then
    local parts = {}
    while true do
      local size = tonumber(assert(conn:receive "*l"):match "^%x+", 16)
      if size == 0 then
        repeat local l = assert(conn:receive "*l") until l == ""
        break
      end
      parts[#parts + 1] = assert(conn:receive(size))
      assert(conn:receive "*l")
    end
    data = table.concat(parts)
  else
    data = assert(conn:receive "*a")
  end
  if (headers.connection or ""):lower() == "close" then
    conn:close()
    conn = nil
  end
  assert(status == 200, status_line)
  return data
end

local c0, w0, size
for i = 1, WARMUP + calls do
  if i == WARMUP + 1 then c0, w0 = os.clock(), socket.gettime() end
  local data = request_once()
  size = #data
  local doc
  if parse == "xml" then doc = assert(lom.parse(data)) else doc = cjson.decode(data) end
  assert(type(doc) == "table")
end
print(("cpu_us %.1f wall_us %.1f bytes %d"):format((os.clock() - c0) / calls * 1e6,
  (socket.gettime() - w0) / calls * 1e6, size))
