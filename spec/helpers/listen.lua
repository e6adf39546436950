-- listen.lua: what the loopback helper servers that specs start as
-- processes share (flaky_proxy.lua, header_server.lua). Needs luasocket.
--   local listen = dofile "spec/helpers/listen.lua"
local socket = require "socket"

local M = {}

-- A socket listening on a free port of 127.0.0.1, the port written to
-- port_file once it listens (the file whole, or not there at all).
function M.listen(port_file)
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local tmp = port_file .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(port, "\n")
  f:close()
  assert(os.rename(tmp, port_file))
  return server
end

-- Serve until killed: on_accept(c) for each connection server accepts,
-- on_readable(s) for any other socket of watched (server among them) with
-- bytes or a close to read.
function M.serve(server, watched, on_accept, on_readable)
  while true do
    for _, s in ipairs(socket.select(watched, nil, 1)) do
      if s ~= server then
        on_readable(s)
      else
        local c = server:accept()
        if c then on_accept(c) end
      end
    end
  end
end

-- The bytes waiting on s (nil: none), and whether its peer closed it.
function M.receive(s)
  local data, err, partial = s:receive(65536)
  data = data or partial
  return (data and #data > 0) and data or nil, err == "closed"
end

return M
