-- gateway.lua: the handlers of the planapi OpenResty / nginx gateway example
-- (examples/openresty/nginx.conf.in, started by examples/openresty/run).
--
--   POST /tasks/{id}/to-planado   Planfix task {id} becomes a Planado job with
--                                 external_id "planfix-{id}": 201 the new job,
--                                 200 the job made earlier (never a second one)
--   POST /planado/webhook         a Planado webhook delivery: answered at once
--                                 (200 fresh / duplicate / stale, else the
--                                 error's status); fresh events are handled in
--                                 a timer after the answer
--   GET  /health                  200, without touching any API
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
--   GATEWAY_CA_FILE     the CA bundle nginx trusts (lua_ssl_trusted_certificate), also given to
--                       the clients as ca_file for the phases that fall back to libcurl
--   GATEWAY_LIMITER     the pacing scope (default shm:<nginx prefix>/planapi.limits)
--   GATEWAY_STATE_DIR   where the webhook store lives (default <nginx prefix>/state)
local planapi = require "planapi"

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

local function make_clients()
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
    limiter = limiter, ca_file = ca_file, timeout = 30,
  }
  c.planado = planapi.planado {
    url = env "PLANADO_URL", api_key = api_key, limiter = limiter, ca_file = ca_file, timeout = 30,
  }
  local secret = env "PLANADO_WEBHOOK_SECRET"
  if secret then
    local state = env "GATEWAY_STATE_DIR" or (prefix() .. "/state")
    planapi.core.mkdir(state)
    c.hook = planapi.planado_webhook {
      secret = secret,
      -- A directory shared by every worker (flock per claim): a delivery is
      -- handled once whichever worker it reaches.
      store = planapi.webhook_store.file { dir = state .. "/webhooks" },
    }
  end
  return c
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
  local _, err = M.clients()
  if err then ngx.log(ngx.ERR, "gateway: clients not ready: ", err) end
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

local function job_description(task)
  local text = type(task.name) == "string" and task.name or ("Planfix task " .. tostring(task.id))
  if type(task.description) == "string" and task.description ~= "" then
    text = text .. "\n\n" .. task.description
  end
  return text
end

--- POST /tasks/{id}/to-planado
function M.task_to_planado(id)
  if not only "POST" then return end
  local c, cerr = M.clients()
  if not c then return answer(500, { error = cerr }) end
  local task_id = tonumber(id)
  if not task_id then return answer(400, { error = "the task id must be a number" }) end
  local task, err = c.rest.tasks:get(task_id, { fields = "id,name,description" })
  if not task then return answer_error(err) end

  local external_id = "planfix-" .. task_id
  local uuid, jerr = c.planado.jobs:create { external_id = external_id, description = job_description(task) }
  if uuid then
    return answer(201, { job_uuid = uuid, external_id = external_id, task_id = task_id, created = true })
  end
  -- Planado refuses a second job with the same external_id: the task was
  -- sent before, so answer with that job instead of making another. Any
  -- other refusal (an invalid field) is the caller's error as it is.
  if jerr.external_id_taken then
    local job, gerr = c.planado.jobs:get(external_id)
    if job then
      return answer(200, { job_uuid = job.uuid, external_id = external_id, task_id = task_id, created = false })
    end
    if gerr.status ~= 404 then return answer_error(gerr) end
  end
  return answer_error(jerr)
end

-- A fresh event, after the answer: a finished job of a Planfix task leaves a
-- comment on that task. If that fails, the claim is released so that a
-- redelivery of the event is handled again.
local function handle_event(premature, event)
  if premature then return end
  local c = clients
  local job = event.kind == "job" and event.resource or nil
  local task_id = job and type(job.external_id) == "string" and job.external_id:match "^planfix%-(%d+)$"
  if event.type ~= "job_finished" or not task_id then return end
  local resolution = type(job.resolution) == "table" and job.resolution or {}
  local text = "Planado job finished"
  if type(resolution.name) == "string" then text = text .. ": " .. resolution.name end
  if type(resolution.comment) == "string" and resolution.comment ~= "" then
    text = text .. " (" .. resolution.comment .. ")"
  end
  local ok, err = c.rest.tasks:add_comment(tonumber(task_id), { description = text })
  if not ok then
    ngx.log(ngx.WARN, "gateway: event ", event.uuid, ": ", tostring(err))
    c.hook:release(event)
  end
end

local MAX_WEBHOOK_BODY = 1024 * 1024

local function request_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local path = ngx.req.get_body_file() -- a body nginx buffered to disk
  if not path then return "" end
  local f = io.open(path, "rb")
  if not f then return "" end
  body = f:read(MAX_WEBHOOK_BODY + 1)
  f:close()
  return body or ""
end

--- POST /planado/webhook
function M.planado_webhook()
  if not only "POST" then return end
  local c, cerr = M.clients()
  if not c then return answer(500, { error = cerr }) end
  if not c.hook then return answer(503, { error = "PLANADO_WEBHOOK_SECRET is not set" }) end
  local event, err = c.hook:handle(ngx.req.get_headers(100), request_body())
  if not event then
    -- 401 wrong secret, 413 too large, 400 not an event: Planado retries later.
    return answer(err.answer or 400, { error = err.message })
  end
  if event.fresh then
    local ok, terr = ngx.timer.at(0, handle_event, event)
    if not ok then
      c.hook:release(event)
      return answer(503, { error = "cannot queue the event: " .. tostring(terr) })
    end
  end
  local state = event.fresh and "fresh" or event.duplicate and "duplicate" or "stale"
  return answer(200, { result = state, event_uuid = event.uuid })
end

return M
