-- Raw HTTP/1.0 requests, all in flight at once (luasocket, non-blocking),
-- for specs that drive nginx: http_many(port, list), list of { method, path,
-- headers, body, at = seconds after the first, port = another port }. Each
-- result gets status, headers, body, json, start, finish (seconds after the
-- first) and elapsed; a connection refused gets connect_error instead.
local socket = require "socket"
local planapi = require "planapi"

local function finish(it, t0)
  it.sock:close()
  it.sock, it.done = nil, true
  it.finish = socket.gettime() - t0
  it.elapsed = it.finish - it.start
  local raw = table.concat(it.buf)
  local head, body = raw:match "^(.-)\r\n\r\n(.*)$"
  it.status = tonumber((head or ""):match "^HTTP/1%.%d (%d+)")
  it.headers = {}
  for k, v in (head or ""):gmatch "\n([^:\r\n]+):%s*([^\r\n]*)" do it.headers[k:lower()] = v end
  it.body = body
  local ok, doc = pcall(planapi.json.decode, body or "")
  it.json = body and ok and doc or nil
end

-- Open it's connection and send its request: false when refused.
local function start(it, port, now, t0)
  local s = assert(socket.tcp())
  s:settimeout(5)
  local ok, err = s:connect("127.0.0.1", it.r.port or port)
  if not ok then
    s:close()
    it.done, it.connect_error, it.start = true, err, now - t0
    return false
  end
  local body = it.r.body or ""
  local lines = { ("%s %s HTTP/1.0"):format(it.r.method or "GET", it.r.path), "Host: 127.0.0.1",
    "Content-Length: " .. #body }
  for k, v in pairs(it.r.headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  assert(s:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body))
  s:settimeout(0)
  it.sock, it.start, it.buf = s, now - t0, {}
  return true
end

return function(port, list)
  local t0 = socket.gettime()
  local items, left = {}, #list
  for i, r in ipairs(list) do items[i] = { r = r } end
  while left > 0 do
    local now = socket.gettime()
    local readers = {}
    for _, it in ipairs(items) do
      if not it.done and not it.sock and now >= t0 + (it.r.at or 0) then
        if not start(it, port, now, t0) then left = left - 1 end
      end
      if it.sock then readers[#readers + 1] = it.sock end
    end
    if #readers > 0 then socket.select(readers, nil, 0.02) else socket.sleep(0.005) end
    for _, it in ipairs(items) do
      while it.sock do
        local data, err, partial = it.sock:receive(65536)
        local chunk = data or partial
        if chunk and #chunk > 0 then it.buf[#it.buf + 1] = chunk end
        if err == "closed" then
          finish(it, t0)
          left = left - 1
        elseif err then
          break
        end
      end
    end
    assert(socket.gettime() - t0 < 90, "HTTP requests did not finish in 90 s")
  end
  return items
end
