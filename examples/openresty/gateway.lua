-- gateway.lua: the handlers of the planapi OpenResty / nginx gateway example
-- (examples/openresty/nginx.conf.in, started by examples/openresty/run).
--
--   POST /tasks/{id}/to-planado   Planfix task {id} becomes a Planado job with
--                                 external_id "planfix-{id}": 201 the new job,
--                                 200 the job made earlier (never a second one)
--   POST /planado/webhook         a Planado webhook delivery, and
--   POST /planfix/events          a Planfix scenario request: claimed in the
--                                 events store, answered at once (200 new,
--                                 duplicate or stale, else the refusal's
--                                 status), handled in an ngx.timer after the
--                                 answer (planapi.events.ngx); what fails is
--                                 handled again by a sweeper timer
--   GET  /health                  200, without touching any API
--   GET  /metrics                 the calls of every worker's clients as
--                                 Prometheus text (planapi.metrics)
--
-- Every call runs over nginx cosockets (planapi picks them by itself in the
-- rewrite, access, content and timer phases), so a slow Planfix never holds
-- up the worker's other requests. Clients are made once per worker; the
-- credentials come from the environment that nginx's `env` lines pass on;
-- the account's rate is shared by every worker through `limiter = "shm:<file>"`.
--
-- Environment (all read in the workers):
--   PLANFIX_BASE_URL or PLANFIX_ACCOUNT, PLANFIX_TOKEN       the Planfix REST API
--   PLANADO_URL (optional), PLANADO_API_KEY                  the Planado API v2
--   PLANADO_WEBHOOK_SECRET                                    X-Planado-Secret of the webhook
--   PLANFIX_EVENTS_SECRET, PLANFIX_EVENTS_SECRET_IN           the secret the scenario's template carries,
--                       and where ("field:secret" by default, "header:X-Token", "query:token")
--   GATEWAY_CA_FILE     the CA bundle nginx trusts (lua_ssl_trusted_certificate), also given to
--                       the clients as ca_file for the phases that fall back to libcurl
--   GATEWAY_LIMITER     the pacing scope (default shm:<nginx prefix>/planapi.limits)
--   GATEWAY_STATE_DIR   where the events stores live (default <nginx prefix>/state)
--   GATEWAY_EVENTS_STORE  redis://... to share the events with other hosts (default: file stores
--                       in GATEWAY_STATE_DIR, shared by every worker and nginx of this host)
--   GATEWAY_EVENTS_LOG  a file every handled event is appended to (one JSON line), if set
--   GATEWAY_EVENTS_SWEEP, GATEWAY_EVENTS_RETRY_DELAY  seconds between sweeps (5), and before a failed
--                       handling is tried again (the receivers' retry_delay, 30, doubling per attempt)
--   GATEWAY_CALL_LOG    a file the clients' call events are appended to as JSON Lines, if set
local planapi = require "planapi"
local events_ngx = require "planapi.events.ngx"
local jobs = require "gateway_jobs" -- what to call for a task or an event; no ngx in it

local M = {}

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

local function prefix()
  return (ngx.config.prefix():gsub("/$", ""))
end

-- ------------------------------------------------------------------ clients

local clients -- this worker's: { rest, planado, hook } once made
local clients_error

-- The counters live in a lua_shared_dict, so /metrics shows every
-- worker's calls; the call events may also go to a JSON Lines file.
local metrics = planapi.metrics.new { shared = ngx.shared.planapi_metrics }

local function call_hooks()
  local hooks = { metrics:hooks() }
  local path = env "GATEWAY_CALL_LOG"
  if path then hooks[2] = planapi.log.jsonl(path) end
  return hooks
end

local function make_clients()
  local hooks = call_hooks()
  local limiter = env "GATEWAY_LIMITER" or ("shm:" .. prefix() .. "/planapi.limits")
  local ca_file = env "GATEWAY_CA_FILE"
  local token = env "PLANFIX_TOKEN"
  local base_url = env "PLANFIX_BASE_URL"
  local account = env "PLANFIX_ACCOUNT"
  local api_key = env "PLANADO_API_KEY"
  if not token or not (base_url or account) then
    error "PLANFIX_TOKEN and PLANFIX_BASE_URL (or PLANFIX_ACCOUNT) must be set and passed by `env` lines"
  end
  if not api_key then error "PLANADO_API_KEY must be set and passed by an `env` line" end
  local c = {}
  c.rest = planapi.planfix_rest {
    base_url = base_url, account = not base_url and account or nil, token = token,
    limiter = limiter, ca_file = ca_file, timeout = 30, hooks = hooks,
  }
  c.planado = planapi.planado {
    url = env "PLANADO_URL", api_key = api_key, limiter = limiter, ca_file = ca_file, timeout = 30,
    hooks = hooks,
  }
  -- Seconds before a failed handling is tried again (doubling per attempt).
  local retry_delay = tonumber(env "GATEWAY_EVENTS_RETRY_DELAY" or "")
  local secret = env "PLANADO_WEBHOOK_SECRET"
  if secret then
    c.hook = planapi.planado_webhook { secret = secret, store = M.events_store "planado",
      retry_delay = retry_delay }
  end
  local pf_secret = env "PLANFIX_EVENTS_SECRET"
  if pf_secret then
    c.planfix_events = planapi.planfix_events { secret = pf_secret, store = M.events_store "planfix",
      secret_in = env "PLANFIX_EVENTS_SECRET_IN" or "field:secret", retry_delay = retry_delay }
  end
  return c
end

--- The store of one sender's events: Redis (GATEWAY_EVENTS_STORE) shared
-- by every host, else a directory shared by every worker and every nginx
-- of this host (flock per operation): an event is handled once whichever
-- worker or instance it reaches.
function M.events_store(api)
  local spec = env "GATEWAY_EVENTS_STORE"
  if spec and spec:match "^redis://" then
    return planapi.events.redis { url = spec, key_prefix = "planapi:events:" .. api .. ":" }
  end
  local state = env "GATEWAY_STATE_DIR" or (prefix() .. "/state")
  planapi.core.mkdir(state)
  return planapi.events.file { dir = state .. "/" .. api .. "-events" }
end

--- The worker's clients, made on first use (init_worker makes them early).
function M.clients()
  if clients then return clients end
  local ok, c = pcall(make_clients)
  if not ok then
    clients_error = tostring(c)
    return nil, clients_error
  end
  clients, clients_error = c, nil
  return clients
end

--- init_worker_by_lua: make this worker's clients (no network is used).
function M.init_worker()
  local c, err = M.clients()
  if err then ngx.log(ngx.ERR, "gateway: clients not ready: ", err) end
  if c then M.start_sweepers(c) end
end

-- ------------------------------------------------------------------ answers

local function answer(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["X-Gateway-Worker"] = ngx.worker.pid()
  local text = planapi.json.encode(body) .. "\n"
  ngx.header["Content-Length"] = #text
  ngx.print(text)
  return ngx.exit(ngx.OK)
end

-- A planapi error as an answer: its one-line text never holds a credential.
local function answer_error(err)
  local status = 502
  if err.kind == "timeout" then
    status = 504
  elseif err.kind == "config" then
    status = 500
  elseif err.status == 404 then
    status = 404
  end
  return answer(status, { error = tostring(err), kind = err.kind })
end

local function only(method)
  if ngx.req.get_method() ~= method then
    ngx.header["Allow"] = method
    answer(405, { error = "use " .. method })
    return false
  end
  return true
end

-- ------------------------------------------------------------------ handlers

function M.health()
  return answer(200, { status = "ok", worker = ngx.worker.pid() })
end

--- GET /metrics
function M.metrics()
  ngx.header["Content-Type"] = metrics.CONTENT_TYPE
  ngx.print(metrics:render())
end

--- POST /tasks/{id}/to-planado
function M.task_to_planado(id)
  if not only "POST" then return end
  local c, cerr = M.clients()
  if not c then return answer(500, { error = cerr }) end
  local task_id = tonumber(id)
  if not task_id then return answer(400, { error = "the task id must be a number" }) end
  local result, created = jobs.task_to_job(c, task_id)
  if not result then return answer_error(created) end
  result.created = created
  return answer(created and 201 or 200, result)
end

-- ------------------------------------------------------------------ events

-- One JSON line per handled event in GATEWAY_EVENTS_LOG (an audit trail;
-- the specs' oracle): true | nil, err. One write of one short line in
-- append mode, so the lines of several workers never mix.
local function journal(api, event)
  local path = env "GATEWAY_EVENTS_LOG"
  if not path then return true end
  local f, err = io.open(path, "a")
  if not f then return nil, err end
  local ok, werr = f:write(planapi.json.encode { api = api, id = event.id, type = event.type,
    attempts = event.attempts, worker = ngx.worker.pid() } .. "\n")
  local closed, cerr = f:close()
  if not ok or not closed then return nil, werr or cerr end
  return true
end

-- A Planado event: journaled, then what gateway_jobs decides (a finished
-- job of a Planfix task leaves a comment on it). A failure is retried by
-- the events store's lease, not by Planado (which already had its 200).
local function on_planado_event(event)
  local ok, err = journal("planado", event)
  if not ok then return nil, err end
  return jobs.on_planado_event(clients, event)
end

-- A Planfix scenario request: journaled, then its task's job made once (a
-- task Planfix does not have is a permanent failure, never retried).
local function on_planfix_event(event)
  local ok, err = journal("planfix", event)
  if not ok then return nil, err end
  return jobs.on_planfix_event(clients, event)
end

-- The receiver behind a location, or the answer that it is missing.
local function receiver_or_answer(name, setting)
  ngx.header["X-Gateway-Worker"] = ngx.worker.pid()
  if not only "POST" then return nil end
  local c, cerr = M.clients()
  if not c then return answer(500, { error = cerr }) end
  if not c[name] then return answer(503, { error = setting .. " is not set" }) end
  return c[name]
end

--- POST /planado/webhook
function M.planado_webhook()
  local hook = receiver_or_answer("hook", "PLANADO_WEBHOOK_SECRET")
  if hook then events_ngx.serve(hook, on_planado_event) end
end

--- POST /planfix/events
function M.planfix_events()
  local pf = receiver_or_answer("planfix_events", "PLANFIX_EVENTS_SECRET")
  if pf then events_ngx.serve(pf, on_planfix_event) end
end

-- In init_worker: a sweeper per receiver (in worker 0; the store makes one
-- per worker safe too) hands events whose lease expired to their handler.
local function start_sweepers(c)
  local every = tonumber(env "GATEWAY_EVENTS_SWEEP" or "") or 5
  if c.hook then events_ngx.sweeper(c.hook, on_planado_event, { every = every }) end
  if c.planfix_events then events_ngx.sweeper(c.planfix_events, on_planfix_event, { every = every }) end
end
M.start_sweepers = start_sweepers

return M
