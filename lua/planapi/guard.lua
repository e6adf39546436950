-- guard.lua: dry run and write guards, decided in the call loop before a
-- request is sent (client_base.run), the same on every client.
--
--   dry_run = true      every write answers its prepared request instead of
--                       being sent; reads still run
--   dry_run = "all"     nothing is sent at all
--   writes = false      every write is a config error naming the operation
--   writes = { allow = { "post-task", "task", ... },  -- operations or resources
--              projects = { 12 } }                   -- Planfix: tasks of these projects only
--
-- Which operations write is the API's knowledge (client:is_write(req), from
-- its operation tables); where a task write lands is too (client:task_write
-- and client:task_project, Planfix REST and XML only). A client without
-- these options keeps `guard = false` and the call loop skips this file.
local config_error = require("planapi.config_error")

local G = {}

local function check_list(list, what, item_type)
  if type(list) ~= "table" then config_error(("option 'writes.%s' must be a list"):format(what), 6) end
  local set = {}
  for _, v in ipairs(list) do
    if type(v) ~= item_type then
      config_error(("option 'writes.%s' holds %ss, got a %s"):format(what, item_type, type(v)), 6)
    end
    set[v] = true
  end
  return set
end

-- The writes option as a table: off, allow (a set), projects (a set).
local function writes_rule(writes)
  if writes == nil or writes == true then return nil end
  if writes == false then return { off = true } end
  for k in pairs(writes) do
    if k ~= "allow" and k ~= "projects" then
      config_error(("unknown writes option '%s' (valid: allow, projects)"):format(tostring(k)), 5)
    end
  end
  local rule = { allow = writes.allow and check_list(writes.allow, "allow", "string") }
  if writes.projects ~= nil then
    rule.projects = check_list(writes.projects, "projects", "number")
  end
  return rule
end

--- The client's guard from its options, or false (nothing to check: the
-- call loop's one test). api: the client's API name ("planfix_rest").
-- projects_ok: whether the API knows the projects of tasks.
function G.new(opts, api, projects_ok)
  local dry = opts.dry_run
  if dry ~= nil and dry ~= true and dry ~= false and dry ~= "all" then
    config_error(("option 'dry_run' must be true, false or \"all\" (got %s)"):format(tostring(dry)), 4)
  end
  local rule = writes_rule(opts.writes)
  if rule and rule.projects and not projects_ok then
    config_error(("option 'writes.projects' is for Planfix (REST and XML), not %s"):format(api), 4)
  end
  if not dry and rule == nil then return false end
  return { api = api, dry_run = dry or nil, rule = rule }
end

-- ------------------------------------------------------------ dry run
--- The answer of a request that was not sent: result, meta. The request
-- is shown as prepared, its secrets masked by the client's redaction.
function G.dry_result(self, req)
  local c = self.core
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = c:redact(v) end
  local body = req.body
  if type(body) == "string" then body = c:redact(body) end
  local result = { dry_run = true, request = { operation = req.operation, method = req.method,
    url = c:redact(req.url), headers = headers, body = body } }
  return result, { dry_run = true, attempts = 0, headers = {}, result = result }
end

-- ------------------------------------------------------------ guards
local function refuse(self, req, why)
  -- tostring(err) starts with the operation's name
  config_error(("%s write refused before sending: %s"):format(self.guard.api, why), 0,
    { operation = req.operation })
end

-- Whether an allow list names the operation or its resource ("task",
-- "tasks" for REST's /task/..., "task" for XML's task.*, "jobs" for Planado).
local function allowed(self, allow, req)
  if allow[req.operation] then return true end
  local resource = self:resource_of(req)
  return resource ~= nil and (allow[resource] or allow[resource .. "s"]) or false
end

local function project_list(projects)
  local ids = {}
  for id in pairs(projects) do ids[#ids + 1] = ("%d"):format(id) end
  table.sort(ids)
  return table.concat(ids, ", ")
end

-- A task write under writes.projects: the project the request names (a
-- create, or a move) and the project the task is in now (read from the
-- server: one more read per write to an existing task) must both be listed.
-- true | nil, err (the read failed: nothing was written).
local function check_project(self, req, target, projects, dry)
  local ids = project_list(projects)
  if target.project ~= nil and not projects[tonumber(target.project)] then
    refuse(self, req, ("it puts the task in project %s; writes.projects allows %s"):format(
      tostring(target.project), ids))
  end
  if target.task == nil then
    if target.project == nil then refuse(self, req, "it names no project; writes.projects allows " .. ids) end
    return true
  end
  -- dry_run = "all" sends no read either: the task's project stays unknown
  if dry == "all" then return true end
  local project, err = self:task_project(target.task)
  if err then return nil, err end
  if not projects[tonumber(project)] then
    refuse(self, req, ("task %s is in project %s; writes.projects allows %s"):format(tostring(target.task),
      tostring(project or "none"), ids))
  end
  return true
end

-- The write guard: raises for a refused write; true | nil, err.
local function check_write(self, req, rule, dry)
  if rule.off then refuse(self, req, "the client was made with writes = false") end
  if rule.projects then
    local target = self:task_write(req)
    if target then return check_project(self, req, target, rule.projects, dry) end
  end
  if rule.allow and allowed(self, rule.allow, req) then return true end
  if rule.allow and rule.projects then refuse(self, req, "neither a task write nor in writes.allow") end
  if rule.allow then refuse(self, req, "not in writes.allow") end
  if rule.projects then refuse(self, req, "writes.projects lets only tasks change (name others in writes.allow)") end
  return true
end

--- Before sending req: nil (send it), a dry run's result and meta, or nil
-- and an error (a guard's read failed). A refused write raises.
function G.check(self, req)
  local guard = self.guard or {}
  local dry = req.dry_run
  if dry == nil then dry = guard.dry_run end
  local write = self:is_write(req)
  if write and guard.rule then
    local ok, err = check_write(self, req, guard.rule, dry)
    if not ok then return nil, err end
  end
  if dry == "all" or (dry and write) then return G.dry_result(self, req) end
  return nil
end

return G
