-- encoded_answer.lua: a plain-HTTP server on loopback that answers every
-- request with one JSON body compressed by the gzip tool (not by planapi or
-- libcurl), Content-Encoding: gzip, and records the request's
-- Accept-Encoding header. It stands for an API that compresses its answers,
-- which the sandbox does not do.
--
--   lua5.4 spec/helpers/encoded_answer.lua <dir>
--
-- Reads <dir>/answer.json, listens on a free port, writes the port to
-- <dir>/port, serves until killed, appending each request's Accept-Encoding
-- line (or "(none)") to <dir>/accept-encoding. Needs luasocket.
local socket = require "socket"

local dir = assert(arg[1], "usage: encoded_answer.lua <dir>")
local gz = assert(io.popen("gzip -c -n < " .. dir .. "/answer.json", "r"))
local body = gz:read "a"
gz:close()

local server = assert(socket.bind("127.0.0.1", 0))
do
  local _, port = server:getsockname()
  local f = assert(io.open(dir .. "/port.tmp", "w"))
  f:write(port, "\n")
  f:close()
  assert(os.rename(dir .. "/port.tmp", dir .. "/port"))
end

local function serve(conn)
  conn:settimeout(5)
  local accept = "(none)"
  while true do
    local line = conn:receive "*l"
    if line == nil or line == "" then break end
    local name, value = line:match "^([^:]+):%s*(.-)%s*$"
    if name and name:lower() == "accept-encoding" then
      accept = accept == "(none)" and value or (accept .. " | " .. value) -- a second header shows
    end
  end
  local f = assert(io.open(dir .. "/accept-encoding", "a"))
  f:write(accept, "\n")
  f:close()
  conn:send(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
    .. "Content-Length: %d\r\nConnection: close\r\n\r\n"):format(#body) .. body)
  conn:close()
end

while true do
  local conn = server:accept()
  if conn then serve(conn) end
end
