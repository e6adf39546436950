-- The Planfix -> Planado bridge, the job planapi exists for.
--
-- sync: Planfix tasks in a chosen status become Planado jobs with
--   external_id "planfix-<task id>", so a re-run never creates a job twice.
-- Planfix events: a scenario request about a task (created, changed, its
--   status) makes its job at once when the task is in that status, without
--   waiting for the next sync (POST /planfix, planapi.planfix_events).
-- Planado webhook: when Planado says a job is finished, the Planfix task gets
--   a comment with the resolution and moves to a chosen status (POST /planado).
--
--   lua5.4 examples/planfix_to_planado.lua sync
--   lua5.4 examples/planfix_to_planado.lua serve 8090     (both receivers on one port; luasocket)
--
-- The Planfix scenario (Planfix's documentation, scenarios: the action "HTTP request"), triggered
-- when a task is created or changed: POST http://<this host>:8090/planfix, a JSON body
--   {"event": "task_changed", "task_id": <task number>, "secret": "<PLANFIX_EVENTS_SECRET>"}
-- Configuration from the environment: PLANFIX_REST_URL or PLANFIX_ACCOUNT + PLANFIX_TOKEN
-- (or, with BRIDGE_SOURCE=xml, PLANFIX_ACCOUNT, PLANFIX_API_KEY, PLANFIX_XML_TOKEN, PLANFIX_XML_URL),
-- PLANADO_API_KEY, PLANADO_URL, PLANADO_WEBHOOK_SECRET, PLANFIX_EVENTS_SECRET, PLANAPI_CA_FILE,
-- BRIDGE_STATUS (the task status to sync, default 1), BRIDGE_DONE_STATUS (default 3) and
-- BRIDGE_STATE_DIR (where the receivers remember events: a restart then handles nothing twice) and
-- BRIDGE_RESOLUTION_FIELD (the name of a task custom field, such as "Planado resolution", that gets
-- the job's resolution when it is reported; REST only).
local planapi = require "planapi"

local Bridge = {}
Bridge.__index = Bridge

--- Bridge.new{ planfix = client, source = "rest" | "xml", planado = client,
--   webhook = planado_webhook, planfix_events = planfix_events, status = "1", done_status = "3",
--   resolution_field = "Planado resolution" (a task custom field, by name; REST only),
--   log = function(line) end }
function Bridge.new(cfg)
  local self = setmetatable({ log = function() end }, Bridge)
  for k, v in pairs(cfg) do self[k] = v end
  self.source = self.source or "rest"
  self.status = tostring(self.status or 1)
  self.done_status = tostring(self.done_status or 3)
  return self
end

-- Every Planfix task in the chosen status, as { id, name, description }.
function Bridge:tasks()
  local out = {}
  if self.source == "xml" then
    for t in self.planfix:each("task.getList", {}) do
      if t.status == self.status then out[#out + 1] = { id = t.id, name = t.title, description = t.description } end
    end
  else
    local filter = { { type = 10, operator = "equal", value = tonumber(self.status) } }
    for t in self.planfix:each("get-task-list", { fields = "id,name,description,status", filters = filter }) do
      out[#out + 1] = { id = t.id, name = t.name, description = t.description }
    end
  end
  return out
end

local function text(v) return type(v) == "string" and v or "" end

-- The job of a task: "existing", uuid when Planado has it, "created", uuid
-- when this call made it, or nil, err. jobs:create recovers its own POST whose
-- outcome was unknown; a refusal of the external_id without that means another
-- run created the job after our lookup, so it is looked up, not counted failed.
function Bridge:job_for(task)
  local ext = "planfix-" .. task.id
  local job, err = self.planado.jobs:get(ext)
  if job then return "existing", job.uuid end
  if err.status ~= 404 then return nil, err end
  local description = text(task.name)
  if text(task.description) ~= "" then description = description .. "\n\n" .. task.description end
  local uuid, cerr = self.planado.jobs:create { external_id = ext, description = description }
  if uuid then return "created", uuid end
  if not cerr.external_id_taken then return nil, cerr end
  job, err = self.planado.jobs:get(ext)
  if job then return "existing", job.uuid end
  return nil, err
end

--- sync() -> counts { tasks, created, existing, failed }, jobs { [task id] = uuid }
-- A job already in Planado (found by its external_id) is left as it is.
function Bridge:sync()
  local counts, jobs = { tasks = 0, created = 0, existing = 0, failed = 0 }, {}
  for _, task in ipairs(self:tasks()) do
    counts.tasks = counts.tasks + 1
    local how, uuid = self:job_for(task)
    if how then
      counts[how] = counts[how] + 1
      jobs[tostring(task.id)] = uuid
    else
      counts.failed = counts.failed + 1
      io.stderr:write("bridge: task ", task.id, ": ", tostring(uuid), "\n")
    end
  end
  return counts, jobs
end

-- One task as { id, name, description, status } | nil, err.
function Bridge:task(id)
  if self.source == "xml" then
    local r, err = self.planfix:call("task.get", { task = { id = id } })
    if not r then return nil, err end
    local t = r.task or {}
    return { id = t.id, name = t.title, description = t.description, status = t.status }
  end
  local t, err = self.planfix.tasks:get(tonumber(id), { fields = "id,name,description,status" })
  if not t then return nil, err end
  local status = type(t.status) == "table" and t.status.id or t.status
  return { id = t.id, name = t.name, description = t.description, status = status }
end

--- on_planfix_event(event) -> true | nil, err: a Planfix scenario request
-- about a task makes its job now if the task is in the synced status. The
-- task is read again (the template carries only what it was given); a task
-- Planfix does not have is a permanent failure, anything else is retried by
-- the receiver's store.
function Bridge:on_planfix_event(event)
  if event.task_id == nil then return true end -- not about a task
  local task, err = self:task(event.task_id)
  if not task then
    if err.status == 404 then return nil, "permanent", tostring(err) end
    return nil, err
  end
  if tostring(task.status) ~= self.status then return true end
  local how, uuid = self:job_for(task)
  if not how then return nil, uuid end
  self.log(("planfix %s: task %s -> Planado job planfix-%s (%s)"):format(tostring(event.type), tostring(task.id),
    tostring(task.id), how))
  return true
end

-- Report a finished job on its Planfix task: a comment, then the status.
function Bridge:report(task_id, job)
  local r = type(job.resolution) == "table" and job.resolution or {}
  local comment = ("Planado: job %s finished. Resolution: %s%s"):format(job.serial_no or job.uuid,
    text(r.name) ~= "" and r.name or "done", text(r.comment) ~= "" and (". " .. r.comment) or "")
  if self.source == "xml" then
    local ok, err = self.planfix.action:add { description = comment, task = { id = task_id } }
    if not ok then return nil, err end
    return self.planfix.task:change_status { id = task_id, status = self.done_status }
  end
  -- The REST spec types a task's id as an integer; the external_id gave text.
  local id = tonumber(task_id)
  if self.resolution_field then
    -- by the name people see in Planfix; written, then read back (a field missing from the
    -- task's template is an error here, not a silent no-op), before the comment: a retry then
    -- repeats nothing
    local ok, err = self.planfix.tasks:set_fields(id,
      { [self.resolution_field] = text(r.name) ~= "" and r.name or "done" })
    if not ok then return nil, err end
  end
  local ok, err = self.planfix:call("post-task-add-comment", { id = id, description = comment })
  if not ok then return nil, err end
  return self.planfix:call("post-task-by-id", { id = id, status = { id = tonumber(self.done_status) } })
end

-- The Planfix task of a finished job of the bridge, or nil.
local function finished_task(event)
  if event.type ~= "job_finished" or type(event.resource) ~= "table" then return nil end
  return text(event.resource.external_id):match "^planfix%-(%d+)$"
end

--- on_planado_event(event) -> true | nil, err: a finished job of the
-- bridge is reported on its task (a failure is retried by the receiver's
-- store, never by making Planado deliver again).
function Bridge:on_planado_event(event)
  local task_id = finished_task(event)
  if not task_id then return true end
  local ok, err = self:report(task_id, event.resource)
  if not ok then return nil, err end
  self.log(("planado %s: reported on task %s"):format(event.type, task_id))
  return true
end

--- on_webhook(headers, body) -> event | nil, err: what to answer Planado.
-- A fresh job_finished for a bridged job is reported on its task; if that
-- fails the claim is released and an error returned, so Planado retries.
function Bridge:on_webhook(headers, body)
  local event, err = self.webhook:handle(headers, body)
  if not event then return nil, err end
  if event.fresh then
    local task_id = finished_task(event)
    if task_id then
      local ok, rerr = self:report(task_id, event.resource)
      if not ok then
        self.webhook:release(event)
        rerr.answer = 503
        return nil, rerr
      end
      event.reported = task_id
    end
  end
  return event
end

--- A bridge configured from the environment.
function Bridge.from_env(getenv)
  getenv = getenv or os.getenv
  local ca = getenv "PLANAPI_CA_FILE"
  local source = getenv "BRIDGE_SOURCE" or "rest"
  local planfix
  if source == "xml" then
    planfix = planapi.planfix_xml { account = getenv "PLANFIX_ACCOUNT", api_key = getenv "PLANFIX_API_KEY",
      token = getenv "PLANFIX_XML_TOKEN", url = getenv "PLANFIX_XML_URL", ca_file = ca }
  else
    planfix = planapi.planfix_rest { base_url = getenv "PLANFIX_REST_URL", account = getenv "PLANFIX_ACCOUNT",
      token = getenv "PLANFIX_TOKEN", ca_file = ca }
  end
  -- The receivers (serve) need the senders' secrets; sync does not.
  local state = getenv "BRIDGE_STATE_DIR"
  local function store(name) return state and planapi.events.file { dir = state .. "/" .. name } or nil end
  local pd_secret, pf_secret = getenv "PLANADO_WEBHOOK_SECRET", getenv "PLANFIX_EVENTS_SECRET"
  return Bridge.new {
    source = source, planfix = planfix,
    planado = planapi.planado { api_key = getenv "PLANADO_API_KEY", url = getenv "PLANADO_URL", ca_file = ca },
    webhook = pd_secret and planapi.planado_webhook { secret = pd_secret, store = store "planado" },
    planfix_events = pf_secret and planapi.planfix_events { secret = pf_secret, secret_in = "field:secret",
      store = store "planfix" },
    status = getenv "BRIDGE_STATUS", done_status = getenv "BRIDGE_DONE_STATUS",
    resolution_field = source == "rest" and getenv "BRIDGE_RESOLUTION_FIELD" or nil,
  }
end

--- serve(port, max_requests): both receivers on one port (planapi.events.server):
-- POST /planado (Planado's webhook) and POST /planfix (the scenario's
-- request), each claimed, answered at once, then handled.
function Bridge:serve(port, max_requests)
  assert(self.webhook or self.planfix_events,
    "set PLANADO_WEBHOOK_SECRET and/or PLANFIX_EVENTS_SECRET: the receivers check every request's secret")
  local routes = {}
  if self.webhook then
    routes["/planado"] = { receiver = self.webhook, handler = function(event) return self:on_planado_event(event) end }
  end
  if self.planfix_events then
    routes["/planfix"] = { receiver = self.planfix_events,
      handler = function(event) return self:on_planfix_event(event) end }
  end
  self.log = function(line) io.stdout:write(line, "\n") io.stdout:flush() end
  local server = require("planapi.events.server").new { listen = "127.0.0.1:" .. port, routes = routes,
    log = self.log }
  io.stdout:write(("listening on 127.0.0.1:%d\n"):format(select(2, server:address())))
  io.stdout:flush()
  server:run { max_requests = max_requests }
end

if arg and arg[0] and arg[0]:match "planfix_to_planado%.lua$" then
  local bridge = Bridge.from_env()
  if arg[1] == "sync" then
    local counts = bridge:sync()
    print(("%d tasks: %d jobs created, %d already in Planado, %d failed")
      :format(counts.tasks, counts.created, counts.existing, counts.failed))
    os.exit(counts.failed == 0 and 0 or 3)
  elseif arg[1] == "serve" then
    bridge:serve(tonumber(arg[2]) or 8090)
  else
    io.stderr:write "usage: planfix_to_planado.lua sync | serve [port]\n"
    os.exit(2)
  end
end

return Bridge
