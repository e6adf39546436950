-- planfix_rest/names.lua: the ids scripts look up, by name (issue 20), through the client's
-- definitions cache (planfix_fields/definitions.lua, the `definitions` option):
--   rest.names:status("Completed", { process = "Support process" })  -> { id = 3, name = "Completed" }
--   rest.names:process("Support process") / rest.names:user("Ivan Petrov") / rest.names:user_group("Managers")
--   rest.names:project("Website") / rest.names:template("task", "Bug report") / rest.names:directory("Lead sources")
--   rest.names:invalidate("users")                                    -- read them again on next use
-- (rest.users:find_by_name and rest.projects:find_by_name are the same lookups.) A name matches
-- exactly, then in any case; a number or a string of digits is an id. An ambiguous name is a
-- config error listing the candidates with their ids, an unknown one a config error with the
-- closest names. A lookup costs one list read (all its pages) per TTL, not one per call.
local config_error = require "planapi.config_error"
local custom = require "planapi.planfix_rest.custom_fields"
local Definitions = require "planapi.planfix_fields.definitions"

local M = {}

-- One list read of a non-paged operation (its items under list_key) or of every page of a
-- paged one, as { id, name } items plus what `extra` adds.
local function reader(rest, op_id, params, extra)
  return function()
    local op = rest.operation(op_id)
    local list, err
    if op.paged then
      list, err = rest:all(op_id, params)
    else
      local result
      result, err = rest:call(op_id, params)
      list = result and result[op.list_key]
    end
    if list == nil then return nil, err end
    local out = {}
    for _, raw in ipairs(list) do
      if type(raw) == "table" and raw.id ~= nil then
        local item = { id = tonumber(raw.id) or raw.id, name = raw.name ~= nil and tostring(raw.name) or nil }
        if extra then extra(item, raw, out) end
        out[#out + 1] = item
      end
    end
    return out
  end
end

-- A user is found by the full name Planfix shows ("Ivan Petrov") and by the login, each an
-- item of its own (the same id under two names is never ambiguous with itself).
local function user_names(item, raw, out)
  local full = table.concat({ raw.name or "", raw.midname or "", raw.lastname or "" }, " ")
  item.name = full:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  item.login = type(raw.login) == "string" and raw.login or nil
  if item.login and item.login ~= "" and item.login ~= item.name then
    out[#out + 1] = { id = item.id, name = item.login, login = item.login, full_name = item.name }
  end
end

-- A status's process is the scope it is looked up in; the items say which it is.
local KINDS = {
  processes = { op = "get-task-process-list", params = { fields = "id,name" }, what = "task process" },
  users = { op = "get-user-list", params = { fields = "id,name,midname,lastname,login" }, what = "user",
    extra = user_names },
  user_groups = { op = "get-user-groups", params = { fields = "id,name" }, what = "user group" },
  projects = { op = "get-project-list", params = { fields = "id,name" }, what = "project" },
  directories = { op = "get-list-directories", params = { fields = "id,name" }, what = "directory" },
}

local function defs(rest) return custom.definitions(rest) end

local function lookup(rest, kind, name_or_id)
  local k = KINDS[kind]
  return defs(rest):find_named(kind, "all", reader(rest, k.op, k.params, k.extra), name_or_id, k.what,
    "the account")
end

-- The statuses of one process: { id, name, process = id }.
local function statuses_of(rest, process)
  return defs(rest):named("statuses", process.id, reader(rest, "get-task-status-list",
    { id = process.id, fields = "id,name" }, function(item) item.process = process.id end))
end

local function lookup_status(rest, name_or_id, process)
  local proc, err = lookup(rest, "processes", process)
  if not proc then return nil, err end
  local list, serr = statuses_of(rest, proc)
  if not list then return nil, serr end
  return Definitions.lookup(list, name_or_id, "task status", ("process '%s'"):format(proc.name))
end

-- Without a process, a status name is looked up in every task process: the same status shared
-- by two processes (one id) is one match; two ids under one name are ambiguous.
local function status_anywhere(rest, name_or_id)
  local procs, err = defs(rest):named("processes", "all", reader(rest, KINDS.processes.op, KINDS.processes.params))
  if not procs then return nil, err end
  local seen, merged = {}, {}
  for _, proc in ipairs(procs) do
    local list, serr = statuses_of(rest, proc)
    if not list then return nil, serr end
    for _, s in ipairs(list) do
      if not seen[s.id] then seen[s.id] = true merged[#merged + 1] = s end
    end
  end
  return Definitions.lookup(merged, name_or_id, "task status", "any task process")
end

-- What a caller gets: a copy (changing it changes no later lookup's answer); a user found by
-- login is named by the full name all the same.
local function answer(item, err)
  if item == nil then return nil, err end
  local out = {}
  for k, v in pairs(item) do out[k] = v end
  if out.full_name then out.name, out.full_name = out.full_name, nil end
  return out
end

local STATUS_OPTIONS = { process = true }

local METHODS = {}

--- rest.names:status(name_or_id, { process = name_or_id }?) -> { id, name, process } | nil, err
function METHODS.status(rest, name_or_id, opts)
  for k in pairs(opts or {}) do
    if not STATUS_OPTIONS[k] then config_error(("names:status takes { process = }, not '%s'"):format(k), 3) end
  end
  if opts and opts.process ~= nil then return answer(lookup_status(rest, name_or_id, opts.process)) end
  return answer(status_anywhere(rest, name_or_id))
end

for _, kind in ipairs { "process", "user", "user_group", "project", "directory" } do
  local plural = kind == "process" and "processes" or (kind == "directory" and "directories" or kind .. "s")
  --- rest.names:<kind>(name_or_id) -> { id, name, ... } | nil, err
  METHODS[kind] = function(rest, name_or_id) return answer(lookup(rest, plural, name_or_id)) end
end

--- rest.names:template("task", name_or_id) -> { id, name, field_ids } | nil, err
function METHODS.template(rest, entity, name_or_id)
  return defs(rest):template(entity, name_or_id)
end

local FORGET = { processes = true, statuses = true, users = true, user_groups = true, projects = true,
  directories = true }

--- rest.names:invalidate(kind?): forget one kind ("users", "statuses"...) or every name.
function METHODS.invalidate(rest, kind)
  if kind == nil then
    for k in pairs(FORGET) do defs(rest).cache:invalidate_prefix(("%s/%s/"):format(defs(rest).namespace, k)) end
    defs(rest).indexes = {}
    return
  end
  if not FORGET[kind] then
    local valid = {}
    for k in pairs(FORGET) do valid[#valid + 1] = k end
    table.sort(valid)
    config_error(("names:invalidate takes one of %s, not '%s'"):format(table.concat(valid, ", "), tostring(kind)), 3)
  end
  defs(rest).cache:invalidate_prefix(("%s/%s/"):format(defs(rest).namespace, kind))
  defs(rest).indexes = {}
end

M.METHODS = METHODS

--- The bound methods of rest.names (resources.lua).
function M.bind(rest)
  local out = {}
  for name, fn in pairs(METHODS) do
    out[name] = function(_, ...) return fn(rest, ...) end
  end
  return out
end

return M
