-- A Planado webhook receiver: checks each delivery's secret, claims its
-- event in a store (so a retried or replayed delivery is known), appends
-- each new event to a queue and answers at once (Planado gives up after 10
-- seconds); the work is left to whatever consumes the queue. Duplicates
-- and out-of-order (stale) deliveries are answered 200 too, so Planado
-- stops retrying them, and are not queued. An event the queue could not
-- take is forgotten again and answered 503, so Planado delivers it again.
--
--   PLANADO_WEBHOOK_SECRET=... lua5.4 examples/planado_webhook_receiver.lua [port] [queue.jsonl] [store-dir]
--
-- The queue is a JSON Lines file a worker (or `tail -f`) consumes; the
-- store directory makes the dedupe survive restarts and be shared by
-- several receiver processes. Run as a script it serves HTTP on loopback
-- with luasocket (Debian: lua-socket); required as a module it is the
-- receiver's logic alone, which examples/spec/planado_webhook_receiver_spec.lua
-- tests with planapi.testing's deliveries, no socket involved.
local planapi = require "planapi"

local Receiver = {}
Receiver.__index = Receiver

Receiver.MAX_BODY = 1024 * 1024

--- Receiver.new{ secret =, store_dir = (optional), enqueue = function(record) -> true | nil, err }
function Receiver.new(opts)
  assert(type(opts.enqueue) == "function", "Receiver.new needs enqueue, a function(record)")
  return setmetatable({
    hook = planapi.planado_webhook {
      secret = opts.secret,
      store = opts.store_dir and planapi.webhook_store.file { dir = opts.store_dir } or nil,
      max_body = Receiver.MAX_BODY,
    },
    enqueue = opts.enqueue,
  }, Receiver)
end

--- Receiver.file_queue(path) -> enqueue: each record one JSON line appended
-- to path, flushed before the answer.
function Receiver.file_queue(path)
  local queue = assert(io.open(path, "a"))
  return function(record)
    local ok, err = queue:write(planapi.json.encode(record), "\n")
    if ok then ok, err = queue:flush() end
    return ok and true or nil, err
  end
end

-- What a claimed delivery was: "fresh", "duplicate" or "stale".
local function outcome(event)
  return event.fresh and "fresh" or (event.duplicate and "duplicate" or "stale")
end

-- The line a worker reads from the queue.
local function record_of(event)
  return { event_uuid = event.uuid, type = event.type, kind = event.kind, uuid = event.resource_uuid,
    version = event.version, attempt = event.attempt }
end

--- receiver:deliver(request) -> status, text, event | nil
-- request = { method =, headers =, body = } (testing.planado_delivery builds
-- one): verified, claimed, a fresh event queued; what to answer Planado.
function Receiver:deliver(request)
  if request.method ~= "POST" then return 405, "POST only" end
  local event, err = self.hook:handle(request.headers, request.body)
  if not event then return err.answer or 400, err.message end
  if event.fresh then
    local ok, qerr = self.enqueue(record_of(event))
    if not ok then
      self.hook:release(event)
      return 503, "the queue did not take the event: " .. tostring(qerr)
    end
    return 200, "queued", event
  end
  return 200, outcome(event), event
end

--- Receiver.log_line(text, event) -> "fresh <event_uuid>", "duplicate ...",
-- "stale ..." or "rejected <why>" (the text deliver answered).
function Receiver.log_line(text, event)
  if event then return outcome(event) .. " " .. tostring(event.uuid) end
  return "rejected " .. tostring(text)
end

-- ------------------------------------------------------------------ the script

-- Read one HTTP request: method, path, headers, body (nil, reason, status on error).
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
  if not len or len > Receiver.MAX_BODY then return nil, "body too large", 413 end
  local body = len > 0 and client:receive(len) or ""
  if not body then return nil, "body cut short" end
  return { method = method, path = path, headers = headers, body = body }
end

local REASONS = { [200] = "OK", [400] = "Bad Request", [401] = "Unauthorized", [405] = "Method Not Allowed",
  [413] = "Payload Too Large", [503] = "Service Unavailable" }

local function send_answer(client, status, text)
  client:send(("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s")
    :format(status, REASONS[status] or "Error", #text, text))
end

-- One connection: read, deliver, answer, log.
local function serve_one(receiver, client)
  local req, reason, status = read_request(client)
  local text, event
  if req then
    status, text, event = receiver:deliver(req)
  else
    status, text = status or 400, reason
  end
  send_answer(client, status, text)
  client:close()
  io.stdout:write(Receiver.log_line(text, event), "\n")
  io.stdout:flush()
end

-- The blocking loop on 127.0.0.1:port, one request at a time.
local function main()
  local socket = require "socket"
  local port = tonumber(arg[1]) or 8089
  local receiver = Receiver.new {
    secret = assert(os.getenv "PLANADO_WEBHOOK_SECRET", "set PLANADO_WEBHOOK_SECRET"),
    store_dir = arg[3],
    enqueue = Receiver.file_queue(arg[2] or "planado-events.jsonl"),
  }
  local max_requests = tonumber(os.getenv "PLANADO_RECEIVER_MAX_REQUESTS") -- for tests: stop after N
  local server = assert(socket.bind("127.0.0.1", port))
  io.stdout:write(("listening on 127.0.0.1:%d\n"):format(select(2, server:getsockname())))
  io.stdout:flush()
  local served = 0
  while not max_requests or served < max_requests do
    serve_one(receiver, server:accept())
    served = served + 1
  end
end

if arg and arg[0] and arg[0]:match "planado_webhook_receiver%.lua$" then main() end

return Receiver
