-- planfix_rest/field_writes.lua: checked custom-field writes with a read-back (issue 20).
--   rest.tasks:set_fields(42, { ["Order number"] = "ORD-7", Region = "North" }, opts) -> result, meta
--   rest.tasks:verify_fields(42, { Region = "North" }) -> true | nil, err
-- Before sending (each a config error, nothing sent): an unknown or ambiguous name, a value of
-- the wrong shape, a list value not among the options, a read-only type, a field not on the
-- object's template. check = false skips the last three and a period's form (for a script that
-- knows better, or whose definitions may be stale); planapi.planfix_raw(v) sends one value as
-- given. After: the fields written are read back, and each of Planfix's silent no-ops is an `api`
-- error (its REST API documentation's gotchas, and planfix_fields/types.lua): a field not on the
-- template reads back empty; a list value not among the options reads back as written, so it is
-- judged against the options (the answer's field definition, else the definitions; one reload
-- before blaming the value); a period given as a duration reads back empty.
local M = {}

local expect = require("planapi.client_base").expect
local config_error = require("planapi.config_error")
local options = require("planapi.options")
local custom = require("planapi.planfix_rest.custom_fields")
local names = require("planapi.planfix_rest.names")
local Definitions = require("planapi.planfix_fields.definitions")
local types = require("planapi.planfix_fields.types")

local SET_OPTIONS = { read_back = "boolean", check = "boolean", check_template = "boolean", silent = "boolean",
  resolve = "function", utc_offset = "number", timeout = "number", dry_run = "boolean|string" }
local VERIFY_OPTIONS = { resolve = "function", utc_offset = "number", timeout = "number" }

-- Names where a value takes an id: the script's `resolve`, else users by the full name Planfix
-- shows or their login (rest.names; also for a group, employee or contact field: groups and
-- contacts by id) and directory entries by name (custom_fields.resolver).
local function resolver(rest, resolve)
  if resolve then return resolve end
  local others = custom.resolver(rest)
  return function(kind, name, def)
    if kind ~= "user" and kind ~= "person" then return others(kind, name, def) end
    local user, err = names.METHODS.user(rest, name)
    if not user then return nil, err end
    return ("user:%d"):format(user.id)
  end
end

-- Each value by field: { def, key (as the script named it), wire }, in field id order.
local function plan_writes(rest, entity, values, opts, check)
  if type(values) ~= "table" or next(values) == nil then
    config_error("set_fields takes a table of values by field name or id", 5)
  end
  local defs = custom.definitions(rest)
  local ctx = { resolve = resolver(rest, opts.resolve), utc_offset = opts.utc_offset, check = check }
  local plan, seen = {}, {}
  for key, value in pairs(values) do
    local def, err = defs:field(entity, key)
    if not def then return nil, err end
    if seen[def.id] then
      config_error(("custom field '%s' is given twice (as %s and %s)"):format(def.name, tostring(seen[def.id]),
        tostring(key)), 4)
    end
    seen[def.id] = key
    local wire
    wire, err = types.encode(def, value, ctx)
    if wire == nil and err ~= nil then return nil, err end
    plan[#plan + 1] = { def = def, key = key, wire = wire }
  end
  table.sort(plan, function(a, b) return a.def.id < b.def.id end)
  return plan
end

local function memo_key(ent, id)
  return ent.entity .. ":" .. tostring(id)
end

-- The id of the template of object `id` (read once per client, until a write to the object
-- does not stick; nil: it has none).
local function template_of(rest, ent, id)
  local memo = rawget(rest, "object_templates")
  local key = memo_key(ent, id)
  if memo[key] ~= nil then return memo[key] or nil end
  local result, err = rest:call(ent.get, { id = id, fields = "id,template" })
  if not result then return nil, err end
  local obj = result[ent.key]
  local t = type(obj) == "table" and type(obj.template) == "table" and tonumber(obj.template.id)
  if t == 0 then t = nil end
  memo[key] = t or false
  return t
end

local function template_named(defs, entity, template_id)
  local list, err = defs:templates(entity)
  if not list then return nil, err end
  for _, t in ipairs(list) do
    if t.id == template_id then return t end
  end
end

-- Every field written must be attached to the object's template, when it has one.
local function check_template(rest, ent, id, plan)
  local template_id, err = template_of(rest, ent, id)
  if template_id == nil then return err == nil, err end
  local defs = custom.definitions(rest)
  local t
  t, err = template_named(defs, ent.entity, template_id)
  if t == nil and err == nil then
    -- a template made since the definitions were read: read them again, once
    defs:invalidate(ent.entity)
    t, err = template_named(defs, ent.entity, template_id)
    if t == nil and err == nil then return true end -- not visible to this token: nothing to check
  end
  if t == nil then return nil, err end
  -- A template read that showed no field at all says nothing about which are attached (a
  -- template with none would make every write a no-op, which the read-back still catches).
  if next(t.field_ids) == nil then return true end
  for _, p in ipairs(plan) do
    if not t.field_ids[p.def.id] then
      config_error(("custom field '%s' is not on template '%s' (id %d) of %s %s: Planfix would answer "
        .. "success and store nothing"):format(p.def.name, t.name, t.id, ent.entity, tostring(id)), 0)
    end
  end
  return true
end

local function send(rest, ent, id, plan, opts)
  local data = {}
  for i, p in ipairs(plan) do data[i] = { field = { id = p.def.id }, value = p.wire } end
  local params = { id = id, customFieldData = data }
  if opts.silent ~= nil then params.silent = opts.silent end
  -- partial = "error": a field the server names in `failures` did not stick either
  return rest:call(ent.update, params, { timeout = opts.timeout, dry_run = opts.dry_run, partial = "error" })
end

local WHY = "Planfix answers success and stores nothing when the field is not on the object's template "
  .. "or the value has a form the field ignores"
local PERIOD = "a period must be { from = ..., to = ... }: Planfix stores a duration alone as an empty period"

-- The options a list field has now: those of the field definition the read answered with (the
-- Planfix REST API documentation's CustomFieldValueResponse: a CustomField), else the cached ones.
local function live_options(p, item, entity)
  local field = type(item) == "table" and item.field
  local choices = type(field) == "table" and Definitions.field_def(field, entity).options
  return choices or p.def.options
end

-- Each planned field whose read-back shows a silent no-op: { p =, kind =, read =, value =, choices = }.
local function judge(ent, plan, map)
  local problems = {}
  for _, p in ipairs(plan) do
    local item = map[p.def.id]
    local read = item and item.value
    local kind = types.read_problem(p.def, p.wire, read)
    local choices = live_options(p, item, ent.entity)
    local value = not kind and types.not_an_option(p.def, read, choices)
    if value then kind = "option" end
    if kind then problems[#problems + 1] = { p = p, kind = kind, read = read, value = value, choices = choices } end
  end
  return problems
end

-- A value none of the options named may be an option added since the definitions were read:
-- read them again, once, and keep only the values they do not name either (a field gone from
-- the account keeps the options it had).
local function recheck_options(rest, ent, problems)
  local kept, fresh = {}, nil
  for _, q in ipairs(problems) do
    if q.kind == "option" then
      if not fresh then
        local err
        fresh, err = custom.definitions(rest):reload_fields(ent.entity)
        if not fresh then return nil, err end
      end
      local def = fresh[q.p.def.id] or q.p.def
      q.choices = def.options or q.choices
      if types.not_an_option(def, q.read, q.choices) then kept[#kept + 1] = q end
    else
      kept[#kept + 1] = q
    end
  end
  return kept
end

-- The api error's text: the fields lost (with why that happens), then each other problem.
local function problems_text(problems)
  local lost, parts = {}, {}
  for _, q in ipairs(problems) do
    local def = q.p.def
    if q.kind == "lost" then
      lost[#lost + 1] = ("'%s' (wrote %s, read %s)"):format(def.name, types.show(def, q.p.wire),
        types.show(def, q.read))
    elseif q.kind == "period" then
      parts[#parts + 1] = ("'%s' (wrote a period without from and to, read %s): %s"):format(def.name,
        types.show(def, q.read), PERIOD)
    else
      parts[#parts + 1] = types.option_problem(def, q.value, q.choices)
    end
  end
  if #lost > 0 then table.insert(parts, 1, table.concat(lost, ", ") .. "; " .. WHY) end
  return table.concat(parts, "; ")
end

-- Read the planned fields of the object back; an api error names each one that did not stick.
local function read_back(rest, ent, id, plan, timeout)
  local ids = { "id" }
  for _, p in ipairs(plan) do ids[#ids + 1] = ("%d"):format(p.def.id) end
  local result, err = rest:call(ent.get, { id = id, fields = table.concat(ids, ",") }, { timeout = timeout })
  if not result then return nil, err end
  local obj = type(result[ent.key]) == "table" and result[ent.key] or {}
  local problems
  problems, err = recheck_options(rest, ent, judge(ent, plan, Definitions.by_field_id(obj.customFieldData)))
  if not problems then return nil, err end
  if #problems == 0 then return true end
  local e = rest.core:error { kind = "api", operation = ent.update, retryable = false,
    message = ("custom fields of %s %s did not stick: %s"):format(ent.entity, tostring(id), problems_text(problems)) }
  e.fields = {}
  for i, q in ipairs(problems) do e.fields[i] = q.p.def.name end
  return nil, e
end

-- The options checked and each value planned (what: "set_fields" | "verify_fields").
local function planned(rest, ent, id, values, opts, what, allowed)
  options.check(what, opts, 5, allowed)
  if id == nil then config_error(("%s needs the %s's id first"):format(what, ent.entity), 5) end
  local check = opts.check
  if what == "verify_fields" then check = false end
  return plan_writes(rest, ent.entity, values, opts, check)
end

--- rest.<resource>:set_fields(id, values, opts) -> result, meta | nil, err
-- opts: read_back (true), check (true: false skips the checks of options, template and a
-- period's form), check_template (true), silent, resolve (names of people and directory
-- entries: planfix_fields/types.lua), utc_offset, timeout, dry_run.
-- result.verified: the values were read back; false after a 202 (Planfix queued the change
-- behind a scenario: read it back later with verify_fields), a dry run or read_back = false.
function M.set_fields(rest, ent, id, values, opts)
  opts = opts or {}
  local plan, err = planned(rest, ent, id, values, opts, "set_fields", SET_OPTIONS)
  if not plan then return nil, err end
  if opts.check ~= false and opts.check_template ~= false and ent.templates then
    local ok
    ok, err = check_template(rest, ent, id, plan)
    if not ok then return nil, err end
  end
  local result, meta = send(rest, ent, id, plan, opts)
  if not result then return nil, meta end
  if meta and meta.dry_run then return expect(nil, meta) end
  result.verified = false
  if result.queued or opts.read_back == false then return result, meta end
  local ok
  ok, err = read_back(rest, ent, id, plan, opts.timeout)
  if not ok then
    -- the object may have moved to another template: read it again before the next write
    rawget(rest, "object_templates")[memo_key(ent, id)] = nil
    return nil, err
  end
  result.verified = true
  return result, meta
end

--- rest.<resource>:verify_fields(id, values, opts) -> true | nil, err: the read-back alone (it
-- sends nothing, so the checks before sending are the read-back's to make: unchecked plan).
function M.verify_fields(rest, ent, id, values, opts)
  opts = opts or {}
  local plan, err = planned(rest, ent, id, values, opts, "verify_fields", VERIFY_OPTIONS)
  if not plan then return nil, err end
  return read_back(rest, ent, id, plan, opts.timeout)
end

return M
