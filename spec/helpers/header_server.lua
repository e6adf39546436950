-- header_server.lua: a loopback HTTP/1.1 server with keep-alive, for the
-- libcurl transport's header handling (spec/68). Each request's path is the
-- hex of the header lines to answer with ("Name: value" lines joined by
-- CRLF, folded lines and repeats as the test wrote them); the answer is
-- 200 with those lines, then its own Content-Length, and as body the
-- request's head exactly as it arrived (request line and header lines), so
-- a test sees both what the client sent and what it made of the answer.
--
--   lua5.4 spec/helpers/header_server.lua <port file>
--
-- Writes the port to <port file> once it listens; runs until killed.
-- Needs luasocket.

local port_file = assert(arg[1], "usage: header_server.lua <port file>")

local listen = dofile "spec/helpers/listen.lua"
local server = listen.listen(port_file)
local pending = {} -- connection -> bytes received and not answered yet
local watched = { server }

local function drop(c)
  for i = #watched, 1, -1 do
    if watched[i] == c then table.remove(watched, i) end
  end
  pending[c] = nil
  c:close()
end

local function unhex(s)
  return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- Answer every whole request in the connection's bytes; keep the rest.
local function answer(c)
  while true do
    local data = pending[c]
    local head_end = data:find("\r\n\r\n", 1, true)
    if not head_end then return end
    local head = data:sub(1, head_end + 3)
    local length = tonumber(head:lower():match "\ncontent%-length:%s*(%d+)" or "0")
    if #data < head_end + 3 + length then return end
    pending[c] = data:sub(head_end + 4 + length)
    local lines = unhex(head:match "^%u+ /(%x*)")
    c:send("HTTP/1.1 200 OK\r\n" .. lines .. (lines == "" and "" or "\r\n") .. "Content-Length: " .. #head
      .. "\r\n\r\n" .. head)
  end
end

local function on_accept(c)
  c:settimeout(0)
  pending[c] = ""
  watched[#watched + 1] = c
end

local function on_readable(s)
  if not pending[s] then return end
  local data, closed = listen.receive(s)
  if data then
    pending[s] = pending[s] .. data
    answer(s)
  end
  if closed and pending[s] then drop(s) end
end

listen.serve(server, watched, on_accept, on_readable)
