-- events/ngx.lua: an events receiver as an OpenResty location handler.
--
--   init_worker_by_lua_block {
--     local events_ngx = require "planapi.events.ngx"
--     hooks = planapi.planfix_events{ secret = os.getenv "PLANFIX_EVENTS_SECRET", store = ... }
--     events_ngx.sweeper(hooks, handler)          -- handles again what failed or was cut short
--   }
--   location = /hooks/planfix { content_by_lua_block { require("planapi.events.ngx").serve(hooks, handler) } }
--
-- serve reads the request (the body capped at the receiver's max_body + 1
-- bytes, read back from nginx's temporary file when nginx spooled it),
-- answers the receiver's response at once and closes the exchange
-- (ngx.eof), then runs the handler in an ngx.timer, where planapi's clients
-- run on cosockets. The claim is durable before the answer: a timer that
-- cannot be made, or a worker that dies in the handler, leaves the event
-- leased, and the sweeper takes it again when the lease expires.
local M = {}

local DEFAULT_MAX_BODY = 1048576

-- The first value of a repeated header or argument; "" for a bare `?flag`.
local function first(v)
  if type(v) == "table" then v = v[1] end
  if v == true then v = "" end
  return v
end

-- The body, at most cap bytes: in memory, or from the file nginx buffered
-- it to (client_body_buffer_size smaller than the body).
local function body(cap)
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then return data:sub(1, cap) end
  local path = ngx.req.get_body_file()
  if not path then return "" end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  data = f:read(cap)
  f:close()
  return data or ""
end

--- The interface's request table for the current nginx request:
-- request | nil, why (the body could not be read back).
function M.request(max_body)
  local text, err = body((max_body or DEFAULT_MAX_BODY) + 1)
  if not text then return nil, err end
  local headers = {}
  for k, v in pairs(ngx.req.get_headers(100)) do headers[k] = first(v) end
  local query
  local args = ngx.req.get_uri_args(100)
  if next(args) ~= nil then
    query = {}
    for k, v in pairs(args) do query[k] = first(v) end
  end
  return { method = ngx.req.get_method(), path = ngx.var.uri, query = query, headers = headers, body = text }
end

--- Write the interface's response table and end the exchange.
function M.respond(response)
  ngx.status = tonumber(response.status) or 500
  for name, value in pairs(response.headers or {}) do ngx.header[name] = value end
  local text = response.body or ""
  ngx.header["Content-Length"] = #text
  ngx.print(text)
  ngx.eof()
end

-- In a timer: the handler, the outcome recorded by the receiver.
local function handle(premature, receiver, event, handler)
  if premature then
    -- The worker is exiting before it could handle the event: its lease is
    -- given back at once, so another worker or nginx takes it now rather
    -- than when the lease expires.
    pcall(receiver.store.retry, receiver.store, event.id, 0)
    return
  end
  local ok, err = pcall(receiver.handle, receiver, event, handler)
  if not ok then ngx.log(ngx.ERR, "planapi events: handling failed: ", tostring(err)) end
end

--- serve(receiver, handler): the content handler of a location.
function M.serve(receiver, handler)
  local request, rerr = M.request(receiver.max_body)
  if not request then
    ngx.log(ngx.ERR, "planapi events: cannot read the body back: ", tostring(rerr))
    return M.respond { status = 500, headers = { ["Content-Type"] = "text/plain" }, body = "body unreadable\n" }
  end
  local ok, response, event = pcall(receiver.receive, receiver, request)
  if not ok then
    ngx.log(ngx.ERR, "planapi events: the receiver failed: ", tostring(response))
    return M.respond { status = 500, headers = { ["Content-Type"] = "text/plain" }, body = "internal error\n" }
  end
  M.respond(response)
  if event then
    local made, terr = ngx.timer.at(0, handle, receiver, event, handler)
    if not made then
      -- Claimed and leased: the sweeper takes it when the lease expires.
      ngx.log(ngx.WARN, "planapi events: no timer for an event (", tostring(terr), "); left to the sweeper")
    end
  end
end

local function sweep(premature, receiver, handler, limit)
  if premature then return end
  local ok, err = pcall(receiver.pending, receiver, handler, { limit = limit })
  if not ok then ngx.log(ngx.ERR, "planapi events: pending failed: ", tostring(err)) end
end

--- sweeper(receiver, handler, { every = 5, workers = "one" | "all", limit = 100 }) -> true | nil, err
-- Call in init_worker: a recurring timer that hands the receiver's expired
-- leases to the handler. workers = "one" (default) runs it in worker 0 only;
-- "all" in every worker, which the store makes safe (a taken event is
-- re-leased atomically, so two workers never take the same one).
function M.sweeper(receiver, handler, opts)
  opts = opts or {}
  local id = ngx.worker.id() -- nil where nginx runs without worker processes: then this is the one
  if (opts.workers or "one") == "one" and id ~= nil and id ~= 0 then return true end
  return ngx.timer.every(opts.every or 5, sweep, receiver, handler, opts.limit or 100)
end

return M
