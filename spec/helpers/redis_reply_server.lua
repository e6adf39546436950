-- redis_reply_server.lua: two loopback servers in one process, for the
-- libcurl transport's Redis pacer (src/tcp.c, pa_tcp_int_exchange):
--   a "Redis" that answers every command it receives with the bytes of
--   <reply file>, whatever they are (a malformed integer reply included);
--   a plain HTTP server that answers 200 "{}" and appends the number of
--   request bytes each of its connections sent to <http log> (0: the
--   client connected and sent nothing).
--
--   lua5.4 spec/helpers/redis_reply_server.lua <reply file> <port file> <http log>
--
-- Writes "<redis port> <http port>" to <port file> once both listen; runs
-- until killed. Needs luasocket.
local socket = require "socket"

local reply_file, port_file, http_log = arg[1], arg[2], arg[3]
assert(reply_file and port_file and http_log, "usage: redis_reply_server.lua <reply file> <port file> <http log>")
local f = assert(io.open(reply_file, "rb"))
local reply = f:read "a"
f:close()

local redis = assert(socket.bind("127.0.0.1", 0))
local http = assert(socket.bind("127.0.0.1", 0))
do
  local _, redis_port = redis:getsockname()
  local _, http_port = http:getsockname()
  local tmp = port_file .. ".tmp"
  local out = assert(io.open(tmp, "w"))
  out:write(redis_port, " ", http_port, "\n")
  out:close()
  assert(os.rename(tmp, port_file)) -- whole, or not there at all
end

local kind, got = {}, {} -- connection -> "redis" | "http"; http connection -> bytes read
local watched = { redis, http }

local function log_http(bytes)
  local out = assert(io.open(http_log, "a"))
  out:write(bytes, "\n")
  out:close()
end

local function drop(c)
  for i = #watched, 1, -1 do
    if watched[i] == c then table.remove(watched, i) end
  end
  if kind[c] == "http" then log_http(got[c]) end
  kind[c], got[c] = nil, nil
  c:close()
end

local function on_data(c, data)
  if kind[c] == "redis" then
    c:send(reply)
    return
  end
  got[c] = got[c] + #data
  if data:find("\r\n\r\n", 1, true) then
    c:send "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    drop(c)
  end
end

while true do
  local readable = socket.select(watched, nil, 1)
  for _, s in ipairs(readable) do
    if s == redis or s == http then
      local c = s:accept()
      if c then
        c:settimeout(0)
        kind[c] = s == redis and "redis" or "http"
        got[c] = 0
        watched[#watched + 1] = c
      end
    elseif kind[s] then
      local data, err, partial = s:receive(65536)
      data = data or partial
      if data and #data > 0 then on_data(s, data) end
      if err == "closed" and kind[s] then drop(s) end
    end
  end
end
