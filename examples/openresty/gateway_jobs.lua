-- gateway_jobs.lua: what the gateway (gateway.lua) does with Planfix tasks,
-- Planado jobs and the events of both, given the clients: no ngx here, so
-- examples/spec/openresty_gateway_spec.lua tests it with planapi.testing's
-- fakes and deliveries, without nginx. gateway.lua answers, journals and
-- schedules; this module decides what to call.
--
-- c = { rest = planapi.planfix_rest{...}, planado = planapi.planado{...} }
local M = {}

local function job_description(task)
  local text = type(task.name) == "string" and task.name or ("Planfix task " .. tostring(task.id))
  if type(task.description) == "string" and task.description ~= "" then
    text = text .. "\n\n" .. task.description
  end
  return text
end

--- task_to_job(c, task_id) -> result, created | nil, err: the Planado job of
-- a Planfix task, made once. result = { job_uuid, external_id, task_id }.
function M.task_to_job(c, task_id)
  local task, err = c.rest.tasks:get(task_id, { fields = "id,name,description" })
  if not task then return nil, err end
  local external_id = "planfix-" .. task_id
  local result = { external_id = external_id, task_id = task_id }
  local uuid, jerr = c.planado.jobs:create { external_id = external_id, description = job_description(task) }
  if uuid then
    result.job_uuid = uuid
    return result, true
  end
  -- Planado refuses a second job with the same external_id: the task was
  -- sent before, so that job is the answer instead of another. Any other
  -- refusal (an invalid field) is the caller's error as it is.
  if jerr.external_id_taken then
    local job, gerr = c.planado.jobs:get(external_id)
    if job then
      result.job_uuid = job.uuid
      return result, false
    end
    if gerr.status ~= 404 then return nil, gerr end
  end
  return nil, jerr
end

--- finished_comment(event) -> task_id, text | nil: a finished job of a
-- Planfix task, and the comment that says so on the task.
function M.finished_comment(event)
  local job = event.kind == "job" and event.resource or nil
  local task_id = job and type(job.external_id) == "string" and job.external_id:match "^planfix%-(%d+)$"
  if event.type ~= "job_finished" or not task_id then return nil end
  local resolution = type(job.resolution) == "table" and job.resolution or {}
  local text = "Planado job finished"
  if type(resolution.name) == "string" then text = text .. ": " .. resolution.name end
  if type(resolution.comment) == "string" and resolution.comment ~= "" then
    text = text .. " (" .. resolution.comment .. ")"
  end
  return tonumber(task_id), text
end

--- on_planado_event(c, event) -> truthy | nil, err: a finished job of a
-- Planfix task leaves a comment on that task; any other event is done.
function M.on_planado_event(c, event)
  local task_id, text = M.finished_comment(event)
  if not task_id then return true end
  return c.rest.tasks:add_comment(task_id, { description = text })
end

--- on_planfix_event(c, event) -> true | nil, err: a Planfix scenario
-- request naming a task (task_id) makes that task a Planado job, once. A
-- task Planfix does not have is a permanent failure: recorded, never retried.
function M.on_planfix_event(c, event)
  if event.task_id == nil then return true end
  local result, jerr = M.task_to_job(c, tonumber(event.task_id))
  if result then return true end
  if jerr.status == 404 then return nil, "permanent", tostring(jerr) end
  return nil, jerr
end

return M
