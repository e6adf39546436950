-- examples/haproxy/planapi_task.lua: planapi inside HAProxy (2.6, Lua 5.3),
-- loaded once per thread by haproxy.cfg (lua-load-per-thread):
--
--   service lua.planapi_task        GET /tasks/<id>: the Planfix task (REST) as JSON
--   action  lua.planado_job_status  tags the request with the status of the Planado
--                                   job its X-Planado-Job header names (txn.planado_status)
--
-- The calls go through HAProxy's non-blocking sockets (planapi's "haproxy"
-- transport, chosen by itself here): while Planfix or Planado answer, the
-- thread serves other requests. HAProxy makes the TLS connections itself,
-- in the planfix_tls and planado_tls sections of haproxy.cfg, verified
-- against their ca-file: Haproxy.route below points each origin there.
-- Each thread has its own Lua state, so its own
-- clients; they pace one account together through the limiter file (the
-- shm: scope), which every thread and process naming it shares.
--
-- Settings, from the environment HAProxy was started with:
--   PLANFIX_BASE_URL (or PLANFIX_ACCOUNT), PLANFIX_TOKEN, PLANADO_URL, PLANADO_API_KEY
--   PLANAPI_LIMITER    the pacing scope (default shm:$PLANAPI_HAPROXY_DIR/planapi.limits)
--   PLANAPI_TRANSPORT  "curl" forces libcurl (blocking: only to compare)
--   PLANFIX_RATE       Planfix requests a second (default planapi's, Planfix's 1)
--   PLANAPI_HAPROXY_PLANFIX_PORT, PLANAPI_HAPROXY_PLANADO_PORT  the TLS sections' ports
-- luacheck: read globals core (HAProxy's API, a global inside HAProxy)
local planapi = require "planapi"
local Haproxy = require "planapi.transport.haproxy"

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

local function origin(url) return url:match "^(https://[^/]+)" end

Haproxy.route(origin(env "PLANFIX_BASE_URL" or ("https://" .. tostring(env "PLANFIX_ACCOUNT") .. ".planfix.com/")),
  "127.0.0.1:" .. tostring(env "PLANAPI_HAPROXY_PLANFIX_PORT"))
Haproxy.route(origin(env "PLANADO_URL" or "https://api.planadoapp.com/v2/"),
  "127.0.0.1:" .. tostring(env "PLANAPI_HAPROXY_PLANADO_PORT"))

local clients -- this thread's, made on first use (no I/O happens while HAProxy loads this file)

local function make_clients()
  local limiter = env "PLANAPI_LIMITER" or ("shm:" .. (env "PLANAPI_HAPROXY_DIR" or "/tmp") .. "/planapi.limits")
  local rate = tonumber(env "PLANFIX_RATE" or "")
  return {
    rest = planapi.planfix_rest {
      base_url = env "PLANFIX_BASE_URL", account = env "PLANFIX_ACCOUNT", token = env "PLANFIX_TOKEN",
      limiter = limiter, rate = rate and { rate = rate, per = 1 } or nil,
      transport = env "PLANAPI_TRANSPORT", timeout = 10,
      ca_file = env "PLANAPI_HAPROXY_CA_FILE", -- for libcurl only (PLANAPI_TRANSPORT=curl)
    },
    planado = planapi.planado {
      url = env "PLANADO_URL", api_key = env "PLANADO_API_KEY", limiter = limiter,
      transport = env "PLANAPI_TRANSPORT", timeout = 10, ca_file = env "PLANAPI_HAPROXY_CA_FILE",
    },
  }
end

local function get_clients()
  clients = clients or make_clients()
  return clients
end

local function reply(applet, status, doc)
  local body = planapi.json.encode(doc) .. "\n"
  applet:set_status(status)
  applet:add_header("content-type", "application/json")
  applet:add_header("content-length", tostring(#body))
  applet:add_header("x-planapi-thread", tostring(core.thread))
  applet:start_response()
  applet:send(body)
end

-- GET /tasks/<id>
core.register_service("planapi_task", "http", function(applet)
  local id = applet.path:match "^/tasks/(%d+)$"
  if applet.method ~= "GET" or not id then
    return reply(applet, 404, { error = "GET /tasks/<id>" })
  end
  local task, err = get_clients().rest.tasks:get(tonumber(id), { fields = "id,name,description" })
  if not task then
    -- tostring(err) is one line and never holds the token.
    return reply(applet, err.status == 404 and 404 or 502, { error = tostring(err) })
  end
  reply(applet, 200, { task = task })
end)

-- http-request lua.planado_job_status: the job's status in txn.planado_status
-- ("unknown" when Planado has no such job, "error" when it could not say).
core.register_action("planado_job_status", { "http-req" }, function(txn)
  local ref = txn.http:req_get_headers()["x-planado-job"]
  ref = ref and ref[0]
  if not ref then return end
  local job, err = get_clients().planado.jobs:get(ref)
  local status = job and job.status or (err and err.status == 404 and "unknown") or "error"
  txn:set_var("txn.planado_status", tostring(status))
end)
