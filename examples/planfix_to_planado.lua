-- The Planfix -> Planado bridge, the job planapi exists for.
--
-- sync: Planfix tasks in a chosen status become Planado jobs with
--   external_id "planfix-<task id>", so a re-run never creates a job twice.
-- webhook: when Planado says a job is finished, the Planfix task gets a
--   comment with the resolution and moves to a chosen status.
--
--   lua5.4 examples/planfix_to_planado.lua sync
--   lua5.4 examples/planfix_to_planado.lua serve 8090     (a webhook receiver; luasocket)
-- Configuration from the environment: PLANFIX_REST_URL or PLANFIX_ACCOUNT + PLANFIX_TOKEN
-- (or, with BRIDGE_SOURCE=xml, PLANFIX_ACCOUNT, PLANFIX_API_KEY, PLANFIX_XML_TOKEN, PLANFIX_XML_URL),
-- PLANADO_API_KEY, PLANADO_URL, PLANADO_WEBHOOK_SECRET, PLANAPI_CA_FILE,
-- BRIDGE_STATUS (the task status to sync, default 1) and BRIDGE_DONE_STATUS (default 3).
local planapi = require "planapi"

local Bridge = {}
Bridge.__index = Bridge

--- Bridge.new{ planfix = client, source = "rest" | "xml", planado = client,
--   webhook = planado_webhook, status = "1", done_status = "3" }
function Bridge.new(cfg)
  local self = setmetatable({}, Bridge)
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
  local ok, err = self.planfix:call("post-task-add-comment", { id = id, description = comment })
  if not ok then return nil, err end
  return self.planfix:call("post-task-by-id", { id = id, status = { id = tonumber(self.done_status) } })
end

--- on_webhook(headers, body) -> event | nil, err: what to answer Planado.
-- A fresh job_finished for a bridged job is reported on its task; if that
-- fails the claim is released and an error returned, so Planado retries.
function Bridge:on_webhook(headers, body)
  local event, err = self.webhook:handle(headers, body)
  if not event then return nil, err end
  if event.fresh and event.type == "job_finished" and event.resource then
    local task_id = text(event.resource.external_id):match "^planfix%-(%d+)$"
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
  return Bridge.new {
    source = source, planfix = planfix,
    planado = planapi.planado { api_key = getenv "PLANADO_API_KEY", url = getenv "PLANADO_URL", ca_file = ca },
    -- the receiver (serve) needs the webhook's secret; sync does not
    webhook = getenv "PLANADO_WEBHOOK_SECRET" and planapi.planado_webhook { secret = getenv "PLANADO_WEBHOOK_SECRET" },
    status = getenv "BRIDGE_STATUS", done_status = getenv "BRIDGE_DONE_STATUS",
  }
end

-- A minimal HTTP receiver for `serve`: one request at a time, answered at once.
function Bridge:serve(port, max_requests)
  assert(self.webhook, "set PLANADO_WEBHOOK_SECRET: the receiver checks every delivery's secret")
  local socket = require "socket"
  local server = assert(socket.bind("127.0.0.1", port))
  io.stdout:write(("listening on 127.0.0.1:%d\n"):format(select(2, server:getsockname())))
  io.stdout:flush()
  local handled = 0
  while not max_requests or handled < max_requests do
    local client = server:accept()
    client:settimeout(5)
    local headers, len = {}, 0
    local line = client:receive "*l"
    while line and line ~= "" do
      local name, value = line:match "^([^:]+):%s*(.-)%s*$"
      if name then headers[name:lower()] = value end
      line = client:receive "*l"
    end
    len = tonumber(headers["content-length"] or "0") or 0
    local body = len > 0 and client:receive(len) or ""
    local event, err = self:on_webhook(headers, body or "")
    local status = event and 200 or (err.answer or 400)
    client:send(("HTTP/1.1 %d OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"):format(status))
    client:close()
    handled = handled + 1
    io.stdout:write(event and ("%s %s%s\n"):format(event.type, event.fresh and "fresh" or "seen before",
      event.reported and (" -> reported on task " .. event.reported) or "") or ("rejected: " .. tostring(err) .. "\n"))
    io.stdout:flush()
  end
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
