-- flaky_proxy.lua: a TCP relay in front of the sandbox that resets the first
-- connections it accepts before a byte of the request can arrive (RST, no
-- TLS handshake), then relays every later connection byte for byte. It
-- stands for "the connection was reset before the request was sent",
-- which the sandbox itself cannot produce: by the time nginx runs Lua the
-- request has arrived.
--
--   lua5.4 spec/helpers/flaky_proxy.lua <target port> <resets> <port file>
--
-- It listens on 127.0.0.1 on a free port, writes that port to <port file>
-- once it is listening, and runs until killed. Needs luasocket.
local socket = require "socket"

local target_port, resets, port_file = tonumber(arg[1]), tonumber(arg[2]), arg[3]
assert(target_port and resets and port_file, "usage: flaky_proxy.lua <target port> <resets> <port file>")

local listen = dofile "spec/helpers/listen.lua"
local server = listen.listen(port_file)
server:settimeout(0)

local peer = {} -- socket -> the socket its bytes go to
local watched = { server }

local function drop(s)
  local other = peer[s]
  peer[s] = nil
  for i = #watched, 1, -1 do
    if watched[i] == s or watched[i] == other then table.remove(watched, i) end
  end
  s:close()
  if other then
    peer[other] = nil
    other:close()
  end
end

local function on_accept(c)
  if resets > 0 then
    resets = resets - 1
    c:setoption("linger", { on = true, timeout = 0 }) -- close() sends RST
    c:close()
    return
  end
  local up = socket.tcp()
  up:settimeout(5)
  if up:connect("127.0.0.1", target_port) then
    c:settimeout(0)
    up:settimeout(0)
    peer[c], peer[up] = up, c
    watched[#watched + 1] = c
    watched[#watched + 1] = up
  else
    c:close()
  end
end

local function relay(s)
  if not peer[s] then return end
  local data, closed = listen.receive(s)
  if data then
    local to, sent = peer[s], 0
    to:settimeout(5)
    while sent < #data do
      local n, werr, last = to:send(data, sent + 1)
      if not n and werr ~= "timeout" then break end
      sent = n or last or sent
    end
    to:settimeout(0)
  end
  if closed then drop(s) end
end

listen.serve(server, watched, on_accept, relay)
