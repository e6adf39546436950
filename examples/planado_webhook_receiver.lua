-- A Planado webhook receiver: answers every delivery at once (Planado gives
-- up after 10 seconds), hands each new event to a queue, and only then
-- does the work. Duplicates and out-of-order (stale) deliveries are
-- answered 200 too, so Planado stops retrying them, and are not queued.
--
--   PLANADO_WEBHOOK_SECRET=... lua5.4 examples/planado_webhook_receiver.lua [port] [queue.jsonl] [store-dir]
--
-- The queue is a JSON Lines file a worker (or `tail -f`) consumes; the
-- store directory makes the dedupe survive restarts and be shared by
-- several receiver processes. Needs luasocket (Debian: lua-socket).
local socket = require "socket"
local planapi = require "planapi"

local port = tonumber(arg[1]) or 8089
local queue_path = arg[2] or "planado-events.jsonl"
local store_dir = arg[3]
local max_requests = tonumber(os.getenv "PLANADO_RECEIVER_MAX_REQUESTS") -- for tests: stop after N
local MAX_BODY = 1024 * 1024

local hook = planapi.planado_webhook {
  secret = assert(os.getenv "PLANADO_WEBHOOK_SECRET", "set PLANADO_WEBHOOK_SECRET"),
  store = store_dir and planapi.webhook_store.file { dir = store_dir } or nil,
  max_body = MAX_BODY,
}

local server = assert(socket.bind("127.0.0.1", port))
io.stdout:write(("listening on 127.0.0.1:%d\n"):format(select(2, server:getsockname())))
io.stdout:flush()

-- Read one HTTP request: method, path, headers, body (nil, reason on error).
local function read_request(client)
  client:settimeout(5)
  local line, err = client:receive "*l"
  if not line then return nil, err end
  local method, path = line:match "^(%u+) (%S+) HTTP/1%.[01]$"
  if not method then return nil, "bad request line" end
  local headers = {}
  while true do
    local h = client:receive "*l"
    if not h then return nil, "headers cut short" end
    if h == "" then break end
    local name, value = h:match "^([^:]+):%s*(.-)%s*$"
    if name then headers[name:lower()] = value end
  end
  local len = tonumber(headers["content-length"] or "0")
  if not len or len > MAX_BODY then return nil, "body too large", 413 end
  local body = len > 0 and client:receive(len) or ""
  if not body then return nil, "body cut short" end
  return { method = method, path = path, headers = headers, body = body }
end

local function answer(client, status, text)
  local reason = ({ [200] = "OK", [400] = "Bad Request", [401] = "Unauthorized", [405] = "Method Not Allowed",
    [413] = "Payload Too Large" })[status] or "Error"
  client:send(("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s")
    :format(status, reason, #text, text))
end

local queue = assert(io.open(queue_path, "a"))
local handled = 0
while not max_requests or handled < max_requests do
  local client = server:accept()
  local req, reason, status = read_request(client)
  local event, err
  if not req then
    answer(client, status or 400, reason)
  elseif req.method ~= "POST" then
    answer(client, 405, "POST only")
  else
    event, err = hook:handle(req.headers, req.body)
    if event then
      answer(client, event.answer, event.fresh and "queued" or (event.duplicate and "duplicate" or "stale"))
    else
      answer(client, err.answer or 400, err.message)
    end
  end
  client:close()
  handled = handled + 1
  -- The answer is sent: now the work. Here it is one line in the queue.
  if event and event.fresh then
    queue:write(planapi.json.encode { event_uuid = event.uuid, type = event.type, kind = event.kind,
      uuid = event.resource_uuid, version = event.version, attempt = event.attempt }, "\n")
    queue:flush()
  end
  io.stdout:write(("%s %s\n"):format(event and (event.fresh and "fresh" or event.duplicate and "duplicate" or "stale")
    or "rejected", event and event.uuid or (err and err.message or reason)))
  io.stdout:flush()
end
queue:close()
