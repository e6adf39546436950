-- hooks.lua: call events, the one way to watch what a client does. The
-- option `hooks` of every client takes a table of functions (or a list of
-- such tables, e.g. a log sink and the metrics together):
--
--   hooks = {
--     request  = function(ev) end, -- an attempt is about to be sent
--     response = function(ev) end, -- an attempt got an HTTP answer (any status)
--     retry    = function(ev) end, -- an attempt failed and the loop waits, then tries again
--     error    = function(ev) end, -- the call failed for good (returns nil, err)
--     dry_run  = function(ev) end, -- a dry run answered the call with its prepared request, unsent
--     hook_error = function(message, ev) end, -- a hook raised (default: one line on stderr, once)
--     bodies = true | N,           -- add the bodies (redacted; N: cut to N bytes)
--   }
--
-- An event is a fresh table of plain values: event, api, account, operation,
-- method, attempt, elapsed (seconds since the call began, on the client's
-- clock), and by event wait, bytes, status, remaining, kind, retryable,
-- request_sent, message. It never holds a credential: no header is in it,
-- the URL loses any user:password@, and a body (only when asked for) and the
-- error's text go through the client's redaction.
--
-- The call loop (client_base.run) pays one `if hooks` per stage when no
-- hook is set. on_request(req, attempt), the older raw form of the request
-- hook (it gets the prepared request itself, headers and all), is called
-- from here too, unguarded as before.
local config_error = require("planapi.config_error")

local M = {}

local EVENTS = { "request", "response", "retry", "error", "dry_run" }
local KEYS = { request = "function", response = "function", retry = "function", error = "function",
  dry_run = "function", hook_error = "function", bodies = "boolean|number" }

local function check_sink(sink, level)
  for k, v in pairs(sink) do
    local want = KEYS[k]
    if want == nil then
      config_error(("unknown hook '%s' (valid: bodies, dry_run, error, hook_error, request, response, retry)")
        :format(tostring(k)), level)
    end
    if not want:find(type(v), 1, true) then
      config_error(("hook '%s' must be a %s, got %s"):format(k, want:gsub("|", " or "), type(v)), level)
    end
  end
end

-- The sinks of the option: one table of functions, or a list of them.
local function sinks_of(opt, level)
  if opt[1] == nil then
    check_sink(opt, level)
    return { opt }
  end
  local sinks = {}
  for i, sink in ipairs(opt) do
    if type(sink) ~= "table" then config_error(("hooks[%d] must be a table of hook functions"):format(i), level) end
    check_sink(sink, level)
    sinks[i] = sink
  end
  return sinks
end

--- The dispatcher a client keeps as self.hooks, or nil when there is
-- nothing to call (the call loop then pays nothing but its checks).
-- opt: the `hooks` option; on_request: the older option (kept as the
-- client's field on_request, called with the request event); who: { api =,
-- account = } the events carry; level: config_error's.
function M.new(opt, on_request, who, level)
  if opt == nil and on_request == nil then return nil end
  local sinks = opt and sinks_of(opt, level + 1) or {}
  local d = { sinks = sinks, api = who.api, account = who.account }
  for _, name in ipairs(EVENTS) do
    for _, sink in ipairs(sinks) do
      if sink[name] then d[name] = true end
    end
  end
  return d
end

-- A hook's failure, reported without stopping the call: to the sinks'
-- hook_error, else once per client on stderr. The message is redacted.
local function report(client, d, sink, err, ev)
  local message = client.core:redact(tostring(err), 300):gsub("[\r\n]+", " ")
  local handler = sink.hook_error
  if handler and pcall(handler, message, ev) then return end
  if d.reported then return end
  d.reported = true
  io.stderr:write(("planapi: a %s hook of a %s client raised: %s (reported once; the call goes on)\n")
    :format(ev.event, d.api, message))
end

local function body_of(client, sink, body)
  local bodies = sink.bodies
  if not bodies or type(body) ~= "string" then return nil end
  return client.core:redact(body, bodies == true and 0 or bodies)
end

-- Hand ev to every sink that has the event's hook; bodies: the request's
-- or answer's body, added for the sinks that asked for it.
local function emit(client, d, ev, body)
  for _, sink in ipairs(d.sinks) do
    local hook = sink[ev.event]
    if hook then
      local given = ev
      if sink.bodies and body then
        given = {}
        for k, v in pairs(ev) do given[k] = v end
        given.body = body_of(client, sink, body)
      end
      local ok, err = pcall(hook, given)
      if not ok then report(client, d, sink, err, ev) end
    end
  end
end

-- call: as client_base.run has it, the prepared request or { req =, operation = }.
local function event(d, name, call, attempt, started, now)
  local req = call.req or call
  return { event = name, api = d.api, account = d.account, operation = call.operation or req.operation,
    method = req.method, attempt = attempt, elapsed = now - started }
end

local function safe_url(url)
  if type(url) ~= "string" then return nil end
  return (url:gsub("^(%a[%w+.-]*://)[^/?#]*@", "%1"))
end

-- The request's own fields: where it goes (redacted) and its size.
local function outgoing(client, d, name, call, attempt, started)
  local req = call.req or call
  local ev = event(d, name, call, attempt, started, client.clock())
  ev.url = safe_url(client.core:redact(req.url or ""))
  ev.bytes = type(req.body) == "string" and #req.body or 0
  return ev
end

--- An attempt is about to be sent: wait is what the limiter made it wait.
function M.request(client, d, call, attempt, started, wait)
  local req = call.req or call
  if d.request then
    local ev = outgoing(client, d, "request", call, attempt, started)
    ev.wait = wait or 0
    emit(client, d, ev, req.body)
  end
  local on_request = client.on_request -- read per call: a spec may drop it between calls
  if on_request then on_request(req, attempt) end
end

local function remaining_of(res)
  local remaining = res.headers and res.headers["x-ratelimit-remaining"]
  return remaining and tonumber(remaining:match "^%s*(%d+)")
end

--- An attempt came back with an HTTP answer (res), successful or not. An
-- API package marks a request whose answer is a credential (req.secret_answer:
-- Planfix XML's auth.login): its body is never shown.
function M.response(client, d, call, res, attempt, started)
  if not (d.response and res) then return end
  local req = call.req or call
  local ev = event(d, "response", call, attempt, started, client.clock())
  ev.status = res.status
  ev.bytes = type(res.body) == "string" and #res.body or 0
  ev.remaining = remaining_of(res)
  emit(client, d, ev, not req.secret_answer and res.body or nil)
end

-- retry and error: what the error says, as plain values.
local function failure(client, d, name, call, err, attempt, started)
  local ev = event(d, name, call, attempt, started, client.clock())
  ev.kind, ev.status, ev.retryable, ev.request_sent = err.kind, err.status, err.retryable, err.request_sent
  ev.remaining = err.remaining
  ev.message = client.core:redact(tostring(err))
  return ev
end

--- The attempt failed and the loop tries again after wait seconds.
function M.retry(client, d, call, err, attempt, started, wait)
  if not d.retry then return end
  local ev = failure(client, d, "retry", call, err, attempt, started)
  ev.wait = wait
  emit(client, d, ev)
end

--- A dry run answered the call: nothing was sent (attempt 0).
function M.dry_run(client, d, call)
  if not d.dry_run then return end
  local req = call.req or call
  emit(client, d, outgoing(client, d, "dry_run", call, 0, client.clock()), req.body)
end

--- The call failed for good.
function M.error(client, d, call, err, attempt, started)
  if not d.error then return end
  emit(client, d, failure(client, d, "error", call, err, attempt, started))
end

return M
